"""Connectors: every mapping is valid, every format and encoding reads, errors are clear
and quote nothing, and a new source is onboarded with a mapping file and no code."""

import csv
import textwrap

import duckdb
import pytest

from connectors.mapping import load_sources
from connectors.read import ReadError, read_export
from pipelines.ingest import ingest
from tests.helpers import query

SOURCES = load_sources()


@pytest.mark.parametrize("source_id", sorted(SOURCES))
def test_each_source_reads_its_own_exports(world, source_id, tmp_path):
    src = SOURCES[source_id]
    files = sorted((world / "landing" / src.country / source_id).iterdir())
    assert files
    con = duckdb.connect()
    for f in files:
        spec = src.spec_for(f.name)
        table = read_export(con, f, spec, tmp_path, list(src.columns(spec).values()))
        assert set(table.column_names) == set(src.columns(spec).values()) | {"__record_no"}


def _spec(source_id):
    src = SOURCES[source_id]
    return src, src.files[0]


def test_utf8_file_under_a_legacy_mapping_is_named(world, tmp_path):
    src, spec = _spec("GR-POL-HP")
    good = max((world / "landing/GR/GR-POL-HP").iterdir(), key=lambda p: p.stat().st_size)
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes().decode("cp1253").encode("utf-8"))
    with pytest.raises(ReadError, match="UTF-8 text, but its mapping says cp1253"):
        read_export(duckdb.connect(), bad, spec, tmp_path, [])


NEW_SOURCE = """\
source_id: AT-NGO-MENVIA
name: MEN VIA, counselling for male victims of trafficking (Vienna)
source_type: ngo
country: AT
values:   # no shared vocabulary: the source's own labels
  exploitation_form: {Arbeit: labour, Sex: sexual, Betteln: begging, anderes: other, "?": unknown}
  route_stage: {Ziel: destination, Transit: transit, Herkunft: origin}
  gender: {M: male, F: female, D: other}
  age_group: {"<18": "12-17", "18-24": "18-24", "25-34": "25-34", "35-44": "35-44", "45+": "45+"}
  flag: {J: "yes", N: "no"}
unknown: [unbek.]
files:
  - kind: case
    pattern: "menvia_*.tsv"
    format: csv
    encoding: cp1252
    delimiter: "\\t"
    date_format: "%Y%m%d"
    constants: {status: presumed}
    columns:
      record_id: Klient
      person_key: Schlüssel
      reference_date: Erstkontakt
      exploitation_form: Form
      route_stage: Ort
      citizenship: Staat
      gender: G
      age_group: Alter
      smuggling_debt: Schulden
"""


@pytest.mark.usefixtures("prefect_harness")
def test_a_new_source_needs_only_a_mapping_file(register_source):
    assert "AT-NGO-MENVIA" not in SOURCES  # the simulator does not know it
    data = register_source(NEW_SOURCE)
    export = data / "landing/AT/AT-NGO-MENVIA/menvia_2025-Q2.tsv"
    export.parent.mkdir(parents=True)
    export.write_bytes(
        textwrap.dedent("""\
        Klient\tSchlüssel\tErstkontakt\tForm\tOrt\tStaat\tG\tAlter\tSchulden
        MV-0001\tpk-at-0a1b2c3d\t20250403\tArbeit\tZiel\tPK\tM\t25-34\tJ
        MV-0002\t\t20250519\tBetteln\tTransit\tRO\tM\t<18\tunbek.
        MV-0003\tpk-at-9f8e7d6c\t20250611\t?\tHerkunft\t\tF\t\tN
        """)
        .replace("\n", "\r\n")
        .encode("cp1252")
    )
    summary = ingest(data)
    assert summary.total["loaded"] == 1, summary
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    rows = con.sql(
        "SELECT record_id, person_key, reference_date::VARCHAR, status, exploitation_form, route_stage, "
        "citizenship, gender, age_group, smuggling_debt FROM harmonised.case_records ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("MV-0001", "pk-at-0a1b2c3d", "2025-04-03", "presumed", "labour", "destination", "PK", "male", "25-34", True),
        ("MV-0002", None, "2025-05-19", "presumed", "begging", "transit", "RO", "male", "12-17", None),
        ("MV-0003", "pk-at-9f8e7d6c", "2025-06-11", "presumed", "unknown", "origin", None, "female", "unknown", False),
    ]
    assert con.sql("SELECT count(*) FROM linked.persons").fetchall() == [(3,)]


