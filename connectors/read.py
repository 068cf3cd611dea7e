"""Read a native export into a table of strings, in file order, numbered from 1.

Encodings are checked and decoded in Python (DuckDB's encodings extension is not
available); DuckDB then parses CSV and JSON lines with a fixed dialect, no sniffing.
A file that cannot be read raises ReadError, whose check names the class of failure
(docs/contracts.md) and whose message never quotes the file's content. Size guards run
before anything is decoded or inflated.
"""

import codecs
import contextlib
import csv
import functools
import io
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import openpyxl
import pyarrow as pa
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from connectors.mapping import FileSpec
from thb.errors import ContractError
from thb.sql import ident, literal

RECORD_NO = "__record_no"
CHUNK = 1 << 24  # 16 MiB


class ReadError(ContractError):
    """The file cannot be read as its mapping says. `check` is the class of failure (size,
    empty, binary, encoding, truncated, format, malformed, header, cell_size); the message
    is safe to show and log."""


def _decode_to_utf8(path: Path, encoding: str, workdir: Path) -> Path:
    """Check the file decodes as `encoding` (and carries no NUL bytes); return a UTF-8
    path DuckDB can read: the file itself if already UTF-8, else a transcoded copy."""
    utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    as_utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    looks_utf8, non_ascii, utf8_inside, offset = True, False, False, 0
    target = path if utf8 else workdir / (path.name + ".utf8")
    with contextlib.ExitStack() as files:
        src = files.enter_context(open(path, "rb"))
        dst = None if utf8 else files.enter_context(open(target, "w", encoding="utf-8", newline=""))
        while chunk := src.read(CHUNK):
            if b"\x00" in chunk:
                if offset == 0 and chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise ReadError("encoding", f"the file is UTF-16 text, but its mapping says {encoding}")
                raise ReadError("binary", "the file contains NUL bytes: binary data, not text")
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as e:
                if not utf8 and _is_utf8(chunk):
                    raise ReadError("encoding", f"the file is UTF-8 text, but its mapping says {encoding}") from None
                before = chunk[: e.start].removeprefix(codecs.BOM_UTF8)
                if utf8 and (non_ascii or not before.isascii()) or not utf8 and _utf8_inside(chunk, encoding):
                    raise ReadError("encoding", _mixed(encoding)) from None
                raise ReadError(
                    "encoding", f"the file is not valid {encoding} text (byte {offset + e.start})"
                ) from None
            if dst is not None:  # transcoding
                utf8_inside = utf8_inside or _utf8_inside(chunk, encoding)
                if looks_utf8:
                    try:
                        as_utf8.decode(chunk)
                    except UnicodeDecodeError:
                        looks_utf8 = False
                dst.write(text)
            non_ascii = non_ascii or not chunk.isascii()
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ReadError("truncated", f"the file ends inside a {encoding} character: a truncated upload?") from None
    if not utf8 and non_ascii and looks_utf8:
        raise ReadError("encoding", f"the file is UTF-8 text, but its mapping says {encoding}")
    if utf8_inside:
        raise ReadError("encoding", _mixed(encoding))
    return target


def _is_utf8(chunk: bytes) -> bool:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start > len(chunk) - 4  # only a character cut at the chunk's end
    return True


def _mixed(encoding: str) -> str:
    return f"the file mixes encodings: some of its text is UTF-8, some is not (its mapping says {encoding})"


def _utf8_inside(chunk: bytes, encoding: str) -> bool:
    """Whether a single-byte-encoded chunk holds UTF-8 characters. Read as the mapping's
    encoding such a character is a letter and one to three symbols (UTF-8 'ä' is cp1252
    'Ã¤', UTF-8 'а' is cp1251 'Р°'), never a label of ours. Vectorised from the rare symbol
    bytes 0x80-0xBF back to the lead byte each would need."""
    lead, mark = _utf8_tables(encoding)
    a = np.frombuffer(chunk, dtype=np.uint8)
    ends = np.flatnonzero(mark[a])
    for length in (2, 3, 4):
        starts = ends[ends >= length - 1] - (length - 1)
        ok = lead[a[starts]] == length
        for k in range(1, length - 1):
            ok &= mark[a[starts + k]]
        if ok.any():
            return True
    return False


