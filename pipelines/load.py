"""Decide each new delivery's fate: load it into the warehouse in one transaction, or move
it whole to quarantine with a report. Both are idempotent: a delivery already in the
manifest is left alone, so a retried task does nothing twice."""

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from connectors.read import RECORD_NO
from data_contracts.codelists import schema
from data_contracts.validate import Failure
from pipelines.deliveries import Delivery
from pipelines.staging import Staging, raw_table
from pipelines.warehouse import KINDS, table_of


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _already_done(con, d: Delivery) -> bool:
    return bool(con.sql(f"SELECT count(*) FROM landing.manifest WHERE file_id = '{d.file_id}'").fetchall()[0][0])


def _ensure_raw_table(con, name: str, columns: list[str]) -> None:
    con.sql(f"CREATE TABLE IF NOT EXISTS raw.{name} (file_id VARCHAR NOT NULL, record_no BIGINT NOT NULL)")
    have = {
        c
        for (c,) in con.sql(
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = '{name}'"
        ).fetchall()
    }
    for c in columns:
        if c not in have:  # a source's export gained a column (its mapping changed)
            con.sql(f"ALTER TABLE raw.{name} ADD COLUMN {_ident(c)} VARCHAR")


def _harmonised_select(kind: str) -> str:
    cols = []
    for field, spec in schema(KINDS[kind])["columns"].items():
        if spec["type"] == "bool":
            cols.append(f"CASE {field} WHEN 'yes' THEN true WHEN 'no' THEN false END AS {field}")
        else:
            cols.append(field)
    return ", ".join(["file_id", "record_no", *cols])


def _manifest_row(con, d: Delivery, status: str, records: int | None, reasons=None, quarantine_path=None) -> None:
    con.execute(
        "INSERT INTO landing.manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            d.rel,
            d.sha256,
            d.file_id,
            d.country,
            d.source_id,
            d.kind,
            d.size,
            status,
            records,
            json.dumps(reasons) if reasons is not None else None,
            quarantine_path,
            d.supersedes,
            datetime.now(timezone.utc),
        ],
    )


def load(con: duckdb.DuckDBPyConnection, d: Delivery, staging: Staging) -> int:
    """Load one staged delivery (replacing the version it supersedes) in one transaction.
    Returns the records loaded (0 if it was loaded before: the manifest's key refuses it)."""
    name = raw_table(d.source_id, d.kind)
    columns = list(d.source.columns(d.spec).values())
    if name not in staging.raw_tables_ready:
        _ensure_raw_table(con, name, columns)
        staging.raw_tables_ready.add(name)
    con.begin()
    try:
        if d.supersedes:
            old = d.supersedes
            con.sql(f"DELETE FROM {table_of(d.kind)} WHERE file_id = '{old}'")
            con.sql(f"DELETE FROM raw.{name} WHERE file_id = '{old}'")
            con.sql(f"UPDATE landing.manifest SET status = 'superseded' WHERE file_id = '{old}'")
        cols = ", ".join(_ident(c) for c in columns)
        con.sql(
            f"INSERT INTO raw.{name} (file_id, record_no, {cols}) "
            f"SELECT file_id, {RECORD_NO}, {cols} FROM stage_raw_{name} WHERE file_id = '{d.file_id}'"
        )
        con.sql(
            f"INSERT INTO {table_of(d.kind)} SELECT {_harmonised_select(d.kind)} "
            f"FROM stage_{d.kind} WHERE file_id = '{d.file_id}'"
        )
        records = staging.records[d.file_id]
        _manifest_row(con, d, "loaded", records)
        con.commit()
        return records
    except duckdb.ConstraintException:  # already in the manifest (path, bytes): a retry, nothing to do
        con.rollback()
        return 0
    except BaseException:
        con.rollback()
        raise


def _free_name(directory: Path, name: str, sha256: str) -> Path:
    target = directory / name
    if target.exists() or (directory / f"{name}.report.json").exists():
        stem, dot, suffix = name.partition(".")
        target = directory / f"{stem}.{sha256[:8]}{dot}{suffix}"
    return target


def report(d: Delivery, stage: str, failures: list[Failure], target: Path) -> dict:
    """The quarantine report: which checks failed, on which rows and columns, and why.
    It names columns and row numbers only, never a value from the file."""
    checks = [f.as_dict() for f in failures]
    rows = sorted({r for f in failures for r in f.rows})
    return {
        "file": d.rel,
        "source_id": d.source_id,
        "country": d.country,
        "kind": d.kind,
        "sha256": d.sha256,
        "size_bytes": d.size,
        "stage": stage,
        "summary": f"{len(failures)} check(s) failed" + (f" on {len(rows)} record(s)" if rows else ""),
        "rows_are": "record numbers: 1 is the first record after the header",
        "failures": checks,
        "quarantined_as": target.name,
        "quarantined_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "next_step": "correct the export and deliver it again to the same landing folder; a corrected file loads",
    }


def quarantine(
    con: duckdb.DuckDBPyConnection, d: Delivery, stage: str, failures: list[Failure], quarantine_dir: Path
) -> Path | None:
    """Move the file whole to quarantine/<CC>/<source_id>/ with <file>.report.json beside it."""
    if _already_done(con, d):
        return None
    routed = d.country and d.source_id and len(d.rel.split("/")) == 3
    directory = quarantine_dir / (f"{d.country}/{d.source_id}" if routed else "_unrouted")
    directory.mkdir(parents=True, exist_ok=True)
    target = _free_name(directory, d.path.name, d.sha256)
    body = report(d, stage, failures, target)
    tmp = target.with_name(target.name + ".report.json.tmp")
    tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target.with_name(target.name + ".report.json"))
    os.replace(d.path, target)
    reasons = [{k: v for k, v in f.as_dict().items() if k != "rows"} for f in failures]
    _manifest_row(con, d, "quarantined", None, reasons, str(target.relative_to(quarantine_dir)))
    return target
