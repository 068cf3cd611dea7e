"""The DP release: full domains, tables that add up, immutable releases, crash recovery from
the stored noise, revisions, caps, and exports that validate."""

import hashlib
import itertools
import json
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from frictionless import validate

from data_contracts.codelists import codes
from dp import ledger
from dp.spec import CUBE_DIMENSIONS, domain, release_spec
from pipelines import release as release_module
from pipelines.release import release_quarter
from pipelines.warehouse import connect
from tests.helpers import col, read_rows, write_rows
from thb.errors import ReleaseStateError
from thb.periods import Period
from thb.settings import Settings

AREAS = codes("reporting_country")


def table(data, name, release_id=None):
    """A table of the public release database; one release's rows if release_id is given."""
    con = duckdb.connect(str(data / "release/thb_release.duckdb"), read_only=True)
    try:
        where = "WHERE release_id = ?" if release_id else ""
        # the name is one of this module's literals, the release id a parameter
        return con.execute(f"SELECT * FROM {name} {where}", [release_id] if release_id else []).df()  # noqa: S608
    finally:
        con.close()


def hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_every_complete_quarter_is_released_once(released):
    rel = table(released, "releases")
    quarters = [f"{y}-Q{q}" for y in (2023, 2024, 2025) for q in range(1, 5)]
    assert sorted(rel[rel.time_period.str.contains("-Q")].release_id) == [f"{q}.1" for q in quarters]
    assert (rel.rho > 0).all()
    assert (rel.epsilon > rel.rho).all()


@pytest.mark.parametrize(("name", "dataset"), [("counts", "cases"), ("screenings", "screenings")])
def test_every_cell_of_every_table_is_published(released, name, dataset):
    cube = table(released, name, "2025-Q2.1")
    ds = release_spec().datasets[dataset]
    expected = set()
    for m in ds.workload():
        for cell in itertools.product(*(domain(a) for a in m)):
            key = dict(zip(m, cell, strict=True))
            expected.add(tuple(key.get(d, "_T") for d in CUBE_DIMENSIONS))
    for area in [*AREAS, "_T"]:
        got = cube[cube.ref_area == area]
        keys = set(map(tuple, got[list(CUBE_DIMENSIONS)].to_numpy()))
        assert keys == expected, area
        assert len(got) == len(expected), area
    assert (cube.obs_value == 0).any()  # zeros are published too


def test_values_are_non_negative_integers_inside_their_intervals(released):
    cube = table(released, "counts")
    assert (cube.obs_value >= 0).all()
    assert pd.api.types.is_integer_dtype(cube.obs_value)
    assert ((cube.ci_low <= cube.obs_value) & (cube.obs_value <= cube.ci_high)).all()
    assert set(cube.obs_status) <= {"", "u"}
    assert (cube.obs_status == "u").any()


def _margin_checks(cube: pd.DataFrame, attrs) -> int:
    checks = 0
    dims = list(CUBE_DIMENSIONS)
    for (rel, area), part in cube.groupby(["release_id", "ref_area"]):
        value = {tuple(r[:-1]): r[-1] for r in part[dims + ["obs_value"]].itertuples(index=False)}
        total = value[("_T",) * len(dims)]
        for key in value:
            broken = [i for i, k in enumerate(key) if k != "_T"]
            for i in broken:  # summing over dimension i gives the key with _T there
                parts = [value[key[:i] + (c,) + key[i + 1 :]] for c in domain(dims[i])]
                assert sum(parts) == value[key[:i] + ("_T",) + key[i + 1 :]], (rel, area, key, dims[i])
                checks += 1
        assert sum(value[tuple(c if d == attrs[0] else "_T" for d in dims)] for c in domain(attrs[0])) == total
    return checks


def test_every_table_adds_up_to_its_totals(released):
    cube = table(released, "counts")
    assert _margin_checks(cube, ["exploitation_form"]) > 10_000
    screenings = table(released, "screenings")
    assert _margin_checks(screenings, ["gender"]) > 1_000


def test_the_route_total_is_the_sum_of_the_countries(released):
    for name in ("counts", "screenings"):
        cube = table(released, name)
        keys = ["release_id", *CUBE_DIMENSIONS]
        countries = cube[cube.ref_area != "_T"].groupby(keys).obs_value.sum()
        route = cube[cube.ref_area == "_T"].set_index(keys).obs_value
        assert countries.sort_index().equals(route.sort_index())


