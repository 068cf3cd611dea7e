"""Stage the new deliveries of one ingest run and check them against their contracts.

Each file is read by its connector and its structure checked against its source's suite;
its raw rows go to a TEMP table of the warehouse connection. Each source's staged rows are
then harmonised in one query and all new records are validated against the row contract
in chunks of whole files. Nothing persistent is written here: a file's fate (load or
quarantine) is decided per file afterwards.
"""

import functools
import tempfile
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from connectors.harmonise import harmonise_sql
from connectors.mapping import KIND_SCHEMA, FileSpec, SourceMapping
from connectors.read import RECORD_NO, ReadError, read_export
from data_contracts.cells import cell_failures
from data_contracts.codelists import schema
from data_contracts.validate import Failure, validate
from pipelines.deliveries import Delivery
from pipelines.progress import step
from pipelines.warehouse import columns_ddl
from thb.errors import CheckError
from thb.sql import ident

CHUNK_ROWS = 250_000  # GX validates pandas frames: bigger chunks cost memory, smaller ones calls


def raw_table(source_id: str, kind: str) -> str:
    """The name of a source's raw table (raw.<name>) and staging table (stage_raw_<name>)."""
    return f"{source_id.lower().replace('-', '_')}_{kind}"


@functools.lru_cache(maxsize=1024)
def structure_failures(suite: Path, header: tuple[str, ...]) -> list[Failure]:
    """A file's structure checked against its source's suite; the answer depends on the
    header alone, so files of one source with one header are checked once."""
    return validate(pd.DataFrame(columns=list(header)), suite)


