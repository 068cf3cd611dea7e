"""The quarterly release flow, and the pipeline (ingest, then every period the public
release calendar has opened: dp/release_spec.yaml, never the data).

A release is looked up in the ledger first: a published one is returned as it is (no noise
is drawn); one that was charged but not published (a crash, a retried task) is published
from its stored measurements; only otherwise are the quarter's persons measured.
"""

import dataclasses
import re
from dataclasses import dataclass
from datetime import date
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
from dp.publish import published_spend, rebuild_database, write_folder
from dp.spec import release_spec, spec_hash
from pipelines.ingest import IngestSummary, ingest
from pipelines.warehouse import connect
from thb.errors import ReleaseStateError, ThbError
from thb.periods import Period
from thb.settings import Settings

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


@dataclass(frozen=True)
class ReleaseSummary:
    """What one `thb release` did: the release, whether noise was drawn now, where it is."""

    release_id: str
    status: str  # published | already published | recovered and published
    noise_drawn: bool
    rho: float
    epsilon: float
    folder: str


def coverage(con, period: Period) -> pd.DataFrame:
    """Which registered sources delivered a file for the period: one arrived, whatever its
    contents (loaded or quarantined: an outcome would be a fact about the records). No record
    counts: they would be small unprotected counts."""
    delivered: dict[str, int] = {}
    for source_id, path in con.sql(
        "SELECT DISTINCT source_id, path FROM landing.manifest WHERE source_id IS NOT NULL"
    ).fetchall():
        m = re.search(r"\d{4}-Q[1-4]", Path(path).name)
        if m and Period.parse(m.group(0)) == period:
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


def _measure_year(con, year: Period, revision: int) -> ledger.Release:
    """Measure the year's capture histories with OpenDP and charge them (annual scope)."""
    spec = release_spec()
    sigma = estimates.scale(spec)
    rho = gaussian(sigma).map(1)
    ledger.check_caps(con, spec, year, {"capture_histories": rho})
    release = ledger.Release(
        f"{year}.{revision}",
        year,
        revision,
        ledger.Status.MEASURED,
        rho,
        ledger.epsilon_of(rho, spec.budget.delta),
        spec.budget.delta,
        ledger.now(),
    )
    noisy = estimates.measure(estimates.histories(con, year.year, sources_by_country()), sigma)
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