def test_publishing_again_returns_the_release_byte_for_byte(released):
    folder = released / "release/2024-Q3.1"
    before = hashes(folder)
    con = duckdb.connect(str(released / "warehouse.duckdb"))
    try:
        charges = con.sql("SELECT count(*) FROM ledger.charges").fetchall()
        again = release_quarter(con, Settings(data_dir=released), Period.parse("2024-Q3"))
        assert again.status == "already published"
        assert not again.noise_drawn
        assert con.sql("SELECT count(*) FROM ledger.charges").fetchall() == charges
    finally:
        con.close()
    assert hashes(folder) == before


def test_a_crash_after_the_charge_is_recovered_without_new_noise(one_source_released, monkeypatch):
    data, release = one_source_released
    settings = Settings(data_dir=data)

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(release_module, "_publish", crash)
    con = connect(settings.warehouse)
    with pytest.raises(RuntimeError):
        release_quarter(con, settings, Period.parse("2024-Q2"))
    stored = ledger.stored(con, "2024-Q2.1")
    assert ledger.latest(con, Period.parse("2024-Q2")).status is ledger.Status.MEASURED
    assert not (data / "release/2024-Q2.1").exists()
    con.close()
    monkeypatch.undo()
    summary = release("2024-Q2")  # the real flow
    assert summary.status == "recovered and published"
    assert not summary.noise_drawn
    con = connect(settings.warehouse, read_only=True)
    assert ledger.stored(con, "2024-Q2.1") == stored
    assert con.sql("SELECT count(*) FROM ledger.releases").fetchall() == [(1,)]
    con.close()
    # the published cube is what post-processing makes of the stored measurements
    from dp.measure import marginal_of
    from dp.postprocess import cube

    noisy, scales = stored
    spec = release_spec()
    measured = {a: {marginal_of(k): v for k, v in noisy["cases"][a].items()} for a in AREAS}
    expected = cube(spec, spec.datasets["cases"], measured, {marginal_of(k): v for k, v in scales["cases"].items()})
    got = table(data, "counts", "2024-Q2.1").drop(columns=["release_id", "time_period"])
    assert got.reset_index(drop=True).equals(expected.reset_index(drop=True))


def test_a_revision_is_charged_and_the_cap_refuses_more(one_source_released, world):
    data, release = one_source_released
    first = release("2025-Q1")
    assert first.release_id == "2025-Q1.1"
    # late records for 2025-Q1 arrive in a new delivery, then an explicit revision
    late = data / "landing/DE/DE-POL-BKA/bka_lagebild_late.csv"
    src = max((data / "landing/DE/DE-POL-BKA").iterdir(), key=lambda p: p.stat().st_size).read_text(
        encoding="utf-8-sig"
    )
    header, *rows = src.splitlines()
    late.write_text(
        header
        + "\n"
        + rows[0].replace(rows[0].split(";")[0], "BKA-LATE-1", 1).replace(rows[0].split(";")[2], "15.02.2025", 1)
        + "\n",
        encoding="utf-8-sig",
    )
    from pipelines.ingest import ingest

    assert ingest(data).total["loaded"] == 1
    second = release("2025-Q1", revise=True)
    assert second.release_id == "2025-Q1.2"
    assert second.noise_drawn
    assert sorted(table(data, "releases").release_id) == ["2025-Q1.1", "2025-Q1.2"]
    assert table(data, "latest_releases").release_id.tolist() == ["2025-Q1.2"]
    con = connect(Settings(data_dir=data).warehouse, read_only=True)
    share = 2 * release_spec().budget.release_rho  # two releases; σ rounded up spends a little less
    assert share * 0.99 <= ledger.spent(con, Period.parse("2025-Q1")) <= share
    snapshot = con.sql("SELECT count(*) FROM ledger.measurements").fetchall()
    con.close()
    with pytest.raises(ledger.BudgetExceeded, match="quarterly cap"):
        release("2025-Q1", revise=True)
    con = connect(Settings(data_dir=data).warehouse, read_only=True)
    assert con.sql("SELECT count(*) FROM ledger.measurements").fetchall() == snapshot
    con.close()
    assert not (data / "release/2025-Q1.3").exists()


