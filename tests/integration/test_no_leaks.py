"""No leaks: canary person keys, record ids and identity encodings are planted in a simulated
world (CSV in three encodings, XLSX, JSON lines, and files that must be quarantined), the whole
pipeline and the dashboard run, and every log line (ours and Prefect's), error message,
quarantine report, release file and dashboard response is scanned for them, and for anything
that looks like an identity encoding. None may appear anywhere but the private warehouse,
where a positive control finds every one of them.

Person keys are planted only where an export has a person_key column (the sources that share
a national referral number); record ids and encodings in every planted source."""

import base64
import json
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import openpyxl
import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.sorting import LogSort

from connectors.mapping import load_sources
from dashboards.app import create_app, resolve
from dashboards.data import Release
from dashboards.pages import PAGES
from tests.helpers import dash_request, read_rows, write_rows

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("no-leaks")]  # one worker builds `planted`

SOURCES = load_sources()
PLANTED = (  # CSV in utf-8-sig, cp1253 and cp1251, JSON lines, XLSX; three with a person_key column
    "DE-POL-BKA",
    "GR-POL-HP",
    "BG-NGO-ANIMUS",
    "SE-POL-NMR",
    "BG-POL-MVR",
    "FI-POL-POLIISI",
    "GR-SOC-EKKA",
)
ALSO = ("DE-NGO-KOK", "DE-ASY-BAMF", "SE-NGO-PLATTFORMEN", "BG-GOV-NCCTHB")
THB = Path(sys.executable).with_name("thb")
ENCODING_LIKE = re.compile(r"v2:[A-Za-z0-9+/]{16}")  # the start of any identity encoding, or of a cut one


def keyed(source_id: str) -> bool:
    """Whether the source's case export has a person_key column (a shared referral number)."""
    return any("person_key" in f.columns for f in SOURCES[source_id].files if f.kind == "case")


def canary_encoding() -> str:
    """A valid-looking identity encoding (ENCODING_PATTERN: "v2:" and its name, year and
    day-month parts in base64)."""
    part = [base64.b64encode(secrets.token_bytes(n)).decode() for n in (256, 64, 64)]
    return "v2:" + ":".join(part)


def fragments(encoding: str) -> list[str]:
    """What a scan looks for: the encoding, and pieces of it a log might quote cut short."""
    body = encoding[3:]
    return [encoding, body[:24], body[160:184], body[-26:-2]]


def n_records(path: Path, source_id: str) -> int:
    """The number of records in an export."""
    spec = next(f for f in SOURCES[source_id].files if path.match(f.pattern))
    if spec.format == "csv":
        return len(read_rows(path, source_id)) - 1
    if spec.format == "jsonl":
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    return sum(any(v is not None for v in row) for row in sheet.iter_rows(min_row=2, values_only=True))


def plant(path: Path, source_id: str, values: dict[int, dict[str, str]]) -> None:
    """Overwrite fields of some records of an export, in its own format and encoding:
    values = {record number (1 = first after the header): {field: value}}."""
    src = SOURCES[source_id]
    spec = next(f for f in src.files if path.match(f.pattern))
    column = {field: src.column(spec, field) for row in values.values() for field in row}
    if spec.format == "csv":
        rows = read_rows(path, source_id)
        for n, row in values.items():
            for field, value in row.items():
                rows[n][rows[0].index(column[field])] = value
        write_rows(path, source_id, rows)
    elif spec.format == "jsonl":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for n, row in values.items():
            records[n - 1].update({column[f]: v for f, v in row.items()})
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    else:
        wb = openpyxl.load_workbook(path)
        sheet = wb.worksheets[0]
        header = [c.value for c in sheet[1]]
        for n, row in values.items():
            for field, value in row.items():
                sheet.cell(row=n + 1, column=header.index(column[field]) + 1, value=value)
        wb.save(path)


