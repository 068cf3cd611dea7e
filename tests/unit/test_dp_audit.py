"""The DP audit's arithmetic (dp/audit.py): neighbouring tables, the exact binomial bounds,
the failure probability against brute force, and the bounds on a pure OpenDP Gaussian. The
audit of a real country-quarter is in tests/integration/test_dp_audit.py."""

import math

import numpy as np
import opendp.prelude as dp
import pytest
from scipy.stats import binom, binomtest, norm

from dp.audit import GRID, _clopper_pearson, _epsilon, _mu, failure_probability, lower_bounds, neighbour
from dp.measure import gaussian, marginal, plan
from dp.spec import release_spec

SPEC = release_spec()
DS = SPEC.datasets["cases"]
DELTA = SPEC.budget.delta
RISK = 1e-5  # the largest chance of a wrong outcome a test may run with


def test_one_person_moves_one_cell_of_every_marginal_by_the_rows_added():
    joint = np.arange(math.prod(DS.sizes.values())).reshape(list(DS.sizes.values())) % 7
    before, cell = joint.copy(), (1, 2, 0, 1, 3, 2, 0)
    for rows in (1, 5):
        other = neighbour(joint, cell, rows)
        for m in plan(SPEC, "cases"):
            step = marginal(DS, other, m) - marginal(DS, joint, m)
            assert step.sum() == rows
            assert np.count_nonzero(step) == 1
    assert np.array_equal(joint, before)  # D itself is left as it was


@pytest.mark.parametrize("n", [1, 50, 2000])
def test_clopper_pearson_bounds_are_the_exact_binomial_ones(n):
    high, low = _clopper_pearson(n, 0.99)
    a = 0.01 / (2 * len(GRID))  # each one-sided bound's share of the 1 % (Bonferroni)
    assert high[0] == pytest.approx(1 - a ** (1 / n))
    assert low[n] == pytest.approx(a ** (1 / n))
    assert low[0] == 0
    assert high[n] == 1
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * a, method="exact")
        assert (low[k], high[k]) == pytest.approx((ci.low, ci.high), rel=1e-6, abs=1e-12)
    assert np.all(np.diff(low) > 0)
    assert np.all(np.diff(high) > 0)


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
    assert risk["mu"][1] < RISK
    assert risk["epsilon"][1] < RISK
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