def test_a_released_person_stays_in_their_quarter(one_source_released):
    data, release = one_source_released
    con = connect(Settings(data_dir=data).warehouse, read_only=True)
    person, quarter, record = con.sql(
        """SELECT person_id, p.first_quarter, r.record_id
        FROM linked.persons p JOIN linked.record_persons r USING (reporting_country, person_id)
        WHERE p.linkable AND r.source_id = 'DE-POL-BKA' AND p.first_quarter >= '2024-Q2'
        ORDER BY p.first_quarter, r.record_id LIMIT 1"""
    ).fetchall()[0]
    con.close()
    assert release(quarter).noise_drawn
    from pipelines.ingest import ingest

    # a late delivery: the same person (the police's record again, so the same identity
    # encoding), seen earlier, in a quarter before the released one
    folder = data / "landing/DE/DE-POL-BKA"
    rows = [r for f in sorted(folder.glob("bka_lagebild_*.csv")) for r in read_rows(f, "DE-POL-BKA")[1:]]
    header = read_rows(next(folder.glob("bka_lagebild_*.csv")), "DE-POL-BKA")[0]
    (row,) = [r for r in rows if r[header.index(col("DE-POL-BKA", "record_id"))] == record]
    row[header.index(col("DE-POL-BKA", "record_id"))] = "BKA-EARLY-1"
    row[header.index(col("DE-POL-BKA", "reference_date"))] = "15.01.2024"
    write_rows(folder / "bka_lagebild_early.csv", "DE-POL-BKA", [header, row])
    assert ingest(data).total["loaded"] == 1
    con = connect(Settings(data_dir=data).warehouse, read_only=True)
    got = con.execute(
        "SELECT first_quarter, quarter_frozen, first_date FROM linked.persons WHERE person_id = ?", [person]
    ).fetchall()
    con.close()
    assert got[0][0] == quarter
    assert got[0][1]
    assert str(got[0][2]) == "2024-01-15"


def test_a_measured_person_keeps_their_year_and_its_history(one_source_released, world):
    """The annual release freezes its persons' year: a late record of the year before moves
    neither a person first measured by the year nor one measured in a quarter, and the
    sources of their capture history stay those that saw them in their year."""
    from pipelines.ingest import ingest

    data, release = one_source_released
    bka, kok = data / "landing/DE/DE-POL-BKA", data / "landing/DE/DE-NGO-KOK"

    def rows_of(folder, source_id):
        files = sorted(folder.glob("*.csv"))
        return read_rows(files[0], source_id)[0], [r for f in files for r in read_rows(f, source_id)[1:]]

    def late(folder, source_id, name, row, record_id, day, encoding):
        header = rows_of(folder, source_id)[0]
        row = list(row)
        row[header.index(col(source_id, "record_id"))] = record_id
        row[header.index(col(source_id, "reference_date"))] = day
        row[header.index(col(source_id, "identity_encoding"))] = encoding
        write_rows(folder / name, source_id, [header, row])

    def person(record_id):
        con = connect(Settings(data_dir=data).warehouse, read_only=True)
        try:
            return con.execute(
                """SELECT p.person_id, first_quarter, first_year, quarter_frozen, sources_first_year
                FROM linked.persons p JOIN linked.record_persons r USING (reporting_country, person_id)
                WHERE r.record_id = ?""",
                [record_id],
            ).fetchall()[0]
        finally:
            con.close()

    header, rows = rows_of(bka, "DE-POL-BKA")
    kok_header, kok_rows = rows_of(kok, "DE-NGO-KOK")
    con = connect(Settings(data_dir=data).warehouse, read_only=True)
    record, year = con.sql(  # a person the police and the NGO both saw in one year, and never before
        """SELECT r.record_id, p.first_year FROM linked.persons p
        JOIN linked.record_persons r USING (reporting_country, person_id)
        WHERE p.first_year > 2023 AND p.sources_first_year = ['DE-NGO-KOK', 'DE-POL-BKA']
        AND p.sources = ['DE-NGO-KOK', 'DE-POL-BKA'] AND r.source_id = 'DE-NGO-KOK' ORDER BY r.record_id LIMIT 1"""
    ).fetchall()[0]
    con.close()
    (seen,) = [r for r in kok_rows if r[kok_header.index(col("DE-NGO-KOK", "record_id"))] == record]
    enc = kok_header.index(col("DE-NGO-KOK", "identity_encoding"))
    for q in Period(year).quarters():
        release(str(q))
    # a person first recorded after their quarter was released (an encoding no DE record has)
    newcomer = next(
        m.group(0).decode()
        for f in sorted((world / "landing/AT").rglob("*.*"))
        for m in [re.search(rb"v2:[A-Za-z0-9+/]{342}==:[A-Za-z0-9+/=]*:[A-Za-z0-9+/=]*", f.read_bytes())]
        if m
    )
    late(bka, "DE-POL-BKA", "bka_lagebild_late1.csv", rows[0], "BKA-LATE-1", f"10.05.{year}", newcomer)
    assert ingest(data).total["loaded"] == 1
    assert person("BKA-LATE-1")[1:4] == (f"{year}-Q2", year, False)
    assert release(str(year)).noise_drawn
    # late records of the year before: the newcomer again, and the person both sources saw
    late(bka, "DE-POL-BKA", "bka_lagebild_late2.csv", rows[0], "BKA-LATE-2", f"15.12.{year - 1}", newcomer)
    late(kok, "DE-NGO-KOK", "kok_datenerhebung_late.csv", seen, "KOK-LATE-1", f"20.11.{year - 1}", seen[enc])
    assert ingest(data).total["loaded"] == 2
    assert person("BKA-LATE-2") == person("BKA-LATE-1")  # one person
    assert person("BKA-LATE-1")[1:] == (f"{year}-Q2", year, True, ["DE-POL-BKA"])
    assert person("KOK-LATE-1") == person(record)  # one person
    assert person(record)[2:] == (year, True, ["DE-NGO-KOK", "DE-POL-BKA"])


