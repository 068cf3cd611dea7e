"""Run a stored Great Expectations suite on a pandas frame and return what failed.

The frame's index is the record number within its file (or a batch row id the caller maps
back to files). A failure names the check, the field, a plain-language reason, the count
and the row numbers, and never a value. An expectation that raised is an error of the
check, reported as such, not a failure of the data.
"""

import dataclasses
import json
import logging
import os
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd

from dp.spec import release_spec

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage statistics leave the machine

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.execution_engine import pandas_execution_engine  # noqa: E402

# GX fingerprints every frame under 1 GB (a hash of every value) only to label its batch;
# nothing reads the label, and on 250k-record chunks it cost as much as the checks' scans.
pandas_execution_engine.HASH_THRESHOLD = 0

for name in ("great_expectations", "great_expectations.data_context.types.base"):  # the latter sets INFO itself
    logging.getLogger(name).setLevel(logging.WARNING)

CHECK_NAMES = {
    "expect_table_columns_to_match_set": "columns",
    "expect_column_values_to_not_be_null": "required",
    "expect_column_values_to_be_in_set": "code_list",
    "expect_column_values_to_be_between": "date_range",
    "expect_column_values_to_match_regex": "id_format",
    "expect_column_values_to_not_match_regex_list": "pii_screen",
    "expect_column_values_to_be_unique": "unique_record_id",
}


@dataclasses.dataclass
class Failure:
    """One failed check of one file. `rows` are record numbers (1 = first record)."""

    check: str
    description: str
    field: str | None = None
    column: str | None = None
    count: int = 0
    rows: list[int] = dataclasses.field(default_factory=list)
    check_error: bool = False

    def as_dict(self, max_rows: int = 1000) -> dict:
        """The failure as its report writes it: check, columns, count and at most `max_rows`
        record numbers (never a value)."""
        out = {k: v for k, v in self.__dict__.items() if v not in (None, [], False) or k == "count"}
        out["rows"] = sorted(self.rows)[:max_rows]
        if len(self.rows) > max_rows:
            out["rows_truncated"] = True
        return out


@cache
def _context():
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = ctx.data_sources.add_pandas("thb").add_dataframe_asset("frame")
    return ctx, batch.add_batch_definition_whole_dataframe("whole")


@cache
def load_suite(path: Path):
    """A stored suite, registered with the (in-memory) GX context once per process, under
    its path: two contract directories may hold suites of the same name."""
    ctx, _ = _context()
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    spec["name"] = f"{spec['name']}@{Path(path).resolve()}"
    return ctx.suites.add(gx.ExpectationSuite(**spec))


def _columns_failure(details: dict, description: str, header: list[str]) -> Failure:
    """Missing columns are named (the names are ours, from the mapping); unexpected ones
    only by position: a header cell may hold anything, even a person's data."""
    mismatch = details.get("mismatched", {}) if isinstance(details, dict) else {}
    unexpected, missing = set(mismatch.get("unexpected", [])), mismatch.get("missing", [])
    positions = [i + 1 for i, name in enumerate(header) if name in unexpected]
    parts = []
    if missing:
        parts.append("missing columns: " + ", ".join(missing))
    if positions:
        parts.append(f"{len(positions)} unexpected column(s) at position(s) " + ", ".join(map(str, positions)))
    if positions and len(positions) == len(header):
        parts.append("no registered column was found: is the header row missing?")
    return Failure(
        "columns", f"{description} ({'; '.join(parts)})" if parts else description, count=len(missing) + len(positions)
    )


def validate(frame: pd.DataFrame, suite_path: Path, today: date | None = None) -> list[Failure]:
    """Failures of `frame` against the suite stored at `suite_path`.

    >>> import pandas as pd
    >>> from data_contracts.validate import validate
    >>> from thb.settings import Settings
    >>> f = validate(pd.DataFrame(columns=["Fallnummer"]), Settings().contracts_dir / "DE-POL-BKA.case.json")
    >>> f[0].check, f[0].count
    ('columns', 12)
    """
    suite = load_suite(Path(suite_path))
    _, batch_definition = _context()
    today = today or date.today()
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite,
        expectation_parameters={
            "today": f"{today.isoformat()}T00:00:00",
            "calendar_start": f"{release_spec().calendar.first_day.isoformat()}T00:00:00",
        },
        result_format={"result_format": "COMPLETE", "include_unexpected_rows": False},
    )
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        check = CHECK_NAMES.get(cfg.type, cfg.type)
        meta = cfg.meta or {}
        raised = any(v.get("raised_exception") for v in (r.exception_info or {}).values() if isinstance(v, dict)) or (
            (r.exception_info or {}).get("raised_exception") is True
        )
        if raised:
            failures.append(Failure(check, "the check could not run on this file", meta.get("field"), check_error=True))
        elif cfg.type == "expect_table_columns_to_match_set":
            failures.append(
                _columns_failure(r.result.get("details", {}), meta.get("description", ""), list(frame.columns))
            )
        else:
            rows = [int(i) for i in r.result.get("unexpected_index_list") or []]
            failures.append(
                Failure(
                    check,
                    meta.get("description", check),
                    meta.get("field"),
                    count=int(r.result.get("unexpected_count") or len(rows)),
                    rows=rows,
                )
            )
    return failures
