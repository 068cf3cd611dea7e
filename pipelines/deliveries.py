"""Find the files in landing/ and route each to its source mapping and export kind.

A delivery is a path in landing/ with its bytes (sha256). The bytes the path last delivered
(loaded or quarantined) are a no-op; other bytes at the path of a loaded file are a
corrected re-delivery that replaces it, even bytes it delivered before an earlier correction.
Identical bytes at two paths are two deliveries: two empty quarters, say.
"""

import dataclasses
import hashlib
from collections import Counter
from pathlib import Path

import duckdb

from connectors.mapping import FileSpec, SourceMapping

IGNORED_PREFIXES = (".", "~$")  # hidden files, office lock files
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload")  # uploads still in progress


@dataclasses.dataclass
class Delivery:
    path: Path
    rel: str  # relative to landing/, with forward slashes
    sha256: str
    size: int
    country: str | None = None
    source_id: str | None = None
    source: SourceMapping | None = None
    spec: FileSpec | None = None
    problem: str | None = None  # why it cannot be routed to a mapping
    status: str = "new"  # new | unchanged | quarantined earlier
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
        return self.spec.kind if self.spec else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _route(d: Delivery, sources: dict[str, SourceMapping]) -> None:
    parts = d.rel.split("/")
    if len(parts) != 3:
        d.problem = "the file is not in landing/<country>/<source_id>/"
        return
    d.country, d.source_id, name = parts
    d.source = sources.get(d.source_id)
    if d.source is None:
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
    loaded = {path: (file_id, sha, records) for path, sha, status, file_id, records, _ in rows if status == "loaded"}
    seen = Counter((path, sha) for path, sha, *_ in rows)
    out = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        if path.name.startswith(IGNORED_PREFIXES) or path.name.endswith(IGNORED_SUFFIXES):
            continue
        rel = path.relative_to(landing).as_posix()
        d = Delivery(path=path, rel=rel, sha256=sha256_of(path), size=path.stat().st_size)
        _route(d, sources)
        last_sha, last_status, qpath = latest.get(rel, (None, None, None))
        if last_sha == d.sha256 and last_status in ("loaded", "quarantined"):
            d.status = "unchanged" if last_status == "loaded" else "quarantined earlier"
            d.quarantine_path = qpath
            d.seq = seen[(rel, d.sha256)] - 1
        else:
            d.seq = seen[(rel, d.sha256)]
            if rel in loaded:
                d.supersedes, _, d.supersedes_records = loaded[rel]
        out.append(d)
    return out