@functools.cache
def _utf8_tables(encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """By byte: the UTF-8 length it leads if it reads as a letter in `encoding` (else 0);
    whether it is a UTF-8 continuation byte that reads as no letter."""
    reads = [bytes([b]).decode(encoding, "replace") for b in range(256)]
    lengths = {**dict.fromkeys(range(0xC2, 0xE0), 2), **dict.fromkeys(range(0xE0, 0xF0), 3)}
    lengths |= dict.fromkeys(range(0xF0, 0xF5), 4)
    lead = np.array([lengths.get(b, 0) if reads[b].isalpha() else 0 for b in range(256)], dtype=np.int8)
    mark = np.array([0x80 <= b <= 0xBF and not reads[b].isalpha() for b in range(256)])
    return lead, mark


def _csv_header(path: Path, delimiter: str) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    if not any(h.strip() for h in header):
        raise ReadError("header", "the file has no header row")
    return header


def _duckdb_error(exc: Exception, what: str, text_path: Path) -> ReadError:
    """A safe summary of a DuckDB parse error: the line number and the kind, never the text.
    An error on the last line of a file that ends without a line break is a truncation."""
    msg = str(exc)
    line = re.search(r"[Ll]ine:? (\d+)", msg)
    where = f" at line {line.group(1)}" if line else ""
    if m := re.search(r"Maximum line size of (\d+) bytes", msg):
        return ReadError("cell_size", f"the file has a line longer than {int(m.group(1)):,} bytes{where}")
    if m := re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", msg):
        kind = f"expected {m.group(1)} fields, found {m.group(2)}"
    elif "unterminated quote" in msg:
        kind = "a quoted value is not closed"
    elif "Malformed JSON" in msg:
        kind = "malformed JSON"
    elif "unicode" in msg.lower():
        kind = "invalid characters"
    else:
        kind = "unreadable content"
    lines, ends_mid_line = _lines(text_path)
    if ends_mid_line and (line is None or int(line.group(1)) >= lines):
        return ReadError("truncated", f"the file ends inside a record{where} ({kind}): a truncated upload?")
    return ReadError("malformed", f"the file is not valid {what}{where}: {kind}")


def _lines(path: Path) -> tuple[int, bool]:
    """The number of lines, and whether the last one lacks its line break."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            n, last = n + chunk.count(b"\n"), chunk[-1:]
    return n + (last != b"\n"), last != b"\n"


def _read_csv(con, path: Path, spec: FileSpec, workdir: Path, columns: list[str]) -> pa.Table:
    text_path = _decode_to_utf8(path, spec.encoding, workdir)
    if text_path.stat().st_size == 0:
        raise ReadError("empty", "the file is empty: not even a header row")
    header = _csv_header(text_path, spec.delimiter)
    if len(set(header)) != len(header):
        raise ReadError("header", "the header row names a column twice")
    try:
        return con.sql(
            "SELECT * FROM read_csv(?, delim=?, quote='\"', escape='\"', header=true, auto_detect=false, "
            "columns=?, strict_mode=true, null_padding=false)",
            params=[str(text_path), spec.delimiter, dict.fromkeys(header, "VARCHAR")],
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise _duckdb_error(exc, "CSV", text_path) from None


def _read_jsonl(con, path: Path, spec: FileSpec, workdir: Path, columns: list[str]) -> pa.Table:
    """JSON lines have no header: a blank file is a delivery of no records; 0 bytes is an
    empty (perhaps truncated) upload."""
    if path.stat().st_size == 0:
        raise ReadError("empty", "the file is empty (a delivery without records holds a blank line)")
    text_path = _decode_to_utf8(path, spec.encoding, workdir)
    if _blank(text_path):
        return pa.table({c: pa.array([], type=pa.string()) for c in columns})
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __json AS SELECT json FROM read_json_objects(?, format='newline_delimited')",
            [str(text_path)],
        )
        ((bad,),) = con.sql("SELECT count(*) FROM __json WHERE json_type(json) <> 'OBJECT'").fetchall()
        if bad:
            raise ReadError("malformed", f"the file is not valid JSON lines: {bad} line(s) are not JSON objects")
        keys = [
            k
            for (k,) in con.sql(
                "SELECT k FROM (SELECT unnest(json_keys(json)) AS k FROM __json) GROUP BY k ORDER BY k"
            ).fetchall()
        ]
        cols = ", ".join(f"json ->> {literal(k)} AS {ident(k)}" for k in keys)
        return con.sql(f"SELECT {cols} FROM __json").to_arrow_table()  # noqa: S608 (keys quoted by ident/literal)
    except duckdb.Error as exc:
        raise _duckdb_error(exc, "JSON lines", text_path) from None
    finally:
        con.sql("DROP TABLE IF EXISTS __json")


def _blank(path: Path) -> bool:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if chunk.strip():
                return False
    return True


def _check_workbook(path: Path, max_bytes: int | None) -> None:
    """An XLSX is a ZIP archive of XML parts: refuse, from its directory alone, what is no
    workbook, a truncated archive, and one that would inflate beyond `max_bytes`."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"PK\x03\x04"):
            raise ReadError("truncated", "the file is a ZIP archive without its end: a truncated upload?") from None
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise ReadError("format", "the file is a legacy .xls or an encrypted workbook, not an XLSX") from None
        raise ReadError("format", "the file is not an XLSX workbook (not a ZIP archive)") from None
    if "[Content_Types].xml" not in {m.filename for m in members}:
        raise ReadError("format", "the file is a ZIP archive but not an XLSX workbook")
    inflated = sum(m.file_size for m in members)
    if max_bytes is not None and inflated > max_bytes:
        raise ReadError("size", f"the workbook would inflate to {inflated:,} bytes, more than {max_bytes:,}")


def _cell(value, date_format: str):
    if value is None:
        return None
    if isinstance(value, (ArrayFormula, DataTableFormula)):
        return "="  # a formula, held as one so that the formula check refuses it
    if isinstance(value, (datetime, date)):
        return value.strftime(date_format)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if text.strip() else None


def _read_xlsx(con, path: Path, spec: FileSpec, workdir: Path, columns: list[str]) -> pa.Table:
    try:
        # formulas as written ('=...'), not their cached results: the formula check refuses them
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # zipfile, XML and openpyxl's own errors, for damaged or false workbooks
        raise ReadError("format", f"the file is not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [_cell(h, spec.date_format) for h in next(rows, ())]
        if not header or not any(header):
            raise ReadError("header", "the workbook has no header row")
        while header and header[-1] is None:
            header.pop()
        if None in header or len(set(header)) != len(header):
            raise ReadError("header", "the header row has an empty or repeated column name")
        data = [[_cell(v, spec.date_format) for v in row] for row in rows if any(v is not None for v in row)]
    except ReadError:
        raise
    except Exception as exc:
        raise ReadError("malformed", f"the workbook cannot be read ({type(exc).__name__})") from None
    finally:
        wb.close()
    if any(len(r) > len(header) and any(v is not None for v in r[len(header) :]) for r in data):
        raise ReadError("malformed", "some rows have values beyond the last named column")
    padded = [r[: len(header)] + [None] * (len(header) - len(r)) for r in data]
    cols = list(zip(*padded, strict=True)) or [()] * len(header)
    return pa.table({h: pa.array(c, type=pa.string()) for h, c in zip(header, cols, strict=True)})


READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "xlsx": _read_xlsx}


def read_export(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    workdir: Path,
    columns: list[str],
    max_bytes: int | None = None,
) -> pa.Table:
    """The export as strings in file order, plus RECORD_NO (1 = the first record).
    `columns` are the registered columns (used where a format has no header to read); a
    file larger than `max_bytes`, or a workbook that would inflate beyond it, is refused unread.

    >>> import duckdb, tempfile; from pathlib import Path
    >>> from connectors.mapping import FileSpec
    >>> d = Path(tempfile.mkdtemp()); f = d / "x.csv"
    >>> _ = f.write_bytes("Fallnummer;Geschlecht\\nA-1;weiblich\\n".encode("cp1252"))
    >>> spec = FileSpec(kind="case", pattern="*.csv", format="csv", encoding="cp1252",
    ...                 delimiter=";", columns={"record_id": "Fallnummer", "gender": "Geschlecht"})
    >>> read_export(duckdb.connect(), f, spec, d, ["Fallnummer", "Geschlecht"]).to_pylist()
    [{'Fallnummer': 'A-1', 'Geschlecht': 'weiblich', '__record_no': 1}]
    """
    if max_bytes is not None and (size := path.stat().st_size) > max_bytes:
        raise ReadError("size", f"the file is {size:,} bytes, more than the {max_bytes:,} accepted")
    if spec.format == "xlsx":
        _check_workbook(path, max_bytes)
    table = READERS[spec.format](con, path, spec, workdir, columns)
    if RECORD_NO in table.column_names:
        raise ReadError("header", f"the file has a column named {RECORD_NO}")
    return table.append_column(RECORD_NO, pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
