"""Dashboard benchmark on a release: time to the first full render of the overview in a
real browser (Debian's chromium), and p50/p95 latency of the filter callbacks over HTTP.

    python benchmarks/dashboard.py                                  # the demo release (make demo)
    python benchmarks/dashboard.py --release path/to/thb_release.duckdb --calls 300
"""

import argparse
import json
import random
import socket
import statistics
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from dashboards.app import CHOICES, controls_of, create_app, default_release_path, resolve
from dashboards.data import Release
from dashboards.pages import PAGES

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def serve(release: Path) -> tuple[str, object]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(release)
    httpd = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", app


RENDERED = """new MutationObserver((m, o) => {
    if (document.querySelector('#overview-graph .main-svg .bars') && document.querySelector('.card-value')) {
        window.__rendered = performance.now(); o.disconnect(); }
}).observe(document, {subtree: true, childList: true});"""


def first_render(url: str, runs: int = 7) -> list[float]:
    """Seconds, in the browser's own clock, from navigation start to the overview's figure and
    cards drawn, each in a fresh browser context (nothing cached)."""
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            tab = context.new_page()
            tab.add_init_script(RENDERED)
            tab.goto(url + "/", wait_until="commit")
            tab.wait_for_function("() => window.__rendered", timeout=30_000)
            times.append(tab.evaluate("window.__rendered") / 1000)
            context.close()
        browser.close()
    return times


def callback_latencies(url: str, app, release: Path, calls: int, seed: int = 0) -> list[float]:
    """Seconds per filter callback (figure, cards, URL), random filter values, over HTTP."""
    rng = random.Random(seed)
    data = Release(release)
    keys = {}
    for k in app.callback_map:
        if k.startswith("..") and "-graph.figure" in k:
            keys[k[2:].split("-graph")[0]] = k
    pages = [p for p in PAGES if p.filters]
    times = []
    for _ in range(calls):
        page = rng.choice(pages)
        state = resolve(page, {}, data)
        values = {"release": state["release"]}
        for f in page.filters:
            if f == "quarter":
                values[f] = rng.choice(state["quarters"])
            elif f == "areas":
                values[f] = rng.sample(CHOICES["areas"], rng.randint(1, 4))
            else:
                values[f] = rng.choice(CHOICES[f])
        key = keys[page.name]
        outputs = key[2:-2].split("...")
        body = {
            "output": key,
            "outputs": [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in outputs],
            "inputs": [{"id": f"{page.name}-{f}", "property": "value", "value": values[f]} for f in controls_of(page)],
            "changedPropIds": [f"{page.name}-{page.filters[0]}.value"],
            "state": [],
        }
        request = urllib.request.Request(
            url + "/_dash-update-component",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        t0 = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            response.read()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--release", type=Path, default=default_release_path())
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    url, app = serve(args.release)
    renders = first_render(url)
    lat = sorted(callback_latencies(url, app, args.release, args.calls))
    p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95)]
    print(f"release: {args.release}")
    print(
        f"first full render of the overview: median {statistics.median(renders):.2f} s, "
        f"max {max(renders):.2f} s over {len(renders)} fresh browser contexts (target ≤ 2 s)"
    )
    print(
        f"filter callbacks over HTTP ({len(lat)} calls, random filters): p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms (target p95 ≤ 200 ms)"
    )


if __name__ == "__main__":
    main()