@pytest.fixture(scope="module")
def planted(world, tmp_path_factory, thb_env):
    """A data folder with canaries planted, run through the pipeline; what every run printed."""
    data = tmp_path_factory.mktemp("leaks") / "data"
    keys, records, encodings = [], [], []
    for sid in PLANTED + ALSO:
        shutil.copytree(world / "landing" / sid[:2] / sid, data / "landing" / sid[:2] / sid)
    for sid in PLANTED:
        biggest = max((data / "landing" / sid[:2] / sid).iterdir(), key=lambda p: p.stat().st_size)
        rows, count = {}, min(2, n_records(biggest, sid))
        assert count, sid
        for n in range(1, count + 1):
            rows[n] = {"record_id": f"cnry{secrets.token_hex(6)}", "identity_encoding": canary_encoding()}
            if keyed(sid):
                rows[n]["person_key"] = f"cnry{secrets.token_hex(6)}"
                keys.append(rows[n]["person_key"])
            records.append(rows[n]["record_id"])
            encodings.append(rows[n]["identity_encoding"])
        plant(biggest, sid, rows)
    assert len(keys) >= 4
    # files that must be quarantined, holding canaries: an unknown code, and values that look like personal data
    good = max((data / "landing/GR/GR-POL-HP").iterdir(), key=lambda p: p.stat().st_size)
    bad_code = good.with_name(good.name.replace(".csv", "_b.csv"))
    secret_key, secret_record, secret_encoding = (
        f"cnry{secrets.token_hex(6)}",
        f"cnry{secrets.token_hex(6)}",
        canary_encoding(),
    )
    shutil.copy(good, bad_code)
    secret_row = {"person_key": secret_key, "record_id": secret_record, "identity_encoding": secret_encoding}
    plant(bad_code, "GR-POL-HP", {1: secret_row | {"gender": "Mannx"}})
    good = max((data / "landing/DE/DE-POL-BKA").iterdir(), key=lambda p: p.stat().st_size)
    pii = good.with_name(good.name.replace(".csv", "_c.csv"))
    e_mail, pii_record = f"cnry{secrets.token_hex(4)}@example.org", f"cnry{secrets.token_hex(6)}"
    name = "Cnry" + "".join(secrets.choice("abcdefghij") for _ in range(8)) + " Papadopoulou"
    shutil.copy(good, pii)
    plant(pii, "DE-POL-BKA", {3: {"identity_encoding": e_mail, "record_id": pii_record}, 4: {"record_id": name}})
    quarantined = [secret_key, secret_record, secret_encoding, e_mail, pii_record, name]
    env = {**thb_env, "THB_DATA_DIR": str(data), "COLUMNS": "200"}
    printed = []
    for command in (
        ["pipeline", "run", "--verbose"],
        ["ingest", "--verbose"],
        ["ledger", "--json"],
        ["release", "2024-Q1"],  # already published: returned as it is
        ["release", "2099-Q1"],  # an error
    ):
        done = subprocess.run([str(THB), *command], env=env, capture_output=True, text=True, timeout=900)
        printed.append((command, done.returncode, done.stdout + done.stderr))
    assert printed[0][1] == 0, printed[0][2][-3000:]
    canaries = keys + records + [f for e in encodings for f in fragments(e)]
    return {
        "data": data,
        "keys": keys,
        "records": records,
        "encodings": encodings,
        "canaries": canaries,
        "quarantined": quarantined,
        "printed": printed,
    }


def leaks(text: str, canaries: list[str]) -> list[str]:
    """The canaries in text, and anything that looks like an identity encoding."""
    low = text.lower()
    return [c for c in canaries if c.lower() in low] + ENCODING_LIKE.findall(text)


def test_the_canaries_reached_the_private_warehouse(planted):
    """The positive control: without it, a scan that finds nothing proves nothing."""
    con = duckdb.connect(str(planted["data"] / "warehouse.duckdb"), read_only=True)
    keys = {k for (k,) in con.sql("SELECT person_key FROM harmonised.case_records").fetchall()}
    ids = {r for (r,) in con.sql("SELECT record_id FROM harmonised.case_records").fetchall()}
    encodings = {e for (e,) in con.sql("SELECT identity_encoding FROM harmonised.case_records").fetchall()}
    persons = {p for (p,) in con.sql("SELECT person_id FROM linked.persons").fetchall()}
    con.close()
    assert set(planted["keys"]) <= keys
    assert set(planted["keys"]) <= persons  # a person's id is its smallest shared key
    assert set(planted["records"]) <= ids
    assert set(planted["encodings"]) <= encodings
    assert len(encodings - {None}) > len(planted["encodings"])  # the real ones too
    quarantine = planted["data"] / "quarantine"
    files = [p for p in quarantine.rglob("*") if p.is_file() and not p.name.endswith(".report.json")]
    text = "".join(p.read_bytes().decode("utf-8-sig", errors="replace") for p in files)
    assert set(planted["quarantined"]) <= set(leaks(text, planted["quarantined"])), "quarantined whole"
    assert ENCODING_LIKE.search(text), "the scan would see an encoding"