def test_the_calendar_not_the_data_decides_what_is_released(world, tmp_path, prefect_harness):
    """A record dated before the calendar is refused at ingest (its file quarantined, with the
    reason), and the calendar's quarters are released even with no record at all (as zeros)."""
    from datetime import date

    from pipelines.release import pipeline

    folder = world / "landing/DE/DE-POL-BKA"
    header, row = max((read_rows(f, "DE-POL-BKA") for f in folder.glob("bka_lagebild_*.csv")), key=len)[:2]
    row[header.index(col("DE-POL-BKA", "reference_date"))] = "10.02.2019"
    data = tmp_path / "data"
    (data / "landing/DE/DE-POL-BKA").mkdir(parents=True)
    write_rows(data / "landing/DE/DE-POL-BKA/bka_lagebild_2019.csv", "DE-POL-BKA", [header, row])
    summary = pipeline(data, today=date(2023, 8, 1))  # 2023-Q2 opened on 31 July
    assert summary.ingest.total["quarantined"] == 1
    report = json.loads(next((data / "quarantine").rglob("*.report.json")).read_text())
    (failure,) = [f for f in report["failures"] if f.get("field") == "reference_date"]
    assert "calendar" in failure["description"]
    assert summary.due == ["2023-Q1", "2023-Q2"]
    assert sorted(table(data, "releases").release_id) == ["2023-Q1.1", "2023-Q2.1"]
    cov = table(data, "coverage")
    assert not cov.delivered.any()  # nothing for 2023: the zeros are explained
    con = connect(Settings(data_dir=data).warehouse)
    with pytest.raises(ReleaseStateError, match="outside the release calendar"):
        release_quarter(con, Settings(data_dir=data), Period.parse("2019-Q1"), force=True)
    with pytest.raises(ReleaseStateError, match="release 2023-Q3, 2023-Q4 first"):
        release_quarter(con, Settings(data_dir=data), Period.parse("2023"), force=True)
    con.close()


def test_a_ledger_that_forgot_a_published_release_refuses_to_charge(one_source_released):
    """A ledger restored from a backup older than a published release would let new releases
    spend its budget again: it is checked against the releases' own records first."""
    data, release = one_source_released
    release("2025-Q1")
    con = connect(Settings(data_dir=data).warehouse)
    for t in ("measurements", "charges", "releases"):  # the backup was taken before 2025-Q1.1
        con.execute(f"DELETE FROM ledger.{t} WHERE release_id = '2025-Q1.1'")  # noqa: S608 (constants)
    with pytest.raises(ledger.LedgerMismatch, match="2025-Q1.1 published but not charged"):
        release_quarter(con, Settings(data_dir=data), Period.parse("2025-Q2"))
    with pytest.raises(ledger.LedgerMismatch):
        release_quarter(con, Settings(data_dir=data), Period.parse("2025-Q1"))
    assert ledger.releases(con) == []  # nothing was charged
    con.close()


def test_an_incomplete_quarter_is_not_released(one_source_released):
    from datetime import date

    data, _ = one_source_released
    con = connect(Settings(data_dir=data).warehouse)
    with pytest.raises(ReleaseStateError, match="not complete yet"):
        release_quarter(con, Settings(data_dir=data), Period.parse("2025-Q4"), today=date(2026, 1, 20))
    assert ledger.latest(con, Period.parse("2025-Q4")) is None
    con.close()


