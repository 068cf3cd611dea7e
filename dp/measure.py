"""Measure a quarter: the confidential marginals of each country (DuckDB, in the private
warehouse) and their noisy versions (OpenDP's discrete Gaussian, nothing else).

Each person is one row of linked.persons, in exactly one cell of every marginal (all
attributes are complete codes, `unknown` included), so a marginal's L2 sensitivity to
adding or removing one person is 1; tests/integration/test_sensitivity.py proves it on real data.
Screenings count applicants, not rows: per country and quarter, one row per applicant (their
applicant_key; a screening without one is its own applicant), the first screening of the
quarter (earliest date, then source and record id), so an applicant screened again in the
quarter moves a marginal by at most 1 too. Countries hold disjoint persons: they are
measured in parallel, at the same scales.
"""

import contextlib
import math
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import duckdb
import numpy as np
import opendp.prelude as dp

from data_contracts.codelists import codes
from dp.marginals import Marginal, MarginalAlgebra
from dp.spec import FLAGS, Dataset, ReleaseSpec, domain
from thb.periods import Period
from thb.sql import ident

dp.enable_features("contrib")

AREAS = codes("reporting_country")


def marginal_name(m: Marginal) -> str:
    """A marginal's name in the ledger and the methodology: its attributes joined by ``*``,
    ``total`` for the grand total; `marginal_of` reads it back.

    >>> marginal_name(("exploitation_form", "gender")), marginal_name(())
    ('exploitation_form*gender', 'total')
    """
    return "*".join(m) or "total"


def marginal_of(name: str) -> Marginal:
    """The marginal a `marginal_name` names.

    >>> marginal_of("exploitation_form*gender"), marginal_of("total")
    (('exploitation_form', 'gender'), ())
    """
    return () if name == "total" else tuple(name.split("*"))


def plan(spec: ReleaseSpec, dataset: str) -> dict[Marginal, float]:
    """The measured marginals of a dataset and their noise scales σ, for its share of the
    release's budget. σ is rounded up to three significant digits, so the plan is the same
    in every process and on every machine, and never spends more than the share.

    >>> from dp.spec import release_spec
    >>> scales = plan(release_spec(), "screenings")
    >>> len(scales), all(s == float(f"{s:.3g}") for s in scales.values())
    (4, True)
    """
    ds = spec.datasets[dataset]
    rho = spec.budget.release_rho * spec.budget.shares[dataset]
    weights = MarginalAlgebra(ds.sizes).optimal_weights(ds.workload(), rho)
    return {m: _round_up(1 / math.sqrt(w)) for m, w in weights.items()}


def _round_up(x: float, digits: int = 3) -> float:
    step = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return round(math.ceil(x / step) * step, 12)


def _rows_sql(ds: Dataset, period: Period) -> tuple[str, list]:
    """The query of a dataset's cell counts in one period, and its bound parameters. Its
    identifiers come from the validated release spec, never from data."""
    attrs = [
        f"CASE {ident(a)} WHEN true THEN 'yes' WHEN false THEN 'no' ELSE 'unknown' END AS {ident(a)}"
        if a in FLAGS
        else ident(a)
        for a in ds.attributes
    ]
    params: list[str | int | None]
    if ds.source == "linked.persons":
        rows, params = f"{ds.source} WHERE first_quarter = ?", [str(period)]  # noqa: S608 (a name from the spec)
    else:
        rows, params = f"({_first_screenings(ds.source)})", [period.year, period.quarter]
    sql = f"SELECT reporting_country AS ref_area, {', '.join(attrs)}, count(*) AS n FROM {rows}"  # noqa: S608 (identifiers from the spec)
    return sql + " GROUP BY ALL", params


def _first_screenings(table: str) -> str:
    """The screenings of one quarter (bound: year, quarter), one per applicant and country:
    the applicant's first of the quarter. A screening without an applicant_key is its own
    applicant (the record: source and record id)."""
    own = "CASE WHEN applicant_key IS NULL THEN (source_id, record_id) END"
    return (
        f"SELECT * FROM {table} WHERE year(screening_date) = ? AND quarter(screening_date) = ? "  # noqa: S608 (a name from the spec)
        f"QUALIFY row_number() OVER (PARTITION BY reporting_country, applicant_key, {own} "
        "ORDER BY screening_date, source_id, record_id) = 1"
    )


def joint_counts(con: duckdb.DuckDBPyConnection, ds: Dataset, period: Period) -> dict[str, np.ndarray]:
    """Per country, the confidential count of persons in every cell of the full domain."""
    shape = [len(domain(a)) for a in ds.attributes]
    index = {a: {c: i for i, c in enumerate(domain(a))} for a in ds.attributes}
    out = {area: np.zeros(shape, dtype=np.int64) for area in AREAS}
    for row in con.execute(*_rows_sql(ds, period)).fetchall():
        area, *values, n = row
        out[area][tuple(index[a][v] for a, v in zip(ds.attributes, values, strict=True))] += n
    return out


def marginal(ds: Dataset, joint: np.ndarray, m: Marginal) -> np.ndarray:
    """The marginal m of a joint count array, flattened in domain order."""
    axes = tuple(i for i, a in enumerate(ds.attributes) if a not in m)
    return joint.sum(axis=axes).reshape(-1)


Observed = list[tuple[str, str, str, float, list[int]]]  # (dataset source, marginal, area, σ, counts)
_observer: ContextVar[Observed | None] = ContextVar("thb_observed_inputs", default=None)


@contextlib.contextmanager
def observed() -> Iterator[Observed]:
    """Within the block, every count vector a release hands to OpenDP is also listed, with its
    scale (PRIVATE: true counts): what the end-to-end audit (dp/audit_path.py) compares."""
    log: Observed = []
    token = _observer.set(log)
    try:
        yield log
    finally:
        _observer.reset(token)


def noisy(source: str, marginal: str, area: str, scale: float, counts: list[int]) -> list[int]:
    """OpenDP's discrete Gaussian on one count vector: where every release draws its noise."""
    log = _observer.get()
    if log is not None:
        log.append((source, marginal, area, scale, counts))
    return gaussian(scale)(counts)


def gaussian(scale: float) -> dp.Measurement:
    """OpenDP's discrete Gaussian on integer count vectors at L2 distance (zCDP)."""
    return dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=scale)


def measure(
    joint: dict[str, np.ndarray], ds: Dataset, scales: dict[Marginal, float]
) -> dict[str, dict[Marginal, list[int]]]:
    """The noisy marginals of every country: {area: {marginal: noisy counts}}."""
    out: dict[str, dict[Marginal, list[int]]] = {}
    for m, scale in scales.items():
        for area, counts in joint.items():
            values = [int(v) for v in marginal(ds, counts, m)]
            out.setdefault(area, {})[m] = noisy(ds.source, marginal_name(m), area, scale, values)
    return out


def loss(scales: Mapping[Any, float], delta: float) -> tuple[float, float]:
    """ρ and ε(δ) of measuring these marginals of one person's country, by OpenDP's maps."""
    composed = dp.c.make_composition([gaussian(s) for s in scales.values()])
    return composed.map(1), dp.c.make_zCDP_to_approxDP(composed).map(1).epsilon(delta)
