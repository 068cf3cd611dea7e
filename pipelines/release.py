"""The quarterly release flow, and the pipeline (ingest, then every complete quarter).

A release is looked up in the ledger first: a published one is returned as it is (no noise
is drawn); one that was charged but not published (a crash, a retried task) is published
from its stored measurements; only otherwise are the quarter's persons measured.
"""

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from connectors.mapping import load_sources
from data_contracts.codelists import codes
from dp import estimates, ledger
from dp.measure import gaussian, joint_counts, loss, marginal_name, marginal_of, measure, plan
from dp.postprocess import cube
from dp.publish import rebuild_database, write_folder
from dp.spec import release_spec, spec_hash
from pipelines.ingest import ingest
from pipelines.warehouse import connect
from thb.settings import Settings

PERIOD = re.compile(r"^(\d{4})-Q([1-4])$")
YEAR = re.compile(r"^\d{4}$")
ESTIMATE_COLUMNS = {
    "release_id": "str",
    "time_period": "str",
    "ref_area": "str",
    "method": "str",
    "observed": "int64",
    "obs_value": "int64",
    "ci_low": "int64",
    "ci_high": "int64",
    "obs_status": "str",
}


def quarter_end(period: str) -> date:
    """The last day of a quarter (2025-Q3) or of a year (2025)."""
    if YEAR.match(period):
        return date(int(period), 12, 31)
    year, q = map(int, PERIOD.match(period).groups())
    return (date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)) - timedelta(days=1)


def complete_quarters(con, today: date, grace_days: int) -> list[str]:
    """Quarters with persons or screenings whose end is at least grace_days past."""
    found = {q for (q,) in con.sql("SELECT DISTINCT first_quarter FROM linked.persons").fetchall()}
    found |= {
        q
        for (q,) in con.sql(
            "SELECT DISTINCT year(screening_date) || '-Q' || quarter(screening_date) FROM harmonised.screenings"
        ).fetchall()
    }
    return sorted(q for q in found if quarter_end(q) + timedelta(days=grace_days) < today)


def coverage(con, period: str) -> pd.DataFrame:
    """Which registered sources delivered a file for the period (no record counts: they would
    be small unprotected counts)."""
    delivered = {}
    for source_id, path in con.sql("SELECT source_id, path FROM landing.manifest WHERE status = 'loaded'").fetchall():
        m = re.search(r"\d{4}-Q[1-4]", Path(path).name)
        if m and m.group(0) == period:
            delivered[source_id] = delivered.get(source_id, 0) + 1
    order = {c: i for i, c in enumerate(codes("reporting_country"))}
    sources = sorted(load_sources(Settings().connectors_dir).values(), key=lambda s: (order[s.country], s.source_id))
    return pd.DataFrame(
        {
            "ref_area": [s.country for s in sources],
            "source_id": [s.source_id for s in sources],
            "source_type": [s.source_type for s in sources],
            "source_name": [s.name for s in sources],
            "delivered": [s.source_id in delivered for s in sources],
            "files": [delivered.get(s.source_id, 0) for s in sources],
        }
    )


def sources_by_country() -> dict[str, dict[str, str]]:
    """Each country's registered sources, {source_id: source_type}: the lists of its
    capture histories (public)."""
    out: dict[str, dict[str, str]] = {c: {} for c in codes("reporting_country")}
    for s in sorted(load_sources(Settings().connectors_dir).values(), key=lambda s: s.source_id):
        out[s.country][s.source_id] = s.source_type
    return out


def _measure_year(con, year: str, revision: int) -> ledger.Release:
    """Measure the year's capture histories with OpenDP and charge them (annual scope)."""
    spec = release_spec()
    sigma = estimates.scale(spec)
    rho = gaussian(sigma).map(1)
    ledger.check_caps(con, spec, year, {"capture_histories": rho})
    release = ledger.Release(
        f"{year}.{revision}",
        year,
        revision,
        "measured",
        rho,
        ledger.epsilon_of(rho, spec.budget.delta),
        spec.budget.delta,
        ledger.now(),
    )
    noisy = estimates.measure(estimates.histories(con, int(year), sources_by_country()), sigma)
    charges = [
        {
            "dataset": "capture_histories",
            "marginal": "history",
            "scale": sigma,
            "rho": rho,
            "epsilon": release.epsilon,
            "delta": spec.budget.delta,
            "areas": len(noisy),
        }
    ]
    ledger.record(
        con,
        release,
        spec_hash(),
        spec.method_version,
        charges,
        [("capture_histories", "history", area, values) for area, values in noisy.items()],
    )
    return release


