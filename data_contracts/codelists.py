"""The code lists and the harmonised schema, read from the YAML beside this module.

>>> from data_contracts.codelists import codes, label
>>> codes("gender")
['female', 'male', 'other', 'unknown']
>>> label("exploitation_form", "labour")
'Labour exploitation'
"""

from functools import cache
from pathlib import Path

import pycountry
import yaml

HERE = Path(__file__).parent

# The dimensions of the published cube (DESIGN.md, with the two flags the release issue added).
CUBE_DIMENSIONS = (
    "status",
    "exploitation_form",
    "route_stage",
    "gender",
    "age_group",
    "unaccompanied_child",
    "smuggling_debt",
)


@cache
def codelists() -> dict:
    """Every code list: {name: {"label": ..., "codes": {code: {"label": ...}}}}."""
    return yaml.safe_load((HERE / "codelists.yaml").read_text(encoding="utf-8"))


def codes(name: str) -> list[str]:
    """The codes of one list, in display order."""
    return list(codelists()[name]["codes"])


def label(name: str, code: str) -> str:
    """The English label of one code."""
    return codelists()[name]["codes"][code]["label"]


@cache
def schema(kind: str) -> dict:
    """The harmonised schema of a record kind ('case_record' or 'screening_record')."""
    return yaml.safe_load((HERE / "schema.yaml").read_text(encoding="utf-8"))[kind]


@cache
def iso_countries() -> dict[str, str]:
    """ISO 3166-1: alpha-3 → alpha-2, alpha-2 → alpha-2 (the valid country codes)."""
    pairs = {c.alpha_3: c.alpha_2 for c in pycountry.countries}
    return pairs | {a2: a2 for a2 in pairs.values()}


def country_codes() -> list[str]:
    """Every valid ISO 3166-1 alpha-2 code, sorted."""
    return sorted(set(iso_countries().values()))
