"""Adding or removing one person changes every measured query by at most its stated
sensitivity (L2 = 1), on the real warehouse: one person's records are removed from (or a new
person's added to) harmonised.case_records, the warehouse is re-linked by the real linkage,
and every measured marginal of every country is compared. Screenings count applicants (their
applicant_key): removing an applicant screened twice in a quarter moves each marginal by at
most one, and the screening tables count the world's distinct applicants."""

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from connectors.mapping import load_sources
from dp.measure import joint_counts, marginal, plan
from dp.spec import release_spec
from pipelines.link import link
from pipelines.warehouse import connect
from thb.periods import Period

SPEC = release_spec()


def _counts(warehouse, dataset: str, period: str):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return joint_counts(con, SPEC.datasets[dataset], Period.parse(period))
    finally:
        con.close()


def _moves(before, after, dataset: str) -> list[float]:
    ds, scales = SPEC.datasets[dataset], plan(SPEC, dataset)
    return [
        float(np.sqrt(((marginal(ds, after[a], m) - marginal(ds, before[a], m)) ** 2).sum()))
        for a in before
        for m, scale in scales.items()
    ]


@pytest.mark.parametrize(
    "change", ["remove a person with a key", "remove a person linked by encodings", "add a person"]
)
def test_one_person_moves_each_measured_marginal_by_at_most_one(ingested, tmp_path, change):
    """The person is whatever linkage made of their records: a shared key, or encodings."""
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(ingested / "warehouse.duckdb", warehouse)
    con = connect(warehouse)
    keyed = "encodings" not in change
    country, person, period = con.execute(
        """SELECT reporting_country, person_id, first_quarter FROM linked.persons
           WHERE (person_id NOT LIKE 'record:%') = ? AND n_records >= ? ORDER BY hash(person_id) LIMIT 1""",
        [keyed, 1 if keyed else 2],
    ).fetchall()[0]
    con.close()
    before = _counts(warehouse, "cases", period)
    con = connect(warehouse)
    records = """reporting_country = $country AND (source_id, record_id) IN (
        SELECT (source_id, record_id) FROM linked.record_persons WHERE person_id = $person)"""
    values = {"country": country, "person": person}
    if change.startswith("remove"):
        con.execute(f"DELETE FROM harmonised.case_records WHERE {records}", values)  # noqa: S608 — no value in it
    else:  # the same records again, as a new person: a new key, no encoding, new record ids
        con.execute(
            f"""INSERT INTO harmonised.case_records SELECT * REPLACE ('pk-new-person' AS person_key,
                NULL AS identity_encoding, record_id || '-NEW' AS record_id)
                FROM harmonised.case_records WHERE {records}""",  # noqa: S608
            values,
        )
    link(con, load_sources())
    con.close()
    moves = _moves(before, _counts(warehouse, "cases", period), "cases")
    assert max(moves) == 1  # the stated sensitivity, and the person was measured
    assert sum(m == 1 for m in moves) == len(plan(SPEC, "cases"))  # exactly one cell moved, in one country


def test_removing_an_applicant_screened_twice_in_a_quarter_moves_each_screening_marginal_by_at_most_one(
    ingested, tmp_path
):
    """Screenings count applicants: an applicant (one applicant_key) screened twice in a
    quarter is one unit there. Removing all their screenings moves every measured screening
    marginal of every quarter they were screened in by at most 1 (counted by rows, it moved
    the quarter's by 2), and the twice-screened quarter's by exactly one cell (they counted)."""
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(ingested / "warehouse.duckdb", warehouse)
    con = duckdb.connect(str(warehouse))
    country, key, twice = con.sql(
        """SELECT reporting_country, applicant_key, year(screening_date) || '-Q' || quarter(screening_date)
           FROM harmonised.screenings WHERE applicant_key IS NOT NULL
           GROUP BY 1, 2, 3 HAVING count(*) >= 2 ORDER BY hash(applicant_key) LIMIT 1"""
    ).fetchall()[0]
    screened_in = [
        q
        for (q,) in con.execute(
            "SELECT DISTINCT year(screening_date) || '-Q' || quarter(screening_date) FROM harmonised.screenings "
            "WHERE reporting_country = ? AND applicant_key = ?",
            [country, key],
        ).fetchall()
    ]
    con.close()
    before = {q: _counts(warehouse, "screenings", q) for q in screened_in}
    con = duckdb.connect(str(warehouse))
    con.execute("DELETE FROM harmonised.screenings WHERE reporting_country = ? AND applicant_key = ?", [country, key])
    con.close()
    moves = {q: _moves(before[q], _counts(warehouse, "screenings", q), "screenings") for q in screened_in}
    assert max(max(m) for m in moves.values()) <= 1
    assert sum(m == 1 for m in moves[twice]) == len(plan(SPEC, "screenings"))


def test_the_screening_tables_count_the_worlds_distinct_applicants(world, ingested):
    """The confidential screening total of each country and quarter is the number of distinct
    applicants the world screened there (not its screenings, which are more)."""
    truth = pd.read_parquet(world / "truth" / "screenings.parquet")
    truth["ref_area"] = truth.source_id.str[:2]  # one asylum service per country
    expected = truth.groupby(["ref_area", "file_period"])[["applicants", "screened"]].sum()
    assert (expected.screened > expected.applicants).mean() > 0.5  # re-screened applicants in most quarters
    got = {}
    for period in expected.index.unique("file_period"):
        for area, joint in _counts(ingested / "warehouse.duckdb", "screenings", period).items():
            if (area, period) in expected.index:
                got[area, period] = int(joint.sum())
    assert got == expected.applicants.to_dict()
