"""Differential privacy: OpenDP measurements, the privacy ledger, post-processing and
intervals (the DP release issue)."""
