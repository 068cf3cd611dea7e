"""Prefect flows and the private warehouse: ingest (discover → stage → validate → load or
quarantine → link) and, later, release."""
