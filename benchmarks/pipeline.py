"""Pipeline benchmark: simulate → ingest → release on worlds of 10k, 100k, 1M and 10M rows;
wall time, peak RSS and rows/s per stage, and how they grow with the rows.

    python benchmarks/pipeline.py                       # 10k, 100k, 1M, 10M: ~8 min on 2 cores
    python benchmarks/pipeline.py --sizes 1M,10M
    python benchmarks/pipeline.py --sizes 100k --keep --workdir /tmp/b   # keep the data

Each stage is the command a data steward runs, in its own process, so its peak RSS is its
own: `thb simulate`; `thb ingest`; "release": `thb pipeline run` on the ingested warehouse
(its ingest a no-op over unchanged files, then every quarterly and annual DP release: 12
quarters and 3 years); "pipeline": `thb pipeline run` again from the same exports on a new
warehouse, ingest and releases in one process: the end-to-end figure the targets apply to.
Wall times include Python's start-up and Prefect's local API start-up (measured apart once,
below the table), paid once per process. Peak RSS is the kernel's figure for the largest process of the stage;
"tree" is the sampled peak of all its processes together (Prefect's API server included).
The simulator is a benchmark tool and not part of the pipeline targets. Figures depend on
the machine's load: the 1-minute load average is printed at the start of each stage.
"""

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from common import ROWS_AT_SCALE_1, label, parse_rows, prefect_env, run_measured

THB = str(Path(sys.executable).with_name("thb"))
SIZES = "10k,100k,1M,10M"
TARGETS = {1_000_000: (60, 2048), 10_000_000: (600, 4096)}  # end to end (the pipeline stage): s, MiB
DISK_BYTES_PER_ROW = 400  # landing ~70, warehouse ~40, DuckDB's spill and the release: generous
STAGES = ("simulate", "ingest", "release", "pipeline")


def stage_commands(data: Path, rows: int, seed: int) -> dict[str, list[str]]:
    scale = f"{rows / ROWS_AT_SCALE_1:.6g}"
    return {
        "simulate": [THB, "simulate", "--out", str(data), "--seed", str(seed), "--scale", scale],
        "ingest": [THB, "ingest"],
        "release": [THB, "pipeline", "run"],
        "pipeline": [THB, "pipeline", "run"],  # on a new warehouse: see fresh_warehouse
    }


def fresh_warehouse(data: Path) -> None:
    """Remove the warehouse and the release, keeping the exports: the state after simulate."""
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (data / name).unlink(missing_ok=True)
    for name in ("release", "tmp", "quarantine"):
        shutil.rmtree(data / name, ignore_errors=True)


def simulated_rows(data: Path) -> int:
    """Rows the simulator wrote: case records plus screening rows (from its ground truth)."""
    con = duckdb.connect()
    try:
        truth = data / "truth"
        ((cases,),) = con.execute("SELECT count(*) FROM read_parquet(?)", [str(truth / "records.parquet")]).fetchall()
        ((screened,),) = con.execute(
            "SELECT sum(screened) FROM read_parquet(?)", [str(truth / "screenings.parquet")]
        ).fetchall()
    finally:
        con.close()
    return int(cases + (screened or 0))