def test_publication_ignores_interrupted_attempts_and_foreign_folders(released, tmp_path):
    from dp.publish import rebuild_database, write_folder

    folder = tmp_path / "release"
    shutil.copytree(released / "release", folder)
    shutil.copytree(folder / "2025-Q3.1", folder / ".2025-Q3.1.partial-999")  # a crash before the rename
    (folder / ".thb_release.duckdb.999").write_bytes(b"half a database")
    rebuild_database(folder)
    assert len(table(tmp_path, "releases")) == 15  # 12 quarters and 3 years, on RELEASED_ON
    assert not (folder / ".thb_release.duckdb.999").exists()
    tables = {"releases": pd.read_parquet(folder / "2025-Q3.1/releases.parquet").assign(rho=0.3)}
    with pytest.raises(ReleaseStateError, match="another measurement"):
        write_folder(folder, "2025-Q3.1", tables, {})


def test_every_published_zero_is_flagged(released):
    cube = table(released, "counts")
    assert (cube[cube.obs_value == 0].obs_status == "u").all()


def test_revising_an_unreleased_quarter_is_an_error(one_source_released):
    _, release = one_source_released
    with pytest.raises(ReleaseStateError, match="no published release to revise"):
        release("2024-Q4", revise=True)


def test_exports_validate_and_follow_sdmx_csv(released):
    folder = released / "release/2025-Q3.1"
    report = validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    package = json.loads((folder / "datapackage.json").read_text())
    described = {r["path"] for r in package["resources"]} | {"datapackage.json"}
    assert described == {p.name for p in folder.iterdir()}
    header = (folder / "counts.sdmx.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["STRUCTURE", "STRUCTURE_ID", "ACTION"]
    assert header[3:14] == [
        "REF_AREA",
        "VICTIM_STATUS",
        "EXPLOITATION_FORM",
        "ROUTE_STAGE",
        "SEX",
        "AGE",
        "UNACCOMPANIED_CHILD",
        "SMUGGLING_DEBT",
        "TIME_PERIOD",
        "OBS_VALUE",
        "OBS_STATUS",
    ]
    methodology = (folder / "METHODOLOGY.md").read_text()
    rel = table(released, "releases", "2025-Q3.1").iloc[0]
    for text in ("one person in one", f"{rel.rho:.4g}", "discrete Gaussian", "obs_status = u", "Code lists", "90 %"):
        assert text in methodology, text


def test_coverage_names_every_source_and_no_record_count(released):
    cov = table(released, "coverage", "2024-Q1.1")
    assert len(cov) == 31
    assert cov.delivered.sum() >= 25
    assert set(cov.columns) == {
        "release_id",
        "time_period",
        "ref_area",
        "source_id",
        "source_type",
        "source_name",
        "delivered",
        "files",
    }


def test_a_quarantined_file_still_counts_as_delivered(make_data, prefect_harness):
    """Coverage says a file arrived for the period, whatever its contents: a file quarantined
    for one bad record is delivered (its outcome would be a fact about the records)."""
    from pipelines.ingest import ingest
    from pipelines.release import coverage

    data = make_data("DE-POL-BKA")
    (path,) = (data / "landing/DE/DE-POL-BKA").glob("*2024-Q1*")
    rows = read_rows(path, "DE-POL-BKA")
    rows[1][rows[0].index(col("DE-POL-BKA", "gender"))] = "not a gender"
    write_rows(path, "DE-POL-BKA", rows)
    assert ingest(data).total["quarantined"] == 1
    con = connect(Settings(data_dir=data).warehouse, read_only=True)
    cov = coverage(con, Period.parse("2024-Q1")).set_index("source_id")
    con.close()
    assert cov.loc["DE-POL-BKA", "delivered"]
    assert cov.loc["DE-POL-BKA", "files"] == 1
    assert not cov.loc["DE-NGO-KOK", "delivered"]


def test_the_release_database_holds_no_private_column(released):
    con = duckdb.connect(str(released / "release/thb_release.duckdb"), read_only=True)
    columns = {c for (c,) in con.sql("SELECT column_name FROM information_schema.columns").fetchall()}
    con.close()
    assert not columns & {"person_key", "person_id", "record_id", "noisy", "file_id"}


def test_intervals_cover_the_confidential_counts(realistic):
    """Repeated measurements of one quarter: the 90 % intervals cover the counts of the
    persons the sources saw (linked.persons, checked against the simulator's truth in
    tests/integration/test_ingest.py) 90 % of the time where counts are positive, more at zero."""
    from dp.measure import joint_counts, marginal, measure, plan
    from dp.postprocess import cube

    spec = release_spec()
    ds = spec.datasets["cases"]
    con = duckdb.connect(str(realistic / "warehouse.duckdb"), read_only=True)
    joint = joint_counts(con, ds, Period.parse("2025-Q2"))
    con.close()
    scales = plan(spec, "cases")
    truth = {}
    for m in ds.workload():
        for area in AREAS:
            for cell, v in zip(itertools.product(*(domain(a) for a in m)), marginal(ds, joint[area], m), strict=True):
                key = dict(zip(m, cell, strict=True))
                truth[(area, *(key.get(d, "_T") for d in CUBE_DIMENSIONS))] = v
    positive, zero = [], []
    for _ in range(20):
        c = cube(spec, ds, measure(joint, ds, scales), scales)
        c = c[c.ref_area.isin(["AT", "DE", "SE", "FI", "BG"])]  # countries with realistic counts
        t = np.array([truth[k] for k in map(tuple, c[["ref_area", *CUBE_DIMENSIONS]].to_numpy())])
        ok = ((c.ci_low <= t) & (t <= c.ci_high)).to_numpy()
        positive.append(ok[t >= 5])
        zero.append(ok[t == 0])
    positive, zero = np.concatenate(positive), np.concatenate(zero)
    assert len(positive) > 2000
    assert 0.87 <= positive.mean() <= 0.93, positive.mean()  # Feldman-Cousins: exact away from zero
    assert 0.90 <= zero.mean() <= 0.99, zero.mean()  # conservative at zero: the value stays in its interval


def test_the_promise_to_each_person_is_stated_everywhere(released):
    """The per-person loss of a year (their quarter's cases, every quarter's screenings, the
    year's capture histories) is computed from the ledger and stated in the annual release's
    METHODOLOGY.md, its datapackage, the releases table, `thb ledger` (human and --json) and the
    dashboard's method page."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from typer.testing import CliRunner

    from dashboards.app import create_app
    from tests.helpers import dash_call
    from thb.cli import app

    spec = release_spec()
    b = spec.budget
    con = connect(Settings(data_dir=released).warehouse, read_only=True)
    promise = ledger.promise(con, spec, 2024)
    con.close()
    expected = b.release_rho * (b.shares["cases"] + 4 * b.shares["screenings"]) + spec.estimates.rho
    assert expected * 0.99 <= promise.rho <= expected  # σ rounded up spends a little less
    assert promise.epsilon == pytest.approx(ledger.epsilon_of(promise.rho, b.delta))
    stated = f"ρ = {promise.rho:.4g}"
    assert stated in (released / "release/2024.1/METHODOLOGY.md").read_text(encoding="utf-8")
    package = json.loads((released / "release/2024.1/datapackage.json").read_text(encoding="utf-8"))
    assert package["privacy"]["per_person_per_year"]["rho"] == pytest.approx(promise.rho)
    assert package["privacy"]["per_person_per_year"]["rho_cap"] == b.rho_per_year
    rel = table(released, "releases").set_index("release_id")
    assert rel.loc["2024.1", "person_rho_year"] == pytest.approx(promise.rho)
    assert rel.loc["2024-Q1.1", "person_rho_year"] < promise.rho  # what had been spent when it was published
    env = {"THB_DATA_DIR": str(released), "COLUMNS": "200"}
    out = CliRunner().invoke(app, ["ledger", "--json"], env=env)
    per_person = {p["year"]: p for p in json.loads(out.stdout)["per_person"]}
    assert per_person[2024]["rho"] == pytest.approx(promise.rho)
    thb = Path(sys.executable).parent / "thb"
    done = subprocess.run([thb, "ledger"], env={**os.environ, **env}, capture_output=True, text=True)
    human = done.stdout + done.stderr  # tables go to stderr, --json to stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert "promise to each person" in human
    assert f"{promise.rho:.4g}" in human
    page = dash_call(
        create_app(released / "release/thb_release.duckdb"),
        [("method-graph", "figure"), ("method-extra", "children"), ("url", "search")],
        [("method-release", "value", None)],
    )
    assert f"| 2024 | {promise.rho:.3g} |" in json.dumps(page["method-extra"]["children"], ensure_ascii=False)
