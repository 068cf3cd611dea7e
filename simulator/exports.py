"""Render harmonised records into a source's native export, through its own mapping file:
local column names and labels, its date format, encoding, delimiter and file format."""

from pathlib import Path

import numpy as np
import pandas as pd

from connectors.mapping import NAME_IDENTIFIERS, FileSpec, SourceMapping, field_list
from connectors.write import write_frame
from data_contracts.codelists import codelists, codes, iso_countries
from simulator.identities import written_identities

ALPHA3 = {a2: a3 for a3, a2 in iso_countries().items() if len(a3) == 3}


def _labels(rng, source: SourceMapping, codelist: str, values: pd.Series) -> pd.Series:
    """Codes → local labels; 'unknown' is written the ways people write it: blank (30 %),
    another spelling (25 %) or the vocabulary's own word."""
    out = values.map(source.labels(codelist))
    if "unknown" in codes(codelist):
        spellings = np.array(source.unknown_labels(), dtype=object)
        u = rng.random(len(values))
        other = pd.Series(spellings[rng.integers(0, len(spellings), len(values))], index=out.index)
        unknown = (values == "unknown").to_numpy()
        out = out.where(~(unknown & (u < 0.3)), None).where(~(unknown & (u >= 0.3) & (u < 0.55)), other)
    return out


def _years(rng, groups: pd.Series) -> pd.Series:
    """Age groups → an age in years within each group ('unknown' → blank)."""
    bounds = codelists()["age_group"].codes
    known = groups != "unknown"
    lo = groups.map(lambda g: bounds[g].min or 0).to_numpy(float)
    hi = groups.map(lambda g: min(bounds[g].max or 0, 75)).to_numpy(float)
    years = np.floor(lo + rng.random(len(groups)) * (hi - lo + 1)).astype(int).astype(str)
    return pd.Series(np.where(known, years, None), index=groups.index)


def render(rng, source: SourceMapping, spec: FileSpec, records: pd.DataFrame) -> pd.DataFrame:
    """The export frame: local column names, local labels; dates stay datetime64."""
    lists = field_list(spec.kind)  # the list of a code or bool field; 'country'; None for text and dates
    out = {}
    for field, column in source.columns(spec).items():
        if field in spec.written_by_kit:
            continue
        values = records[field].reset_index(drop=True)
        if field == "age_group" and spec.age_in_years:
            out[column] = _years(rng, values)
        elif (values_list := lists[field]) == "country":
            out[column] = values.map(ALPHA3) if spec.country_codes == "alpha3" else values
        elif values_list is not None:
            out[column] = _labels(rng, source, values_list, values)
        else:
            out[column] = values
    return pd.DataFrame(out)


def write_export(
    rng, source: SourceMapping, spec: FileSpec, records: pd.DataFrame, root: Path, period: str, people=None
) -> Path:
    """Write one provider's internal export (one source, one kind, one quarter) under
    root/<CC>/<source_id>/: the export's columns, plus, where the mapping lists identifiers,
    the names and dates of birth of `people` (one identity per record) and free-text notes,
    or the records' applicant numbers."""
    path = root / source.country / source.source_id / spec.pattern.replace("*", period)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = render(rng, source, spec, records)
    if "identity_encoding" in spec.written_by_kit:
        written = written_identities(rng, people, source, spec)
        for field, column in source.identifier_columns(spec).items():
            if field in NAME_IDENTIFIERS:
                frame[column] = written[field].to_numpy()
        for column in spec.drop:
            frame[column] = written["notes"].to_numpy()
    if "applicant_number" in spec.identifiers:
        frame[source.column(spec, "applicant_number")] = records.applicant_number.to_numpy()
    write_frame(frame, path, spec)
    return path
