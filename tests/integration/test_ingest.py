"""The ingest flow end to end on the simulated world: everything loads, linkage matches
the ground truth, re-ingest is a no-op, re-deliveries replace what they correct."""

import duckdb
import pandas as pd
import pytest

from pipelines.ingest import ingest
from tests.helpers import query, snapshot


def q(data, sql, params=()):
    return query(data / "warehouse.duckdb", sql, params)


def test_every_simulated_file_loads(world, ingested):
    files = [p for p in (world / "landing").rglob("*") if p.is_file()]
    status = dict(q(ingested, "SELECT status, count(*) FROM landing.manifest GROUP BY 1"))
    assert status == {"loaded": len(files)}


def test_records_match_the_ground_truth(world, ingested):
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    loaded = dict(q(ingested, "SELECT source_id, count(*) FROM harmonised.case_records GROUP BY 1"))
    assert loaded == truth.groupby("source_id").size().to_dict()
    screened = pd.read_parquet(world / "truth" / "screenings.parquet")
    got = q(ingested, "SELECT sum(CASE WHEN flagged THEN 1 ELSE 0 END), count(*) FROM harmonised.screenings")[0]
    assert got == (screened.flagged.sum(), screened.screened.sum())


def test_harmonised_values_match_what_the_source_recorded(world, ingested):
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    con = duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True)
    got = con.sql(
        "SELECT source_id, record_id, status, exploitation_form, route_stage, gender, age_group, "
        "reference_date, citizenship FROM harmonised.case_records"
    ).df()
    con.close()
    merged = truth.merge(got, on=["source_id", "record_id"], suffixes=("", "_got"))
    assert len(merged) == len(truth)
    for col in ("status", "exploitation_form", "route_stage", "gender", "age_group"):
        assert (merged[col] == merged[col + "_got"]).all(), col
    assert (pd.to_datetime(merged.reference_date) == pd.to_datetime(merged.reference_date_got)).all()
    same = merged.citizenship.fillna("-") == merged.citizenship_got.fillna("-")
    assert same.all()


def test_linkage_puts_shared_keys_together_and_names_no_person_twice(world, ingested):
    """Records sharing a person_key are one person; every record is one person's, once;
    a person is identified if any record says so. (How well encodings link: test_provider_kit.)"""
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    records = pd.DataFrame(
        q(ingested, "SELECT source_id, record_id, person_id FROM linked.record_persons"),
        columns=["source_id", "record_id", "person_id"],
    )
    assert len(records) == len(truth) == len(records.drop_duplicates(["source_id", "record_id"]))
    keyed = truth[truth.person_key.notna()].merge(records, on=["source_id", "record_id"])
    assert len(keyed) > 0
    assert (keyed.groupby("person_key").person_id.nunique() == 1).all()  # one key, one person
    assert (keyed.person_id == keyed.groupby("person_key").person_key.transform("min")).all()
    statuses = truth.merge(records, on=["source_id", "record_id"]).groupby("person_id").status
    expected = statuses.apply(lambda s: "identified" if (s == "identified").any() else "presumed").to_dict()
    assert dict(q(ingested, "SELECT person_id, status FROM linked.persons")) == expected


def test_persons_count_once_in_the_quarter_of_their_first_record(ingested):
    rows = q(
        ingested,
        """SELECT count(*) FROM linked.persons p JOIN (
        SELECT r.reporting_country, r.person_id, min(c.reference_date) AS first
        FROM harmonised.case_records c JOIN linked.record_persons r USING (reporting_country, source_id, record_id)
        GROUP BY ALL) r
        USING (reporting_country, person_id)
        WHERE p.first_quarter <> year(r.first) || '-Q' || quarter(r.first)""",
    )
    assert rows[0][0] == 0
    assert (
        q(ingested, "SELECT count(*) - count(DISTINCT (reporting_country, person_id)) FROM linked.persons")[0][0] == 0
    )


def test_capture_histories_cover_every_linkable_person(ingested):
    per_country = dict(q(ingested, "SELECT reporting_country, count(*) FROM linked.persons WHERE linkable GROUP BY 1"))
    unlinkable = q(ingested, "SELECT count(*) FROM linked.persons WHERE NOT linkable")[0][0]
    bare = "SELECT count(*) FROM harmonised.case_records WHERE person_key IS NULL AND identity_encoding IS NULL"
    assert unlinkable == q(ingested, bare)[0][0]  # a record without key and encoding (no name, no year of birth)
    histories = dict(q(ingested, "SELECT reporting_country, sum(count) FROM linked.capture_histories GROUP BY 1"))
    assert histories == per_country
    con = duckdb.connect(str(ingested / "warehouse.duckdb"), read_only=True)
    h = con.sql("SELECT * FROM linked.capture_histories WHERE reporting_country = 'DE'").df()
    con.close()
    lists = [c for c in h.columns if c.startswith("DE-")]
    assert lists
    assert h[lists].notna().all().all()
    assert (h[lists].sum(axis=1) >= 1).all()  # every history names at least one list
    assert h[[c for c in h.columns if c.startswith("AT-")]].isna().all().all()


@pytest.mark.usefixtures("prefect_harness")
def test_reingest_is_a_no_op(make_data):
    data = make_data("FI-POL-POLIISI", "FI-NGO-RIKU")
    first = ingest(data)
    before = snapshot(data / "warehouse.duckdb")
    second = ingest(data)
    assert first.total["loaded"] > 0
    assert second.total["loaded"] == 0
    assert second.total["unchanged"] == first.total["loaded"]
    assert snapshot(data / "warehouse.duckdb") == before


@pytest.mark.usefixtures("prefect_harness")
def test_a_corrected_redelivery_replaces_the_loaded_file(make_data):
    data = make_data("DE-POL-BKA")
    ingest(data)
    path = max((data / "landing/DE/DE-POL-BKA").glob("*.csv"), key=lambda p: p.stat().st_size)
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    assert len(lines) > 2
    path.write_text("".join(lines[:-1]), encoding="utf-8-sig")  # the provider drops one record
    summary = ingest(data)
    assert summary.total["loaded"] == 1
    manifest = q(
        data, "SELECT status, records FROM landing.manifest WHERE path LIKE '%' || ? ORDER BY processed_at", [path.name]
    )
    assert manifest == [("superseded", len(lines) - 1), ("loaded", len(lines) - 2)]
    total = q(data, "SELECT count(*) FROM harmonised.case_records")[0][0]
    assert total == sum(r for (r,) in q(data, "SELECT records FROM landing.manifest WHERE status = 'loaded'"))


def test_summary_counts_by_country(ingested, world):
    summary = ingest(ingested)  # everything already there
    assert summary.total["loaded"] == 0
    assert set(summary.by_country) == {"GR", "MK", "RS", "BG", "AT", "DE", "SE", "FI"}
    assert all(row["persons"] > 0 for c, row in summary.by_country.items() if c != "MK")


def test_capture_histories_count_captures_of_the_first_year_only(ingested):
    late = q(
        ingested,
        """
        SELECT count(*) FROM linked.persons p
        WHERE list_count(sources_first_year) = 0
           OR EXISTS (SELECT 1 FROM unnest(p.sources_first_year) AS s(src) WHERE NOT EXISTS (
                SELECT 1 FROM harmonised.case_records c
                JOIN linked.record_persons r USING (reporting_country, source_id, record_id)
                WHERE c.source_id = s.src AND c.reporting_country = p.reporting_country
                  AND year(c.reference_date) = p.first_year AND r.person_id = p.person_id))""",
    )
    assert late == [(0,)]
