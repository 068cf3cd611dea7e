"""Shared fixtures: a real Prefect test harness, one small simulated world, and helpers to
build a data directory from some of its deliveries."""

import os
import shutil
import tempfile
from pathlib import Path

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="thb-prefect-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import duckdb  # noqa: E402
import pytest  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from simulator import simulate  # noqa: E402

SEED, SCALE = 11, 0.05


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def thb_env(prefect_harness) -> dict:
    """The environment of a `thb` subprocess: this session's Prefect API (no server of its own)."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """A small simulated world: world/landing and world/truth (never modified)."""
    out = tmp_path_factory.mktemp("world")
    simulate(out, seed=SEED, scale=SCALE)
    return out


@pytest.fixture(scope="session")
def ingested(world, tmp_path_factory) -> Path:
    """A data directory holding the whole world, ingested once (read-only for tests)."""
    from pipelines.ingest import ingest

    data = tmp_path_factory.mktemp("ingested")
    shutil.copytree(world / "landing", data / "landing")
    ingest(data)
    return data


@pytest.fixture
def make_data(world, tmp_path):
    """make_data(*source_ids) → a fresh data dir whose landing/ holds those sources' files."""

    def make(*source_ids: str) -> Path:
        data = tmp_path / "data"
        for sid in source_ids:
            src = world / "landing" / sid[:2] / sid
            shutil.copytree(src, data / "landing" / sid[:2] / sid)
        return data

    return make


def dash_request(app, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, object]], state=()) -> dict:
    """The body the browser posts to /_dash-update-component to run one of app's callbacks."""
    wanted = [f"{i}.{p}" for i, p in outputs]

    def parts_of(key):
        return key[2:-2].split("...") if key.startswith("..") else [key]

    key = next(k for k in app.callback_map if [p.split("@")[0] for p in parts_of(k)] == wanted)
    parts = parts_of(key)
    return {
        "output": key,
        "outputs": (
            [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in parts]
            if len(parts) > 1
            else {"id": outputs[0][0], "property": outputs[0][1]}
        ),
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }


def snapshot(warehouse: Path, clock: bool = True) -> dict:
    """Every table of the warehouse with its row count and a content checksum; without the
    clock's columns (timestamps such as processed_at) when clock=False."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns: dict[str, list[str]] = {}
        for table, column, kind in con.sql(
            "SELECT table_schema || '.' || table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') "
            "ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall():
            columns.setdefault(table, [])
            if clock or not kind.startswith("TIMESTAMP"):
                columns[table].append(f'"{column}"')
        return {
            t: con.sql(f"SELECT count(*), sum(hash(struct_pack({', '.join(cols)}))) FROM {t}").fetchall()[0]
            for t, cols in sorted(columns.items())
        }
    finally:
        con.close()


@pytest.fixture(scope="session")
def released(ingested, tmp_path_factory) -> Path:
    """The ingested world with every complete quarter released (read-only for tests)."""
    from pipelines.release import pipeline

    pipeline(ingested)
    return ingested


@pytest.fixture
def one_source_released(make_data):
    """A fresh data dir with DE's police and NGO exports ingested; release(period) → summary."""
    from pipelines.ingest import ingest
    from pipelines.release import release

    data = make_data("DE-POL-BKA", "DE-NGO-KOK")
    ingest(data)
    return data, lambda period, revise=False: release(period, revise, data)


@pytest.fixture(scope="session")
def realistic(tmp_path_factory) -> Path:
    """A world at scale 0.4 (realistic counts per country and quarter), ingested."""
    from pipelines.ingest import ingest

    data = tmp_path_factory.mktemp("realistic")
    simulate(data, seed=SEED + 100, scale=0.4)
    ingest(data)
    return data
