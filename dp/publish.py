"""Publish a release, atomically: `release/<release_id>/` (Parquet and CSV of every table,
SDMX-CSV 2.0 of the counts, a Frictionless datapackage.json, METHODOLOGY.md), then the
readers' database `release/thb_release.duckdb` rebuilt from every published folder.

The folder is written beside its final name and renamed into place; the database is built
in a new file and swapped in with os.replace. A reader sees the old release or the new one,
whole: an open DuckDB connection keeps reading the file it opened. A published folder is
never rewritten: re-publishing returns it byte for byte.
"""

import json
import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dp.methodology import annual_methodology, methodology
from dp.spec import CUBE_DIMENSIONS
from thb.errors import ReleaseStateError
from thb.periods import Period

DB_NAME = "thb_release.duckdb"
SDMX_DIMENSIONS = {
    "ref_area": "REF_AREA",
    "status": "VICTIM_STATUS",
    "exploitation_form": "EXPLOITATION_FORM",
    "route_stage": "ROUTE_STAGE",
    "gender": "SEX",
    "age_group": "AGE",
    "unaccompanied_child": "UNACCOMPANIED_CHILD",
    "smuggling_debt": "SMUGGLING_DEBT",
}
STRUCTURE_ID = "THBOBS:DF_THB_VICTIMS(1.0)"

FIELD_DOCS = {
    "release_id": "release: quarter, then revision (2025-Q3.1)",
    "time_period": "reference quarter (2025-Q3) or year",
    "ref_area": "reporting country (ISO 3166-1 alpha-2), or _T for all eight",
    **{d: f"{d.replace('_', ' ')} code, or _T where the table does not break it down" for d in CUBE_DIMENSIONS},
    "obs_value": "published count: noisy, non-negative, adds up to its totals",
    "ci_low": "lower bound of the interval at the release's level",
    "ci_high": "upper bound of the interval",
    "obs_status": "empty, or u: low reliability (the interval is wide for the value)",
}


def _schema(frame: pd.DataFrame) -> dict:
    def kind(dtype) -> str:
        if pd.api.types.is_bool_dtype(dtype):
            return "boolean"
        if pd.api.types.is_integer_dtype(dtype):
            return "integer"
        if pd.api.types.is_float_dtype(dtype):
            return "number"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "datetime"
        return "string"

    return {
        "fields": [
            {"name": c, "type": kind(frame[c].dtype), **({"description": FIELD_DOCS[c]} if c in FIELD_DOCS else {})}
            for c in frame.columns
        ]
    }


def sdmx(counts: pd.DataFrame) -> pd.DataFrame:
    """The counts as SDMX-CSV 2.0: STRUCTURE, STRUCTURE_ID, ACTION, dimensions, TIME_PERIOD,
    OBS_VALUE, OBS_STATUS, then the interval as attributes."""
    out = pd.DataFrame({"STRUCTURE": "dataflow", "STRUCTURE_ID": STRUCTURE_ID, "ACTION": "I"}, index=counts.index)
    for col, sdmx_id in SDMX_DIMENSIONS.items():
        out[sdmx_id] = counts[col]
    out["TIME_PERIOD"] = counts.time_period
    out["OBS_VALUE"] = counts.obs_value
    out["OBS_STATUS"] = counts.obs_status
    out["LOWER_BOUND"] = counts.ci_low
    out["UPPER_BOUND"] = counts.ci_high
    return out


