"""Decide each new delivery's fate: load it into the warehouse in one transaction, or move
it whole to quarantine with a report. Both are safe to repeat: a delivery already in the
manifest is never loaded twice, and an interrupted quarantine is finished, not redone."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from connectors.read import RECORD_NO
from data_contracts.codelists import schema
from data_contracts.validate import Failure
from pipelines.deliveries import Delivery, Outcome, unsafe_name
from pipelines.staging import Staging, raw_table
from pipelines.warehouse import KINDS, table_of
from thb.errors import ContractError
from thb.sql import ident


class Refused(ContractError):
    """The delivery passed its contract but cannot join the warehouse as it stands."""

    def __init__(self, failures: list[Failure]):
        super().__init__("warehouse", failures[0].description)
        self.failures = failures


def _ensure_raw_table(con, name: str, columns: list[str]) -> None:
    con.sql(f"CREATE TABLE IF NOT EXISTS raw.{name} (file_id VARCHAR NOT NULL, record_no BIGINT NOT NULL)")
    have = {
        c
        for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ?", [name]
        ).fetchall()
    }
    for c in columns:
        if c not in have:  # a source's export gained a column (its mapping changed)
            con.sql(f"ALTER TABLE raw.{name} ADD COLUMN {ident(c)} VARCHAR")


def _harmonised_select(kind: str) -> str:
    cols = []
    for field, spec in schema(KINDS[kind]).columns.items():
        if spec.type == "bool":
            cols.append(f"CASE {field} WHEN 'yes' THEN true WHEN 'no' THEN false END AS {field}")
        else:
            cols.append(field)
    return ", ".join(["file_id", "record_no", *cols])


def _manifest_row(con, d: Delivery, status: Outcome, records: int | None, reasons=None, quarantine_path=None) -> None:
    con.execute(
        "INSERT INTO landing.manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            d.file_id,
            d.rel,
            d.sha256,
            d.country,
            d.source_id,
            d.kind,
            d.size,
            status.value,
            records,
            json.dumps(reasons) if reasons is not None else None,
            quarantine_path,
            d.supersedes,
            datetime.now(UTC),
        ],
    )


def _refusals(con, d: Delivery, staging: Staging) -> list[Failure]:
    """Checks against the warehouse as it stands, inside the load's transaction: a record id
    another loaded file of the source already uses; a re-delivery that would empty a file."""
    source, spec = d.routed()
    ((dupes,),) = con.execute(
        f"""SELECT list(s.record_no ORDER BY s.record_no) FROM stage_{spec.kind} s
        WHERE s.file_id = $file AND EXISTS (
            SELECT 1 FROM {table_of(spec.kind)} h WHERE h.source_id = s.source_id AND h.record_id = s.record_id
              AND h.file_id IS DISTINCT FROM $supersedes)""",  # noqa: S608 (table names)
        {"file": d.file_id, "supersedes": d.supersedes},
    ).fetchall()
    failures = []
    if dupes:
        failures.append(
            Failure(
                "unique_record_id",
                "record_id is already used by another file of this source",
                "record_id",
                source.column(spec, "record_id"),
                len(dupes),
                list(dupes),
            )
        )
    if d.supersedes and d.supersedes_records > 0 and staging.records[d.file_id] == 0:
        failures.append(
            Failure(
                "replacement",
                f"this file would replace the loaded version of {d.rel} and its "
                f"{d.supersedes_records} records with none: deliver the complete export",
            )
        )
    return failures


def load(con: duckdb.DuckDBPyConnection, d: Delivery, staging: Staging) -> int:
    """Load one staged delivery (replacing the version it supersedes) in one transaction and
    return its records; raise Refused (nothing written) if the warehouse cannot take it."""
    source, spec = d.routed()
    name = raw_table(source.source_id, spec.kind)
    columns = list(source.columns(spec).values())
    table = table_of(spec.kind)
    con.begin()
    try:
        if failures := _refusals(con, d, staging):
            raise Refused(failures)
        if name not in staging.raw_tables_ready:  # once a run: 3 statements a file otherwise
            _ensure_raw_table(con, name, columns)
        if d.supersedes:
            con.execute(f"DELETE FROM {table} WHERE file_id = ?", [d.supersedes])  # noqa: S608 (a table name)
            con.execute(f"DELETE FROM raw.{name} WHERE file_id = ?", [d.supersedes])  # noqa: S608 (a table name)
            con.execute(
                "UPDATE landing.manifest SET status = ? WHERE file_id = ?", [Outcome.SUPERSEDED.value, d.supersedes]
            )
        cols = ", ".join(ident(c) for c in columns)
        con.execute(
            f"INSERT INTO raw.{name} (file_id, record_no, {cols}) "  # noqa: S608 (names from the mapping, quoted)
            f"SELECT file_id, {RECORD_NO}, {cols} FROM stage_raw_{name} WHERE file_id = ?",
            [d.file_id],
        )
        con.execute(
            f"INSERT INTO {table} BY NAME SELECT {_harmonised_select(spec.kind)} "  # noqa: S608 (names from the schema)
            f"FROM stage_{spec.kind} WHERE file_id = ?",
            [d.file_id],
        )
        _manifest_row(con, d, Outcome.LOADED, staging.records[d.file_id])
        con.commit()
        staging.raw_tables_ready.add(name)
    except duckdb.ConstraintException:  # the manifest has it: a retried task; the first attempt loaded it
        con.rollback()
    except BaseException:
        con.rollback()
        raise
    return staging.records[d.file_id]


def _target(directory: Path, d: Delivery) -> Path:
    """The quarantine name: the file's own, unless another delivery already holds it, or a
    plain stand-in for a refused name ('refused-name.<hash>')."""
    name = d.path.name if unsafe_name(d.path.name) is None else f"refused-name.{d.sha256[:16]}"
    target = directory / name
    report = target.with_name(target.name + ".report.json")
    if (os.path.lexists(target) or report.exists()) and not (
        report.exists() and json.loads(report.read_text(encoding="utf-8")).get("sha256") == d.sha256
    ):
        stem, dot, suffix = name.partition(".")
        target = directory / f"{stem}.{d.sha256[:8]}{dot}{suffix}"
    return target


def report(d: Delivery, stage: str, failures: list[Failure], target: Path) -> dict:
    """The quarantine report: which checks failed, on which rows and columns, and why.
    It names columns and row numbers only, never a value from the file."""
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
        "failures": [f.as_dict() for f in failures],
        "quarantined_as": target.name,
        "next_step": "correct the export and deliver it again to the same landing folder; a corrected file loads",
    }


def quarantine(
    con: duckdb.DuckDBPyConnection, d: Delivery, stage: str, failures: list[Failure], quarantine_dir: Path
) -> Path:
    """Move the file whole to quarantine/<CC>/<source_id>/ with <file>.report.json beside it.
    Order: report, manifest row, move; a repeat finishes what an interruption left."""
    recorded = con.execute("SELECT quarantine_path FROM landing.manifest WHERE file_id = ?", [d.file_id]).fetchall()
    if recorded:
        target = quarantine_dir / recorded[0][0]
    else:
        routed = d.source is not None and d.source.country == d.country  # folder names we registered
        directory = quarantine_dir / (f"{d.country}/{d.source_id}" if routed else "_unrouted")
        directory.mkdir(parents=True, exist_ok=True)
        target = _target(directory, d)
        tmp = target.with_name(target.name + ".report.json.tmp")
        tmp.write_text(
            json.dumps(report(d, stage, failures, target), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        os.replace(tmp, target.with_name(target.name + ".report.json"))
        reasons = [{k: v for k, v in f.as_dict().items() if k != "rows"} for f in failures]
        _manifest_row(con, d, Outcome.QUARANTINED, None, reasons, target.relative_to(quarantine_dir).as_posix())
    if os.path.lexists(d.path) and not os.path.lexists(target):  # a link is moved, never followed
        os.replace(d.path, target)
    return target