CTDC_SOURCE = """\
source_id: DE-NGO-CTDC
name: Victim cases in the CTDC (HTCDS) layout
source_type: ngo
country: DE
values:
  gender: {Female: female, Male: male}
unknown: ["-99"]
files:
  - kind: case
    pattern: "ctdc_*.csv"
    format: csv
    date_format: "%Y"
    age_bands: true
    constants: {status: presumed}
    columns:
      record_id: caseId             # not HTCDS: the export carries one until the provider kit assigns them
      reference_date: yearOfRegistration
      gender: gender
      age_group: ageBroad
      citizenship: citizenship
      exploitation_country: CountryOfExploitation
    from_flags:
      exploitation_form:
        columns:
          isSexualExploit: sexual
          isForcedLabour: labour
          isForcedMarriage: forced_marriage
          isOrganRemoval: organ_removal
          isSlaveryAndPractices: other
          isForcedMilitary: other
          isOtherExploit: other
"""
CTDC_FLAGS = [
    "isSexualExploit",
    "isForcedLabour",
    "isForcedMarriage",
    "isOrganRemoval",
    "isSlaveryAndPractices",
    "isForcedMilitary",
    "isOtherExploit",
]
CTDC_FORMS = [  # the flags, in CTDC_FLAGS order → exploitation_form
    ("1,0,0,0,0,0,0", "sexual"),
    ("0,1,0,-99,0,0,0", "labour"),
    ("1,1,0,0,0,0,1", "other"),  # several forms
    ("0,0,1,0,0,0,0", "forced_marriage"),
    ("0,0,0,0,1,1,0", "other"),  # two flags of one code
    ("0,0,0,0,0,0,0", "unknown"),  # none
    ("-99,-99,-99,-99,-99,-99,-99", "unknown"),
]
CTDC_BANDS = [  # ageBroad → age_group: the group holding most of the band's years
    ("0--8", "0-11"),
    ("9--17", "12-17"),
    ("18--20", "18-24"),
    ("21--23", "18-24"),
    ("24--26", "25-34"),
    ("27--29", "25-34"),
    ("30--38", "25-34"),
    ("39--47", "35-44"),
    ("48+", "45+"),
    ("-99", "unknown"),
]
CTDC_GENDERS = [("Female", "female"), ("Male", "male"), ("-99", "unknown")]
CTDC_COUNTRIES = [("UA", "UA"), ("-99", None), ("NG", "NG"), ("", None)]


def _ctdc_case(i: int) -> tuple[dict[str, str], tuple]:
    """Case i of the export (its cells by column) and its harmonised record, expected."""
    flags, form = CTDC_FORMS[i % len(CTDC_FORMS)]
    band, group = CTDC_BANDS[i % len(CTDC_BANDS)]
    gender, gender_code = CTDC_GENDERS[i % len(CTDC_GENDERS)]
    country, country_code = CTDC_COUNTRIES[i % len(CTDC_COUNTRIES)]
    year = 2023 + i % 3  # years of the release calendar
    cells = {"caseId": f"ctdc-{i:04d}", "yearOfRegistration": str(year), "gender": gender, "ageBroad": band}
    cells |= {"citizenship": country, "CountryOfExploitation": "DE" if i % 2 else country}
    cells |= dict(zip(CTDC_FLAGS, flags.split(","), strict=True))
    record = (f"ctdc-{i:04d}", f"{year}-07-01", form, "unknown", gender_code, group, country_code)
    return cells, record + ("DE" if i % 2 else country_code,)


@pytest.mark.usefixtures("prefect_harness")
def test_a_ctdc_export_needs_only_a_mapping_file(register_source):
    data = register_source(CTDC_SOURCE)
    cases = [_ctdc_case(i) for i in range(42)]
    export = data / "landing/DE/DE-NGO-CTDC/ctdc_2023.csv"
    export.parent.mkdir(parents=True)
    with export.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(cases[0][0]))
        writer.writeheader()
        writer.writerows(cells for cells, _ in cases)
    summary = ingest(data)
    assert (summary.total["loaded"], summary.total["quarantined"]) == (1, 0), summary.quarantined
    rows = query(
        data / "warehouse.duckdb",
        "SELECT record_id, reference_date::VARCHAR, exploitation_form, route_stage, gender, age_group, citizenship, "
        "exploitation_country FROM harmonised.case_records ORDER BY record_id",
    )
    assert rows == [record for _, record in cases]
