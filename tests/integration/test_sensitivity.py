"""Adding or removing one person changes every measured query by at most its stated
sensitivity (L2 = 1), on the real warehouse: one person's records are removed from (or a new
person's added to) harmonised.case_records, the warehouse is re-linked by the real linkage,
and every measured marginal of every country is compared. Screening rows are units."""

import shutil

import duckdb
import numpy as np
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


def test_one_screened_applicant_moves_each_screening_marginal_by_one(ingested, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(ingested / "warehouse.duckdb", warehouse)
    con = duckdb.connect(str(warehouse))
    (date,) = con.sql("SELECT screening_date FROM harmonised.screenings ORDER BY hash(record_id) LIMIT 1").fetchall()[0]
    period = f"{date.year}-Q{(date.month - 1) // 3 + 1}"
    con.close()
    before = _counts(warehouse, "screenings", period)
    con = duckdb.connect(str(warehouse))
    con.sql(
        "DELETE FROM harmonised.screenings WHERE record_id = (SELECT record_id FROM harmonised.screenings "
        "ORDER BY hash(record_id) LIMIT 1)"
    )
    con.close()
    moves = _moves(before, _counts(warehouse, "screenings", period), "screenings")
    assert max(moves) == 1
    assert sum(m == 1 for m in moves) == len(plan(SPEC, "screenings"))
