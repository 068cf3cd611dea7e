"""Hidden-population estimates on differentially private capture histories.

Each country's capture-history table of a year (persons with a pseudonymous key whose first
record, frozen, is in that year; one cell per non-empty combination of the country's
registered sources, zeros included) is measured with OpenDP's discrete Gaussian: every person is in exactly one
cell, so its L2 sensitivity is 1. The noisy table, made non-negative, is what the estimator
(dp/mse.py) sees. Its interval accounts for both the sampling and the privacy noise: each
bootstrap resample of the cases gets fresh noise of the same, public distribution (drawn by
OpenDP's mechanism) and goes through the same post-processing and model selection. Pairs
of sources linked by a referral pathway of the release spec (`known_dependence`) have their
interaction in every model.
"""

import itertools
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from dp.measure import gaussian, noisy
from dp.mse import CaptureData, Estimator, NotEstimable, bca
from dp.spec import ReleaseSpec
from thb.periods import Period

METHOD = "MSE, stepwise log-linear (Chan, Silverman & Vincent 2019) on DP capture histories"


def domain(lists: list[str]) -> list[tuple[int, ...]]:
    """Every non-empty capture history over the lists, in a fixed order."""
    return [p for p in itertools.product([0, 1], repeat=len(lists)) if any(p)]


Sources = dict[str, dict[str, str]]  # per country, {source_id: source_type}


HISTORIES = "linked.capture_histories"  # the table of the annual measurement


def histories(con, year: int, sources: Sources) -> dict[str, np.ndarray]:
    """Per country, the confidential count of persons in each cell of its domain."""
    frame = con.execute(f"SELECT * FROM {HISTORIES} WHERE year = ?", [year]).df()  # noqa: S608 (a constant)
    out = {}
    for country, types in sources.items():
        lists = list(types)
        part = frame[frame.reporting_country == country]
        counts = {tuple(int(v) for v in row[:-1]): row[-1] for row in part[lists + ["count"]].itertuples(index=False)}
        out[country] = np.array([counts.get(p, 0) for p in domain(lists)], dtype=np.int64)
    return out


def known_dependence(spec: ReleaseSpec, types: dict[str, str]) -> list[tuple[str, str]]:
    """The pairs of a country's sources that a referral pathway of the spec links.

    >>> from dp.spec import release_spec
    >>> known_dependence(release_spec(), {"FI-NGO": "ngo", "FI-POL": "police", "FI-SOC": "social_services"})
    [('FI-NGO', 'FI-SOC'), ('FI-POL', 'FI-SOC')]
    """
    pathways = {frozenset(pair) for pair in spec.estimates.known_dependence}
    return [(a, b) for a, b in itertools.combinations(types, 2) if frozenset((types[a], types[b])) in pathways]


def scale(spec: ReleaseSpec) -> float:
    """The noise scale σ of the capture-history tables: a Gaussian at sensitivity 1 spends
    ρ = 1 / (2σ²), the spec's budget for the estimates.

    >>> from dp.spec import release_spec
    >>> spec = release_spec()
    >>> math.isclose(1 / (2 * scale(spec) ** 2), spec.estimates.rho)
    True
    """
    return 1 / math.sqrt(2 * spec.estimates.rho)


def measure(true: dict[str, np.ndarray], sigma: float) -> dict[str, list[int]]:
    """Per country, its capture-history table with OpenDP's discrete Gaussian noise of scale σ
    on every cell; a noisy count may be negative."""
    return {c: noisy(HISTORIES, "history", c, sigma, [int(v) for v in counts]) for c, counts in true.items()}