def _measure_and_charge(con, period: str, revision: int) -> ledger.Release:
    """Measure the quarter with OpenDP and charge it, noise stored with the charge."""
    spec = release_spec()
    plans = {name: plan(spec, name) for name in spec.datasets}
    rho, epsilon = loss({(name, m): s for name, p in plans.items() for m, s in p.items()}, spec.budget.delta)
    ledger.check_caps(con, spec, period, {name: loss(p, spec.budget.delta)[0] for name, p in plans.items()})
    release = ledger.Release(
        f"{period}.{revision}", period, revision, "measured", rho, epsilon, spec.budget.delta, ledger.now()
    )
    charges, measurements = [], []
    for name, scales in plans.items():
        ds = spec.datasets[name]
        noisy = measure(joint_counts(con, ds, period), ds, scales)
        for m, scale in scales.items():
            rho_m = gaussian(scale).map(1)
            charges.append(
                {
                    "dataset": name,
                    "marginal": marginal_name(m),
                    "scale": scale,
                    "rho": rho_m,
                    "epsilon": ledger.epsilon_of(rho_m, spec.budget.delta),
                    "delta": spec.budget.delta,
                    "areas": len(noisy),
                }
            )
            measurements += [(name, marginal_name(m), area, values[m]) for area, values in noisy.items()]
    ledger.record(con, release, spec_hash(), spec.method_version, charges, measurements)
    return release


def _publish(con, settings: Settings, release: ledger.Release) -> Path:
    """Post-process the stored measurements and publish the release folder and database."""
    spec = release_spec()
    noisy, scales = ledger.stored(con, release.release_id)
    area_order = codes("reporting_country")
    tables = {}
    for name in spec.datasets if "-Q" in release.scope else ():
        measured = {
            area: {marginal_of(k): v for k, v in noisy[name][area].items()}
            for area in sorted(noisy[name], key=area_order.index)
        }
        frame = cube(spec, spec.datasets[name], measured, {marginal_of(k): v for k, v in scales[name].items()})
        frame.insert(0, "time_period", release.scope)
        frame.insert(0, "release_id", release.release_id)
        tables["counts" if name == "cases" else name] = frame
    released_at = release.released_at.isoformat()
    previous = f"{release.scope}.{release.revision - 1}" if release.revision > 1 else ""
    tables["releases"] = pd.DataFrame(
        [
            {
                "release_id": release.release_id,
                "time_period": release.scope,
                "revision": release.revision,
                "rho": release.rho,
                "epsilon": release.epsilon,
                "delta": release.delta,
                "mechanism": ledger.MECHANISM,
                "interval_level": spec.interval_level,
                "published_at": released_at,
                "method_version": spec.method_version,
                "supersedes": previous,
            }
        ]
    )
    if "-Q" in release.scope:
        cov = coverage(con, release.scope)
        cov.insert(0, "time_period", release.scope)
        cov.insert(0, "release_id", release.release_id)
        tables["coverage"] = cov
        tables["estimates"] = pd.DataFrame({c: pd.Series(dtype=t) for c, t in ESTIMATE_COLUMNS.items()})
    else:
        sigma = scales["capture_histories"]["history"]
        tables["estimates"] = estimates.table(
            spec,
            release.release_id,
            int(release.scope),
            sources_by_country(),
            {area: cells["history"] for area, cells in noisy["capture_histories"].items()},
            sigma,
        )
    charges = con.sql(
        f"SELECT dataset, marginal, scale, rho FROM ledger.charges WHERE release_id = "
        f"'{release.release_id}' ORDER BY dataset, marginal"
    ).fetchall()
    facts = {
        "time_period": release.scope,
        "revision": release.revision,
        "rho": release.rho,
        "epsilon": release.epsilon,
        "delta": release.delta,
        "released_at": released_at,
        "charges": charges,
    }
    folder = write_folder(settings.release_dir, release.release_id, tables, facts)
    rebuild_database(settings.release_dir)
    ledger.mark_published(con, release.release_id)
    return folder


