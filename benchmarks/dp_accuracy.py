"""DP accuracy benchmark: the workload's total squared error for our strategy and for the
naive one (equal budget per table, each measured independently), their ratio, the coverage
of the 90 % intervals, and the time of a full quarterly release of the eight countries.

    python benchmarks/dp_accuracy.py                     # a fresh world at scale 1
    python benchmarks/dp_accuracy.py --data-dir data     # an ingested simulated world (make demo)

Ground truth: the confidential counts of the persons the sources saw (linked.persons,
which tests/integration/test_ingest.py checks against the simulator's records). Every draw of noise is
OpenDP's discrete Gaussian, for both strategies, at the same total ρ.
"""

import argparse
import itertools
import math
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
from common import local_prefect

from dp.marginals import MarginalAlgebra
from dp.measure import gaussian, joint_counts, marginal, measure, plan
from dp.postprocess import cube, interval_bounds
from dp.spec import CUBE_DIMENSIONS, domain, release_spec
from simulator.guard import require_simulated
from thb.periods import Period


def truth_table(ds, joint) -> dict:
    out = {}
    for m in ds.workload():
        for area, counts in joint.items():
            for cell, v in zip(itertools.product(*(domain(a) for a in m)), marginal(ds, counts, m), strict=True):
                key = dict(zip(m, cell, strict=True))
                out[(area, *(key.get(d, "_T") for d in CUBE_DIMENSIONS))] = int(v)
    return out


def naive(ds, joint, rho: float) -> tuple[dict[str, dict], float]:
    """Every workload table measured on its own with an equal share of ρ; and its noise scale."""
    tables = ds.workload()
    scale = math.sqrt(len(tables) / (2 * rho))
    mechanism = gaussian(scale)
    return {
        area: {m: np.array(mechanism([int(v) for v in marginal(ds, counts, m)])) for m in tables}
        for area, counts in joint.items()
    }, scale


def run(data: Path, quarters: list[str], reps: int) -> dict:
    spec = release_spec()
    ds = spec.datasets["cases"]
    rho = spec.budget.release_rho * spec.budget.shares["cases"]
    scales = plan(spec, "cases")
    alg = MarginalAlgebra(ds.sizes)
    workload = ds.workload()
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        require_simulated(data, con)  # repeated, uncharged measurements against the true counts
        joints = {q: joint_counts(con, ds, Period.parse(q)) for q in quarters}
    finally:
        con.close()
    sse = {
        "ours (GLS, before rounding)": 0.0,
        "ours (published)": 0.0,
        "naive (as measured)": 0.0,
        "naive (clipped at 0)": 0.0,
    }
    covered_pos, covered_zero, n_cells, fc_only = [], [], 0, []
    for q in quarters:
        truth = truth_table(ds, joints[q])
        for _ in range(reps):
            noisy = measure(joints[q], ds, scales)
            for area, measured in noisy.items():
                est = alg.estimate(workload, {m: (np.asarray(measured[m], float), scales[m]) for m in scales})
                for m in workload:
                    t = marginal(ds, joints[q][area], m)
                    sse["ours (GLS, before rounding)"] += float(((est[m][0] - t) ** 2).sum())
                    low, high = interval_bounds(est[m][0], np.full(len(t), est[m][1]), spec.interval_level)
                    fc_only.append((low <= t) & (t <= high))
            c = cube(spec, ds, noisy, scales)
            c = c[c.ref_area != "_T"]
            t = np.array([truth[k] for k in map(tuple, c[["ref_area", *CUBE_DIMENSIONS]].to_numpy())])
            sse["ours (published)"] += float(((c.obs_value.to_numpy() - t) ** 2).sum())
            ok = ((c.ci_low <= t) & (t <= c.ci_high)).to_numpy()
            covered_pos.append(ok[t > 0])
            covered_zero.append(ok[t == 0])
            n_cells += len(c)
            direct, naive_scale = naive(ds, joints[q], rho)
            for area, tables in direct.items():
                for m, values in tables.items():
                    t = marginal(ds, joints[q][area], m)
                    sse["naive (as measured)"] += float(((values - t) ** 2).sum())
                    sse["naive (clipped at 0)"] += float(((np.maximum(values, 0) - t) ** 2).sum())
    runs = reps * len(quarters)
    pos, zero = np.concatenate(covered_pos), np.concatenate(covered_zero)
    predicted = alg.total_variance(workload, {m: 1 / s**2 for m, s in scales.items()}) * 8
    return {
        "sse_per_release": {k: round(v / runs) for k, v in sse.items()},
        "predicted_sse_ours": round(predicted),
        "predicted_sse_naive": round(sum(alg.cells(m) for m in workload) * naive_scale**2 * 8),
        "ratio_unbiased": round(sse["naive (as measured)"] / sse["ours (GLS, before rounding)"], 2),
        "ratio_published": round(sse["naive (clipped at 0)"] / sse["ours (published)"], 2),
        "coverage_all": round(float(np.concatenate([pos, zero]).mean()), 4),
        "coverage_positive_cells": round(float(pos.mean()), 4),
        "coverage_zero_cells": round(float(zero.mean()), 4),
        "coverage_before_holding_the_value": round(float(np.concatenate(fc_only).mean()), 4),
        "share_of_zero_cells": round(len(zero) / (len(zero) + len(pos)), 3),
        "cells_per_release": n_cells // runs,
        "releases": runs,
    }


def time_release(data: Path, quarter: str, workdir: Path) -> float:
    """A full quarterly release (measure, charge, post-process, publish) on a copy."""
    from pipelines.release import release_quarter
    from pipelines.warehouse import connect
    from thb.settings import Settings

    copy = workdir / "release-timing"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir(parents=True)
    shutil.copy(data / "warehouse.duckdb", copy / "warehouse.duckdb")
    con = connect(copy / "warehouse.duckdb")
    con.sql("CREATE SCHEMA IF NOT EXISTS ledger")
    for t in ("releases", "charges", "measurements"):
        con.sql(f"DROP TABLE IF EXISTS ledger.{t}")
    t0 = time.perf_counter()
    release_quarter(con, Settings(data_dir=copy), Period.parse(quarter))
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, help="an ingested data directory (default: simulate one at scale 1)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--reps", type=int, default=30, help="repeated releases per quarter")
    ap.add_argument("--quarters", nargs="+", default=["2024-Q3", "2025-Q2"])
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="thb-dp-bench-"))
    data = args.data_dir
    if data is None:
        from pipelines.ingest import ingest
        from simulator import simulate

        local_prefect(workdir)
        data = workdir / "world"
        print(f"simulating and ingesting a world at scale 1 (seed {args.seed}) in {data} …", flush=True)
        simulate(data, seed=args.seed, scale=1.0)
        ingest(data)
    print(f"repeating {args.reps} releases of {', '.join(args.quarters)} …", flush=True)
    result = run(data, args.quarters, args.reps)
    result["full_release_s"] = round(time_release(data, args.quarters[-1], workdir), 2)
    for k, v in result.items():
        print(f"{k:>28}: {v}")
    print("targets: ratio ≥ 1.6, coverage 88-92 %, full release ≤ 30 s")


if __name__ == "__main__":
    main()
