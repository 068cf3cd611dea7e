"""The ingest flow: discover → stage → validate → load or quarantine → link.

`thb ingest` runs it in-process (Prefect's ephemeral API, no server to start); prefect.yaml
declares it as the `ingest` deployment. Every task is safe to retry: a delivery already in
the manifest is never loaded or quarantined twice.
"""

import dataclasses
import os
from collections import Counter
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from connectors.mapping import load_sources
from pipelines.deliveries import Delivery, Outcome, Status, discover
from pipelines.link import link
from pipelines.load import Refused, load, quarantine
from pipelines.progress import step
from pipelines.staging import Staging
from pipelines.warehouse import connect
from thb.settings import Settings


@dataclasses.dataclass(frozen=True)
class FileOutcome:
    """What one run did with one new file: loaded (with its records) or quarantined (with its
    report and the first reason, which names checks and columns, never a value)."""

    file: str  # relative to landing/, invisible characters escaped
    country: str | None
    status: Outcome
    kind: str | None = None
    records: int = 0
    report: str | None = None
    reason: str | None = None


COLUMNS = ("loaded", "quarantined", "unchanged", "case", "screening", "persons")


@dataclasses.dataclass(frozen=True)
class IngestSummary:
    """An ingest run by country: files loaded, quarantined and unchanged, records by kind,
    and the persons linked (private counts: shown to the data steward only)."""

    warehouse: str
    quarantine: str
    by_country: dict[str, dict[str, int]]  # country → COLUMNS → count
    total: dict[str, int]
    quarantined: list[FileOutcome]
    quarantined_earlier: list[str]  # files still in landing whose same bytes were quarantined before


@task(cache_policy=NO_CACHE)
def find_deliveries(con, settings: Settings, sources) -> list[Delivery]:
    """Every file in landing/, routed to its mapping and marked against the manifest."""
    found = discover(settings.landing, sources, con) if settings.landing.exists() else []
    new = sum(d.status is Status.NEW for d in found)
    get_run_logger().info("%d files in landing, %d new", len(found), new)
    return found


@task(cache_policy=NO_CACHE)
def stage_and_check(con, settings: Settings, new: list[Delivery]) -> Staging:
    """Read, structure-check and stage every new file; harmonise; check every record."""
    staging = Staging(con, settings.contracts_dir, settings.max_file_size)
    with step("reading files", len(new)) as advance:
        for d in new:
            staging.add(d)
            advance(d.rel)
    staging.harmonise()
    staging.validate()
    return staging


@task(cache_policy=NO_CACHE, retries=1)
def load_or_quarantine(con, settings: Settings, staging: Staging, new: list[Delivery]) -> list[FileOutcome]:
    """Each file whole: loaded in one transaction, or moved to quarantine with its report."""
    log = get_run_logger()
    outcomes = []
    with step("loading", len(new)) as advance:
        for d in new:
            failures = staging.failures.get(d.file_id)
            stage = staging.failed_stage.get(d.file_id, "contract")
            if not failures:
                try:
                    records = load(con, d, staging)
                    outcomes.append(FileOutcome(d.rel, d.country, Outcome.LOADED, d.kind, records))
                except Refused as refused:
                    failures, stage = refused.failures, "contract"
            if failures:
                target = quarantine(con, d, stage, failures, settings.quarantine)
                log.warning("quarantined %s: %d check(s) failed", d.rel, len(failures))
                report, reason = f"{target}.report.json", failures[0].description
                outcomes.append(FileOutcome(d.rel, d.country, Outcome.QUARANTINED, report=report, reason=reason))
            advance(d.rel)
    return outcomes


def finish_interrupted_quarantines(settings: Settings, found: list[Delivery]) -> None:
    """A delivery recorded as quarantined but still in landing, its quarantine copy missing,
    was interrupted between the manifest and the move: finish the move."""
    for d in found:
        if d.status is Status.QUARANTINED_EARLIER and d.quarantine_path:
            target = settings.quarantine / d.quarantine_path
            if not os.path.lexists(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(d.path, target)


@task(cache_policy=NO_CACHE)
def link_persons(con, sources) -> dict[str, int]:
    """Rebuild the persons and capture histories; return the persons per country (private)."""
    link(con, sources)
    return dict(con.sql("SELECT reporting_country, count(*) FROM linked.persons GROUP BY 1 ORDER BY 1").fetchall())


@flow(name="ingest", log_prints=False)
def ingest(data_dir: Path | None = None) -> IngestSummary:
    """Take every new file in landing/: validate, load, harmonise, link. Returns a summary.

    Example (runs a real flow; see tests/integration/test_ingest.py):
        summary = ingest(Path("data"))
    """
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    sources = load_sources(settings.connectors_dir)
    con = connect(settings.warehouse, memory_limit=settings.duckdb_memory)
    try:
        found = find_deliveries(con, settings, sources)
        finish_interrupted_quarantines(settings, found)
        new = [d for d in found if d.status is Status.NEW]
        outcomes = []
        if new:
            staging = stage_and_check(con, settings, new)
            try:
                outcomes = load_or_quarantine(con, settings, staging, new)
            finally:
                staging.close()
        persons = link_persons(con, sources)
    finally:
        con.close()
    return summarise(settings, found, outcomes, persons)


def summarise(
    settings: Settings, found: list[Delivery], outcomes: list[FileOutcome], persons: dict[str, int]
) -> IngestSummary:
    """Files loaded / quarantined / unchanged, records and persons, by country."""
    by_country: dict[str, Counter] = {}
    for d in found:
        if d.status is not Status.NEW:
            by_country.setdefault(d.country or "?", Counter())["unchanged"] += 1
    for o in outcomes:
        c = by_country.setdefault(o.country or "?", Counter())
        c[o.status] += 1
        if o.status is Outcome.LOADED and o.kind:
            c[o.kind] += o.records
    for country, n in persons.items():
        by_country.setdefault(country, Counter())["persons"] = n
    table = {c: {k: v[k] for k in COLUMNS} for c, v in sorted(by_country.items())}
    return IngestSummary(
        warehouse=str(settings.warehouse),
        quarantine=str(settings.quarantine),
        by_country=table,
        total={k: sum(v[k] for v in table.values()) for k in COLUMNS},
        quarantined=[o for o in outcomes if o.status is Outcome.QUARANTINED],
        quarantined_earlier=[
            d.rel for d in found if d.status is Status.QUARANTINED_EARLIER and os.path.lexists(d.path)
        ],
    )
