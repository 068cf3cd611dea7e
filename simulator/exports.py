"""Render harmonised records into a source's native export, through its own mapping file:
local column names and labels, its date format, encoding, delimiter and file format."""

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.cell import WriteOnlyCell

from connectors.mapping import FileSpec, SourceMapping, field_list
from data_contracts.codelists import codelists, codes, iso_countries

ALPHA3 = {a2: a3 for a3, a2 in iso_countries().items() if len(a3) == 3}
EXCEL_DATE = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY"}


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


def _write_text(frame: pd.DataFrame, path: Path, spec: FileSpec) -> None:
    frame = frame.copy()
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].dt.strftime(spec.date_format)
    if spec.format == "csv":
        legacy = spec.encoding.startswith("cp")  # Windows exports: CRLF line ends
        frame.to_csv(
            path, sep=spec.delimiter, encoding=spec.encoding, index=False, lineterminator="\r\n" if legacy else "\n"
        )
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)


def _write_xlsx(frame: pd.DataFrame, path: Path, spec: FileSpec) -> None:
    """Spreadsheets keep real date cells, shown in the source's date format."""
    number_format = spec.date_format
    for k, v in EXCEL_DATE.items():
        number_format = number_format.replace(k, v)
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Export")
    ws.append(list(frame.columns))
    dates = [pd.api.types.is_datetime64_any_dtype(frame[c]) for c in frame.columns]
    for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False):
        cells = []
        for value, is_date in zip(row, dates, strict=True):
            cell = WriteOnlyCell(ws, value=value.to_pydatetime() if is_date and value is not None else value)
            if is_date:
                cell.number_format = number_format
            cells.append(cell)
        ws.append(cells)
    wb.save(path)


WRITERS = {"csv": _write_text, "jsonl": _write_text, "xlsx": _write_xlsx}


def write_export(rng, source: SourceMapping, spec: FileSpec, records: pd.DataFrame, landing: Path, period: str) -> Path:
    """Write one delivery (one source, one kind, one quarter) under landing/<CC>/<source_id>/."""
    path = landing / source.country / source.source_id / spec.pattern.replace("*", period)
    path.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[spec.format](render(rng, source, spec, records), path, spec)
    return path
