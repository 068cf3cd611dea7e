"""Ingest benchmark: wall time, peak RSS and rows/s of `thb ingest` on simulated worlds of
about 100k and 1M rows, and the ratio to a bare DuckDB load of the same files.

    python benchmarks/ingest.py                 # 100k and 1M rows
    python benchmarks/ingest.py --rows 100000   # one size

Each measurement runs in a fresh process, so its peak RSS is its own. The ingest is timed
from the flow call (Prefect's local API already started: its start-up, ~7-15 s, is a fixed
cost reported apart). The baseline loads every file with DuckDB's read_csv / read_json and
INSERT; legacy encodings are decoded in Python first and spreadsheets read with openpyxl,
because DuckDB's encodings and excel extensions are not available here.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import ROWS_AT_SCALE_1, prefect_env

INGEST = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    t0 = time.perf_counter()
    from prefect import flow
    @flow
    def warm_up(): return 1
    warm_up()                      # starts Prefect's local API
    t1 = time.perf_counter()
    from pipelines.ingest import ingest
    summary = ingest(Path(sys.argv[1]))
    t2 = time.perf_counter()
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"startup_s": t1 - t0, "ingest_s": t2 - t1, "summary": summary.total, "rss_mib": rss}))
""")

BARE = textwrap.dedent("""
    import json, sys, time, tempfile, duckdb
    from pathlib import Path
    from connectors.mapping import load_sources
    from connectors.read import _read_xlsx
    landing, db = Path(sys.argv[1]), sys.argv[2]
    sources = load_sources()
    t0 = time.perf_counter()
    con = duckdb.connect(db)
    tmp = Path(tempfile.mkdtemp())
    rows = 0
    for i, f in enumerate(sorted(p for p in landing.rglob("*") if p.is_file())):
        src = sources[f.parent.name]; spec = src.spec_for(f.name)
        if spec.format == "csv":
            path = f
            if spec.encoding.startswith("cp"):
                path = tmp / "utf8.csv"
                path.write_text(f.read_bytes().decode(spec.encoding), encoding="utf-8")
            rel = f"read_csv('{path}', delim='{spec.delimiter}', header=true, all_varchar=true)"
        elif spec.format == "jsonl":
            if f.stat().st_size < 2:
                continue
            rel = f"read_json('{f}', format='newline_delimited')"
        else:
            con.register("x", _read_xlsx(con, f, spec, tmp, list(src.columns(spec).values())))
            rel = "x"
        con.sql(f"CREATE TABLE t{i} AS SELECT * FROM {rel} LIMIT 0")
        con.sql(f"INSERT INTO t{i} SELECT * FROM {rel}")
        rows += con.sql(f"SELECT count(*) FROM t{i}").fetchall()[0][0]
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bare_s": time.perf_counter() - t0, "rows": rows, "rss_mib": rss}))
""")


def run(code: str, *args: str, env=None) -> dict:
    """Run code in a fresh Python (which reports its own peak RSS); return its JSON output."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env or os.environ.copy(), check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(rows: int, seed: int, workdir: Path) -> dict:
    from simulator import simulate

    data = workdir / f"rows{rows}"
    t = time.perf_counter()
    sim = simulate(data, seed=seed, scale=rows / ROWS_AT_SCALE_1)
    simulate_s = time.perf_counter() - t
    ingest = run(INGEST, str(data), env=prefect_env(workdir))
    bare = run(BARE, str(data / "landing"), str(workdir / f"bare{rows}.duckdb"))
    files = sum(1 for p in (data / "landing").rglob("*") if p.is_file()) + ingest["summary"]["quarantined"]
    return {
        "rows": sim.rows,
        "files": files,
        "simulate_s": round(simulate_s, 1),
        "ingest_s": round(ingest["ingest_s"], 1),
        "prefect_startup_s": round(ingest["startup_s"], 1),
        "rows_per_s": round(sim.rows / ingest["ingest_s"]),
        "peak_rss_mib": round(ingest["rss_mib"]),
        "bare_duckdb_s": round(bare["bare_s"], 1),
        "bare_rss_mib": round(bare["rss_mib"]),
        "ratio_to_bare": round(ingest["ingest_s"] / bare["bare_s"], 2),
        "loaded": ingest["summary"]["loaded"],
        "quarantined": ingest["summary"]["quarantined"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="thb-bench-"))
    results = []
    for rows in args.rows:
        print(f"measuring ~{rows:,} rows in {workdir} …", flush=True)
        results.append(measure(rows, args.seed, workdir))
        print("  " + json.dumps(results[-1]), flush=True)
    print(f"\n{'rows':>10} {'files':>6} {'ingest s':>9} {'rows/s':>9} {'peak RSS MiB':>13} {'bare s':>7} {'ratio':>6}")
    for r in results:
        print(
            f"{r['rows']:>10,} {r['files']:>6} {r['ingest_s']:>9} {r['rows_per_s']:>9,} {r['peak_rss_mib']:>13}"
            f" {r['bare_duckdb_s']:>7} {r['ratio_to_bare']:>6}"
        )
    print("targets: 1M rows in ≤ 60 s, ≤ 2048 MiB, ≤ 5× bare DuckDB")


if __name__ == "__main__":
    main()
