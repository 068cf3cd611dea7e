"""`thb provider export`: a provider's internal exports → anonymised exports in an outbox.

For each file: route it to its source's mapping; read it as the warehouse reads exports;
refuse a column the mapping does not know (it may hold names) or a missing one; encode the
names and dates of birth with the country's linkage secret, and key an asylum service's
applicant numbers with it (HMAC-SHA256: applicant_key); assign record ids where the layout has none;
drop identifiers and free text; write the export in the source's own format to a temporary
file and run the warehouse's own contracts on it (structure, cells, row contract with the
PII screen). Only a file that passes is moved into the outbox, under <CC>/<source_id>/; a
receipt (no values) goes next to the internal file. A refused file leaves nothing in the
outbox and gets a report (checks, columns, rows; never values).
"""

import dataclasses
import hashlib
import hmac
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from connectors.mapping import FileSpec, SourceMapping, load_sources
from connectors.read import RECORD_NO, ReadError, read_export
from connectors.write import write_frame
from data_contracts.build import write_suites
from data_contracts.validate import Failure
from pipelines.deliveries import Delivery, sha256_of
from pipelines.progress import step
from pipelines.staging import Staging
from provider.encode import Identity, applicant_keys, encode, load_secret
from provider.normalise import birth_date, name_tokens
from thb.errors import ContractError, UserInputError

SEX = {"female": "f", "male": "m"}


class KitRefused(ContractError):
    """A file the kit will not let out: nothing was written to the outbox. `report` is the
    path of its report (checks, columns and rows; never values)."""

    def __init__(self, check: str, message: str, report: Path):
        super().__init__(check, message)
        self.report = report


@dataclasses.dataclass(frozen=True)
class Receipt:
    """What the kit did with one internal export (written as <file>.receipt.json)."""

    source_id: str
    internal_file: str
    outbox_file: str
    sha256: str  # of the anonymised export, as it will arrive in landing/
    records: int
    encoded: int  # records with an identity encoding
    applicant_keys: int  # screening records with an applicant key (made from the applicant number)
    without_identifiers: int  # records with no name and no year of birth: linked by nothing
    identifiers_encoded: list[str]  # columns turned into the encoding or the applicant key, then dropped
    columns_dropped: list[str]  # identifier and free-text columns that did not leave
    record_ids_assigned: bool
    checks: list[str]  # the contracts the anonymised export passed
    created_at: str


def route(
    path: Path, sources: dict[str, SourceMapping], source_id: str | None = None
) -> tuple[SourceMapping, FileSpec]:
    """The source and export of an internal file: `source_id` if given, else the folder it
    sits in (providers/<CC>/<source_id>/), else the one source whose file pattern it matches."""
    candidates = [sources[source_id]] if source_id in sources else []
    if source_id and not candidates:
        raise UserInputError(f"no registered source {source_id!r} (connectors/sources/)")
    if not candidates and path.parent.name in sources:
        candidates = [sources[path.parent.name]]
    if not candidates:
        candidates = [s for s in sources.values() if s.spec_for(path.name)]
    matches = [(s, spec) for s in candidates if (spec := s.spec_for(path.name))]
    if len(matches) != 1:
        why = "matches no registered export" if not matches else "matches several sources' exports"
        raise UserInputError(f"{path.name} {why}: name its source with --source")
    return matches[0]


