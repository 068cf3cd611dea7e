r"""Write a frame in a source's native format: its file format, text encoding, delimiter and
date format (the simulator's exports, the provider kit's anonymised ones).

>>> import tempfile; from pathlib import Path; import pandas as pd
>>> from connectors.mapping import FileSpec
>>> spec = FileSpec(kind="case", pattern="*.csv", format="csv", encoding="cp1252", delimiter=";",
...                 columns={"record_id": "Fallnummer", "gender": "Geschlecht"})
>>> path = Path(tempfile.mkdtemp()) / "faelle.csv"
>>> write_frame(pd.DataFrame({"Fallnummer": ["A-1"], "Geschlecht": ["männlich"]}), path, spec)
>>> path.read_bytes()
b'Fallnummer;Geschlecht\r\nA-1;m\xe4nnlich\r\n'
"""

from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.cell import WriteOnlyCell

from connectors.mapping import FileSpec

EXCEL_DATE = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY"}


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


_WRITERS = {"csv": _write_text, "jsonl": _write_text, "xlsx": _write_xlsx}


def write_frame(frame: pd.DataFrame, path: Path, spec: FileSpec) -> None:
    """Write `frame` (datetime64 columns in the export's date format) as `spec` says."""
    _WRITERS[spec.format](frame, path, spec)
