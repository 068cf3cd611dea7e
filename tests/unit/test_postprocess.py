"""Post-processing (dp/marginals.py, dp/postprocess.py) on random inputs, against independent
computations: the GLS estimates are the weighted least-squares fit of a full table to the
noisy marginals (numpy's lstsq, with its covariance); controlled rounding is the closest
integer table by brute force over every rounding; and the published cube adds up, in a
plain pandas group-by, for every country and the route."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from dp.marginals import MarginalAlgebra
from dp.postprocess import TOTAL, controlled_round, cube, project_simplex, rake, round_to_total
from dp.spec import CUBE_DIMENSIONS, domain, release_spec

CASES = 30


def margin(sizes: dict[str, int], m: tuple[str, ...], table: np.ndarray) -> np.ndarray:
    """Marginal m of full tables (the last axis: cells row-major, attributes in order)."""
    names = list(sizes)
    drop = tuple(i + table.ndim - 1 for i, a in enumerate(names) if a not in m)
    return table.reshape(*table.shape[:-1], *sizes.values()).sum(axis=drop).reshape(*table.shape[:-1], -1)


def marginal_matrix(sizes: dict[str, int], m: tuple[str, ...]) -> np.ndarray:
    """The matrix taking a full table to marginal m's cells."""
    return margin(sizes, m, np.eye(math.prod(sizes.values()))).T


def random_problem(rng: np.random.Generator):
    """Attributes and their sizes, a workload closed under margins, the measured marginals
    (its largest tables, and some of their margins) with noise scales, and a true table."""
    sizes = {f"a{i}": int(rng.integers(2, 5)) for i in range(int(rng.integers(2, 5)))}
    names = list(sizes)
    tables = {tuple(sorted(rng.choice(names, size=int(rng.integers(1, 3)), replace=False), key=names.index))}
    tables |= {tuple(sorted(rng.choice(names, size=2, replace=False), key=names.index)) for _ in range(2)}
    workload = sorted({c for t in tables for k in range(len(t) + 1) for c in itertools.combinations(t, k)})
    measured = set(tables) | {m for m in workload if rng.random() < 0.3}
    sigma = {m: float(rng.uniform(0.5, 5.0)) for m in sorted(measured)}  # sorted: sets of str vary by hash seed
    truth = rng.poisson(rng.uniform(0, 20), size=math.prod(sizes.values())).astype(float)
    return sizes, workload, sigma, truth


@pytest.mark.parametrize("seed", range(CASES))
def test_gls_estimates_are_the_weighted_least_squares_fit(seed):
    rng = np.random.default_rng(seed)
    sizes, workload, sigma, truth = random_problem(rng)
    noisy = {m: marginal_matrix(sizes, m) @ truth + rng.normal(0, s, size=math.prod(sizes[a] for a in m))
             for m, s in sigma.items()}  # fmt: skip
    got = MarginalAlgebra(sizes).estimate(workload, {m: (noisy[m], s) for m, s in sigma.items()})

    a = np.vstack([marginal_matrix(sizes, m) / s for m, s in sigma.items()])
    b = np.concatenate([noisy[m] / s for m, s in sigma.items()])
    fit = np.linalg.lstsq(a, b, rcond=None)[0]  # one full table (not unique; its margins are)
    pinv = np.linalg.pinv(a)  # of A itself: pinv(AᵀA) squares the condition number, and varies with BLAS threads
    cov = pinv @ pinv.T
    assert set(got) == set(workload)
    for m in workload:
        mm = marginal_matrix(sizes, m)
        values, variance = got[m]
        assert values == pytest.approx(mm @ fit, rel=1e-7, abs=1e-7), m
        assert np.diag(mm @ cov @ mm.T) == pytest.approx(np.full(len(values), variance), rel=1e-7), m


