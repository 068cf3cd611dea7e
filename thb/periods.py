"""Reference periods: a quarter (``2024-Q3``) or a calendar year (``2024``), parsed once into
a `Period` and never sliced as a string again.

>>> q = Period.parse("2024-Q3")
>>> q, q.is_quarter, q.year_period, q.first_day, q.last_day
(Period('2024-Q3'), True, Period('2024'), datetime.date(2024, 7, 1), datetime.date(2024, 9, 30))
>>> [str(p) for p in Period.parse("2024").quarters()]
['2024-Q1', '2024-Q2', '2024-Q3', '2024-Q4']
>>> [str(p) for p in Period.span("2024-Q4", "2025-Q2")]
['2024-Q4', '2025-Q1', '2025-Q2']
>>> sorted([Period.parse("2025-Q1"), Period.parse("2024"), Period.parse("2024-Q4")])
[Period('2024'), Period('2024-Q4'), Period('2025-Q1')]
>>> Period.parse("2024-Q5")
Traceback (most recent call last):
...
thb.errors.UserInputError: a period is a quarter like 2025-Q3 or a year like 2025, not '2024-Q5'

Simulated dates are numpy arrays; their quarters are counted from a first quarter:

>>> import numpy as np
>>> quarter_index(np.array(["2024-08-15", "2025-01-01"], dtype="datetime64[D]"), Period.parse("2024-Q1"))
array([2, 4])
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from thb.errors import UserInputError

_PATTERN = re.compile(r"^(\d{4})(?:-Q([1-4]))?$")


@functools.total_ordering
@dataclass(frozen=True)
class Period:
    """A quarter of a year, or (``quarter`` None) the calendar year itself. A year sorts
    before its own quarters, as its name does."""

    year: int
    quarter: int | None = None

    @classmethod
    def parse(cls, text: str | Period) -> Period:
        """``2025-Q3`` or ``2025``; anything else is a `UserInputError`."""
        if isinstance(text, Period):
            return text
        m = _PATTERN.match(str(text).strip())
        if not m:
            raise UserInputError(f"a period is a quarter like 2025-Q3 or a year like 2025, not {text!r}")
        return cls(int(m[1]), int(m[2]) if m[2] else None)

    @classmethod
    def span(cls, first: str | Period, last: str | Period) -> list[Period]:
        """Every quarter from ``first`` to ``last``, both included."""
        a, b = cls.parse(first)._index, cls.parse(last)._index
        return [cls(i // 4, i % 4 + 1) for i in range(a, b + 1)]

    @property
    def is_quarter(self) -> bool:
        """True for a quarter, False for a calendar year."""
        return self.quarter is not None

    @property
    def is_year(self) -> bool:
        """True for a calendar year, False for a quarter.

        >>> Period.parse("2024").is_year, Period.parse("2024-Q1").is_year
        (True, False)
        """
        return self.quarter is None

    @property
    def year_period(self) -> Period:
        """The calendar year this period falls in."""
        return Period(self.year)

    @property
    def first_day(self) -> date:
        """The period's first day: 1 January for a year.

        >>> Period.parse("2024").first_day, Period.parse("2024-Q4").first_day
        (datetime.date(2024, 1, 1), datetime.date(2024, 10, 1))
        """
        return date(self.year, 3 * (self.quarter or 1) - 2, 1)

    @property
    def last_day(self) -> date:
        """The period's last day, included: the day before the next period starts.

        >>> Period.parse("2024").last_day, Period.parse("2024-Q1").last_day  # a leap year's February
        (datetime.date(2024, 12, 31), datetime.date(2024, 3, 31))
        """
        return self.next().first_day - timedelta(days=1)

    def quarters(self) -> list[Period]:
        """The quarters this period covers: a year's four, or the quarter itself."""
        return [self] if self.is_quarter else [Period(self.year, q) for q in range(1, 5)]

    def next(self) -> Period:
        """The period of the same kind that follows."""
        if self.quarter is None:
            return Period(self.year + 1)
        return Period(self.year + self.quarter // 4, self.quarter % 4 + 1)

    @property
    def _index(self) -> int:
        if self.quarter is None:
            raise UserInputError(f"{self} is a year, not a quarter")
        return self.year * 4 + self.quarter - 1

    def _key(self) -> tuple[int, int]:
        return (self.year, self.quarter or 0)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.year}" if self.quarter is None else f"{self.year}-Q{self.quarter}"

    def __repr__(self) -> str:
        return f"Period('{self}')"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """In a pydantic model a Period is written as its text (``2025-Q3``)."""
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            json_schema_input_schema=core_schema.str_schema(pattern=_PATTERN.pattern),
            serialization=core_schema.to_string_ser_schema(),
        )

    @classmethod
    def _validate(cls, value: Any) -> Period:
        try:
            return cls.parse(value)
        except UserInputError as exc:
            raise ValueError(str(exc)) from None


def quarter_start(q: Period) -> np.datetime64:
    """The first day of a quarter, as numpy's day."""
    return np.datetime64(q.first_day, "D")


def quarter_index(dates: np.ndarray, first: Period) -> np.ndarray:
    """The index of each date's quarter, counted from quarter ``first``."""
    months = dates.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    return (months // 3) - (first._index - 1970 * 4)
