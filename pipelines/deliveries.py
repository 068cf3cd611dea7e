"""Find the files in landing/ and route each to its source mapping and export kind.

A delivery is a path in landing/ with its bytes (sha256). The bytes the path last delivered
(loaded or quarantined) are a no-op; other bytes at the path of a loaded file are a
corrected re-delivery that replaces it, even bytes it delivered before an earlier correction.
Identical bytes at two paths are two deliveries: two empty quarters, say.

Landing takes regular files with plain names only: a symbolic link (even to a file inside
landing) or a special file is never followed, opened or hashed, and a name that could
mislead a person or a command (control characters, a right-to-left override, a leading
'-', '..', more than MAX_NAME_BYTES) is refused; both are quarantined unread.
"""

import dataclasses
import hashlib
import os
import stat
import unicodedata
from collections import Counter
from enum import StrEnum
from pathlib import Path

import duckdb

from connectors.mapping import FileSpec, SourceMapping
from thb.errors import CheckError

IGNORED_PREFIXES = (".", "~$")  # hidden files, office lock files
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload")  # uploads still in progress
INVISIBLE = ("Cc", "Cf", "Cs", "Zl", "Zp")  # control, format (bidi overrides), surrogates, line breaks
MAX_NAME_BYTES = 200  # leaves room for a quarantine suffix and '.report.json' within the 255 of most file systems


class Status(StrEnum):
    """How a file in landing/ stands against the manifest when it is found."""

    NEW = "new"
    UNCHANGED = "unchanged"  # these bytes were loaded from this path before
    QUARANTINED_EARLIER = "quarantined earlier"  # these bytes were quarantined from this path before


class Outcome(StrEnum):
    """What happened to a delivery, as the manifest records it."""

    LOADED = "loaded"
    QUARANTINED = "quarantined"
    SUPERSEDED = "superseded"  # a corrected re-delivery replaced it


@dataclasses.dataclass
class Delivery:
    """A file found in landing/: its path and bytes, the source mapping and export it routes
    to (or the `problem` that stops it), and how it stands against the manifest."""

    path: Path
    rel: str  # relative to landing/, with forward slashes (and invisible characters escaped)
    sha256: str
    size: int
    country: str | None = None
    source_id: str | None = None
    source: SourceMapping | None = None
    spec: FileSpec | None = None
    problem: str | None = None  # why it cannot be routed to a mapping
    problem_check: str = "routing"  # routing | file_type | file_name
    status: Status = Status.NEW
    supersedes: str | None = None  # file_id of the loaded version this one replaces
    supersedes_records: int = 0  # how many records that version holds
    seq: int = 0  # earlier deliveries of the same bytes at the same path
    quarantine_path: str | None = None  # where an earlier delivery of these bytes was quarantined

    @property
    def file_id(self) -> str:
        """The lineage key in raw.* and harmonised.*: path, bytes and delivery number."""
        return hashlib.sha256(f"{self.rel}\n{self.sha256}\n{self.seq}".encode()).hexdigest()[:16]

    @property
    def kind(self) -> str | None:
        """The export kind of a routed delivery (``case`` or ``screening``), else None."""
        return self.spec.kind if self.spec else None

    def routed(self) -> tuple[SourceMapping, FileSpec]:
        """The mapping and export spec of a delivery that was routed (no `problem`)."""
        if self.source is None or self.spec is None:
            raise CheckError(f"{self.rel} was not routed to a mapping: {self.problem}")
        return self.source, self.spec


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex, read 1 MiB at a time (never whole into memory).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     _ = f.write(b"case_id"), f.flush()
    ...     sha256_of(Path(f.name)) == hashlib.sha256(b"case_id").hexdigest()
    True
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def unsafe_name(name: str) -> str | None:
    """Why a file name is refused, or None.

    >>> unsafe_name("bka_lagebild_2025-Q1.csv"), unsafe_name("-rf.csv")
    (None, "the file name starts with '-' (it would read as an option to a command)")
    """
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"the file name is longer than {MAX_NAME_BYTES} bytes"
    if any(unicodedata.category(c) == "Cs" for c in name):  # bytes the file system could not decode
        return "the file name is not valid UTF-8"
    if any(unicodedata.category(c) in INVISIBLE for c in name):
        return "the file name holds control or invisible characters (a line break, a right-to-left override)"
    if name.startswith("-"):
        return "the file name starts with '-' (it would read as an option to a command)"
    if ".." in name:
        return "the file name holds '..' (a parent-folder reference)"
    return None


