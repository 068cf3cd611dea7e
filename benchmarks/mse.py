"""MSE benchmark: wall time of `thb mse estimate` with 1,000 BCa resamples on UKdat.csv
(the reference R implementation, SparseMSE, takes about 3.8 minutes on a 2-core machine),
with the estimate it gives, and the coverage of the DP estimates on simulated worlds.

    python benchmarks/mse.py                 # timing on UKdat.csv (3 runs)
    python benchmarks/mse.py --worlds 10     # and coverage over 10 simulated worlds (~8 min)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thb.settings import Settings

DATA = Settings().shared_data / "mse"
THB = Path(sys.executable).with_name("thb")


def timing(runs: int) -> None:
    times, results = [], []
    for seed in range(1, runs + 1):
        t0 = time.perf_counter()
        out = subprocess.run(
            [str(THB), "mse", "estimate", str(DATA / "UKdat.csv"), "--nboot", "1000", "--seed", str(seed), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(time.perf_counter() - t0)
        results.append(json.loads(out.stdout))
    print(
        f"thb mse estimate UKdat.csv --nboot 1000: median {statistics.median(times):.1f} s over {runs} runs "
        f"(min {min(times):.1f} s, max {max(times):.1f} s); R reference ≈ 228 s → "
        f"{228 / statistics.median(times):.0f}× faster"
    )
    for r in results:
        print(
            f"  estimate {r['estimate']:,.0f} (reference 11,418), 95 % BCa {r['ci95'][0]:,.0f} – {r['ci95'][1]:,.0f} "
            "(reference 9,267 – 14,307)"
        )


def coverage(worlds: int) -> None:
    import numpy as np
    import pandas as pd

    from dp.estimates import versus_truth
    from dp.spec import release_spec
    from pipelines.ingest import ingest
    from pipelines.release import sources_by_country
    from simulator import simulate

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    frames = []
    for seed in range(worlds):
        data = Path(tempfile.mkdtemp(prefix="thb-mse-")) / "world"
        simulate(data, seed=1000 + seed, scale=1.0)
        ingest(data)
        frames.append(versus_truth(data, sources_by_country(), release_spec(), seed=seed))
    f = pd.concat(frames, ignore_index=True)
    print(
        f"DP estimates, {worlds} worlds, {len(f)} country-years with ≥ 200 seen: 95 % interval covers the truth "
        f"in {f.covered.mean():.1%}; flagged u {(f.obs_status == 'u').mean():.0%}; median estimate / truth "
        f"{np.median(f.obs_value.astype(float) / f.truth):.2f}"
    )
    by_country = f.groupby("country").covered.agg(["mean", "size"])
    print("  by country: " + ", ".join(f"{c} {r['mean']:.0%} of {r['size']}" for c, r in by_country.iterrows()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worlds", type=int, default=0, help="also measure coverage over this many simulated worlds")
    args = ap.parse_args()
    timing(args.runs)
    if args.worlds:
        coverage(args.worlds)


if __name__ == "__main__":
    main()
