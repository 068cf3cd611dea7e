"""Neighbouring worlds for the end-to-end privacy audit (dp/audit_path.py): one person's
records, delivered as a provider delivers them, or the same deliveries without them.

The person is one identity (names and date of birth drawn as the simulator draws them),
recorded by several sources of one country at given dates. Each record goes into an
internal export of its own, written through the source's mapping (local columns and labels)
and anonymised by the real provider kit under the country's secret, so that the warehouse
links the person's records by their encodings as it links anyone's. Without the person the
same files are delivered with no record in them: the two worlds differ only by the person.
"""

import dataclasses
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.mapping import load_sources
from connectors.write import write_frame
from simulator.exports import render
from simulator.identities import identities


@dataclasses.dataclass(frozen=True)
class PersonRecord:
    """One record of the audited person: which source, dated when, and a file name tag."""

    source_id: str
    day: date
    tag: str  # the file's name: the export's pattern with `<quarter>-<tag>` for its `*`


def template(world: Path, country: str) -> pd.Series:
    """The harmonised attributes the person is recorded with: those of the world's first
    record in the country (a plausible combination), without its ids and dates."""
    records = pd.read_parquet(world / "truth" / "records.parquet")
    first = records[records.source_id.str.startswith(f"{country}-")].iloc[0]
    return first.drop(["record_id", "person_key", "reference_date", "identification_date", "file_period"])


def deliver(world: Path, landing: Path, records: list[PersonRecord], present: bool, seed: int = 7) -> list[Path]:
    """Write one file per record into `landing` (through the provider kit, with the world's
    secrets): holding the person's record if `present`, else no record. Returns the files."""
    from provider.kit import export, secrets

    sources = load_sources()
    country = sources[records[0].source_id].country
    attrs = template(world, country)
    victims = pd.DataFrame([{**attrs.to_dict(), "entry_date": np.datetime64(min(r.day for r in records), "D")}])
    person = identities(np.random.default_rng(seed), victims).iloc[0]
    internal = landing.parent / f".internal-{landing.name}"
    paths = []
    for i, r in enumerate(records):
        source = sources[r.source_id]
        spec = next(f for f in source.files if f.kind == "case")
        quarter = f"{r.day.year}-Q{(r.day.month - 1) // 3 + 1}"
        row = {**attrs.to_dict(), "record_id": f"AUDIT-{i + 1}", "reference_date": pd.Timestamp(r.day)}
        row["identification_date"] = None
        frame = render(np.random.default_rng(seed + i), source, spec, pd.DataFrame([row]).iloc[: int(present)])
        if spec.identifiers:
            names = {
                "given_name": person.given,
                "family_name": person.family,
                "date_of_birth": pd.Timestamp(person.birth_date).strftime(spec.date_format),
            }
            for field, column in source.identifier_columns(spec).items():
                frame[column] = [names[field]] * len(frame)
            for column in spec.drop:
                frame[column] = [""] * len(frame)
        path = internal / country / r.source_id / spec.pattern.replace("*", f"{quarter}-{r.tag}")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_frame(frame, path, spec)
        paths.append(path)
    receipts, refused = export(paths, landing, secrets(world / "secrets"), sources)
    if refused:
        raise RuntimeError(f"the provider kit refused the audited person's file: {refused[0]}")
    return [landing / country / p.parent.name / p.name for p in paths]
