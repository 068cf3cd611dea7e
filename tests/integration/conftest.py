"""Fixtures of the integration tests: a real Prefect test harness, one small simulated world,
and data directories built, ingested and released from it.

The harness (10-20 s to start) is set up only for the tests that run a flow, in-process or
in a `thb` subprocess: they request `prefect_harness`, directly or through `thb_env`,
`ingested`, `released`, `one_source_released` or `realistic`. Under
pytest-xdist each worker starts its own harness, in its own PREFECT_HOME (tests/conftest.py).

The session fixtures are expensive (the world, `ingested`, `released`, `realistic`) and an
xdist worker builds each one it needs: tests/conftest.py puts the tests that use `ingested`,
`released` or `realistic` in one xdist group per fixture, so that each is built once."""

import os
import shutil
from pathlib import Path

import pytest

from simulator import simulate
from tests.helpers import RELEASED_ON, SCALE, SEED


@pytest.fixture(scope="session")
def prefect_harness():
    """This process's Prefect API: a temporary database and a server of its own."""
    from prefect.testing.utilities import prefect_test_harness

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
def ingested(world, tmp_path_factory, prefect_harness) -> Path:
    """A data directory holding the whole world, ingested once (read-only for tests)."""
    from pipelines.ingest import ingest

    data = tmp_path_factory.mktemp("ingested")
    shutil.copytree(world / "landing", data / "landing")
    ingest(data)
    return data


@pytest.fixture(scope="session")
def released(ingested) -> Path:
    """The ingested world released as the calendar stood on RELEASED_ON (read-only for tests)."""
    from pipelines.release import pipeline

    pipeline(ingested, today=RELEASED_ON)
    return ingested


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


@pytest.fixture
def one_source_released(make_data, prefect_harness):
    """A fresh data dir with DE's police and NGO exports ingested; release(period) → summary."""
    from pipelines.ingest import ingest
    from pipelines.release import release

    data = make_data("DE-POL-BKA", "DE-NGO-KOK")
    ingest(data)
    return data, lambda period, revise=False: release(period, revise, data)


@pytest.fixture
def register_source(tmp_path, monkeypatch):
    """register_source(mapping) → a fresh data dir, for a source the simulator does not know:
    its mapping (YAML text) is the only one in a connectors dir of this test's, and
    `thb contracts build` has built its contracts (THB_CONNECTORS_DIR, THB_CONTRACTS_DIR)."""
    import yaml
    from typer.testing import CliRunner

    from thb.cli import app

    def register(mapping: str) -> Path:
        source_id = yaml.safe_load(mapping)["source_id"]
        connectors, contracts = tmp_path / "connectors", tmp_path / "suites"
        connectors.mkdir()
        (connectors / f"{source_id}.yaml").write_text(mapping, encoding="utf-8")
        monkeypatch.setenv("THB_CONNECTORS_DIR", str(connectors))
        monkeypatch.setenv("THB_CONTRACTS_DIR", str(contracts))
        result = CliRunner().invoke(app, ["contracts", "build"])
        assert result.exit_code == 0, result.output
        assert (contracts / f"{source_id}.case.json").exists()
        return tmp_path / "data"

    return register


@pytest.fixture(scope="session")
def realistic(tmp_path_factory, prefect_harness) -> Path:
    """A world at scale 0.4 (realistic counts per country and quarter), ingested."""
    from pipelines.ingest import ingest

    data = tmp_path_factory.mktemp("realistic")
    simulate(data, seed=SEED + 100, scale=0.4)
    ingest(data)
    return data
