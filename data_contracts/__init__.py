"""Data contracts: code lists, the harmonised schema and the Great Expectations suites."""
