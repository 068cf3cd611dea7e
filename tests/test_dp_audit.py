"""The DP audit (dp/audit.py): the real measurement of a real country-quarter passes it with a
bound that means something, a deliberately misstated sensitivity fails it, and the bound
arithmetic is right. The noise cannot be seeded, so each statistical test first computes,
from the audit's own sampling distribution, how likely it is to go wrong (failure_probability),
and asserts that risk is negligible before it runs."""

import math

import duckdb
import numpy as np
import opendp.prelude as dp
import pytest
from scipy.stats import binom, binomtest, norm

from dp.audit import (
    GRID,
    _clopper_pearson,
    _epsilon,
    _mu,
    audit,
    effective_mu,
    failure_probability,
    lower_bounds,
    neighbour,
)
from dp.measure import gaussian, joint_counts, loss, marginal, plan
from dp.spec import release_spec
from thb.periods import Period

SPEC = release_spec()
DS = SPEC.datasets["cases"]
DELTA = SPEC.budget.delta
RISK = 1e-5  # the largest chance of a wrong outcome a test may run with


@pytest.fixture(scope="module")
def busiest(ingested) -> np.ndarray:
    """The joint counts of the country-quarter with the most persons in the ingested world."""
    con = duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True)
    try:
        area, period = con.sql(
            "SELECT reporting_country, first_quarter FROM linked.persons GROUP BY ALL ORDER BY count(*) DESC LIMIT 1"
        ).fetchall()[0]
        joint = joint_counts(con, DS, Period.parse(period))[area]
    finally:
        con.close()
    assert joint.sum() >= 10  # a real quarter with persons (the noise does not depend on how many)
    return joint


@pytest.mark.slow
def test_the_release_measurement_passes_with_a_meaningful_bound(busiest):
    scales, n = plan(SPEC, "cases"), 2000
    rho, epsilon = loss(scales, DELTA)  # what the ledger charges a quarter's case tables
    share = SPEC.budget.release_rho * SPEC.budget.shares["cases"]
    assert 0.99 * share <= rho <= share  # σ rounded up spends a little less than the share
    shift, mu = effective_mu(scales), math.sqrt(2 * rho)
    assert failure_probability(shift, epsilon, mu, DELTA, n)["mu"][1] < RISK  # a false alarm
    assert failure_probability(shift, epsilon, mu, DELTA, n)["epsilon"][1] < RISK
    assert 1 - failure_probability(shift, epsilon, 0.4 * mu, DELTA, n)["mu"][0] < RISK  # a weak bound

    result = audit(busiest, DS, scales, DELTA, n)

    assert (result.rho, result.epsilon, result.mu, result.n) == (rho, epsilon, mu, n)
    assert result.passed, result
    assert result.mu_lb > 0.4 * result.mu  # the audit sees a large share of the stated loss
    assert result.epsilon_lb > 0


@pytest.mark.slow
def test_a_misstated_sensitivity_fails_the_audit(busiest):
    """A "person" who adds 5 rows to one cell (linkage failed to deduplicate their records),
    against a mechanism calibrated, and a loss stated, for one row."""
    scales, n, rows = plan(SPEC, "cases"), 1500, 5
    rho, epsilon = loss(scales, DELTA)
    risk = failure_probability(effective_mu(scales, rows), epsilon, math.sqrt(2 * rho), DELTA, n)
    assert 1 - risk["epsilon"][0] < RISK and 1 - risk["mu"][0] < RISK  # the misstatement goes unseen

    result = audit(busiest, DS, scales, DELTA, n, rows=rows)

    assert not result.passed
    assert result.epsilon_lb > result.epsilon and result.mu_lb > result.mu, result


def test_one_person_moves_one_cell_of_every_marginal_by_the_rows_added():
    joint = np.arange(math.prod(DS.sizes.values())).reshape(list(DS.sizes.values())) % 7
    before, cell = joint.copy(), (1, 2, 0, 1, 3, 2, 0)
    for rows in (1, 5):
        other = neighbour(joint, cell, rows)
        for m in plan(SPEC, "cases"):
            step = marginal(DS, other, m) - marginal(DS, joint, m)
            assert step.sum() == rows and np.count_nonzero(step) == 1
    assert np.array_equal(joint, before)  # D itself is left as it was


@pytest.mark.parametrize("n", [1, 50, 2000])
def test_clopper_pearson_bounds_are_the_exact_binomial_ones(n):
    high, low = _clopper_pearson(n, 0.99)
    a = 0.01 / (2 * len(GRID))  # each one-sided bound's share of the 1 % (Bonferroni)
    assert high[0] == pytest.approx(1 - a ** (1 / n)) and low[n] == pytest.approx(a ** (1 / n))  # closed forms
    assert low[0] == 0 and high[n] == 1
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * a, method="exact")
        assert (low[k], high[k]) == pytest.approx((ci.low, ci.high), rel=1e-6, abs=1e-12)
    assert np.all(np.diff(low) > 0) and np.all(np.diff(high) > 0)


def test_failure_probability_is_the_exact_sum_over_outcomes():
    """Against brute force over every pair of counts, for a small number of runs."""
    n, shift, epsilon, mu = 30, 2.0, 1.0, 0.7
    high, low = _clopper_pearson(n, 0.99)
    p0h, p1l = np.meshgrid(high, low, indexing="ij")
    counts, exact = np.arange(n + 1), {"epsilon": [], "mu": []}
    for t in GRID:
        weights = np.outer(binom.pmf(counts, n, norm.sf(t)), binom.pmf(counts, n, norm.sf(t - shift)))
        exact["epsilon"].append(weights[_epsilon(p0h, p1l, DELTA) > epsilon].sum())
        exact["mu"].append(weights[_mu(p0h, p1l) > mu].sum())
    got = failure_probability(shift, epsilon, mu, DELTA, n)
    for name, per_t in exact.items():
        assert got[name] == pytest.approx((max(per_t), min(1, sum(per_t))), rel=1e-9)
        assert 0 < got[name][0] < 1


def test_the_bounds_hold_and_are_tight_on_a_pure_opendp_gaussian():
    """A single discrete Gaussian of scale 4 on a count that one person moves by 3: μ = 0.75."""
    scale, step, n = 4.0, 3, 10_000
    mu = step / scale
    epsilon = dp.c.make_zCDP_to_approxDP(gaussian(scale)).map(step).epsilon(DELTA)
    shift = step / math.sqrt(scale**2 - 1 / 12)  # the discrete Gaussian's (Sheppard)
    risk = failure_probability(shift, epsilon, mu, DELTA, n)
    assert risk["mu"][1] < RISK and risk["epsilon"][1] < RISK
    assert 1 - failure_probability(shift, epsilon, 0.75 * mu, DELTA, n)["mu"][0] < RISK

    noise = gaussian(scale)
    t0 = np.array(noise([0] * n)) / scale  # the standardised likelihood-ratio statistic
    t1 = np.array(noise([step] * n)) / scale
    epsilon_lb, mu_lb = lower_bounds(t0, t1, DELTA)

    assert 0.75 * mu < mu_lb <= mu
    assert 0 < epsilon_lb <= epsilon


def test_samples_that_show_nothing_give_zero():
    same = np.linspace(-3, 3, 500)
    assert lower_bounds(same, same, DELTA) == (0.0, 0.0)
