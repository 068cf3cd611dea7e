"""The private warehouse, `$THB_DATA_DIR/warehouse.duckdb`. Never published, never opened
by the dashboard. Tables are created from data_contracts/schema.yaml.

>>> import tempfile, pathlib
>>> con = connect(pathlib.Path(tempfile.mkdtemp()) / "w.duckdb")
>>> sorted(t for (t,) in con.sql("SELECT table_schema || '.' || table_name FROM information_schema.tables "
...                              "WHERE table_schema <> 'ledger'").fetchall())
['harmonised.case_records', 'harmonised.screenings', 'landing.manifest']
"""

from pathlib import Path

import duckdb

from connectors.mapping import KIND_SCHEMA as KINDS
from data_contracts.codelists import schema

SQL_TYPES = {
    "text": "VARCHAR",
    "code": "VARCHAR",
    "country": "VARCHAR",
    "date": "DATE",
    "bool": "BOOLEAN",
    "encoding": "VARCHAR",
}

MANIFEST = """
CREATE TABLE IF NOT EXISTS landing.manifest (
    file_id VARCHAR PRIMARY KEY,      -- lineage key in raw.* and harmonised.*: path, bytes, delivery number
    path VARCHAR NOT NULL,            -- relative to landing/
    sha256 VARCHAR NOT NULL,          -- the delivered bytes
    country VARCHAR,
    source_id VARCHAR,
    kind VARCHAR,
    size_bytes BIGINT,
    status VARCHAR NOT NULL,          -- loaded | quarantined | superseded
    records BIGINT,                   -- records in the file
    reasons JSON,                     -- why it was quarantined (checks, counts; never values)
    quarantine_path VARCHAR,
    supersedes VARCHAR,               -- file_id of the earlier version of the same path it replaced
    processed_at TIMESTAMPTZ NOT NULL
)"""


def table_of(kind: str) -> str:
    """The harmonised table of an export kind, as data_contracts/schema.yaml names it.

    >>> table_of("case"), table_of("screening")
    ('harmonised.case_records', 'harmonised.screenings')
    """
    return schema(KINDS[kind]).table


def columns_ddl(kind: str, staged: bool = False) -> str:
    """Column definitions of a harmonised table; staged rows keep booleans as yes/no/unknown."""
    types = SQL_TYPES | ({"bool": "VARCHAR"} if staged else {})
    cols = [f"{f} {types[c.type]}" for f, c in schema(KINDS[kind]).columns.items()]
    return ", ".join(["file_id VARCHAR NOT NULL", "record_no BIGINT NOT NULL", *cols])


def connect(path: Path, read_only: bool = False, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, creating its schemas and tables if needed. With a memory limit,
    DuckDB spills what does not fit (staged deliveries, large joins) to <dir>/tmp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = (
        {"memory_limit": memory_limit, "temp_directory": str(path.parent / "tmp")} if memory_limit else {}
    )
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    if not read_only:
        for s in ("landing", "raw", "harmonised", "linked", "ledger"):
            con.sql(f"CREATE SCHEMA IF NOT EXISTS {s}")
        con.sql(MANIFEST)
        for kind in KINDS:
            con.sql(f"CREATE TABLE IF NOT EXISTS {table_of(kind)} ({columns_ddl(kind)})")
            for field, column in schema(KINDS[kind]).columns.items():  # a column the record gained since
                con.sql(f"ALTER TABLE {table_of(kind)} ADD COLUMN IF NOT EXISTS {field} {SQL_TYPES[column.type]}")
        from dp.ledger import ensure as ensure_ledger  # here: reading exports (the provider kit) needs no OpenDP

        ensure_ledger(con)
    return con