class Staging:
    """The new deliveries of one run, staged in TEMP tables of `con`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, contracts_dir: Path, max_file_size: int | None = None):
        self.con = con
        self.contracts_dir = contracts_dir
        self.max_file_size = max_file_size
        self.failures: dict[str, list[Failure]] = {}  # file_id → what failed
        self.failed_stage: dict[str, str] = {}  # file_id → read | structure | contract
        self.records: dict[str, int] = {}  # file_id → records in the file
        self.raw: dict[tuple[str, str], tuple[SourceMapping, FileSpec]] = {}
        self.raw_tables_ready: set[str] = set()  # persistent raw.* tables known to exist
        self._workdir = tempfile.TemporaryDirectory(prefix="thb-stage-")
        for kind in KIND_SCHEMA:
            con.sql(
                f"CREATE OR REPLACE TEMP TABLE stage_{kind} ({columns_ddl(kind, staged=True)}, file_record VARCHAR)"
            )

    def fail(self, file_id: str, stage: str, failures: list[Failure]) -> None:
        """Record what failed in a file; its failed stage (route, read, structure or contract)
        is the first one recorded."""
        self.failures.setdefault(file_id, []).extend(failures)
        self.failed_stage.setdefault(file_id, stage)

    def add(self, d: Delivery) -> None:
        """Read one file, check its structure, stage its raw rows. Any error fails the file
        alone, named by its type only (library messages may quote the file's content)."""
        try:
            self._add(d)
        except Exception as exc:  # a failure no check foresaw: a bug to report, not the file's fault
            self.fail(
                d.file_id, "read", [Failure("unexpected", f"the file could not be processed ({type(exc).__name__})")]
            )

    def _add(self, d: Delivery) -> None:
        if d.problem:
            self.fail(d.file_id, "route", [Failure(d.problem_check, d.problem)])
            return
        source, spec = d.routed()
        columns = source.columns(spec)
        try:
            table = read_export(
                self.con, d.path, spec, Path(self._workdir.name), list(columns.values()), self.max_file_size
            )
        except ReadError as exc:
            self.fail(d.file_id, "read", [Failure(exc.check, str(exc))])
            return
        header = table.column_names[:-1]
        suite = self.contracts_dir / f"{source.source_id}.{spec.kind}.json"
        if not suite.exists():
            missing = f"no data contract for {suite.stem}: run `thb contracts build`"
            self.fail(d.file_id, "structure", [Failure("contract", missing)])
            return
        if failures := structure_failures(suite, tuple(header)):
            self.fail(d.file_id, "structure", failures)
            return
        if failures := cell_failures(table, columns):
            self.fail(d.file_id, "contract", failures)
            return
        name = raw_table(source.source_id, spec.kind)
        if (source.source_id, spec.kind) not in self.raw:
            cols = ", ".join(f"{ident(c)} VARCHAR" for c in columns.values())
            self.con.sql(f"CREATE OR REPLACE TEMP TABLE stage_raw_{name} (file_id VARCHAR, {RECORD_NO} BIGINT, {cols})")
            self.raw[(source.source_id, spec.kind)] = (source, spec)
        self.con.register("__incoming", table)
        try:
            self.con.execute(
                f"INSERT INTO stage_raw_{name} BY NAME SELECT ? AS file_id, * FROM __incoming",  # noqa: S608 (a name)
                [d.file_id],
            )
        finally:
            self.con.unregister("__incoming")
        self.records[d.file_id] = table.num_rows

    def harmonise(self) -> None:
        """Map every staged raw row to the harmonised record, one query per source and kind."""
        for (source_id, kind), (source, spec) in self.raw.items():
            name = raw_table(source_id, kind)
            try:
                harmonised = harmonise_sql(source, spec, f"stage_raw_{name}")
                self.con.sql(f"INSERT INTO stage_{kind} BY NAME {harmonised}")
            except Exception as exc:
                raise CheckError(
                    f"mapping {source_id} to the harmonised record failed ({type(exc).__name__})"
                ) from None

    def validate(self, today: date | None = None) -> None:
        """The row contract on all staged records (uniqueness across a source's files is
        checked when each file loads, against the warehouse as it then stands)."""
        for kind in KIND_SCHEMA:
            sizes = self.con.sql(f"SELECT file_id, count(*) FROM stage_{kind} GROUP BY 1 ORDER BY 1").fetchall()  # noqa: S608
            chunks: list[list[str]] = []
            current: list[str] = []
            n = 0
            for file_id, rows in sizes:
                if current and n + rows > CHUNK_ROWS:
                    chunks.append(current)
                    current, n = [], 0
                current.append(file_id)
                n += rows
            if current:
                chunks.append(current)
            with step(f"checking {kind} records", len(chunks)) as advance:
                for files in chunks:
                    self._validate_chunk(kind, files, today)
                    advance(f"{sum(r for f, r in sizes if f in files):,} records")

    def _validate_chunk(self, kind: str, files: list[str], today) -> None:
        frame = (  # through Arrow: 4× faster than .df() for strings
            self.con.sql(
                f"SELECT * FROM stage_{kind} WHERE list_contains(?, file_id) ORDER BY file_id, record_no",  # noqa: S608
                params=[files],
            )
            .to_arrow_table()
            .to_pandas()
        )
        for field in [f for f, c in schema(KIND_SCHEMA[kind]).columns.items() if c.type == "date"]:
            frame[field] = pd.to_datetime(frame[field]).astype("datetime64[ns]")
        failures = validate(frame, self.contracts_dir / f"harmonised.{kind}.json", today)
        file_ids, record_nos = frame.file_id.to_numpy(), frame.record_no.to_numpy()
        source_of = frame.groupby("file_id").source_id.first().to_dict()
        if errors := [f.check for f in failures if f.check_error]:  # our fault, not the files': stop
            raise CheckError(f"the row contract could not run ({', '.join(errors)}); no file was loaded")
        for f in failures:
            rows = np.asarray(f.rows, dtype=np.int64)
            by_file = defaultdict(list)
            for file_id, record_no in zip(file_ids[rows], record_nos[rows], strict=True):
                by_file[file_id].append(int(record_no))
            for file_id, recs in by_file.items():
                source, spec = self.raw[(source_of[file_id], kind)]
                column = source.column(spec, f.field) if f.field in spec.columns else None
                self.fail(file_id, "contract", [Failure(f.check, f.description, f.field, column, len(recs), recs)])

    def close(self) -> None:
        """Drop the run's TEMP tables and delete its working folder, which holds the UTF-8
        copies of deliveries in other encodings."""
        for source_id, kind in self.raw:
            self.con.sql(f"DROP TABLE IF EXISTS stage_raw_{raw_table(source_id, kind)}")
        for kind in KIND_SCHEMA:
            self.con.sql(f"DROP TABLE IF EXISTS stage_{kind}")
        self._workdir.cleanup()