def printable(text: str) -> str:
    """Text with control and invisible characters escaped, for log lines and summaries.

    >>> printable("a\\nb\u202ecsv.exe")
    'a\\\\nb\\\\u202ecsv.exe'
    """
    return "".join(
        c.encode("unicode_escape", "backslashreplace").decode("ascii") if unicodedata.category(c) in INVISIBLE else c
        for c in text
    )


def _route(d: Delivery, sources: dict[str, SourceMapping]) -> None:
    """Route a delivery to its source and export; keep the first problem: the file's type,
    its name, then its place."""
    parts = d.rel.split("/")
    if len(parts) == 3:
        d.country, d.source_id, name = parts
        d.source = sources.get(d.source_id)
    if d.problem:
        return
    if problem := unsafe_name(d.path.name):
        d.problem, d.problem_check = problem, "file_name"
    elif len(parts) != 3:
        d.problem = "the file is not in landing/<country>/<source_id>/"
    elif d.source is None:
        d.problem = f"no connector mapping is registered for source {d.source_id}"
    elif d.source.country != d.country:
        d.problem = f"source {d.source_id} reports for {d.source.country}, not {d.country}"
    elif (spec := d.source.spec_for(name)) is None:
        patterns = ", ".join(s.pattern for s in d.source.files)
        d.problem = f"the file name matches none of the source's registered exports ({patterns})"
    else:
        d.spec = spec


def discover(landing: Path, sources: dict[str, SourceMapping], con: duckdb.DuckDBPyConnection) -> list[Delivery]:
    """Every file in landing/, routed, and marked new or unchanged against the manifest."""
    rows = con.sql(
        "SELECT path, sha256, status, file_id, records, quarantine_path FROM landing.manifest ORDER BY processed_at"
    ).fetchall()
    latest = {path: (sha, status, qpath) for path, sha, status, _, _, qpath in rows}
    loaded = {path: (f, sha, records) for path, sha, status, f, records, _ in rows if status == Outcome.LOADED}
    seen = Counter((path, sha) for path, sha, *_ in rows)
    out = []
    for path in _entries(landing):
        if path.name.startswith(IGNORED_PREFIXES) or path.name.endswith(IGNORED_SUFFIXES):
            continue
        rel = printable(path.relative_to(landing).as_posix())  # as recorded, logged and reported
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            d = Delivery(path=path, rel=rel, sha256=sha256_of(path), size=info.st_size)
        else:  # identified by what it is, never by what it points to
            what = f"symlink\0{os.readlink(path)}" if path.is_symlink() else f"mode {info.st_mode:o}"
            d = Delivery(path=path, rel=rel, sha256=hashlib.sha256(os.fsencode(what)).hexdigest(), size=0)
            d.problem_check = "file_type"
            d.problem = (
                "a symbolic link: landing takes regular files only, and a link is never followed"
                if path.is_symlink()
                else "not a regular file (a device, pipe or socket): landing takes regular files only"
            )
        _route(d, sources)
        last_sha, last_status, qpath = latest.get(rel, (None, None, None))
        if last_sha == d.sha256 and last_status in (Outcome.LOADED, Outcome.QUARANTINED):
            d.status = Status.UNCHANGED if last_status == Outcome.LOADED else Status.QUARANTINED_EARLIER
            d.quarantine_path = qpath
            d.seq = seen[(rel, d.sha256)] - 1
        else:
            d.seq = seen[(rel, d.sha256)]
            if rel in loaded:
                d.supersedes, _, d.supersedes_records = loaded[rel]
        out.append(d)
    return out


def _entries(landing: Path) -> list[Path]:
    """Every entry of landing/ that is not a directory, in order, without following links
    (a link to a directory is an entry, not a folder to walk)."""
    out = []
    for folder, dirs, files in os.walk(landing, followlinks=False):
        out += [Path(folder, n) for n in files]
        out += [Path(folder, n) for n in dirs if os.path.islink(os.path.join(folder, n))]
    return sorted(out)