def write_folder(release_dir: Path, release_id: str, tables: dict[str, pd.DataFrame], facts: dict) -> Path:
    """Write release/<release_id>/ atomically; leave a complete existing folder untouched."""
    final = release_dir / release_id
    if (final / "datapackage.json").exists():
        _same_release(final, tables["releases"])
        return final
    for stale in release_dir.glob(f".{release_id}.partial-*"):  # an interrupted earlier attempt
        shutil.rmtree(stale, ignore_errors=True)
    tmp = release_dir / f".{release_id}.partial-{os.getpid()}"
    tmp.mkdir(parents=True)
    resources = []
    for name, frame in tables.items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp / f"{name}.parquet")
        frame.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
        schema = _schema(frame)
        resources += [
            {
                "name": name,
                "path": f"{name}.csv",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": schema,
            },
            {"name": f"{name}-parquet", "path": f"{name}.parquet", "format": "parquet", "schema": schema},
        ]
    if "counts" in tables:
        cube = sdmx(tables["counts"])
        cube.to_csv(tmp / "counts.sdmx.csv", index=False, lineterminator="\n")
        resources.append(
            {
                "name": "counts-sdmx",
                "path": "counts.sdmx.csv",
                "format": "csv",
                "mediatype": "application/vnd.sdmx.data+csv; version=2.0.0",
                "encoding": "utf-8",
                "schema": _schema(cube),
            }
        )
    quarterly = Period.parse(facts["time_period"]).is_quarter
    text = methodology(release_id, facts) if quarterly else annual_methodology(release_id, facts)
    (tmp / "METHODOLOGY.md").write_text(text, encoding="utf-8")
    resources.append(
        {"name": "methodology", "path": "METHODOLOGY.md", "format": "md", "mediatype": "text/markdown", "type": "file"}
    )
    package = {
        "name": f"thb-observatory-{release_id.lower().replace('.', '-')}",
        "title": f"THB Observatory release {release_id}: victims of trafficking in human beings, Balkan route",
        "description": "Differentially private counts of presumed and identified victims; see METHODOLOGY.md.",
        "version": release_id,
        "created": facts["released_at"],
        "licenses": [{"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/"}],
        "privacy": {  # the promise to each person (dp/ledger.py Promise), as of this release
            "unit": "one person in one reporting country",
            "definition": "zero-concentrated differential privacy (zCDP); epsilon at delta by OpenDP's conversion",
            "per_person_per_year": facts["person"],
            "this_release": {"rho": facts["rho"], "epsilon": facts["epsilon"], "delta": facts["delta"]},
        },
        "resources": resources,
    }
    (tmp / "datapackage.json").write_text(json.dumps(package, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, final)
    return final


def _same_release(folder: Path, release: pd.DataFrame) -> None:
    """A published folder is returned as it is, but only if it is this measurement's."""
    published = pd.read_parquet(folder / "releases.parquet")
    keys = ["release_id", "rho", "published_at"]
    if not published[keys].reset_index(drop=True).equals(release[keys].reset_index(drop=True)):
        raise ReleaseStateError(
            f"{folder} holds another measurement of {release.release_id.iloc[0]} than the ledger "
            "records (a warehouse rebuilt beside an old release folder?): move it aside, nothing "
            "was overwritten"
        )


TABLES = ("counts", "screenings", "releases", "coverage", "estimates")


def published_folders(release_dir: Path) -> list[Path]:
    """Every complete release folder (interrupted attempts and stray files left out)."""
    if not release_dir.is_dir():
        return []
    return sorted(
        p
        for p in release_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "datapackage.json").exists()
    )


def published_spend(release_dir: Path) -> dict[str, float]:
    """What each published release says it spent, {release_id: ρ}: its own public record."""
    out: dict[str, float] = {}
    for folder in published_folders(release_dir):
        for release_id, rho in pd.read_parquet(folder / "releases.parquet", columns=["release_id", "rho"]).itertuples(
            index=False
        ):
            out[release_id] = float(rho)
    return out


def rebuild_database(release_dir: Path) -> Path:
    """release/thb_release.duckdb from every published folder, swapped in whole."""
    folders = published_folders(release_dir)
    for stale in release_dir.glob(f".{DB_NAME}.*"):  # a database build interrupted earlier
        stale.unlink(missing_ok=True)
    tmp = release_dir / f".{DB_NAME}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for table in TABLES:
            files = [str(f / f"{table}.parquet") for f in folders if (f / f"{table}.parquet").exists()]
            if files:
                create = f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?, union_by_name=true)"  # noqa: S608
                con.execute(create, [files])  # `table` is one of TABLES
        con.sql("""CREATE VIEW latest_releases AS SELECT * FROM releases
                   QUALIFY row_number() OVER (PARTITION BY time_period ORDER BY revision DESC) = 1""")
    finally:
        con.close()
    final = release_dir / DB_NAME
    os.replace(tmp, final)
    return final
