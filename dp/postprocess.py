"""From noisy measurements to one consistent cube of non-negative integers with intervals.
Everything here is post-processing of the stored noisy measurements: it spends no budget.

1. GLS (dp/marginals.py): unbiased, mutually consistent estimates of every published
   marginal, with their variance.
2. Integers that add up: the total is rounded; each one-way table is projected onto the
   non-negative vectors summing to it and rounded by largest remainders; each two-way
   table is raked (IPF) to those margins and rounded by controlled rounding, a
   transportation LP whose vertices are integer. Every table then adds up to its margins,
   and the route total (ref_area `_T`) is the sum of the countries.
3. Intervals: Feldman-Cousins intervals around the GLS estimate (exact coverage for a
   count that cannot be negative; ± z·σ away from zero), rounded inwards (true counts are
   integers, so coverage is unchanged), widened if needed to hold the published value.
   A cell is flagged `u` when the interval is too wide to read it as a number, and every
   published zero is (under noise, a zero is never certain).
"""

import math

import numpy as np
import pandas as pd
from scipy.optimize import linprog
from scipy.stats import norm

from dp.intervals import feldman_cousins
from dp.marginals import Marginal, MarginalAlgebra
from dp.spec import CUBE_DIMENSIONS, Dataset, ReleaseSpec, domain

TOTAL = "_T"


def project_simplex(v: np.ndarray, total: float) -> np.ndarray:
    """The closest (Euclidean) non-negative vector summing to `total`."""
    if total <= 0:
        return np.zeros_like(v, dtype=float)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - total
    k = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[k] / (k + 1), 0)


