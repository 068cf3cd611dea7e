"""The code lists and the harmonised schema, read from the YAML beside this module and
validated (thb/config.py): a broken file fails at load, naming the file and the key.

>>> from data_contracts.codelists import codelists, codes, label, schema
>>> codes("gender")
['female', 'male', 'other', 'unknown']
>>> label("exploitation_form", "labour")
'Labour exploitation'
>>> codelists()["reporting_country"].codes["GR"].route_role
'transit'
>>> schema("case_record").columns["gender"].codelist
'gender'
"""

from functools import cache
from pathlib import Path
from typing import Literal

import pycountry
from pydantic import ConfigDict, Field, RootModel, field_validator, model_validator

from thb.config import ConfigModel, load_yaml

HERE = Path(__file__).parent
CODELISTS_FILE = HERE / "codelists.yaml"
SCHEMA_FILE = HERE / "schema.yaml"

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
FLAG_DIMENSIONS = ("unaccompanied_child", "smuggling_debt")  # yes / no / unknown: the 'flag' list
# The lists the code refers to by name (the others are reached through schema.yaml).
NAMED_LISTS = ("reporting_country", "source_type", "flag", *(d for d in CUBE_DIMENSIONS if d not in FLAG_DIMENSIONS))
RouteRole = Literal["transit", "destination"]
ROUTE_ROLES: tuple[RouteRole, ...] = ("transit", "destination")


class Code(ConfigModel):
    """One code of a list."""

    label: str
    """English label (dashboard, methodology, docs)."""
    description: str | None = None
    """What the code means, where the label does not say it."""
    route_role: RouteRole | None = None
    """Reporting countries: the country's place on the route (the simulator's route stages)."""
    min: int | None = Field(None, ge=0)
    """Age groups: the youngest age in the group, in years."""
    max: int | None = Field(None, ge=0)
    """Age groups: the oldest age in the group, in years."""
    child: bool = False
    """Age groups: a group of children (under 18)."""

    @model_validator(mode="after")
    def _age_bounds(self):
        if (self.min is None) != (self.max is None):
            raise ValueError("an age group needs both min and max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class CodeList(ConfigModel):
    """A list of codes, in display order."""

    label: str
    """English name of the list."""
    codes: dict[str, Code] = Field(min_length=1)
    """Code → its label and attributes, in display order."""


class CodeLists(RootModel[dict[str, CodeList]]):
    """codelists.yaml: list name → code list."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _lists_the_code_needs(self):
        lists = self.root
        missing = [n for n in NAMED_LISTS if n not in lists]
        if missing:
            raise ValueError(f"missing code lists {missing}: the code refers to them by name")
        if roleless := [c for c, v in lists["reporting_country"].codes.items() if v.route_role is None]:
            raise ValueError(f"reporting_country: codes without a route_role: {roleless}")
        if unbounded := [c for c, v in lists["age_group"].codes.items() if c != "unknown" and v.min is None]:
            raise ValueError(f"age_group: codes without min and max ages: {unbounded}")
        return self


class Column(ConfigModel):
    """One column of a harmonised record."""

    type: Literal["text", "code", "country", "date", "bool", "encoding"]
    """text, code (of `codelist`), country (ISO 3166-1 alpha-2), date, bool (yes/no/unknown), or
    encoding (the provider kit's keyed Bloom-filter encoding, base64)."""
    codelist: str | None = None
    """The code list of a `code` column (a list of codelists.yaml)."""
    required: bool = False
    """True: the column may not be null."""

    @field_validator("codelist")
    @classmethod
    def _known_list(cls, v: str | None) -> str | None:
        if v is not None and v not in codelists():
            raise ValueError(f"no code list {v!r} in codelists.yaml (have: {', '.join(codelists())})")
        return v

    @model_validator(mode="after")
    def _codelist_of_codes(self):
        if (self.type == "code") != (self.codelist is not None):
            raise ValueError("a column has a codelist if and only if its type is code")
        return self

    @property
    def values_list(self) -> str | None:
        """The list that holds the column's values: its code list, 'flag' (bool), 'country', or None."""
        return "flag" if self.type == "bool" else "country" if self.type == "country" else self.codelist


class RecordSchema(ConfigModel):
    """The harmonised schema of one kind of record."""

    table: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    """The warehouse table (schema.table) that holds the records."""
    columns: dict[str, Column]
    """Field → its type, in table order."""

    @model_validator(mode="after")
    def _context(self):
        if missing := [
            f for f in ("source_id", "source_type", "reporting_country", "record_id") if f not in self.columns
        ]:
            raise ValueError(
                f"every record has source_id, source_type, reporting_country and record_id; missing {missing}"
            )
        return self


class Schema(ConfigModel):
    """schema.yaml: the two kinds of harmonised record."""

    case_record: RecordSchema
    """A case of a presumed or identified victim."""
    screening_record: RecordSchema
    """An asylum applicant screened for signs of trafficking."""

    def record(self, kind: str) -> RecordSchema:
        """The schema of a record kind ('case_record' or 'screening_record')."""
        return {"case_record": self.case_record, "screening_record": self.screening_record}[kind]


@cache
def codelists(path: Path = CODELISTS_FILE) -> dict[str, CodeList]:
    """Every code list, by name (codelists.yaml, validated)."""
    return load_yaml(path, CodeLists).root


def codes(name: str) -> list[str]:
    """The codes of one list, in display order."""
    return list(codelists()[name].codes)


def label(name: str, code: str) -> str:
    """The English label of one code."""
    return codelists()[name].codes[code].label


def route_role(country: str) -> RouteRole:
    """A reporting country's place on the route: transit or destination.

    >>> route_role("RS"), route_role("DE")
    ('transit', 'destination')
    """
    role = codelists()["reporting_country"].codes[country].route_role
    if role is None:  # refused when codelists.yaml loads
        raise KeyError(f"reporting country {country} has no route_role")
    return role


@cache
def schemas(path: Path = SCHEMA_FILE) -> Schema:
    """The harmonised schema (schema.yaml, validated; its code lists must exist)."""
    return load_yaml(path, Schema)


def schema(kind: str) -> RecordSchema:
    """The harmonised schema of a record kind ('case_record' or 'screening_record')."""
    return schemas().record(kind)


@cache
def iso_countries() -> dict[str, str]:
    """ISO 3166-1: alpha-3 → alpha-2, alpha-2 → alpha-2 (the valid country codes)."""
    pairs = {c.alpha_3: c.alpha_2 for c in pycountry.countries}
    return pairs | {a2: a2 for a2 in pairs.values()}


def country_codes() -> list[str]:
    """Every valid ISO 3166-1 alpha-2 code, sorted."""
    return sorted(set(iso_countries().values()))
