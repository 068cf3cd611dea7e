"""Checks on an export's raw cells, before any mapping, in every column: a cell a spreadsheet
would run as a formula (CSV or formula injection; an XLSX formula reads as '=...'), and a
cell too long to be an id, a code or a date. Vectorised with pyarrow; a failure names the
column and the record numbers, never a value.

>>> import pyarrow as pa
>>> t = pa.table({"Fall": ["A-1", '=HYPERLINK("http://x")', "+49 30 1234567"]})
>>> [(f.check, f.column, f.rows) for f in cell_failures(t, {"record_id": "Fall"})]
[('formula', 'Fall', [2])]
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.validate import Failure

MAX_CELL_CHARS = 1000  # ids are at most 64 characters, labels and dates far fewer
# Starts (after blanks) with = or @, or with + or - followed by more than a number or a
# phone number: '-2+3+cmd|...' is a formula, '-', '+49 30 1234567' and '-1' are not.
FORMULA = r"(?s)^\s*(?:[=@]|[+-].*[^0-9 ()/.,:-])"

CHECKS = {
    "formula": "the cell starts like a spreadsheet formula (= + - @) or holds one: exports carry values only",
    "cell_size": f"the cell is longer than {MAX_CELL_CHARS} characters: not an id, a code or a date",
}


def cell_failures(table: pa.Table, columns: dict[str, str]) -> list[Failure]:
    """Formula-like and oversized cells of `table` in the export `columns` (field → column);
    rows are record numbers (1 = the table's first row). All columns are tested at once;
    only a file with a hit is tested column by column."""
    every = pa.chunked_array([chunk for c in columns.values() for chunk in table.column(c).chunks], pa.string())
    if not pc.any(pc.or_(_hits(every, "formula"), _hits(every, "cell_size"))).as_py():
        return []
    failures = []
    for field, column in columns.items():
        for check in CHECKS:
            rows = np.flatnonzero(_hits(table.column(column), check).to_numpy(zero_copy_only=False)) + 1
            if len(rows):
                failures.append(Failure(check, CHECKS[check], field, column, len(rows), rows.tolist()))
    return failures


def _hits(values: pa.ChunkedArray, check: str) -> pa.ChunkedArray:
    if check == "formula":
        hits = pc.match_substring_regex(values, FORMULA)
    else:
        hits = pc.greater(pc.utf8_length(values), MAX_CELL_CHARS)
    return pc.fill_null(hits, False)
