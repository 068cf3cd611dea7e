"""The provider kit: what an NGO, asylum service or police unit runs on its own machine.

`thb provider export` reads a provider's internal case-management export through its
source's mapping, turns names and dates of birth into keyed Bloom-filter encodings
(normalise → encode), drops every identifier and free-text column, runs the warehouse's
own contracts and PII screen, and writes the anonymised export to an outbox with a receipt
(kit). Names, dates of birth and the linkage secret never leave the provider's machine.
"""
