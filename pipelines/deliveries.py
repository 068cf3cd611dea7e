"""Find the files in landing/ and route each to its source mapping and export kind.

A delivery is a path in landing/ with its bytes (sha256): the same bytes at the same path
again are a no-op. New bytes at the path of a loaded file are a corrected re-delivery that
replaces it. (Identical bytes at two paths are two deliveries: two empty quarters, say.)
"""

import dataclasses
import hashlib
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
    status: str = "new"  # new | unchanged
    supersedes: str | None = None  # file_id of the loaded version this one replaces

    @property
    def file_id(self) -> str:
        """The lineage key in raw.* and harmonised.*: path and bytes together."""
        return hashlib.sha256(f"{self.rel}\n{self.sha256}".encode()).hexdigest()[:16]

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
    known = set(con.sql("SELECT path, sha256 FROM landing.manifest").fetchall())
    loaded_at = dict(con.sql("SELECT path, file_id FROM landing.manifest WHERE status = 'loaded'").fetchall())
    out = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        if path.name.startswith(IGNORED_PREFIXES) or path.name.endswith(IGNORED_SUFFIXES):
            continue
        rel = path.relative_to(landing).as_posix()
        d = Delivery(path=path, rel=rel, sha256=sha256_of(path), size=path.stat().st_size)
        _route(d, sources)
        if (rel, d.sha256) in known:
            d.status = "unchanged"
        elif rel in loaded_at:
            d.supersedes = loaded_at[rel]
        out.append(d)
    return out
