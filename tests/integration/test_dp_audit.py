"""The DP audits: the real measurement of a real country-quarter passes dp/audit.py's audit
with a bound that means something; end to end (dp/audit_path.py), one person's records
through the real kit, ingest, linkage and releases stay within the ledger's promise, and a
deliberately broken path fails; and the bound arithmetic is right. The noise cannot be
seeded, so each statistical test first computes, from the audit's own sampling distribution,
how likely it is to go wrong (failure_probability), and asserts that risk is negligible."""

import math
from datetime import date

import duckdb
import numpy as np
import pytest

from dp.audit import (
    audit,
    effective_mu,
    failure_probability,
)
from dp.audit_path import audit_path, scenario
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


AUDITED = 2025  # the year of the audited person's records (the world's last)
RELEASED_ON = date(2026, 2, 1)


@pytest.mark.slow
@pytest.mark.xdist_group("audit-path")
def test_the_release_path_keeps_its_promise_to_one_person(world, tmp_path, prefect_harness):
    """End to end: the world with and without one person (two sources in a quarter, then a
    late record of an earlier quarter), through the provider kit, ingest, linkage, the
    quarter releases, a revision and the annual release. The person's actual loss over the
    year stays within the ledger's promise, and the empirical bounds within its ε and μ."""
    result = audit_path(world, tmp_path, scenario(AUDITED), AUDITED, n=300, today=RELEASED_ON)
    assert result.same_releases
    assert result.scales_charged
    assert result.moved >= 2 * len(plan(SPEC, "cases")) + 1  # the quarter, its revision and the year
    assert result.risk()["mu"][1] + result.risk()["epsilon"][1] < RISK  # a false alarm
    assert result.passed, result
    assert 0.8 * result.promised_rho < result.rho <= result.promised_rho  # the promise is not loose either
    assert result.mu_lb > 0  # the audit sees the person


@pytest.mark.slow
@pytest.mark.xdist_group("audit-path")
def test_a_person_counted_once_per_record_breaks_the_promise(world, tmp_path, prefect_harness, monkeypatch):
    """A deliberately broken release path: the case tables count a person once per record (as
    if linkage had not joined them), so the person is in the same cells twice in the quarter
    and three times in its revision, while the ledger charges one person. Both the exact
    verdict and the empirical bounds must catch it."""
    import dp.measure

    rows_sql = dp.measure._rows_sql

    def once_per_record(ds, period):
        sql, params = rows_sql(ds, period)
        per_record = "linked.persons JOIN linked.record_persons USING (reporting_country, person_id)"
        return sql.replace("FROM linked.persons", f"FROM {per_record}"), params

    monkeypatch.setattr(dp.measure, "_rows_sql", once_per_record)
    result = audit_path(world, tmp_path, scenario(AUDITED), AUDITED, n=300, today=RELEASED_ON)
    assert 1 - result.risk()["mu"][0] < RISK  # the empirical verdict could not miss it
    assert not result.passed
    assert result.rho > 2 * result.promised_rho, result
    assert result.mu_lb > math.sqrt(2 * result.promised_rho), result
