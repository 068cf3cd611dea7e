"""The release spec (dp/release_spec.yaml), validated, with the code lists as domains.

>>> from dp.spec import release_spec
>>> spec = release_spec()
>>> spec.datasets["cases"].sizes["exploitation_form"], len(spec.datasets["cases"].workload())
(8, 15)
"""

import hashlib
import itertools
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from data_contracts.codelists import CUBE_DIMENSIONS, codes
from data_contracts.codelists import FLAG_DIMENSIONS as FLAGS  # booleans published as yes / no / unknown
from thb.config import ConfigModel, load_yaml
from thb.periods import Period

HERE = Path(__file__).parent


def domain(attribute: str) -> list[str]:
    """The public, fixed domain of a cube dimension (from the code lists)."""
    return codes("flag" if attribute in FLAGS else attribute)


class Budget(ConfigModel):
    """The privacy budget (zCDP; privacy unit: one person in one reporting country)."""

    rho_per_quarter: float
    """Cap on all releases of one quarter: the release and one revision."""
    rho_per_year: float
    """Cap on what any one person's data is used for in a year."""
    release_rho: float
    """Spent by one quarterly release."""
    delta: float
    """The δ at which ε is stated."""
    shares: dict[str, float]
    """Dataset → its share of a release's ρ (they add up to 1)."""

    @model_validator(mode="after")
    def _consistent(self):
        if not 0 < self.release_rho <= self.rho_per_quarter <= self.rho_per_year:
            raise ValueError("need 0 < release_rho <= rho_per_quarter <= rho_per_year")
        if abs(sum(self.shares.values()) - 1) > 1e-9:
            raise ValueError("budget shares must add up to 1")
        return self


class Calendar(ConfigModel):
    """The public release calendar: which periods are released, and from when. It never
    depends on the data: a quarter with no record is released as zeros.

    >>> cal = Calendar(first_quarter="2023-Q1", grace_days=30)
    >>> [str(p) for p in cal.due(date(2024, 5, 1))]  # 2024-Q1 ended 31 March, +30 days
    ['2023-Q1', '2023-Q2', '2023-Q3', '2023-Q4', '2024-Q1', '2023']
    >>> cal.opens(Period.parse("2024-Q2")), cal.covers(Period.parse("2022-Q4"))
    (datetime.date(2024, 7, 31), False)
    """

    first_quarter: Period
    """The first quarter released; records dated before it are refused at ingest."""
    cadence: Literal["quarterly"] = "quarterly"
    """A release per quarter, and an annual release per calendar year."""
    grace_days: int = Field(ge=0)
    """A period is released once it ended this many days ago (late deliveries come in a revision)."""

    @field_validator("first_quarter")
    @classmethod
    def _a_quarter(cls, v: Period) -> Period:
        if not v.is_quarter:
            raise ValueError("first_quarter is a quarter, like 2023-Q1")
        return v

    @property
    def first_day(self) -> date:
        """The first day of the calendar: no record may be dated before it."""
        return self.first_quarter.first_day

    def covers(self, period: Period) -> bool:
        """Whether the calendar releases this quarter or year at all (a year: all its quarters)."""
        return all(q >= self.first_quarter for q in period.quarters())

    def opens(self, period: Period) -> date:
        """The first day on which the period is released: its end plus the grace days."""
        return period.last_day + timedelta(days=self.grace_days + 1)

    def due(self, today: date) -> list[Period]:
        """Every quarter, then every year, of the calendar that is open on `today`."""
        quarters, years = [], []
        q = self.first_quarter
        while self.opens(q) <= today:
            quarters.append(q)
            q = q.next()
        y = self.first_quarter.year_period
        while self.opens(y) <= today:
            years += [y] if self.covers(y) else []
            y = y.next()
        return quarters + years


class Dataset(ConfigModel):
    """A table of persons and the marginals of it that are published."""

    source: str
    """The warehouse table of the persons (schema.table)."""
    attributes: list[str]
    """Cube dimensions, in the dataset's order."""
    tables: list[tuple[str, ...]]
    """The published tables (one or two attributes), each with all its margins."""

    @field_validator("attributes")
    @classmethod
    def _known(cls, v):
        unknown = set(v) - set(CUBE_DIMENSIONS)
        if unknown:
            raise ValueError(f"not cube dimensions: {sorted(unknown)}")
        return v

    @model_validator(mode="after")
    def _tables(self):
        for t in self.tables:
            if len(t) > 2 or not set(t) <= set(self.attributes):
                raise ValueError(f"table {t}: at most two of the dataset's attributes")
        return self

    @property
    def sizes(self) -> dict[str, int]:
        """The number of codes of each attribute: the shape of the dataset's full table."""
        return {a: len(domain(a)) for a in self.attributes}

    def canonical(self, attrs) -> tuple[str, ...]:
        """Attributes in the dataset's order."""
        return tuple(a for a in self.attributes if a in set(attrs))

    def workload(self) -> list[tuple[str, ...]]:
        """Every published marginal: the tables and all their margins, total included."""
        out = set()
        for t in self.tables:
            for k in range(len(t) + 1):
                out |= {self.canonical(c) for c in itertools.combinations(t, k)}
        return sorted(out, key=lambda m: (len(m), [self.attributes.index(a) for a in m]))


class Estimates(ConfigModel):
    """The annual hidden-population estimates (multiple systems estimation)."""

    rho: float
    """zCDP for the year's capture-history tables."""
    pthresh: float
    """Stepwise threshold: add a two-list interaction while its p-value is below this."""
    nboot: int
    """Bootstrap resamples."""
    min_observed: int
    """Fewer persons seen: no estimate."""
    max_relative_width: float
    """Upper bound over estimate beyond this: flagged u."""
    known_dependence: list[tuple[str, str]] = []
    """Pairs of source types: the first receives referrals from the second (in every model)."""

    @field_validator("known_dependence")
    @classmethod
    def _source_types(cls, v):
        unknown = {t for pair in v for t in pair} - set(codes("source_type"))
        if unknown:
            raise ValueError(f"unknown source types {sorted(unknown)}; see the code list source_type")
        return v


class ReleaseSpec(ConfigModel):
    """release_spec.yaml: what is published and the privacy budget (docs/release.md)."""

    method_version: str
    """Version of the method, stated in every release."""
    estimates: Estimates
    budget: Budget
    interval_level: float
    """Level of the published intervals, e.g. 0.90."""
    unreliable_relative_half_width: float
    """A cell is flagged u when its interval's half-width exceeds this share of its value."""
    calendar: Calendar
    """The public release calendar."""
    datasets: dict[str, Dataset]
    """Dataset name → its persons and published tables."""

    @model_validator(mode="after")
    def _shares(self):
        if set(self.budget.shares) != set(self.datasets):
            raise ValueError("budget shares must name every dataset")
        return self


@cache
def release_spec(path: Path = HERE / "release_spec.yaml") -> ReleaseSpec:
    """The release spec (release_spec.yaml, validated; errors name the file and the key)."""
    return load_yaml(path, ReleaseSpec)


def spec_hash(path: Path = HERE / "release_spec.yaml") -> str:
    """A short hash of the release spec's bytes, stored with every charge: which rules a release followed."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
