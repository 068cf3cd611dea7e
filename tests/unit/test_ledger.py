"""The ledger's caps on a warehouse holding nothing but charges."""

import pytest

from dp import ledger
from dp.spec import release_spec
from pipelines.warehouse import connect
from thb.periods import Period


def test_the_year_cap_counts_a_quarter_every_quarters_screenings_and_annual_tables(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    con.sql(
        "CREATE TABLE linked.persons "
        "(reporting_country VARCHAR, person_id VARCHAR, first_quarter VARCHAR, first_year INTEGER)"
    )
    spec = release_spec()
    b = spec.budget
    now = ledger.now()

    def charge(release_id, scope, dataset, rho):
        ledger.record(
            con,
            ledger.Release(release_id, Period.parse(scope), 1, ledger.Status.MEASURED, rho, 1, b.delta, now),
            "x",
            "1",
            [
                {
                    "dataset": dataset,
                    "marginal": "total",
                    "scale": 1,
                    "rho": rho,
                    "epsilon": 1,
                    "delta": b.delta,
                    "areas": 8,
                }
            ],
            [],
        )

    charge("2025-Q2.1", "2025-Q2", "cases", 0.4)
    ledger.check_caps(con, spec, Period.parse("2025-Q3"), {"cases": 0.4})  # other quarters hold other persons
    charge("2025-Q1.1", "2025-Q1", "screenings", 0.3)  # screened applicants may be anyone of the year
    with pytest.raises(ledger.BudgetExceeded, match="yearly cap"):
        ledger.check_caps(con, spec, Period.parse("2025-Q3"), {"screenings": 0.31})
    charge("2025.1", "2025", "capture_histories", b.rho_per_year - 0.7)
    assert ledger.year_load(con, Period.parse("2025")) == pytest.approx(b.rho_per_year)
    with pytest.raises(ledger.BudgetExceeded, match="yearly cap"):
        ledger.check_caps(con, spec, Period.parse("2025-Q2"), {"cases": 1e-6})  # the persons who carry the most
    ledger.check_caps(con, spec, Period.parse("2025-Q4"), {"cases": 0.4})  # Q4's persons carry less than Q2's
    ledger.check_caps(con, spec, Period.parse("2026-Q1"), {"cases": 0.4})  # a new year