def test_no_canary_in_any_command_output_or_error(planted):
    everything = planted["canaries"] + planted["quarantined"]
    assert any(rc != 0 for _, rc, _ in planted["printed"]), "an error path was exercised"
    assert any("quarantined" in out for _, _, out in planted["printed"])
    for command, _, out in planted["printed"]:
        assert leaks(out, everything) == [], command


def test_no_canary_in_prefects_logs(planted):
    everything = planted["canaries"] + planted["quarantined"]
    messages = []
    with get_client(sync_client=True) as client:
        while batch := client.read_logs(offset=len(messages), limit=200, sort=LogSort.TIMESTAMP_ASC):
            messages += [log.message for log in batch]
    assert any("quarantined" in m for m in messages), "Prefect stored our flows' logs"
    assert leaks("\n".join(messages), everything) == []


def test_no_canary_in_quarantine_reports_or_the_manifest(planted):
    everything = planted["canaries"] + planted["quarantined"]
    reports = list((planted["data"] / "quarantine").rglob("*.report.json"))
    assert len(reports) == 2
    for report in reports:
        assert leaks(report.read_text(encoding="utf-8"), everything) == [], report.name
    con = duckdb.connect(str(planted["data"] / "warehouse.duckdb"), read_only=True)
    reasons = con.sql("SELECT string_agg(reasons::VARCHAR, ' ') FROM landing.manifest").fetchall()[0][0]
    con.close()
    assert leaks(reasons, everything) == []


def test_no_canary_in_any_release_file(planted):
    everything = planted["canaries"] + planted["quarantined"]
    release = planted["data"] / "release"
    scanned = 0
    for path in release.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".parquet":  # compressed pages: scan the decoded values too
            text += pq.read_table(path).to_pandas().to_csv()
        assert leaks(text, everything) == [], path
        scanned += 1
    con = duckdb.connect(str(release / "thb_release.duckdb"), read_only=True)
    for (table,) in con.sql("SELECT table_name FROM information_schema.tables").fetchall():
        text = con.sql(f'SELECT * FROM "{table}"').df().to_csv()  # noqa: S608 — a name from the catalogue
        assert leaks(text, everything) == [], table
    con.close()
    assert scanned > 20


def test_no_canary_in_any_dashboard_response(planted):
    everything = planted["canaries"] + planted["quarantined"]
    db = planted["data"] / "release" / "thb_release.duckdb"
    app = create_app(db)
    client = app.server.test_client()
    responses = [client.get(p).get_data(as_text=True) for p in ("/", "/_dash-layout", "/_dash-dependencies")]
    data = Release(db)
    for page in PAGES:
        for release in data.releases().release_id[:3]:
            state = resolve(page, {"release": release}, data)
            values = [(f"{page.name}-{f}", "value", state[f]) for f in ("release", *page.filters)]
            calls = [
                ([("page", "children")], [("url", "pathname", page.path)], [("url", "search", f"?release={release}")]),
                ([(f"{page.name}-graph", "figure"), (f"{page.name}-extra", "children"), ("url", "search")], values, []),
                ([(f"{page.name}-download", "data")], [(f"{page.name}-download-button", "n_clicks", 1)], values),
            ]
            for outputs, inputs, state_ in calls:
                r = client.post("/_dash-update-component", json=dash_request(app, outputs, inputs, state_))
                assert r.status_code == 200
                responses.append(r.get_data(as_text=True))
    assert len(responses) > 3 * len(PAGES) * 3
    assert leaks("\n".join(responses), everything) == []
