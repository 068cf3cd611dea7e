"""Quarters as strings ('2024-Q3') and their dates, vectorised.

>>> from thb.periods import quarters, quarter_of
>>> quarters("2024-Q3", "2025-Q1")
['2024-Q3', '2024-Q4', '2025-Q1']
>>> import numpy as np
>>> quarter_of(np.array(["2024-08-15"], dtype="datetime64[D]"), "2024-Q1")
array([2])
"""

import numpy as np


def _index(q: str) -> int:
    return int(q[:4]) * 4 + int(q[-1]) - 1


def _name(i: int) -> str:
    return f"{i // 4}-Q{i % 4 + 1}"


def quarters(first: str, last: str) -> list[str]:
    """Every quarter from first to last, inclusive."""
    return [_name(i) for i in range(_index(first), _index(last) + 1)]


def quarter_start(q: str) -> np.datetime64:
    i = _index(q)
    return np.datetime64(f"{i // 4}-{(i % 4) * 3 + 1:02d}-01", "D")


def quarter_of(dates: np.ndarray, first: str) -> np.ndarray:
    """The index of each date's quarter, counted from quarter `first`."""
    months = dates.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    return (months // 3) - (_index(first) - 1970 * 4)
