"""The DP audit (dp/audit.py): the real measurement of a real country-quarter passes it with a
bound that means something, a deliberately misstated sensitivity fails it, and the bound
arithmetic is right. The noise cannot be seeded, so each statistical test first computes,
from the audit's own sampling distribution, how likely it is to go wrong (failure_probability),
and asserts that risk is negligible before it runs."""

import math

import duckdb
import numpy as np
import pytest

from dp.audit import (
    audit,
    effective_mu,
    failure_probability,
)
from dp.measure import joint_counts, loss, plan
from dp.spec import release_spec
from thb.periods import Period

SPEC = release_spec()
DS = SPEC.datasets["cases"]
DELTA = SPEC.budget.delta
RISK = 1e-5  # the largest chance of a wrong outcome a test may run with


@pytest.fixture(scope="module")
def busiest(ingested) -> np.ndarray:
    """The joint counts of the country-quarter with the most linkable persons (a shared key or
    an identity encoding) in the ingested world, among those where linkage put some person's
    records together, the most records among equals."""
    con = duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True)
    try:
        area, period, persons, linkable, records = con.sql(
            """SELECT reporting_country, first_quarter, count(*), count(*) FILTER (WHERE linkable), sum(n_records)
            FROM linked.persons GROUP BY ALL HAVING sum(n_records) > count(*)
            ORDER BY count(*) FILTER (WHERE linkable) DESC, sum(n_records) DESC, reporting_country, first_quarter
            LIMIT 1"""
        ).fetchall()[0]
        joint = joint_counts(con, DS, Period.parse(period))[area]
    finally:
        con.close()
    # A real quarter (the noise does not depend on how many persons; at the test world's scale
    # the busiest quarter holds about ten once encodings link a person's records): every person
    # linkable, counted once in one cell, and records linked into persons, which is what makes
    # one row per person (sensitivity 1) true. A person whose records stay apart is the
    # misstatement the second test audits.
    assert persons == linkable
    assert joint.sum() == persons >= 5
    assert records > persons
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
    assert 1 - risk["epsilon"][0] < RISK
    assert 1 - risk["mu"][0] < RISK

    result = audit(busiest, DS, scales, DELTA, n, rows=rows)

    assert not result.passed
    assert result.epsilon_lb > result.epsilon, result
    assert result.mu_lb > result.mu, result
