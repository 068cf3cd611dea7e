"""Crash recovery: `thb ingest` and `thb release` are killed with SIGKILL at chosen points of
the real code (tests/crashpoint.py) and at random moments, then run again. Afterwards the
warehouse is what an uninterrupted run leaves, no file is half-loaded, every quarter is
published exactly once, the ledger holds each charge once, and a recovered release is the
one its stored measurements give."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dp import ledger
from dp.measure import plan
from dp.spec import release_spec
from pipelines.release import _publish
from pipelines.warehouse import connect
from tests.helpers import REPO, snapshot
from thb.periods import Period
from thb.settings import Settings

pytestmark = pytest.mark.slow
# Two xdist groups, one worker each: the ingest crashes share the reference runs of both
# landings (and a random-moment kill is timed by them); the release crashes need only the
# six sources' one.
INGEST_GROUP, RELEASE_GROUP = pytest.mark.xdist_group("crash-ingest"), pytest.mark.xdist_group("crash-release")

SOURCES = ("DE-POL-BKA", "DE-NGO-KOK", "DE-ASY-BAMF", "FI-POL-POLIISI", "SE-POL-NMR", "GR-POL-HP")
THB = Path(sys.executable).with_name("thb")
QUARTER = "2025-Q2"


def run(env: dict, data: Path, *command: str, kill: tuple[str, str] | None = None, after: float | None = None):
    """`thb COMMAND` on data/, killed at a crash point, or `after` seconds; the finished process."""
    argv = [sys.executable, "-m", "tests.crashpoint", *kill, "--", *command] if kill else [str(THB), *command]
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env={**env, "THB_DATA_DIR": str(data)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if after is not None:
        try:
            proc.wait(timeout=after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def killed(env, data, *command, **how) -> None:
    rc, out = run(env, data, *command, **how)
    assert rc == -signal.SIGKILL, f"the crash point was never reached (exit {rc}):\n{out[-2000:]}"


def recovered(env, data, *command) -> str:
    rc, out = run(env, data, *command)
    assert rc == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    return out


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def landings(world, tmp_path_factory) -> dict[str, Path]:
    """Two landing folders: six sources (CSV in three encodings, XLSX, JSON lines, screenings)
    with a truncated file that must be quarantined; and that broken file alone."""
    root = tmp_path_factory.mktemp("landings")
    full, alone = root / "six sources", root / "one broken file"
    for sid in SOURCES:
        shutil.copytree(world / "landing" / sid[:2] / sid, full / sid[:2] / sid)
    good = sorted((full / "DE/DE-POL-BKA").iterdir())[0]
    broken = good.with_name(good.name.replace(".csv", "-korrektur.csv"))
    broken.write_bytes(good.read_bytes()[:200])
    (alone / "DE/DE-POL-BKA").mkdir(parents=True)
    shutil.copy(broken, alone / "DE/DE-POL-BKA")
    return {"six sources": full, "one broken file": alone}


def fresh(root: Path, landing: Path) -> Path:
    data = root / "data"
    shutil.copytree(landing, data / "landing")
    return data


@pytest.fixture(scope="module")
def reference(landings, thb_env, tmp_path_factory):
    """reference(landing) → the data folder one uninterrupted `thb ingest` of it leaves;
    reference.seconds[landing]: how long that run took."""
    done = {}

    def of(name: str) -> Path:
        if name not in done:
            done[name] = fresh(tmp_path_factory.mktemp("reference"), landings[name])
            start = time.perf_counter()
            recovered(thb_env, done[name], "ingest")
            of.seconds[name] = time.perf_counter() - start
        return done[name]

    of.seconds = {}
    return of


def assert_as_uninterrupted(data: Path, reference: Path) -> None:
    assert snapshot(data / "warehouse.duckdb", clock=False) == snapshot(reference / "warehouse.duckdb", clock=False)
    assert files(data / "quarantine") == files(reference / "quarantine")
    assert files(data / "landing") == files(reference / "landing")
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    half_loaded = con.sql(
        "SELECT count(*) FROM harmonised.case_records c WHERE NOT EXISTS "
        "(SELECT 1 FROM landing.manifest m WHERE m.file_id = c.file_id AND m.status = 'loaded')"
    ).fetchall()
    con.close()
    assert half_loaded == [(0,)]


INGEST_CRASHES = {  # where → (landing, crash point)
    "between two files": ("six sources", "pipelines.ingest:load#2", "before"),
    "inside a file's load transaction": ("six sources", "pipelines.load:_ensure_raw_table#3", "after"),
    "after a quarantine report, before its manifest row": ("six sources", "pipelines.load:report", "after"),
    "quarantine recorded, file not moved": ("one broken file", "pipelines.load:_manifest_row", "after"),
    "every file loaded, persons not linked": ("six sources", "pipelines.ingest:link_persons", "before"),
    "inside the linkage transaction": ("six sources", "pipelines.link:persons_sql", "after"),
}


@pytest.mark.parametrize("point", INGEST_CRASHES)
@INGEST_GROUP
def test_an_ingest_killed_at_a_crash_point_recovers(point, landings, reference, thb_env, tmp_path):
    landing, *kill = INGEST_CRASHES[point]
    data = fresh(tmp_path, landings[landing])
    killed(thb_env, data, "ingest", kill=tuple(kill))
    recovered(thb_env, data, "ingest")
    assert_as_uninterrupted(data, reference(landing))


@pytest.mark.parametrize("share", [0.4, 0.8])
@INGEST_GROUP
def test_an_ingest_killed_at_a_random_moment_recovers(share, landings, reference, thb_env, tmp_path):
    expected = reference("six sources")
    data = fresh(tmp_path, landings["six sources"])
    run(thb_env, data, "ingest", after=share * reference.seconds["six sources"])
    recovered(thb_env, data, "ingest")
    assert_as_uninterrupted(data, expected)


# ---------------------------------------------------------------- release


@pytest.fixture
def ingested_copy(reference, tmp_path) -> Path:
    """A data folder with six sources ingested and nothing released."""
    data = tmp_path / "data"
    shutil.copytree(reference("six sources"), data)
    return data


def assert_published_once(data: Path, periods: list[str]) -> None:
    """Each period (a quarter, or a year's estimates): one release, revision 1, published;
    its charges once; its folder whole, once in the database; nothing half-written left
    behind; and a quarter's files are what post-processing makes of its stored measurements
    (a year's intervals are a bootstrap, drawn again each time they are computed)."""
    spec = release_spec()
    con = connect(data / "warehouse.duckdb", read_only=True)
    for period in periods:
        rows = con.execute("SELECT release_id, status FROM ledger.releases WHERE scope = ?", [period]).fetchall()
        charges = con.execute("SELECT count(*) FROM ledger.charges WHERE release_id = ?", [f"{period}.1"]).fetchall()
        n_charges = sum(len(plan(spec, name)) for name in spec.datasets) if "-Q" in period else 1
        assert rows == [(f"{period}.1", "published")], (period, rows, charges)
        assert charges == [(n_charges,)], (period, rows, charges)
    con.close()
    published = duckdb.connect(str(data / "release/thb_release.duckdb"), read_only=True)
    in_db = dict(published.sql("SELECT release_id, count(*) FROM releases GROUP BY 1").fetchall())
    counts = dict(published.sql("SELECT release_id, count(*) FROM counts GROUP BY 1").fetchall())
    published.close()
    assert in_db == {f"{p}.1": 1 for p in periods}
    assert [p.name for p in (data / "release").iterdir() if p.name.startswith(".")] == [], "half-written files left"
    scratch = data.parent / "scratch"  # the stored measurements, published again apart
    scratch.mkdir()
    shutil.copy(data / "warehouse.duckdb", scratch / "warehouse.duckdb")
    con = connect(scratch / "warehouse.duckdb")
    try:
        for period in (p for p in periods if "-Q" in p):
            folder = _publish(con, Settings(data_dir=scratch), ledger.latest(con, Period.parse(period)))
            assert files(folder) == files(data / "release" / f"{period}.1")
            assert counts[f"{period}.1"] == len(pd.read_parquet(folder / "counts.parquet"))
    finally:
        con.close()


RELEASE_CRASHES = {
    "before the charge": ("dp.ledger:record", "before", "published"),
    "after the charge, before publishing": ("dp.ledger:record", "after", "recovered and published"),
    "while writing the release folder": ("dp.publish:methodology", "before", "recovered and published"),
    "folder swapped in, database not yet": ("pipelines.release:rebuild_database", "before", "recovered and published"),
    "database swapped, ledger not marked": ("pipelines.release:rebuild_database", "after", "recovered and published"),
}


@pytest.mark.parametrize("point", RELEASE_CRASHES)
@RELEASE_GROUP
def test_a_release_killed_at_a_crash_point_is_published_once(point, ingested_copy, thb_env):
    data = ingested_copy
    target, when, status = RELEASE_CRASHES[point]
    killed(thb_env, data, "release", QUARTER, kill=(target, when))
    con = connect(data / "warehouse.duckdb", read_only=True)
    charged = ledger.latest(con, Period.parse(QUARTER))
    stored = ledger.stored(con, f"{QUARTER}.1") if charged else None
    con.close()
    assert (charged is None) == (when == "before" and target == "dp.ledger:record")
    out = recovered(thb_env, data, "release", QUARTER)
    assert f"{QUARTER}.1 {status} (" in " ".join(out.split())
    assert_published_once(data, [QUARTER])
    if stored:  # recovered from the stored noise, never measured again
        con = connect(data / "warehouse.duckdb", read_only=True)
        assert ledger.stored(con, f"{QUARTER}.1") == stored
        con.close()


@RELEASE_GROUP
def test_a_pipeline_killed_between_quarters_publishes_each_once(ingested_copy, thb_env):
    data = ingested_copy
    killed(thb_env, data, "pipeline", "run", kill=("dp.ledger:record#3", "after"))
    recovered(thb_env, data, "pipeline", "run")
    con = connect(data / "warehouse.duckdb", read_only=True)
    scopes = [s for (s,) in con.sql("SELECT scope FROM ledger.releases ORDER BY 1").fetchall()]
    con.close()
    assert sum("-Q" in s for s in scopes) >= 8
    assert any("-Q" not in s for s in scopes)
    assert_published_once(data, scopes)
