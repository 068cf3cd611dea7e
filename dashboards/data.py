"""The data-access layer: every number the dashboard shows comes from here, from the public
release database, opened read-only for each query and closed at once. Answers are cached
by the file's identity, so a newly published release (a new file swapped in) is picked up
on the next request, without a restart.

>>> import tempfile, duckdb, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "r.duckdb"
>>> c = duckdb.connect(str(p)); _ = c.sql("CREATE TABLE releases AS SELECT 'x' AS release_id"); c.close()
>>> Release(p).query("SELECT count(*) AS n FROM releases").n.tolist()
[1]
"""

import contextlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd

from data_contracts.codelists import CUBE_DIMENSIONS as DIMENSIONS
from thb.periods import Period

TOTAL = "_T"
ANY = "*"  # a dimension broken down: every code but the total


@lru_cache(maxsize=512)
def _cached(path: str, version: tuple, sql: str, params: tuple) -> pd.DataFrame:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(sql, list(params)).df()
    finally:
        con.close()


_results: dict = {}


def _cached_on(con, path: str, version: tuple, sql: str, params: tuple) -> pd.DataFrame:
    """Like _cached, through an open snapshot connection (same cache, same keys)."""
    key = (path, version, sql, params)
    if key not in _results:
        if len(_results) > 512:
            _results.clear()
        _results[key] = con.execute(sql, list(params)).df()
    return _results[key]


class Release:
    """The published release database at `path`."""

    def __init__(self, path: Path, _con=None, _version=None):
        self.path = Path(path)
        self._con, self._version = _con, _version

    def available(self) -> bool:
        """Whether the release database exists (it does not before the first release)."""
        return self.path.exists()

    def version(self) -> tuple:
        """The file's identity (inode, modification time, size): the cache key, so a release
        swapped in is read afresh. A snapshot keeps the identity it opened."""
        if self._version is not None:
            return self._version
        st = os.stat(self.path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def snapshot(self):
        """One version of the release for a whole callback: a connection holds the file it
        opened, even if a new release is swapped in meanwhile."""
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            st = os.stat(self.path)  # read after opening: a swap in between only makes the cache miss
            yield Release(self.path, con, (st.st_ino, st.st_mtime_ns, st.st_size))
        finally:
            con.close()

    def query(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        """The answer to `sql` with its bound `params`, cached by the file's identity; a copy,
        which the caller may change. Through the snapshot's connection if this is one, else
        a read-only connection opened for the query and closed at once."""
        if self._con is not None:
            return _cached_on(self._con, str(self.path), self._version, sql, tuple(params)).copy()
        return _cached(str(self.path), self.version(), sql, tuple(params)).copy()

    def tables(self) -> set[str]:
        """The names of the release database's tables."""
        return set(self.query("SELECT table_name FROM information_schema.tables").table_name)

    def releases(self) -> pd.DataFrame:
        """Every published release, newest first."""
        return self.query("SELECT * FROM releases ORDER BY published_at DESC, release_id DESC")

    def vintage(self, release_id: str | None) -> list[str]:
        """The releases a reader had when `release_id` was published: the newest revision of
        each quarter, published no later than it (default: the latest release)."""
        rel = self.releases().sort_values(["published_at", "release_id"]).reset_index(drop=True)
        if rel.empty:
            return []
        at = rel.index[rel.release_id == release_id]
        known = rel.iloc[: (at[0] if len(at) else len(rel) - 1) + 1].sort_values(["time_period", "revision"])
        return known.groupby("time_period").release_id.last().tolist()

    def quarters(self, release_ids: list[str]) -> list[str]:
        """The quarters released (annual releases of estimates are not quarters)."""
        rel = self.releases()
        periods = rel[rel.release_id.isin(release_ids)].time_period
        return [str(p) for p in sorted(map(Period.parse, periods)) if p.is_quarter]

    def cells(self, table: str, release_ids: list[str], ref_area=None, **dims) -> pd.DataFrame:
        """Published cells of `counts` or `screenings`: each named dimension fixed to a code,
        a list of codes or ANY (broken down); every other dimension at its total."""
        if not release_ids:
            return pd.DataFrame(
                columns=[
                    "release_id",
                    "time_period",
                    "ref_area",
                    *DIMENSIONS,
                    "obs_value",
                    "ci_low",
                    "ci_high",
                    "obs_status",
                ]
            )
        where, params = [f"release_id IN ({_placeholders(release_ids)})"], list(release_ids)
        for dim in DIMENSIONS:
            value = dims.get(dim, TOTAL)
            where.append(*_condition(dim, value, params))
        if ref_area is not None:
            where.append(*_condition("ref_area", ref_area, params))
        # only the table's name (one of two) and placeholders are interpolated; values are bound
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY time_period, ref_area"  # noqa: S608
        return self.query(sql, tuple(params))

    def coverage(self, release_ids: list[str]) -> pd.DataFrame:
        """The rows of `coverage` (which sources delivered) of these releases; empty for none."""
        if not release_ids:
            return pd.DataFrame()
        sql = f"SELECT * FROM coverage WHERE release_id IN ({_placeholders(release_ids)})"  # noqa: S608 (placeholders)
        return self.query(sql, release_ids)

    def estimates(self, release_ids: list[str]) -> pd.DataFrame:
        """The hidden-population estimates of these releases; empty for none, or in a database
        without an `estimates` table."""
        if not release_ids or "estimates" not in self.tables():
            return pd.DataFrame()
        sql = f"SELECT * FROM estimates WHERE release_id IN ({_placeholders(release_ids)})"  # noqa: S608 (placeholders)
        return self.query(sql, release_ids)


def _placeholders(values: Sequence) -> str:
    """One bound parameter per value, for `IN (...)`.

    >>> _placeholders(["2025-Q1.1", "2025-Q2.1"])
    '?, ?'
    """
    return ", ".join("?" * len(values))


def _condition(column: str, value, params: list) -> list[str]:
    if value == ANY:
        return [f"{column} <> '{TOTAL}'"]
    if isinstance(value, (list, tuple)):
        params.extend(value)
        return [f"{column} IN ({_placeholders(value)})"]
    params.append(value)
    return [f"{column} = ?"]