def internal_exports(root: Path, sources: dict[str, SourceMapping]) -> list[Path]:
    """The internal exports under `root` (a file, or a folder searched throughout): files
    whose name matches a registered export (receipts and reports do not)."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise UserInputError(f"{root} is neither a file nor a folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and any(s.spec_for(p.name) for s in sources.values()))


def secrets(where: Path | None) -> Callable[[str], bytes]:
    """The linkage secret for a country: a file (one provider, one country), a folder of
    <CC>.key files (a coordinator's test set-up, or the simulated world), or THB_LINKAGE_SECRET."""
    if where is not None and Path(where).is_dir():
        return lambda country: load_secret(Path(where) / f"{country}.key")
    secret = load_secret(where)
    return lambda country: secret


def identities(table: pd.DataFrame, source: SourceMapping, spec: FileSpec) -> list[Identity]:
    """The canonical identity of each row of an internal export (read as strings)."""
    ids = source.identifier_columns(spec)
    given, family, full, born = (
        table[ids[f]] if f in ids else pd.Series(None, index=table.index, dtype=object)
        for f in ("given_name", "family_name", "full_name", "date_of_birth")
    )
    gender = source.value_map("gender")
    genders = table[source.column(spec, "gender")] if "gender" in spec.columns else None
    out = []
    for i in range(len(table)):
        sex = SEX.get(gender.get(str(genders.iloc[i]).strip().lower(), ""), "") if genders is not None else ""
        year, month, day = birth_date(born.iloc[i], spec.date_format)
        out.append(Identity(tuple(name_tokens(given.iloc[i], family.iloc[i], full.iloc[i])), sex, year, month, day))
    return out


def _record_ids(identities: list[Identity], table: pd.DataFrame, source: SourceMapping, secret: bytes) -> list[str]:
    """Stable ids for a layout without them: a keyed hash of the record's identity and
    contents (the same record gets the same id in every export), numbered where repeated."""
    seen: Counter[str] = Counter()
    ids = []
    for ident, row in zip(identities, table.itertuples(index=False), strict=True):
        digest = hmac.new(secret, repr((source.source_id, ident, tuple(row))).encode(), hashlib.sha256).hexdigest()
        seen[digest] += 1
        ids.append(f"K{digest[:20]}-{seen[digest]}")
    return ids


def anonymise(
    con: duckdb.DuckDBPyConnection, path: Path, source: SourceMapping, spec: FileSpec, secret: bytes, workdir: Path
) -> tuple[pd.DataFrame, dict[str, int], int]:
    """The anonymised export of an internal file (the export's columns, in order), with the
    number of records given each pseudonym ({identity_encoding: n, applicant_key: n}) and the
    number without names or a year of birth. Raises ContractError (ReadError) for a file that
    cannot be read or whose columns are not the mapping's."""
    expected = source.internal_columns(spec)
    table = read_export(con, path, spec, workdir, expected).to_pandas().drop(columns=RECORD_NO)
    header = list(table.columns)
    if unknown := [c for c in header if c not in expected]:
        raise ReadError(
            "header",
            f"column(s) {', '.join(unknown)} are not in the mapping of {source.source_id}: they may hold names "
            "or other identifiers; map them (identifiers or drop) before anything leaves",
        )
    if missing := [c for c in expected if c not in header]:
        raise ReadError("header", f"the mapping expects column(s) {', '.join(missing)}, which the file lacks")
    people = identities(table, source, spec) if "identity_encoding" in spec.written_by_kit else []
    out = pd.DataFrame(index=table.index)
    for field, column in source.columns(spec).items():
        if field not in spec.written_by_kit:
            out[column] = table[column]
        elif field == "identity_encoding":
            out[column] = encode(people, secret)
        elif field == "applicant_key":
            out[column] = applicant_keys(table[source.column(spec, "applicant_number")], secret)
        else:  # record_id, assigned
            out[column] = _record_ids(people, table, source, secret)
    counts = {
        field: int(out[source.column(spec, field)].notna().sum()) if field in spec.written_by_kit else 0
        for field in ("identity_encoding", "applicant_key")
    }
    return out, counts, sum(not i.known for i in people)


def _precheck(files: dict[Path, tuple[SourceMapping, FileSpec]], workdir: Path) -> dict[Path, list[Failure]]:
    """The warehouse's own contracts on anonymised exports, as ingest runs them."""
    sources = {s.source_id: s for s, _ in files.values()}
    contracts = workdir / "contracts"
    write_suites(sources, contracts)
    deliveries = {}
    with duckdb.connect() as con:
        staging = Staging(con, contracts)
        try:
            for path, (source, spec) in files.items():
                rel = f"{source.country}/{source.source_id}/{path.name}"
                d = Delivery(path, rel, sha256_of(path), path.stat().st_size, source.country, source.source_id)
                d.source, d.spec = source, spec
                deliveries[path] = d
                staging.add(d)
            staging.harmonise()
            staging.validate()
            return {p: staging.failures.get(d.file_id, []) for p, d in deliveries.items()}
        finally:
            staging.close()


def _refuse(path: Path, source: SourceMapping, check: str, message: str, failures: list[Failure]) -> KitRefused:
    report = path.with_name(path.name + ".refused.json")
    body = {
        "file": path.name,
        "source_id": source.source_id,
        "refused_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "nothing_left": "no file was written to the outbox",
        "failures": [f.as_dict() for f in failures] or [{"check": check, "description": message}],
    }
    report.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return KitRefused(check, f"{path.name}: {message} (report: {report})", report)


def export(
    paths: Iterable[Path],
    outbox: Path,
    secret_for: Callable[[str], bytes],
    sources: dict[str, SourceMapping] | None = None,
    source_id: str | None = None,
) -> tuple[list[Receipt], list[KitRefused]]:
    """Anonymise internal exports into `outbox`/<CC>/<source_id>/; `secret_for(country)` gives
    the linkage secret. Returns the receipts of files let out and the refusals."""
    sources = sources or load_sources()
    outbox = Path(outbox)
    receipts: list[Receipt] = []
    refused: list[KitRefused] = []
    with tempfile.TemporaryDirectory(prefix="thb-kit-") as tmp:
        workdir = Path(tmp)
        staged: dict[Path, tuple[Path, SourceMapping, FileSpec, dict[str, int]]] = {}
        files = list(paths)
        with duckdb.connect() as con, step("encoding identifiers", len(files)) as advance:
            for path in files:
                source, spec = route(path, sources, source_id)
                try:
                    frame, keyed, blank = anonymise(con, path, source, spec, secret_for(source.country), workdir)
                except ContractError as exc:
                    refused.append(_refuse(path, source, exc.check, str(exc), []))
                else:
                    out = workdir / "out" / source.source_id / path.name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    write_frame(frame, out, spec)
                    staged[out] = (path, source, spec, {"records": len(frame), **keyed, "blank": blank})
                advance(path.name)
        failures = _precheck({o: (s, spec) for o, (_, s, spec, _) in staged.items()}, workdir) if staged else {}
        for out, (path, source, spec, counts) in staged.items():
            if failed := failures[out]:
                message = f"the anonymised export fails the warehouse's contracts: {failed[0].description}"
                refused.append(_refuse(path, source, failed[0].check, message, failed))
                continue
            target = outbox / source.country / source.source_id / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            shutil.copyfile(out, part)
            os.replace(part, target)  # the outbox never holds half a file
            receipts.append(_receipt(path, target, source, spec, counts))
    return receipts, refused


def _receipt(path: Path, target: Path, source: SourceMapping, spec: FileSpec, counts: dict[str, int]) -> Receipt:
    receipt = Receipt(
        source_id=source.source_id,
        internal_file=path.name,
        outbox_file=str(target),
        sha256=sha256_of(target),
        records=counts["records"],
        encoded=counts["identity_encoding"],
        applicant_keys=counts["applicant_key"],
        without_identifiers=counts["blank"],
        identifiers_encoded=list(source.identifier_columns(spec).values()),
        columns_dropped=[*source.identifier_columns(spec).values(), *spec.drop],
        record_ids_assigned=spec.record_ids == "assigned",
        checks=[f"{source.source_id}.{spec.kind}", f"harmonised.{spec.kind}", "cells"],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    body = json.dumps(dataclasses.asdict(receipt), indent=1, ensure_ascii=False) + "\n"
    path.with_name(path.name + ".receipt.json").write_text(body, encoding="utf-8")
    return receipt
