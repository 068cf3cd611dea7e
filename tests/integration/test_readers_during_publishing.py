"""Readers while releases are published: researchers' DuckDB connections and the dashboard
(a real `thb dashboard` process) keep querying while `thb pipeline run` publishes quarter
after quarter. Zero errors, and every reader sees one release database whole: the old one
or the new one, never a mix or a half-written file."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from dashboards.app import create_app, resolve
from dashboards.data import Release
from dashboards.pages import PAGES
from pipelines.ingest import ingest
from pipelines.release import release
from tests.helpers import dash_request

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("readers")]

THB = Path(sys.executable).with_name("thb")
OVERVIEW = next(p for p in PAGES if p.name == "overview")


def researcher(db: Path, stop: threading.Event, seen: list, errors: list) -> None:
    """Open, read every release's cells, close; again and again. Records what each read saw."""
    while not stop.is_set():
        try:
            con = duckdb.connect(str(db), read_only=True)
            try:
                releases = con.sql("SELECT release_id, time_period FROM releases ORDER BY 1").fetchall()
                cells = dict(con.sql("SELECT release_id, count(*) FROM counts GROUP BY 1").fetchall())
                latest = con.sql("SELECT count(*) FROM latest_releases").fetchall()[0][0]
            finally:
                con.close()
            seen.append(("duckdb", tuple(r for r, _ in releases), cells, latest))
        except Exception as exc:  # noqa: BLE001 — every failure is what the test counts
            errors.append(f"duckdb: {type(exc).__name__}: {exc}")


def rapporteur(url: str, body: dict, stop: threading.Event, seen: list, errors: list) -> None:
    """Download the overview's cells (latest release), again and again."""
    while not stop.is_set():
        start = time.perf_counter()
        try:
            request = urllib.request.Request(
                f"{url}/_dash-update-component",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as r:
                content = json.load(r)["response"]["overview-download"]["data"]["content"]
            first = content.splitlines()[0]
            rows = [line for line in content.splitlines() if line and not line.startswith("#")]
            seen.append(("dashboard", first.split("release ")[1].split()[0].rstrip(",."), len(rows) - 1))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"dashboard: {type(exc).__name__}: {exc} after {time.perf_counter() - start:.1f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def first_quarter_published(make_data, prefect_harness) -> Path:
    data = make_data("DE-POL-BKA", "DE-NGO-KOK", "DE-ASY-BAMF", "SE-POL-NMR", "GR-POL-HP")
    ingest(data)
    release("2023-Q1", data_dir=data)
    return data


def test_readers_see_one_whole_release_while_others_are_published(first_quarter_published, thb_env, tmp_path):
    data = first_quarter_published
    db = data / "release" / "thb_release.duckdb"
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "dashboard.log"
    server = subprocess.Popen(
        [str(THB), "dashboard", "--release", str(db), "--port", url.rsplit(":", 1)[1]],
        env=thb_env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    body = dash_request(
        create_app(db),
        [("overview-download", "data")],
        [("overview-download-button", "n_clicks", 1)],
        [(f"overview-{f}", "value", None) for f in ("release", *OVERVIEW.filters)],
    )
    stop, seen, errors = threading.Event(), [], []
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        readers = [threading.Thread(target=researcher, args=(db, stop, seen, errors)) for _ in range(2)]
        readers += [threading.Thread(target=rapporteur, args=(url, body, stop, seen, errors)) for _ in range(2)]
        for r in readers:
            r.start()
        published = subprocess.run(
            [str(THB), "pipeline", "run"],
            env={**thb_env, "THB_DATA_DIR": str(data)},
            capture_output=True,
            text=True,
            timeout=900,
        )
        time.sleep(1)  # and a little after the last swap
        stop.set()
        for r in readers:
            r.join(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert published.returncode == 0, published.stdout[-2000:] + published.stderr[-2000:]
    assert errors == [], errors[:5]
    assert "Traceback" not in log.read_text()
    assert " 500 -" not in log.read_text()

    final = Release(db)
    releases = list(final.releases().release_id)
    quarterly = [r for r in releases if "-Q" in r]
    assert len(quarterly) >= 8
    con = duckdb.connect(str(db), read_only=True)
    cells = dict(con.sql("SELECT release_id, count(*) FROM counts GROUP BY 1").fetchall())
    con.close()
    views = {s[1] for s in seen if s[0] == "duckdb"}
    assert len(views) >= 3, "the readers never overlapped the publishing"
    for _, ids, counted, latest in (s for s in seen if s[0] == "duckdb"):
        assert set(ids) <= set(releases)
        assert counted == {r: cells[r] for r in ids if r in cells}, "a release seen in part"
        assert latest == len({r.split(".")[0] for r in ids})
    shown = {(r, n) for kind, r, n in (s for s in seen if s[0] == "dashboard")}
    assert len({r for r, _ in shown}) >= 2, "the dashboard never showed two releases"
    for shown_release, rows in shown:
        state = resolve(OVERVIEW, {"release": shown_release}, final)
        assert rows == len(OVERVIEW.frame(final, state)), f"the dashboard showed part of {shown_release}"