def release_quarter(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    period: str,
    revise: bool = False,
    force: bool = False,
    today: date | None = None,
) -> dict:
    """Publish the quarter's release (measuring it only if it never was). Returns a summary.
    A quarter is released once complete (ended grace_days ago), unless forced."""
    if not PERIOD.match(period) and not YEAR.match(period):
        raise ValueError(f"a quarter looks like 2025-Q3 (a year, for the annual estimates, like 2025), not {period!r}")
    ledger.ensure(con)
    prior = ledger.latest(con, period)
    if prior and prior.status == "measured":  # charged, not published: publish what is stored
        if revise:
            raise ValueError(
                f"{prior.release_id} was charged but not published: run `thb release {period}` "
                "(without --revise) to publish it from its stored measurements first"
            )
        folder = _publish(con, settings, prior)
        return _summary(prior, "recovered and published", False, folder)
    if prior and not revise:
        return _summary(prior, "already published", False, settings.release_dir / prior.release_id)
    if revise and prior is None:
        raise ValueError(f"{period} has no published release to revise; release it first")
    ready = quarter_end(period) + timedelta(days=release_spec().grace_days)
    if not force and ready >= (today or date.today()):
        raise ValueError(
            f"{period} is not complete yet: releases open on {ready + timedelta(days=1)} "
            "(late deliveries have that long to arrive); use --force to release earlier"
        )
    revision = prior.revision + 1 if prior else 1
    release = _measure_year(con, period, revision) if YEAR.match(period) else _measure_and_charge(con, period, revision)
    return _summary(release, "published", True, _publish(con, settings, release))


def _summary(release: ledger.Release, status: str, noise_drawn: bool, folder: Path) -> dict:
    return {
        "release_id": release.release_id,
        "status": status,
        "noise_drawn": noise_drawn,
        "rho": release.rho,
        "epsilon": release.epsilon,
        "folder": str(folder),
    }


@task(
    cache_policy=NO_CACHE,
    retries=1,
    retry_condition_fn=lambda task, run, state: (
        not isinstance(state.result(raise_on_failure=False), (ValueError, ledger.BudgetExceeded))
    ),
)
def release_task(settings: Settings, period: str, revise: bool = False, force: bool = False) -> dict:
    """Safe to retry: a charged release is published from its stored noise, never re-measured."""
    con = connect(settings.warehouse)
    try:
        summary = release_quarter(con, settings, period, revise, force)
    finally:
        con.close()
    get_run_logger().info("%s: %s (ρ = %.4g)", summary["release_id"], summary["status"], summary["rho"])
    return summary


@flow(name="release")
def release(period: str, revise: bool = False, data_dir: Path | None = None, force: bool = False) -> dict:
    """The DP release of one quarter, published atomically (`thb release 2025-Q3`)."""
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    return release_task(settings, period, revise, force)


@flow(name="pipeline")
def pipeline(data_dir: Path | None = None, today: date | None = None) -> dict:
    """Ingest, then release every complete quarter not yet released (`thb pipeline run`;
    the quarterly-release deployment)."""
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    ingested = ingest(settings.data_dir)
    con = connect(settings.warehouse)
    try:
        ledger.ensure(con)
        quarters = complete_quarters(con, today or date.today(), release_spec().grace_days)
        todo = [q for q in quarters if ledger.latest(con, q) is None or ledger.latest(con, q).status != "published"]
    finally:
        con.close()
    released = [release_task(settings, q) for q in todo]
    years = sorted({q[:4] for q in quarters if all(f"{q[:4]}-Q{i}" in quarters for i in range(1, 5))})
    con = connect(settings.warehouse)
    try:
        years = [
            y
            for y in years
            if quarter_end(y) + timedelta(days=release_spec().grace_days) < (today or date.today())
            and (ledger.latest(con, y) is None or ledger.latest(con, y).status != "published")
        ]
    finally:
        con.close()
    released += [release_task(settings, y) for y in years]
    return {"ingest": ingested, "releases": released, "complete_quarters": quarters}
