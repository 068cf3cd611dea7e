"""DP audit benchmark: the privacy loss a quarter's case tables state (ρ, ε at δ, μ = √(2ρ))
against empirical lower bounds from repeated real measurements of one country's quarter and
its neighbour (dp/audit.py), for the release's mechanism (rows = 1) and for a misstated
sensitivity (a "person" adding several rows to one cell, the loss stated for one), with the
computed chance that each verdict comes out wrong, and the run time.

    python benchmarks/dp_audit.py                            # a fresh world at scale 0.4 (~10 min)
    python benchmarks/dp_audit.py --data-dir data            # an ingested simulated world (make demo)
    python benchmarks/dp_audit.py --audits 1:2000 5:1500     # rows:runs, here the tests' audits
"""

import argparse
import tempfile
from pathlib import Path

import duckdb
import numpy as np
from common import local_prefect

from dp.audit import audit, effective_mu, failure_probability
from dp.measure import joint_counts, plan
from dp.spec import release_spec
from simulator.guard import require_simulated
from thb.periods import Period


def busiest(data: Path, dataset) -> tuple[str, str, np.ndarray]:
    """The country-quarter with the most persons, and its joint counts."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        require_simulated(data, con)  # it prints a true count
        area, period = con.sql(
            "SELECT reporting_country, first_quarter FROM linked.persons GROUP BY ALL ORDER BY count(*) DESC LIMIT 1"
        ).fetchall()[0]
        return area, period, joint_counts(con, dataset, Period.parse(period))[area]
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, help="an ingested data directory (default: simulate one at scale 0.4)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--audits", nargs="+", default=["1:10000", "3:10000", "5:1500"], help="rows:runs per side")
    args = ap.parse_args()
    spec = release_spec()
    ds, scales, delta = spec.datasets["cases"], plan(spec, "cases"), spec.budget.delta
    data = args.data_dir
    if data is None:
        from pipelines.ingest import ingest
        from simulator import simulate

        workdir = Path(tempfile.mkdtemp(prefix="thb-audit-bench-"))
        local_prefect(workdir)
        data = workdir / "world"
        print(f"simulating and ingesting a world at scale 0.4 (seed {args.seed}) in {data} …", flush=True)
        simulate(data, seed=args.seed, scale=0.4)
        ingest(data)
    area, period, joint = busiest(data, ds)
    print(f"auditing the case tables of {area} {period} ({joint.sum()} persons), {len(scales)} marginals measured")
    header = f"{'rows':>4} {'runs':>6} | {'ρ':>6} {'ε(δ)':>6} {'μ':>6} | {'ε_lb':>6} {'μ_lb':>6} | {'verdict':<7}"
    print(header + f" | {'P(wrong verdict)':<34} | time")
    for rows, n in (tuple(map(int, a.split(":"))) for a in args.audits):
        r = audit(joint, ds, scales, delta, n, rows=rows)
        risk = failure_probability(effective_mu(scales, rows), r.epsilon, r.mu, delta, n, r.confidence)
        if rows == 1:  # a false alarm: either bound above the claim
            wrong = f"fail ≤ {min(1, risk['epsilon'][1] + risk['mu'][1]):.1e}"
        else:  # the misstatement unseen: by ε alone, and by both bounds
            missed = [1 - risk["epsilon"][0], min(1 - risk["epsilon"][0], 1 - risk["mu"][0])]
            shown = [f"≤ {p:.1e}" if p > 1e-15 else "< 1e-15" for p in missed]  # below: rounding error
            wrong = f"ε_lb ≤ ε {shown[0]}, pass {shown[1]}"
        print(
            f"{rows:>4} {n:>6} | {r.rho:6.3f} {r.epsilon:6.2f} {r.mu:6.3f} | {r.epsilon_lb:6.2f} {r.mu_lb:6.3f} | "
            f"{'pass' if r.passed else 'FAIL':<7} | {wrong:<34} | {r.seconds:5.0f} s",
            flush=True,
        )
    print(f"δ = {delta}, confidence {r.confidence} (both bounds jointly); the release's own loss is rows = 1")


if __name__ == "__main__":
    main()
