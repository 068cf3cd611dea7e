"""The stored contract suites are what the mappings generate."""

import json

from data_contracts.build import build_suites
from tests.helpers import SOURCES
from thb.settings import Settings


def test_stored_suites_are_the_generated_ones():
    """The JSON suites in data_contracts/suites/ are exactly what the mappings generate."""
    stored = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in Settings().contracts_dir.glob("*.json")}
    assert stored == build_suites(SOURCES)