def estimate(
    spec: ReleaseSpec,
    lists: list[str],
    noisy: list[int],
    sigma: float,
    include: Iterable[tuple[str, str]] = (),
    seed: int = 2025,
) -> dict:
    """The published estimate of one country and year from its noisy table; `include`:
    pairs of lists whose interaction is in every model (known_dependence)."""
    e = spec.estimates
    counts = np.maximum(np.asarray(noisy, dtype=float), 0)
    data = CaptureData(tuple(lists), counts)
    row = {"observed": int(counts.sum()), "obs_value": None, "ci_low": None, "ci_high": None, "obs_status": "u"}
    if counts.sum() < e.min_observed:
        return row | {"note": f"fewer than {e.min_observed} persons seen"}
    try:
        est = Estimator(data, e.pthresh, include)
    except NotEstimable:
        return row | {"note": "the lists do not overlap enough"}
    point = est.point()
    kept = est.data.counts  # without the lists that, after the noise, saw nobody
    rng = np.random.default_rng(seed)
    n = int(kept.sum())
    resampled = rng.multinomial(n, kept / n, size=e.nboot).astype(float)
    draws = gaussian(sigma)([0] * (e.nboot * len(kept)))  # one call: independent cells, as many calls would be
    noisy_resamples = np.maximum(resampled + np.array(draws).reshape(e.nboot, len(kept)), 0)
    boot = est.select_many(noisy_resamples)
    low, high = bca(point.estimate, boot[~np.isnan(boot)], est._jackknife(), est.data.counts, 0.95)
    unusable = float(np.isnan(boot).mean())
    flagged = high / point.estimate > e.max_relative_width or unusable > 0.1
    return {
        "observed": int(counts.sum()),
        "obs_value": int(round(point.estimate)),
        "ci_low": int(math.floor(low)),
        "ci_high": int(math.ceil(high)),
        "obs_status": "u" if flagged else "",
        "note": ", ".join(point.terms) or "main effects only",
    }


def table(
    spec: ReleaseSpec,
    release_id: str,
    year: int,
    sources: Sources,
    noisy: dict[str, list[int]],
    sigma: float,
) -> pd.DataFrame:
    """The published `estimates` table of a year, one row per country, from its noisy table
    (`estimate`); `model` holds the fitted interactions, or why no estimate is published."""
    rows = []
    for country, types in sources.items():
        r = estimate(spec, list(types), noisy[country], sigma, known_dependence(spec, types))
        rows.append(
            {
                "release_id": release_id,
                "time_period": str(year),
                "ref_area": country,
                "method": METHOD,
                "observed": r["observed"],
                "obs_value": r["obs_value"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "obs_status": r["obs_status"],
                "model": r["note"],
            }
        )
    out = pd.DataFrame(rows)
    for col in ("obs_value", "ci_low", "ci_high"):
        out[col] = out[col].astype("Int64")
    return out


def versus_truth(data_dir, sources: Sources, spec: ReleaseSpec, min_seen: int = 200, seed: int = 2025) -> pd.DataFrame:
    """For an ingested simulated world (data_dir/truth/ beside its warehouse): each country
    and year with at least `min_seen` persons seen, measured, estimated and compared with
    the true number of victims (those who entered that year, seen or not). Refuses a
    warehouse that is not a simulated world (simulator/guard.py)."""
    import duckdb

    from simulator.guard import require_simulated

    sigma = scale(spec)
    rows = []
    con = duckdb.connect(f"{data_dir}/warehouse.duckdb", read_only=True)
    try:
        require_simulated(data_dir, con)  # its noise is charged to no ledger
        victims = pd.read_parquet(f"{data_dir}/truth/victims.parquet")
        truth = victims.groupby([victims.country, victims.entry_period.map(lambda q: Period.parse(q).year)]).size()
        for year in sorted(truth.index.get_level_values(1).unique()):
            true = histories(con, year, sources)
            noisy = measure(true, sigma)
            for country, cells in true.items():
                if cells.sum() >= min_seen:
                    types = sources[country]
                    r = estimate(spec, list(types), noisy[country], sigma, known_dependence(spec, types), seed)
                    t = int(truth[(country, year)])
                    rows.append(
                        {
                            "country": country,
                            "year": year,
                            "seen": int(cells.sum()),
                            "truth": t,
                            **r,
                            "covered": r["obs_value"] is not None and r["ci_low"] <= t <= r["ci_high"],
                        }
                    )
    finally:
        con.close()
    return pd.DataFrame(rows)