@pytest.mark.parametrize("seed", range(CASES))
def test_controlled_rounding_is_the_closest_integer_table(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(x) for x in rng.integers(1, 4, size=2))
    values = rng.uniform(0, 6, size=shape) * (rng.random(shape) > 0.2)
    total = int(round(values.sum()))
    rows = round_to_total(project_simplex(values.sum(1), total), total)
    cols = round_to_total(project_simplex(values.sum(0), total), total)
    t = rake(values, rows, cols)
    assert np.allclose(t.sum(1), rows)
    assert np.allclose(t.sum(0), cols)

    got = controlled_round(t, rows, cols)

    floor, free = np.floor(t), np.argwhere(t - np.floor(t) > 1e-12)
    best = math.inf
    for up in itertools.product((0, 1), repeat=len(free)):  # every table of floors and ceilings
        candidate = floor.copy()
        for (i, j), u in zip(free, up, strict=True):
            candidate[i, j] += u
        if (candidate.sum(1) == rows).all() and (candidate.sum(0) == cols).all():
            best = min(best, np.abs(candidate - t).sum())
    assert (got.sum(1) == rows).all()
    assert (got.sum(0) == cols).all()
    assert (np.abs(got - t) < 1).all()
    assert np.abs(got - t).sum() == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("seed", range(CASES))
def test_projection_and_rounding_keep_the_total(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(3, 4, size=int(rng.integers(1, 9)))
    total = int(rng.integers(0, 40))
    p = project_simplex(v, total)
    assert (p >= 0).all()
    assert p.sum() == pytest.approx(total)
    # the closest point: no other point of the simplex (a random sample of them) is nearer
    others = rng.dirichlet(np.ones(len(v)), size=200) * total
    assert (np.linalg.norm(others - v, axis=1) >= np.linalg.norm(p - v) - 1e-9).all()
    r = round_to_total(p, total)
    assert r.sum() == total
    assert (np.abs(r - p) < 1).all()


def cube_sums(cube_frame: pd.DataFrame) -> list[str]:
    """Every way the published cube fails to add up, found with pandas group-bys alone."""
    problems = []
    dims = list(CUBE_DIMENSIONS)
    table_of = cube_frame[dims].ne(TOTAL)
    cube_frame = cube_frame.assign(table=table_of.apply(lambda r: "*".join(d for d in dims if r[d]), axis=1))
    by_table = dict(list(cube_frame.groupby("table")))
    for name, part in by_table.items():
        shown = [d for d in dims if d in name.split("*")]
        for d in shown:  # summing over one shown dimension gives the table without it
            rest = [x for x in shown if x != d]
            margin = by_table["*".join(rest)]
            sums = part.groupby(["ref_area", *rest]).obs_value.sum()
            if not sums.sort_index().equals(margin.set_index(["ref_area", *rest]).obs_value.sort_index()):
                problems.append(f"{name} over {d}")
        countries = part[part.ref_area != TOTAL].groupby(shown).obs_value.sum() if shown else None
        route = part[part.ref_area == TOTAL].set_index(shown).obs_value if shown else None
        if shown and not countries.sort_index().equals(route.sort_index()):
            problems.append(f"{name}: the route is not the sum of the countries")
        if not shown and part[part.ref_area != TOTAL].obs_value.sum() != part[part.ref_area == TOTAL].obs_value.sum():
            problems.append("total: the route is not the sum of the countries")
    return problems


@pytest.mark.parametrize(("dataset", "seed"), [("screenings", s) for s in range(10)] + [("cases", s) for s in range(3)])
def test_the_cube_adds_up_and_holds_its_values_in_their_intervals(dataset, seed):
    rng = np.random.default_rng(seed)
    spec = release_spec()
    ds = spec.datasets[dataset]
    alg = MarginalAlgebra(ds.sizes)
    scales = {ds.canonical(m): float(rng.uniform(1, 8)) for m in ds.tables}  # the tables, measured
    areas = [f"A{i}" for i in range(int(rng.integers(1, 4)))]
    noisy = {}
    for area in areas:
        joint = rng.poisson(rng.uniform(0, 3), size=list(ds.sizes.values()))
        noisy[area] = {
            m: list(np.rint(margin(ds.sizes, m, joint.reshape(-1)) + rng.normal(0, s, alg.cells(m))))
            for m, s in scales.items()
        }  # fmt: skip

    c = cube(spec, ds, noisy, scales)

    assert cube_sums(c) == []
    assert set(c.ref_area) == {*areas, TOTAL}
    assert len(c) == (len(areas) + 1) * sum(math.prod(len(domain(a)) for a in m) for m in ds.workload())
    assert pd.api.types.is_integer_dtype(c.obs_value)
    assert (c.obs_value >= 0).all()
    assert ((c.ci_low <= c.obs_value) & (c.obs_value <= c.ci_high)).all()
    assert (c[c.obs_value == 0].obs_status == "u").all()
