"""Contract failures over time: duplicates across files, corrected and empty re-deliveries,
repeated quarantines. Every class of broken or hostile file is in the corpus of
tests/integration/test_hostile.py; the helpers that build such files from real exports are
in tests/helpers.py, the stored suites are checked in tests/unit/test_contracts.py."""

import json

import duckdb
import pytest

from pipelines.ingest import ingest
from tests.helpers import SOURCES, mutate_cell, read_rows, snapshot, write_rows
from thb.settings import Settings

pytestmark = pytest.mark.usefixtures("prefect_harness")  # the tests run the ingest flow


def test_duplicate_of_a_record_in_another_file(world, make_data):
    data = make_data("DE-POL-BKA")
    ingest(data)
    folder = data / "landing/DE/DE-POL-BKA"
    src = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    rows = read_rows(src, "DE-POL-BKA")
    write_rows(folder / "bka_lagebild_extra.csv", "DE-POL-BKA", [rows[0], rows[3]])
    summary = ingest(data)
    assert summary.total["quarantined"] == 1
    report = json.loads(next((data / "quarantine").rglob("*.report.json")).read_text())
    assert report["failures"][0]["check"] == "unique_record_id"
    assert report["failures"][0]["rows"] == [1]


def test_a_corrected_redelivery_of_a_quarantined_file_loads(make_data):
    data = make_data("DE-POL-BKA")
    folder = data / "landing/DE/DE-POL-BKA"
    good = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    original = good.read_bytes()
    rows = read_rows(good, "DE-POL-BKA")
    write_rows(good, "DE-POL-BKA", mutate_cell("gender", "Mann")(rows))
    bad = good.read_bytes()
    first = ingest(data)
    assert first.total["quarantined"] == 1
    assert not good.exists()
    good.write_bytes(bad)  # the same bad bytes again: a no-op
    assert ingest(data).total["unchanged"] >= 1
    good.write_bytes(original)  # the corrected file
    third = ingest(data)
    assert third.total["loaded"] == 1
    assert third.total["quarantined"] == 0


def test_unrouted_files_are_quarantined(make_data):
    data = make_data("DE-POL-BKA")
    (data / "landing/DE/DE-XX-NEW").mkdir(parents=True)
    (data / "landing/DE/DE-XX-NEW/export.csv").write_text("a;b\n1;2\n")
    (data / "landing/DE/DE-POL-BKA/unexpected_name.csv").write_text("a;b\n1;2\n")
    (data / "landing/stray.csv").write_text("a;b\n1;2\n")
    summary = ingest(data)
    reasons = sorted(q.reason for q in summary.quarantined)
    assert len(reasons) == 3
    assert any("no connector mapping" in r for r in reasons)
    assert any("matches none of the source's registered exports" in r for r in reasons)
    assert (data / "quarantine/_unrouted/stray.csv").exists()


def test_a_file_without_its_header_row_quotes_nothing(make_data):
    data = make_data("DE-POL-BKA")
    folder = data / "landing/DE/DE-POL-BKA"
    f = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    body = read_rows(f, "DE-POL-BKA")[1:]
    first_record = next(r for r in body if len(set(r)) == len(r))  # read as a header, it names no column twice
    write_rows(f, "DE-POL-BKA", [first_record, *(r for r in body if r is not first_record)])  # the header is gone
    summary = ingest(data)
    assert summary.total["quarantined"] == 1
    report = next((data / "quarantine").rglob("*.report.json")).read_text(encoding="utf-8")
    assert "is the header row missing" in report
    assert not any(value and value in report for value in first_record if len(value) > 2)
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    reasons = con.sql("SELECT reasons::VARCHAR FROM landing.manifest WHERE status = 'quarantined'").fetchall()[0][0]
    con.close()
    assert not any(value and value in reasons for value in first_record if len(value) > 2)


