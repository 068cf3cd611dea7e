"""The ingest flow: discover → stage → validate → load or quarantine → link.

`thb ingest` runs it in-process (Prefect's ephemeral API, no server to start); prefect.yaml
declares it as the `ingest` deployment. Every task is safe to retry: a delivery already in
the manifest is never loaded or quarantined twice.
"""

import os
from collections import Counter
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from connectors.mapping import load_sources
from pipelines.deliveries import Delivery, discover
from pipelines.link import link
from pipelines.load import Refused, load, quarantine
from pipelines.progress import step
from pipelines.staging import Staging
from pipelines.warehouse import connect
from thb.settings import Settings


@task(cache_policy=NO_CACHE)
def find_deliveries(con, settings: Settings, sources) -> list[Delivery]:
    found = discover(settings.landing, sources, con) if settings.landing.exists() else []
    new = sum(d.status == "new" for d in found)
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
def load_or_quarantine(con, settings: Settings, staging: Staging, new: list[Delivery]) -> list[dict]:
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
                    outcomes.append(
                        {"file": d.rel, "country": d.country, "status": "loaded", "kind": d.kind, "records": records}
                    )
                except Refused as refused:
                    failures, stage = refused.failures, "contract"
            if failures:
                target = quarantine(con, d, stage, failures, settings.quarantine)
                log.warning("quarantined %s: %d check(s) failed", d.rel, len(failures))
                outcomes.append(
                    {
                        "file": d.rel,
                        "country": d.country,
                        "status": "quarantined",
                        "report": f"{target}.report.json",
                        "reason": failures[0].description,
                    }
                )
            advance(d.rel)
    return outcomes


def finish_interrupted_quarantines(settings: Settings, found: list[Delivery]) -> None:
    """A delivery recorded as quarantined but still in landing, its quarantine copy missing,
    was interrupted between the manifest and the move: finish the move."""
    for d in found:
        if d.status == "quarantined earlier" and d.quarantine_path:
            target = settings.quarantine / d.quarantine_path
            if not os.path.lexists(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(d.path, target)


@task(cache_policy=NO_CACHE)
def link_persons(con, sources) -> dict[str, int]:
    link(con, sources)
    return dict(con.sql("SELECT reporting_country, count(*) FROM linked.persons GROUP BY 1 ORDER BY 1").fetchall())


@flow(name="ingest", log_prints=False)
def ingest(data_dir: Path | None = None) -> dict:
    """Take every new file in landing/: validate, load, harmonise, link. Returns a summary.

    Example (runs a real flow; see tests/test_ingest.py):
        summary = ingest(Path("data"))
    """
    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    sources = load_sources(settings.connectors_dir)
    con = connect(settings.warehouse, memory_limit=settings.duckdb_memory)
    try:
        found = find_deliveries(con, settings, sources)
        finish_interrupted_quarantines(settings, found)
        new = [d for d in found if d.status == "new"]
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


def summarise(settings: Settings, found: list[Delivery], outcomes: list[dict], persons: dict) -> dict:
    """Files loaded / quarantined / unchanged, records and persons, by country."""
    by_country: dict[str, Counter] = {}
    for d in found:
        if d.status != "new":
            by_country.setdefault(d.country or "?", Counter())["unchanged"] += 1
    for o in outcomes:
        c = by_country.setdefault(o["country"] or "?", Counter())
        c[o["status"]] += 1
        if o["status"] == "loaded":
            c[o["kind"]] += o["records"]
    for country, n in persons.items():
        by_country.setdefault(country, Counter())["persons"] = n
    keys = ("loaded", "quarantined", "unchanged", "case", "screening", "persons")
    table = {c: {k: v[k] for k in keys} for c, v in sorted(by_country.items())}
    return {
        "warehouse": str(settings.warehouse),
        "quarantine": str(settings.quarantine),
        "by_country": table,
        "total": {k: sum(v[k] for v in table.values()) for k in keys},
        "quarantined": [o for o in outcomes if o["status"] == "quarantined"],
        "quarantined_earlier": [d.rel for d in found if d.status == "quarantined earlier" and os.path.lexists(d.path)],
    }
