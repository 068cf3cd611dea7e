"""Connectors: read each provider's native export and map it to the harmonised record.

One mapping file per source in connectors/sources/, label vocabularies per language in
connectors/vocabularies/. A new source is onboarded by adding a mapping file.
"""
