"""Helpers shared by the tests: plain functions and constants, no fixtures (those live in the
conftest.py files). Test modules import from here, never from each other or from a conftest."""

import csv
import io
from datetime import date
from pathlib import Path

import duckdb

from connectors.mapping import load_sources

SEED, SCALE = 11, 0.05  # the shared simulated world (the `world` fixture)
RELEASED_ON = date(2026, 2, 1)  # `released`: the calendar then holds 2023-Q1 .. 2025-Q4 and 2023 .. 2025
REPO = Path(__file__).resolve().parent.parent
SOURCES = load_sources()


# ---------------------------------------------------------------- exports of a source


def export_spec(source_id: str, kind: str = "case"):
    """(the source's mapping, its export spec of that kind)."""
    src = SOURCES[source_id]
    return src, next(f for f in src.files if f.kind == kind)


def read_rows(path: Path, source_id: str) -> list[list[str]]:
    """The rows of a CSV case export, header first, in the source's encoding and delimiter."""
    _, spec = export_spec(source_id)
    text = path.read_bytes().decode(spec.encoding)
    return list(csv.reader(io.StringIO(text), delimiter=spec.delimiter))


def write_rows(path: Path, source_id: str, rows: list[list[str]], encoding: str | None = None) -> None:
    """Write rows as the source's CSV case export (its encoding unless another is given)."""
    _, spec = export_spec(source_id)
    buf = io.StringIO()
    csv.writer(buf, delimiter=spec.delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding or spec.encoding))


def col(source_id: str, field: str) -> str:
    """The column name a source's case export uses for a harmonised field."""
    src, spec = export_spec(source_id)
    return src.column(spec, field)


def mutate_cell(field, value, row=2, source_id="DE-POL-BKA"):
    """rows → rows with one cell (a field of a record) set to value."""

    def f(rows):
        rows[row][rows[0].index(col(source_id, field))] = value
        return rows

    return f


def fresh_ids(rows, source_id, tag):
    """The rows with record ids no other file uses, so a case fails for its own reason only."""
    i = rows[0].index(col(source_id, "record_id"))
    return [rows[0]] + [r[:i] + [f"{r[i]}-{tag}"] + r[i + 1 :] for r in rows[1:]]


# ---------------------------------------------------------------- the warehouse


def query(database: Path, sql: str, params=()) -> list[tuple]:
    """The rows of one query on a DuckDB file, opened read-only."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def snapshot(warehouse: Path, clock: bool = True) -> dict:
    """Every table of the warehouse with its row count and a content checksum; without the
    clock's columns (timestamps such as processed_at) when clock=False."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns: dict[str, list[str]] = {}
        for table, column, kind in con.sql(
            "SELECT table_schema || '.' || table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') "
            "ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall():
            columns.setdefault(table, [])
            if clock or not kind.startswith("TIMESTAMP"):
                columns[table].append(f'"{column}"')
        return {
            # identifiers from the catalogue, no values
            t: con.sql(f"SELECT count(*), sum(hash(struct_pack({', '.join(cols)}))) FROM {t}").fetchall()[0]  # noqa: S608
            for t, cols in sorted(columns.items())
        }
    finally:
        con.close()


# ---------------------------------------------------------------- the dashboard


def dash_request(app, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, object]], state=()) -> dict:
    """The body the browser posts to /_dash-update-component to run one of app's callbacks."""
    wanted = [f"{i}.{p}" for i, p in outputs]

    def parts_of(key):
        return key[2:-2].split("...") if key.startswith("..") else [key]

    key = next(k for k in app.callback_map if [p.split("@")[0] for p in parts_of(k)] == wanted)
    parts = parts_of(key)
    return {
        "output": key,
        "outputs": (
            [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in parts]
            if len(parts) > 1
            else {"id": outputs[0][0], "property": outputs[0][1]}
        ),
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }


def dash_call(app, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, object]], state=()):
    """Run one callback as the browser would, through /_dash-update-component."""
    r = app.server.test_client().post("/_dash-update-component", json=dash_request(app, outputs, inputs, state))
    assert r.status_code == 200, r.data[:500]
    return r.get_json()["response"]
