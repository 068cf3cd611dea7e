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

import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from data_contracts.codelists import CUBE_DIMENSIONS, codes

HERE = Path(__file__).parent
FLAGS = ("unaccompanied_child", "smuggling_debt")  # booleans published as yes / no / unknown


def domain(attribute: str) -> list[str]:
    """The public, fixed domain of a cube dimension (from the code lists)."""
    return codes("flag" if attribute in FLAGS else attribute)


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rho_per_quarter: float
    rho_per_year: float
    release_rho: float
    delta: float
    shares: dict[str, float]

    @model_validator(mode="after")
    def _consistent(self):
        if not 0 < self.release_rho <= self.rho_per_quarter <= self.rho_per_year:
            raise ValueError("need 0 < release_rho <= rho_per_quarter <= rho_per_year")
        if abs(sum(self.shares.values()) - 1) > 1e-9:
            raise ValueError("budget shares must add up to 1")
        return self


class Dataset(BaseModel):
    """A table of persons and the marginals of it that are published."""

    model_config = ConfigDict(extra="forbid")
    source: str
    attributes: list[str]
    tables: list[tuple[str, ...]]

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


class Estimates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rho: float
    pthresh: float
    nboot: int
    min_observed: int
    max_relative_width: float
    known_dependence: list[tuple[str, str]] = []  # source types: the first receives referrals from the second

    @field_validator("known_dependence")
    @classmethod
    def _source_types(cls, v):
        unknown = {t for pair in v for t in pair} - set(codes("source_type"))
        if unknown:
            raise ValueError(f"unknown source types {sorted(unknown)}; see the code list source_type")
        return v


class ReleaseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method_version: str
    estimates: Estimates
    budget: Budget
    interval_level: float
    unreliable_relative_half_width: float
    grace_days: int
    datasets: dict[str, Dataset]

    @model_validator(mode="after")
    def _shares(self):
        if set(self.budget.shares) != set(self.datasets):
            raise ValueError("budget shares must name every dataset")
        return self


@cache
def release_spec(path: Path = HERE / "release_spec.yaml") -> ReleaseSpec:
    return ReleaseSpec(**yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def spec_hash(path: Path = HERE / "release_spec.yaml") -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
