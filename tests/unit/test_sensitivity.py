"""The charge for a marginal of sensitivity one is OpenDP's, and screenings are counted per
applicant (the sensitivity itself is checked on the real warehouse in
tests/integration/test_sensitivity.py)."""

from datetime import date

import pytest

from dp.measure import gaussian, joint_counts, plan
from dp.spec import domain, release_spec
from pipelines.warehouse import connect
from thb.periods import Period

SPEC = release_spec()


def test_the_charge_is_what_opendp_computes_for_sensitivity_one():
    for dataset in SPEC.datasets:
        for scale in plan(SPEC, dataset).values():
            assert gaussian(scale).map(1) == pytest.approx(1 / (2 * scale**2))


def test_screenings_count_each_applicant_once_a_quarter_with_their_first_screening(tmp_path):
    """One row per applicant_key, country and quarter, with the quarter's first screening
    (a second interview recorded otherwise does not count); a screening without a key is its
    own applicant; a key counts again in another quarter, and in another country is another
    applicant's (tests/integration/test_sensitivity.py checks the bound on the real warehouse)."""
    con = connect(tmp_path / "w.duckdb")
    rows = [  # country, record, key, date, gender, age group
        ("AT", "r1", "ak-1", date(2025, 1, 5), "male", "18-24"),
        ("AT", "r2", "ak-1", date(2025, 2, 1), "female", "25-34"),
        ("AT", "r3", None, date(2025, 2, 5), "female", "25-34"),
        ("AT", "r4", None, date(2025, 2, 6), "female", "25-34"),
        ("AT", "r5", "ak-1", date(2025, 5, 1), "female", "25-34"),
        ("GR", "r1", "ak-1", date(2025, 1, 10), "male", "45+"),
    ]
    con.executemany(
        "INSERT INTO harmonised.screenings BY NAME SELECT 'f' AS file_id, 1 AS record_no, ? || '-ASY-X' AS source_id, "
        "'asylum' AS source_type, ? AS reporting_country, ? AS record_id, ? AS applicant_key, ? AS screening_date, "
        "false AS flagged, ? AS gender, ? AS age_group",
        [(c, c, r, k, d, g, a) for c, r, k, d, g, a in rows],
    )
    ds = SPEC.datasets["screenings"]

    def cells(period: str, area: str) -> dict[tuple[str, str], int]:
        joint = joint_counts(con, ds, Period.parse(period))[area]
        return {
            (g, a): int(joint[i, j])
            for i, g in enumerate(domain("gender"))
            for j, a in enumerate(domain("age_group"))
            if joint[i, j]
        }

    assert cells("2025-Q1", "AT") == {("male", "18-24"): 1, ("female", "25-34"): 2}
    assert cells("2025-Q2", "AT") == {("female", "25-34"): 1}
    assert cells("2025-Q1", "GR") == {("male", "45+"): 1}