def _measure_and_charge(con, period: Period, revision: int) -> ledger.Release:
    """Measure the quarter with OpenDP and charge it, noise stored with the charge."""
    spec = release_spec()
    plans = {name: plan(spec, name) for name in spec.datasets}
    rho, epsilon = loss({(name, m): s for name, p in plans.items() for m, s in p.items()}, spec.budget.delta)
    ledger.check_caps(con, spec, period, {name: loss(p, spec.budget.delta)[0] for name, p in plans.items()})
    release = ledger.Release(
        f"{period}.{revision}", period, revision, ledger.Status.MEASURED, rho, epsilon, spec.budget.delta, ledger.now()
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
    period = release.scope
    noisy, scales = ledger.stored(con, release.release_id)
    area_order = codes("reporting_country")
    tables = {}
    for name in spec.datasets if period.is_quarter else ():
        measured = {
            area: {marginal_of(k): v for k, v in noisy[name][area].items()}
            for area in sorted(noisy[name], key=area_order.index)
        }
        frame = cube(spec, spec.datasets[name], measured, {marginal_of(k): v for k, v in scales[name].items()})
        frame.insert(0, "time_period", str(period))
        frame.insert(0, "release_id", release.release_id)
        tables["counts" if name == "cases" else name] = frame
    released_at = release.released_at.isoformat()
    previous = f"{period}.{release.revision - 1}" if release.revision > 1 else ""
    person = ledger.promise(con, spec, period.year, as_of=release.release_id)  # as charged with this release
    tables["releases"] = pd.DataFrame(
        [
            {
                "release_id": release.release_id,
                "time_period": str(period),
                "revision": release.revision,
                "rho": release.rho,
                "epsilon": release.epsilon,
                "delta": release.delta,
                "mechanism": ledger.MECHANISM,
                "interval_level": spec.interval_level,
                "published_at": released_at,
                "method_version": spec.method_version,
                "supersedes": previous,
                "person_rho_year": person.rho,
                "person_epsilon_year": person.epsilon,
            }
        ]
    )
    if period.is_quarter:
        cov = coverage(con, period)
        cov.insert(0, "time_period", str(period))
        cov.insert(0, "release_id", release.release_id)
        tables["coverage"] = cov
        tables["estimates"] = pd.DataFrame({c: pd.Series(dtype=t) for c, t in ESTIMATE_COLUMNS.items()})
    else:
        sigma = scales["capture_histories"]["history"]
        tables["estimates"] = estimates.table(
            spec,
            release.release_id,
            period.year,
            sources_by_country(),
            {area: cells["history"] for area, cells in noisy["capture_histories"].items()},
            sigma,
        )
    charges = con.execute(
        "SELECT dataset, marginal, scale, rho FROM ledger.charges WHERE release_id = ? ORDER BY dataset, marginal",
        [release.release_id],
    ).fetchall()
    facts = {
        "time_period": str(period),
        "revision": release.revision,
        "rho": release.rho,
        "epsilon": release.epsilon,
        "delta": release.delta,
        "released_at": released_at,
        "charges": charges,
        "person": dataclasses.asdict(person),
    }
    folder = write_folder(settings.release_dir, release.release_id, tables, facts)
    rebuild_database(settings.release_dir)
    ledger.mark_published(con, release.release_id)
    return folder


def release_quarter(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    period: Period,
    revise: bool = False,
    force: bool = False,
    today: date | None = None,
) -> ReleaseSummary:
    """Publish the quarter's (or year's) release, measuring it only if it never was.
    A period is released once the calendar opens it (its end plus the grace days), unless
    forced; a period outside the calendar never is, and a year only after its quarters."""
    ledger.ensure(con)
    calendar = release_spec().calendar
    if not calendar.covers(period):
        raise ReleaseStateError(
            f"{period} is outside the release calendar, which starts in {calendar.first_quarter} "
            "(dp/release_spec.yaml): nothing is released for it"
        )
    prior = ledger.latest(con, period)
    if prior and prior.status is ledger.Status.MEASURED:  # charged, not published: publish what is stored
        if revise:
            raise ReleaseStateError(
                f"{prior.release_id} was charged but not published: run `thb release {period}` "
                "(without --revise) to publish it from its stored measurements first"
            )
        folder = _publish(con, settings, prior)
        return _summary(prior, "recovered and published", False, folder)
    if prior and not revise:
        return _summary(prior, "already published", False, settings.release_dir / prior.release_id)
    if revise and prior is None:
        raise ReleaseStateError(f"{period} has no published release to revise; release it first")
    opens = calendar.opens(period)
    if not force and opens > (today or date.today()):
        raise ReleaseStateError(
            f"{period} is not complete yet: releases open on {opens} "
            "(late deliveries have that long to arrive); use --force to release earlier"
        )
    missing = [str(q) for q in period.quarters() if period.is_year and not ledger.is_published(con, q)]
    if missing:
        raise ReleaseStateError(
            f"the annual release of {period} measures its persons after their quarters: "
            f"release {', '.join(missing)} first (`thb pipeline run` releases them in order)"
        )
    ledger.reconcile(con, published_spend(settings.release_dir))  # before any charge
    revision = prior.revision + 1 if prior else 1
    release = _measure_year(con, period, revision) if period.is_year else _measure_and_charge(con, period, revision)
    return _summary(release, "published", True, _publish(con, settings, release))


def _summary(release: ledger.Release, status: str, noise_drawn: bool, folder: Path) -> ReleaseSummary:
    return ReleaseSummary(release.release_id, status, noise_drawn, release.rho, release.epsilon, str(folder))


@task(
    cache_policy=NO_CACHE,
    retries=1,
    retry_condition_fn=lambda task, run, state: (
        not isinstance(state.result(raise_on_failure=False), ThbError)  # ours: a retry would say the same
    ),
)
def release_task(
    settings: Settings, period: Period, revise: bool = False, force: bool = False, today: date | None = None
) -> ReleaseSummary:
    """Safe to retry: a charged release is published from its stored noise, never re-measured."""
    con = connect(settings.warehouse)
    try:
        summary = release_quarter(con, settings, period, revise, force, today)
    finally:
        con.close()
    get_run_logger().info("%s: %s (ρ = %.4g)", summary.release_id, summary.status, summary.rho)
    return summary


@flow(name="release")
def release(period: str, revise: bool = False, data_dir: Path | None = None, force: bool = False) -> ReleaseSummary:
    """The DP release of one quarter (or year), published atomically (`thb release 2025-Q3`)."""
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    return release_task(settings, Period.parse(period), revise, force)


@dataclass(frozen=True)
class PipelineSummary:
    """One `thb pipeline run`: the ingest, then each release it published or found published."""

    ingest: IngestSummary
    releases: list[ReleaseSummary]
    due: list[str]  # the periods the calendar had opened, quarters then years


@flow(name="pipeline")
def pipeline(data_dir: Path | None = None, today: date | None = None) -> PipelineSummary:
    """Ingest, then release every period the calendar has opened that is not yet released,
    quarters first, then years (`thb pipeline run`; the quarterly-release deployment)."""
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    ingested = ingest(settings.data_dir)
    due = release_spec().calendar.due(today or date.today())
    con = connect(settings.warehouse)
    try:
        ledger.ensure(con)
        todo = [p for p in due if not ledger.is_published(con, p)]
    finally:
        con.close()
    released = [release_task(settings, p, today=today) for p in todo]
    return PipelineSummary(ingested, released, [str(p) for p in due])