def test_a_date_out_of_range_is_quarantined_and_the_others_load(make_data):
    data = make_data("DE-POL-BKA")
    folder = data / "landing/DE/DE-POL-BKA"
    f = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    write_rows(f, "DE-POL-BKA", mutate_cell("reference_date", "04.01.0025")(read_rows(f, "DE-POL-BKA")))
    summary = ingest(data)
    assert summary.total["quarantined"] == 1
    assert summary.total["loaded"] == len(list(folder.iterdir()))
    assert "date" in summary.quarantined[0].reason


def test_an_empty_upload_never_erases_a_loaded_file(make_data):
    data = make_data("DE-POL-BKA", "DE-LAB-FKS")
    ingest(data)
    csv_file = max((data / "landing/DE/DE-POL-BKA").iterdir(), key=lambda p: p.stat().st_size)
    jsonl = max((data / "landing/DE/DE-LAB-FKS").iterdir(), key=lambda p: p.stat().st_size)
    before = snapshot(data / "warehouse.duckdb")
    csv_file.write_text(csv_file.read_text(encoding="utf-8-sig").splitlines()[0] + "\n", encoding="utf-8-sig")
    jsonl.write_bytes(b"")
    summary = ingest(data)
    assert summary.total["quarantined"] == 2
    assert summary.total["loaded"] == 0
    reasons = " ".join(q.reason for q in summary.quarantined)
    assert "replace the loaded version" in reasons
    assert "empty" in reasons
    after = snapshot(data / "warehouse.duckdb")
    before.pop("landing.manifest"), after.pop("landing.manifest")
    assert after == before


def test_a_failed_correction_keeps_the_old_version_and_its_ids(make_data):
    data = make_data("DE-POL-BKA")
    ingest(data)
    folder = data / "landing/DE/DE-POL-BKA"
    loaded = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    rows = read_rows(loaded, "DE-POL-BKA")
    write_rows(folder / "bka_lagebild_copy.csv", "DE-POL-BKA", rows[:3])  # reuses ids of the loaded file
    write_rows(loaded, "DE-POL-BKA", mutate_cell("gender", "Mann")(rows))  # a correction that fails
    summary = ingest(data)
    assert summary.total["quarantined"] == 2
    assert summary.total["loaded"] == 0
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    dupes = con.sql("SELECT count(*) - count(DISTINCT record_id) FROM harmonised.case_records").fetchall()[0][0]
    con.close()
    assert dupes == 0


def test_quarantine_is_safe_to_repeat(make_data):
    from pipelines.deliveries import discover
    from pipelines.load import quarantine
    from pipelines.warehouse import connect

    data = make_data("DE-POL-BKA")
    settings = Settings(data_dir=data)
    con = connect(settings.warehouse)
    d = discover(settings.landing, SOURCES, con)[0]
    from data_contracts.validate import Failure

    first = quarantine(con, d, "contract", [Failure("x", "a reason")], settings.quarantine)
    second = quarantine(con, d, "contract", [Failure("x", "a reason")], settings.quarantine)
    assert first == second
    assert first.exists()
    assert not d.path.exists()
    assert len(list(first.parent.glob("*.report.json"))) == 1
    assert con.sql("SELECT count(*) FROM landing.manifest").fetchall() == [(1,)]
    con.close()


def test_bytes_delivered_before_a_correction_load_again(make_data):
    data = make_data("DE-POL-BKA")
    ingest(data)
    f = max((data / "landing/DE/DE-POL-BKA").iterdir(), key=lambda p: p.stat().st_size)
    v1 = f.read_bytes()
    rows = read_rows(f, "DE-POL-BKA")
    write_rows(f, "DE-POL-BKA", rows[:-1])  # v2: one record fewer
    assert ingest(data).total["loaded"] == 1
    f.write_bytes(v1)  # v1 again
    assert ingest(data).total["loaded"] == 1
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    status = con.execute(
        "SELECT status, records FROM landing.manifest WHERE path LIKE '%' || ? ORDER BY processed_at", [f.name]
    ).fetchall()
    con.close()
    assert status == [("superseded", len(rows) - 1), ("superseded", len(rows) - 2), ("loaded", len(rows) - 1)]