def round_to_total(v: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder rounding of a non-negative vector to integers summing to `total`."""
    base = np.floor(v).astype(np.int64)
    short = total - base.sum()
    order = np.lexsort((np.arange(len(v)), -(v - base)))  # largest remainder first, ties by position
    base[order[:short]] += 1
    return base


def rake(m: np.ndarray, rows: np.ndarray, cols: np.ndarray, iterations: int = 2000) -> np.ndarray:
    """Iterative proportional fitting of a non-negative table to the given margins."""
    t = np.maximum(m, 0) + 1e-6
    t[rows == 0, :] = 0
    t[:, cols == 0] = 0
    for _ in range(iterations):
        t *= np.divide(rows, t.sum(1), out=np.zeros_like(rows, dtype=float), where=t.sum(1) > 0)[:, None]
        t *= np.divide(cols, t.sum(0), out=np.zeros_like(cols, dtype=float), where=t.sum(0) > 0)[None, :]
        if np.abs(t.sum(1) - rows).max() < 1e-9:
            break
    return t


def controlled_round(t: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Integers within one of every cell, with exactly the given integer margins, closest in
    total absolute change: a transportation LP (totally unimodular: integer vertices)."""
    floor = np.floor(t)
    frac = t - floor
    nr, nc = t.shape
    a_rows = np.kron(np.eye(nr), np.ones(nc))
    a_cols = np.kron(np.ones(nr), np.eye(nc))
    res = linprog(
        c=(1 - 2 * frac).reshape(-1),
        A_eq=np.vstack([a_rows, a_cols]),
        b_eq=np.concatenate([rows - floor.sum(1), cols - floor.sum(0)]),
        bounds=[(0, 1 if f > 1e-12 else 0) for f in frac.reshape(-1)],
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError("controlled rounding found no table with these margins")
    out = (floor + np.rint(res.x).reshape(t.shape)).astype(np.int64)
    assert (out.sum(1) == rows).all()
    assert (out.sum(0) == cols).all()
    return out


def integer_tables(
    alg: MarginalAlgebra, estimates: dict[Marginal, tuple[np.ndarray, float]]
) -> dict[Marginal, np.ndarray]:
    """Non-negative integer marginals that add up, closest to the GLS estimates."""
    total = max(0, int(round(float(estimates[()][0][0]))))
    out: dict[Marginal, np.ndarray] = {(): np.array([total])}
    for m, (values, _) in estimates.items():
        if len(m) == 1:
            out[m] = round_to_total(project_simplex(values, total), total)
    for m, (values, _) in estimates.items():
        if len(m) == 2:
            a, b = m
            rows, cols = out[(a,)], out[(b,)]
            table = values.reshape(alg.sizes[a], alg.sizes[b])
            out[m] = controlled_round(rake(table, rows, cols), rows, cols).reshape(-1)
    return out


def interval_bounds(gls: np.ndarray, var: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Feldman-Cousins bounds (counts are non-negative), rounded inwards (counts are
    integers: coverage is unchanged)."""
    sigma = np.sqrt(var)
    low, high = feldman_cousins(gls / sigma, level)
    return (np.ceil(low * sigma - 1e-9).astype(np.int64), np.maximum(np.floor(high * sigma + 1e-9), 0).astype(np.int64))


def _interval(gls: np.ndarray, var: np.ndarray, obs: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The published interval: its bounds, widened if needed to hold the published value."""
    low, high = interval_bounds(gls, var, level)
    return np.minimum(low, obs), np.maximum(high, obs)


def cube(
    spec: ReleaseSpec, ds: Dataset, noisy: dict[str, dict[Marginal, list[int]]], scales: dict[Marginal, float]
) -> pd.DataFrame:
    """The published cells of one dataset for every country and the route (`_T`):
    dimensions, obs_value, ci_low, ci_high, obs_status."""
    alg = MarginalAlgebra(ds.sizes)
    workload = ds.workload()
    per_area = {}
    for area, measured in noisy.items():
        est = alg.estimate(workload, {m: (np.asarray(measured[m], dtype=float), scales[m]) for m in scales})
        per_area[area] = (est, integer_tables(alg, est))
    areas = list(noisy)
    frames = []
    for m in workload:
        codes = [domain(a) for a in m]
        cells = pd.MultiIndex.from_product(codes, names=list(m)).to_frame(index=False) if m else pd.DataFrame(index=[0])
        columns: dict[str, list] = {"obs_value": [], "ci_low": [], "ci_high": []}
        for area in [*areas, TOTAL]:
            if area == TOTAL:
                gls = np.sum([per_area[a][0][m][0] for a in areas], axis=0)
                var = np.full(alg.cells(m), sum(per_area[a][0][m][1] for a in areas))
                obs = np.sum([per_area[a][1][m] for a in areas], axis=0)
            else:
                gls, v = per_area[area][0][m]
                var, obs = np.full(alg.cells(m), v), per_area[area][1][m]
            low, high = _interval(gls, var, obs, spec.interval_level)
            for name, values in zip(columns, (obs, low, high), strict=True):
                columns[name].append(values)
        # one frame per table, built by column, not one per area and table
        table = cells.iloc[np.tile(np.arange(len(cells)), len(areas) + 1)].reset_index(drop=True)
        table = table.assign(
            ref_area=np.repeat([*areas, TOTAL], len(cells)),
            **{name: np.concatenate(values) for name, values in columns.items()},
            **{dim: TOTAL for dim in CUBE_DIMENSIONS if dim not in m},
        )
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    half = (out.ci_high - out.ci_low) / 2
    unreliable = (half > spec.unreliable_relative_half_width * out.obs_value) | (out.obs_value == 0)
    out["obs_status"] = np.where(unreliable, "u", "")
    return out[["ref_area", *CUBE_DIMENSIONS, "obs_value", "ci_low", "ci_high", "obs_status"]]


def expected_half_widths(spec: ReleaseSpec, dataset: str, scales: dict[Marginal, float]) -> dict[Marginal, float]:
    """The half-width of each table's interval for one country, before any data is seen."""
    ds = spec.datasets[dataset]
    alg = MarginalAlgebra(ds.sizes)
    z = float(norm.ppf(0.5 + spec.interval_level / 2))
    weights = {m: 1 / s**2 for m, s in scales.items()}
    return {m: z * math.sqrt(alg.variance(m, weights)) for m in ds.workload()}
