"""Generate the Great Expectations suites from the schema, the code lists, the PII screen
and the connector mappings; `thb contracts build` writes them to data_contracts/suites/.

Two kinds of suite:
- `<source_id>.<kind>`: the structure of one source's export (its exact columns), run on
  every delivered file;
- `harmonised.<kind>`: the row contract every record must meet once mapped (codes in
  their lists, dates valid and not in the future, the dates that place a record in a quarter
  not before the release calendar's first quarter, ids pseudonymous, no personal data,
  record_id unique within the file), run on all new records at once, in chunks. Uniqueness
  across a source's files is checked against the warehouse (pipelines/staging.py).
"""

import json
import re
from functools import cache
from pathlib import Path

from pydantic import Field, field_validator

from connectors.mapping import KIND_SCHEMA, SourceMapping
from data_contracts.codelists import codes, country_codes, schema
from thb.config import ConfigModel, load_yaml

HERE = Path(__file__).parent
KINDS = tuple(KIND_SCHEMA)
MIN_DATE = "2000-01-01T00:00:00"  # the earliest plausible date of any other kind
PERIOD_DATES = ("reference_date", "screening_date")  # place a record in its quarter: within the calendar
# the kit's encodings (provider/encode.py): a version tag, then its parts in base64 (empty
# where not known): the name (2048 balanced bits), the year and the day-month of birth (512 each)
PSEUDONYMOUS_IDS = ("record_id", "person_key", "applicant_key")  # text ids held to the PII screen's id_pattern
ENCODING_PATTERN = "^v2:(?:[A-Za-z0-9+/]{342}==)?:(?:[A-Za-z0-9+/]{86}==)?:(?:[A-Za-z0-9+/]{86}==)?$"


class PiiScreen(ConfigModel):
    """pii.yaml: what personal data looks like, and what a pseudonymous id looks like."""

    value_patterns: dict[str, str] = Field(min_length=1)
    """What it is (named in reports) → a regular expression matching such a value."""
    id_pattern: str
    """A regular expression every record_id, person_key and applicant_key must match."""

    @field_validator("value_patterns")
    @classmethod
    def _compile_all(cls, v: dict[str, str]) -> dict[str, str]:
        for name, pattern in v.items():
            _compiles(pattern, name)
        return v

    @field_validator("id_pattern")
    @classmethod
    def _compile(cls, v: str) -> str:
        return _compiles(v, "id_pattern")


def _compiles(pattern: str, name: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{name}: not a regular expression ({exc})") from None
    return pattern


@cache
def pii(path: Path = HERE / "pii.yaml") -> PiiScreen:
    """The PII screen (pii.yaml, validated)."""
    return load_yaml(path, PiiScreen)


def _exp(type_: str, field: str | None, description: str, **kwargs) -> dict:
    meta = {"field": field, "description": description} if field else {"description": description}
    return {"type": type_, "kwargs": kwargs, "meta": meta}


def export_suite(source: SourceMapping, kind: str) -> dict:
    """The structure contract of one source's export of one kind."""
    spec = next(s for s in source.files if s.kind == kind)
    return {
        "name": f"{source.source_id}.{kind}",
        "meta": {
            "source_id": source.source_id,
            "kind": kind,
            "generated_from": f"connectors/sources/{source.source_id}.yaml",
        },
        "expectations": [
            _exp(
                "expect_table_columns_to_match_set",
                None,
                "the export has exactly its registered columns",
                column_set=list(source.columns(spec).values()),
                exact_match=True,
            ),
        ],
    }


def harmonised_suite(kind: str) -> dict:
    """The row contract of the harmonised record (DESIGN.md) for one record kind."""
    context = {"source_id", "source_type", "reporting_country"}  # set by the mapping, not the file
    columns = {f: c for f, c in schema(KIND_SCHEMA[kind]).columns.items() if f not in context}
    id_pattern, patterns = pii().id_pattern, list(pii().value_patterns.values())
    exps = []
    for field, spec in columns.items():
        if spec.required:
            exps.append(_exp("expect_column_values_to_not_be_null", field, "a value is required"))
        t = spec.type
        if spec.codelist is not None:  # type code
            exps.append(
                _exp(
                    "expect_column_values_to_be_in_set",
                    field,
                    "the label is not in the source's vocabulary (its mapping file)",
                    column=field,
                    value_set=codes(spec.codelist),
                )
            )
        elif t == "bool":
            exps.append(
                _exp(
                    "expect_column_values_to_be_in_set",
                    field,
                    "the yes/no label is not in the source's vocabulary",
                    column=field,
                    value_set=codes("flag"),
                )
            )
        elif t == "country":
            exps.append(
                _exp(
                    "expect_column_values_to_be_in_set",
                    field,
                    "not an ISO 3166-1 country code of the registered kind",
                    column=field,
                    value_set=country_codes(),
                )
            )
        elif t == "date":
            period = field in PERIOD_DATES  # places the record in its quarter: within the calendar
            exps.append(
                _exp(
                    "expect_column_values_to_be_between",
                    field,
                    "not a valid date in the registered format, in the future, or before the release "
                    "calendar's first quarter (calendar.first_quarter in dp/release_spec.yaml): "
                    "such a record would never be released"
                    if period
                    else "not a valid date in the registered format, or outside 2000-01-01 .. today",
                    column=field,
                    min_value={"$PARAMETER": "calendar_start"} if period else MIN_DATE,
                    max_value={"$PARAMETER": "today"},
                )
            )
        elif t == "encoding":
            exps.append(
                _exp(
                    "expect_column_values_to_match_regex",
                    field,
                    "not an identity encoding of the provider kit (v2: name, year and day-month parts in base64)",
                    column=field,
                    regex=ENCODING_PATTERN,
                )
            )
        elif field in PSEUDONYMOUS_IDS:
            exps.append(
                _exp(
                    "expect_column_values_to_match_regex",
                    field,
                    "not a pseudonymous id (letters, digits and - _ . / : only)",
                    column=field,
                    regex=id_pattern,
                )
            )
            exps.append(
                _exp(
                    "expect_column_values_to_not_match_regex_list",
                    field,
                    "looks like personal data (a name, e-mail, phone or document number)",
                    column=field,
                    regex_list=patterns,
                )
            )
    for e in exps:
        e["kwargs"].setdefault("column", e["meta"]["field"])
    exps.append(
        _exp(
            "expect_column_values_to_be_unique",
            "record_id",
            "record_id is repeated within the file",
            column="file_record",
        )
    )
    return {
        "name": f"harmonised.{kind}",
        "meta": {"kind": kind, "generated_from": "data_contracts/schema.yaml"},
        "expectations": exps,
    }


def build_suites(sources: dict[str, SourceMapping]) -> dict[str, dict]:
    """Every suite, by name."""
    suites = {f"harmonised.{k}": harmonised_suite(k) for k in KINDS}
    for source in sources.values():
        for kind in sorted({f.kind for f in source.files}):
            suite = export_suite(source, kind)
            suites[suite["name"]] = suite
    return suites


def write_suites(sources: dict[str, SourceMapping], directory: Path) -> list[Path]:
    """Write every suite as JSON (stable, diffable); return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, suite in build_suites(sources).items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(suite, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
