"""The release spec (dp/release_spec.yaml), validated, with the code lists as domains.

>>> from dp.spec import release_spec
>>> spec = release_spec()
>>> spec.datasets["cases"].sizes["exploitation_form"], len(spec.datasets["cases"].workload())
(8, 15)
"""

import hashlib
import itertools
from functools import cache
from pathlib import Path

from pydantic import field_validator, model_validator

from data_contracts.codelists import CUBE_DIMENSIONS, codes
from data_contracts.codelists import FLAG_DIMENSIONS as FLAGS  # booleans published as yes / no / unknown
from thb.config import ConfigModel, load_yaml

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
    grace_days: int
    """A quarter is released once it ended this many days ago."""
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