def warehouse_facts(data: Path) -> dict:
    """Rows loaded, files quarantined and releases published (read-only)."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        ((cases,),) = con.sql("SELECT count(*) FROM harmonised.case_records").fetchall()
        ((screenings,),) = con.sql("SELECT count(*) FROM harmonised.screenings").fetchall()
        ((quarantined,),) = con.sql("SELECT count(*) FROM landing.manifest WHERE status = 'quarantined'").fetchall()
        ((persons,),) = con.sql("SELECT count(*) FROM linked.persons").fetchall()
        known = {t for (t,) in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        releases = (
            con.sql("SELECT count(*) FROM ledger.releases WHERE status = 'published'").fetchall()[0][0]
            if "releases" in known
            else 0
        )
    finally:
        con.close()
    return {"loaded": cases + screenings, "quarantined": quarantined, "persons": persons, "releases": releases}


def prefect_startup(workdir: Path) -> float:
    """Seconds from a fresh Python to Prefect's local API answering a first flow run, once
    its database exists (the first start, which creates it, is run and not counted)."""
    code = "from prefect import flow\nflow(lambda: 1, name='warm-up')()"
    for _ in range(2):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=prefect_env(workdir), check=True, capture_output=True)
    return time.perf_counter() - t


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def measure(rows: int, seed: int, workdir: Path, keep: bool) -> list[dict]:
    data = workdir / f"rows-{label(rows)}"
    shutil.rmtree(data, ignore_errors=True)
    need = rows * DISK_BYTES_PER_ROW + (1 << 30)
    if free_bytes(workdir) < need:
        raise SystemExit(
            f"not enough disk in {workdir}: {need / 2**30:.1f} GiB needed, {free_bytes(workdir) / 2**30:.1f} free"
        )
    env = prefect_env(workdir, THB_DATA_DIR=str(data))
    results, actual = [], rows
    for stage, cmd in stage_commands(data, rows, seed).items():
        load = os.getloadavg()[0]
        print(f"[{label(rows)}] {stage} (load {load:.2f}) …", flush=True)

        if stage == "pipeline":
            fresh_warehouse(data)

        def beat(elapsed: float, mib: float, stage=stage) -> None:
            print(f"[{label(rows)}]   {stage}: {elapsed:,.0f} s, peak so far {mib:,.0f} MiB", flush=True)

        r = run_measured(cmd, env, workdir / f"{label(rows)}-{stage}.log", beat)
        if stage == "simulate":
            actual = simulated_rows(data)
            facts = {
                "disk_mib": round(sum(f.stat().st_size for f in (data / "landing").rglob("*") if f.is_file()) / 2**20)
            }
        else:
            facts = warehouse_facts(data)
            facts["disk_mib"] = round((data / "warehouse.duckdb").stat().st_size / 2**20)
        results.append(
            {
                "size": label(rows),
                "rows": actual,
                "stage": stage,
                "wall_s": round(r["wall_s"], 1),
                "peak_rss_mib": round(r["peak_rss_mib"]),
                "tree_peak_mib": round(r["tree_peak_mib"]),
                "rows_per_s": round(actual / r["wall_s"]),
                "load_avg": round(load, 2),
                **facts,
            }
        )
        print("  " + json.dumps(results[-1]), flush=True)
    if results[1]["loaded"] != actual or results[1]["quarantined"]:
        print(
            f"  warning: {actual:,} rows simulated, {results[1]['loaded']:,} loaded, "
            f"{results[1]['quarantined']} files quarantined"
        )
    if not keep:
        shutil.rmtree(data, ignore_errors=True)
    return results


def report(results: list[dict], startup: float) -> None:
    print(
        f"\n{'size':>5} {'rows':>11} {'stage':<9} {'wall s':>8} {'peak RSS MiB':>13} {'tree MiB':>9}"
        f" {'rows/s':>10} {'load':>5}"
    )
    for r in results:
        print(
            f"{r['size']:>5} {r['rows']:>11,} {r['stage']:<9} {r['wall_s']:>8,.1f} {r['peak_rss_mib']:>13,}"
            f" {r['tree_peak_mib']:>9,} {r['rows_per_s']:>10,} {r['load_avg']:>5.2f}"
        )
    print(f"Prefect's local API start-up (in every ingest and release figure): {startup:.1f} s")

    by = {(r["size"], r["stage"]): r for r in results}
    sizes = list(dict.fromkeys(r["size"] for r in results))
    if len(sizes) > 1:
        print("\ngrowth from one size to the next: wall time and peak RSS, against rows")
        for a, b in itertools.pairwise(sizes):
            grow = by[(b, "ingest")]["rows"] / by[(a, "ingest")]["rows"]
            parts = []
            for s in STAGES:
                time_x = by[(b, s)]["wall_s"] / by[(a, s)]["wall_s"]
                rss_x = by[(b, s)]["peak_rss_mib"] / by[(a, s)]["peak_rss_mib"]
                parts.append(f"{s} ×{time_x:.1f} time ×{rss_x:.1f} RSS")
            print(f"  {a:>4} → {b:<4} rows ×{grow:.1f}: " + "; ".join(parts))

    print(
        "\ntargets, end to end = `thb pipeline run` from the exports (the simulator is a benchmark tool, not counted):"
    )
    for size in sizes:
        target = TARGETS.get(parse_rows(size))
        wall, rss = by[(size, "pipeline")]["wall_s"], by[(size, "pipeline")]["peak_rss_mib"]
        verdict = ""
        if target:
            ok = wall <= target[0] and rss <= target[1]
            verdict = f"  target ≤ {target[0]} s, ≤ {target[1]:,} MiB: {'met' if ok else 'MISSED'}"
        print(f"  {size:>4}: {wall:,.1f} s, peak {rss:,} MiB{verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=SIZES, help=f"comma-separated rows, e.g. 1M,10M (default {SIZES})")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--workdir", type=Path, default=None, help="where the worlds are written (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep each world's data (default: delete after measuring)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args()
    sizes = [parse_rows(s) for s in args.sizes.split(",")]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="thb-pipeline-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"workdir {workdir}: {free_bytes(workdir) / 2**30:.0f} GiB free; {os.cpu_count()} cores; load {os.getloadavg()}"
    )
    startup = prefect_startup(workdir)
    results = []
    for rows in sizes:
        results += measure(rows, args.seed, workdir, args.keep)
    report(results, startup)
    if args.json:
        args.json.write_text(json.dumps({"prefect_startup_s": startup, "results": results}, indent=1) + "\n")
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
