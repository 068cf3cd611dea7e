"""Connectors: every mapping is valid, every format and encoding reads, errors are clear
and quote nothing, and a new source is onboarded with a mapping file and no code."""

import codecs
import textwrap

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from connectors.mapping import field_list, load_source, load_sources
from connectors.read import ReadError, _utf8_inside, read_export
from data_contracts.cells import cell_failures
from pipelines.ingest import ingest
from thb.cli import app
from thb.errors import ConfigError

SOURCES = load_sources()


def test_every_country_has_three_kinds_of_source():
    by_country = {}
    for s in SOURCES.values():
        by_country.setdefault(s.country, set()).add(s.source_type)
    assert set(by_country) == {"GR", "MK", "RS", "BG", "AT", "DE", "SE", "FI"}
    for country, types in by_country.items():
        assert {"ngo", "asylum", "police"} <= types, country


def test_formats_and_encodings_cover_the_route():
    specs = [f for s in SOURCES.values() for f in s.files]
    assert {f.format for f in specs} == {"csv", "xlsx", "jsonl"}
    assert {"cp1253", "cp1251", "cp1250", "cp1252", "utf-8-sig"} <= {f.encoding for f in specs if f.format == "csv"}
    assert {f.delimiter for f in specs if f.format == "csv"} == {";", ","}


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


def test_read_errors_quote_no_content(tmp_path):
    src, spec = _spec("DE-POL-BKA")
    f = tmp_path / "x.csv"
    header = ";".join(src.columns(spec).values())
    f.write_bytes(f"{header}\nSECRET-1;Maria Musterfrau;01.01.2024\n".encode("utf-8-sig"))
    with pytest.raises(ReadError) as e:
        read_export(duckdb.connect(), f, spec, tmp_path, [])
    assert "line 2" in str(e.value) and "Maria" not in str(e.value) and "SECRET" not in str(e.value)


@pytest.mark.parametrize("source_id", sorted(SOURCES))
def test_no_registered_label_looks_hostile(source_id):
    """Every label and column name a mapping registers passes the formula and cell-size
    checks, and, in a legacy encoding, is never taken for UTF-8 text (mixed encodings)."""
    src = SOURCES[source_id]
    for spec in src.files:
        lists = {c for c in field_list(spec.kind).values() if c and c != "country"}
        labels = [*src.unknown_labels(), *src.columns(spec).values()]
        for c in lists:
            labels += [*src.labels(c).values(), *src.value_map(c)]
        assert cell_failures(pa.table({"label": labels}), {"label": "label"}) == []
        if codecs.lookup(spec.encoding).name not in ("utf-8", "utf-8-sig"):
            assert not _utf8_inside(";".join(labels + [x.upper() for x in labels]).encode(spec.encoding), spec.encoding)


def test_invalid_mapping_is_refused_with_its_file_name(tmp_path):
    bad = tmp_path / "DE-NGO-BAD.yaml"
    bad.write_text("source_id: DE-NGO-BAD\nname: x\nsource_type: charity\ncountry: DE\nfiles: []\n")
    with pytest.raises(ConfigError, match="(?s)DE-NGO-BAD.yaml.*source_type"):
        load_source(bad)


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


def test_a_new_source_needs_only_a_mapping_file(tmp_path, monkeypatch):
    assert "AT-NGO-MENVIA" not in SOURCES  # the simulator does not know it
    connectors, contracts, data = tmp_path / "connectors", tmp_path / "suites", tmp_path / "data"
    connectors.mkdir()
    (connectors / "AT-NGO-MENVIA.yaml").write_text(NEW_SOURCE, encoding="utf-8")
    monkeypatch.setenv("THB_CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("THB_CONTRACTS_DIR", str(contracts))
    result = CliRunner().invoke(app, ["contracts", "build"])
    assert result.exit_code == 0, result.output
    assert (contracts / "AT-NGO-MENVIA.case.json").exists()
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
    assert summary["total"]["loaded"] == 1, summary
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
