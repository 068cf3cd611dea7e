"""The dashboard's data-access layer and every callback, through Dash's own endpoint; that
it opens only the public release, read-only; and that it shows only published cells."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from dashboards.app import create_app, resolve
from dashboards.data import ANY, Release
from dashboards.pages import PAGES
from data_contracts.codelists import CUBE_DIMENSIONS
from tests.helpers import dash_call

CELL = ["release_id", "ref_area", "time_period", *CUBE_DIMENSIONS]  # what identifies a published cell


@pytest.fixture(scope="module")
def release_db(released, tmp_path_factory):
    """A copy of the released world's public folder, and nothing else: no warehouse."""
    public = tmp_path_factory.mktemp("public")
    shutil.copytree(released / "release", public / "release")
    return public / "release" / "thb_release.duckdb"


@pytest.fixture(scope="module")
def client(release_db):
    return create_app(release_db)


def test_the_data_layer_reads_published_cells(release_db):
    data = Release(release_db)
    releases = data.releases()
    assert len(releases) == 15
    assert releases.release_id.iloc[0] == "2025.1"
    assert data.vintage("2024-Q2.1") == [
        f"{y}-Q{q}.1" for y in (2023, 2024) for q in range(1, 5) if (y, q) <= (2024, 2)
    ]
    cells = data.cells("counts", ["2025-Q1.1"], ref_area=ANY, exploitation_form=ANY)
    assert len(cells) == 8 * 8
    assert (cells.gender == "_T").all()
    assert (cells.ref_area != "_T").all()


def test_the_app_imports_nothing_of_the_private_side():
    code = (
        "import sys, dashboards.app, dashboards.wsgi; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pipelines', 'connectors', 'dp', 'simulator', "
        "'prefect', 'great_expectations'}))"
    )
    env = {**os.environ, "THB_RELEASE": "/nonexistent.duckdb"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_renders_and_updates(client, page, release_db):
    layout = dash_call(client, [("page", "children")], [("url", "pathname", page.path)], [("url", "search", "")])
    text = json.dumps(layout)
    assert page.title in text
    assert f"{page.name}-graph" in text
    state = resolve(page, {}, Release(release_db))
    inputs = [(f"{page.name}-{f}", "value", state[f]) for f in ("release", *page.filters)]
    out = dash_call(
        client, [(f"{page.name}-graph", "figure"), (f"{page.name}-extra", "children"), ("url", "search")], inputs
    )
    assert out[f"{page.name}-graph"]["figure"]["data"] or page.name == "hidden"
    assert out["url"]["search"].startswith("?release=2025.1")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_downloads_the_cells_it_shows(client, page, release_db):
    data = Release(release_db)
    state = resolve(page, {}, data)
    states = [(f"{page.name}-{f}", "value", state[f]) for f in ("release", *page.filters)]
    out = dash_call(
        client, [(f"{page.name}-download", "data")], [(f"{page.name}-download-button", "n_clicks", 1)], states
    )
    content = out[f"{page.name}-download"]["data"]["content"]
    assert content.startswith("# THB Observatory, release 2025.1")
    assert "Cite as" in content
    shown = page.frame(data, state)
    body = "\n".join(line for line in content.splitlines() if not line.startswith("#"))
    assert len(body.splitlines()) == len(shown) + 1


def _published(release_db) -> pd.DataFrame:
    data = Release(release_db)
    return pd.concat(
        [
            data.query("SELECT *, 'counts' AS \"table\" FROM counts"),
            data.query("SELECT *, 'screenings' AS \"table\" FROM screenings"),
        ],
        ignore_index=True,
    )


@pytest.mark.parametrize(
    "page", [p for p in PAGES if p.name not in ("coverage", "method", "hidden")], ids=lambda p: p.name
)
def test_every_number_shown_is_a_published_cell(page, release_db):
    data = Release(release_db)
    published = _published(release_db)
    for params in (
        {},
        {"area": "DE", "status": "presumed", "table": "exploitation_form*gender", "stage": "destination"},
    ):
        state = resolve(page, params, data)
        shown = page.frame(data, state)
        if "table" not in shown:
            shown = shown.assign(table="counts")
        keys = ["table", *CELL]
        matched = shown.merge(published, on=keys, suffixes=("", "_pub"))
        assert len(matched) == len(shown) > 0
        for col in ("obs_value", "ci_low", "ci_high", "obs_status"):
            assert (matched[col] == matched[col + "_pub"]).all(), col
        numbers = set(shown.obs_value) | set(shown.ci_low) | set(shown.ci_high)
        fig = page.figure(shown, state)
        for trace in fig.data:
            if trace.type == "scatter" and trace.hoveron == "fills":
                continue  # a country's outline on the map: coordinates, not numbers shown
            ys = [y for y in (list(trace.y) if trace.y is not None else []) if y is not None]
            assert set(ys) <= numbers, trace.name
        labels = [re.search(r"</b>\s*([\d,]+)", a.text) for a in fig.layout.annotations]
        assert {int(m.group(1).replace(",", "")) for m in labels if m} <= set(shown.obs_value)


def test_a_new_release_is_picked_up_without_a_restart(released, tmp_path):
    folder = tmp_path / "release"
    shutil.copytree(released / "release", folder)
    db = folder / "thb_release.duckdb"
    import duckdb

    con = duckdb.connect(str(db))
    con.sql("DELETE FROM releases WHERE release_id = '2025.1'")  # the state before the last release
    con.close()
    client = create_app(db)
    page = next(p for p in PAGES if p.name == "method")
    inputs = [("method-release", "value", None)]
    before = dash_call(client, [("method-graph", "figure"), ("method-extra", "children"), ("url", "search")], inputs)
    assert "2025.1" not in json.dumps(before["method-graph"]["figure"])
    shutil.copy(released / "release/thb_release.duckdb", folder / ".new.duckdb")
    os.replace(folder / ".new.duckdb", db)  # how dp/publish.py swaps a release in
    after = dash_call(client, [("method-graph", "figure"), ("method-extra", "children"), ("url", "search")], inputs)
    assert "2025.1" in json.dumps(after["method-graph"]["figure"])
    assert page.name == "method"


def test_the_release_file_is_only_read(client, release_db):
    digest = hashlib.sha256(release_db.read_bytes()).hexdigest()
    for page in PAGES:
        dash_call(client, [("page", "children")], [("url", "pathname", page.path)], [("url", "search", "")])
    assert hashlib.sha256(release_db.read_bytes()).hexdigest() == digest
    assert not any(p.suffix == ".wal" for p in release_db.parent.iterdir())


def test_the_overview_download_has_no_duplicate_cell(release_db):
    data = Release(release_db)
    page = next(p for p in PAGES if p.name == "overview")
    shown = page.frame(data, resolve(page, {"area": "GR"}, data))
    assert not shown.duplicated(subset=CELL).any()
