"""The dashboard in a real browser: Playwright driving Debian's chromium (installed by
.ci/run). Every page opens with no console error and no request leaving the machine;
filters change the figure and the URL; the CSV downloads; screenshots are saved."""

import shutil
import socket
import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from dashboards.app import create_app
from dashboards.pages import PAGES
from tests.helpers import REPO

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "build" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(released, tmp_path_factory):
    public = tmp_path_factory.mktemp("served")
    shutil.copytree(released / "release", public / "release")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    httpd = make_server("127.0.0.1", port, create_app(public / "release/thb_release.duckdb").server, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    problems = []
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text[:300]}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on(
        "request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else problems.append(f"fetch {r.url}")
    )
    yield tab, problems
    context.close()
    assert not problems, problems


def figure_data(tab, graph_id: str):
    return tab.evaluate(f"""() => document.querySelector('#{graph_id} .js-plotly-plot').data.map(t =>
        [t.name, t.y && t.y._inputArray ? Array.from(t.y._inputArray) : Array.from(t.y || [])])""")


def wait_for_graph(tab, graph_id: str):
    tab.wait_for_selector(f"#{graph_id} .js-plotly-plot .main-svg", timeout=20_000)
    tab.wait_for_load_state("networkidle")


@pytest.mark.parametrize("p", PAGES, ids=lambda p: p.name)
def test_every_page_opens_cleanly(page, server, p):
    tab, _ = page
    tab.goto(server + p.path)
    wait_for_graph(tab, f"{p.name}-graph")
    assert tab.locator("h2").first.inner_text() == p.title
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{p.name}.png"), full_page=True)


def test_a_filter_changes_the_figure_and_the_url(page, server):
    tab, _ = page
    tab.goto(server + "/breakdowns")
    wait_for_graph(tab, "breakdowns-graph")
    before = figure_data(tab, "breakdowns-graph")
    tab.get_by_role("radio", name="Identified victim").check()
    tab.wait_for_function("() => location.search.includes('status=identified')")
    tab.wait_for_load_state("networkidle")
    after = figure_data(tab, "breakdowns-graph")
    assert after != before
    shared = tab.url  # a view can be shared: opening its URL restores it
    tab.goto(server + "/")
    tab.goto(shared)
    wait_for_graph(tab, "breakdowns-graph")
    assert tab.get_by_role("radio", name="Identified victim").is_checked()
    assert figure_data(tab, "breakdowns-graph") == after


def test_choosing_an_older_release_changes_the_view(page, server):
    tab, _ = page
    tab.goto(server + "/trends")
    wait_for_graph(tab, "trends-graph")
    latest = figure_data(tab, "trends-graph")
    tab.goto(server + "/trends?release=2024-Q2.1")
    wait_for_graph(tab, "trends-graph")
    older = figure_data(tab, "trends-graph")
    assert len(older[-1][1]) == 6
    assert len(latest[-1][1]) == 12


def test_the_csv_download_holds_the_cells_shown(page, server, tmp_path):
    tab, _ = page
    tab.goto(server + "/gap")
    wait_for_graph(tab, "gap-graph")
    with tab.expect_download() as download:
        tab.get_by_text("Download the cells shown (CSV)").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    text = path.read_text()
    assert path.name == "thb-gap-2025.1.csv"
    assert text.startswith("# THB Observatory, release 2025.1")
    assert "obs_value,ci_low,ci_high" in text
