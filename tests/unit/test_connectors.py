"""Connector mappings without any export: every mapping is valid, formats and encodings cover
the route, errors are clear and quote nothing, no registered label looks hostile, and a bad
mapping is refused with its file name."""

import codecs
from datetime import date

import duckdb
import pyarrow as pa
import pytest

from connectors.harmonise import BAD_DATE, harmonise_sql
from connectors.mapping import SourceMapping, field_list, load_source
from connectors.read import RECORD_NO, ReadError, _utf8_inside, read_export
from data_contracts.build import MIN_DATE
from data_contracts.cells import cell_failures
from data_contracts.codelists import codelists
from tests.helpers import SOURCES
from thb.config import check
from thb.errors import ConfigError
from thb.settings import Settings


def _spec(source_id):
    src = SOURCES[source_id]
    return src, src.files[0]


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


def test_read_errors_quote_no_content(tmp_path):
    src, spec = _spec("DE-POL-BKA")
    f = tmp_path / "x.csv"
    header = ";".join(src.columns(spec).values())
    f.write_bytes(f"{header}\nSECRET-1;Maria Musterfrau;01.01.2024\n".encode("utf-8-sig"))
    with pytest.raises(ReadError) as e:
        read_export(duckdb.connect(), f, spec, tmp_path, [])
    assert "line 2" in str(e.value)
    assert "Maria" not in str(e.value)
    assert "SECRET" not in str(e.value)


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


def test_a_source_has_one_export_per_kind(tmp_path):
    text = (Settings().connectors_dir / "DE-POL-BKA.yaml").read_text(encoding="utf-8")
    spec = text[text.index("- kind: case") :]
    bad = tmp_path / "DE-POL-BKA.yaml"
    bad.write_text(text + spec.replace("bka_lagebild_", "bka_zweit_"), encoding="utf-8")
    with pytest.raises(ConfigError, match="one export per kind"):
        load_source(bad)


# ---------------------------------------------------------------- harmonising, rule by rule


def _source(values=None, **spec) -> SourceMapping:
    """A test source with its own `values` and no vocabulary (-99 spells 'not known'), whose
    case export is `spec`."""
    mapping = {"source_id": "DE-NGO-TEST", "name": "test", "source_type": "ngo", "country": "DE", "unknown": ["-99"]}
    files = [{"kind": "case", "pattern": "*.csv", "format": "csv", **spec}]
    return check({**mapping, "values": values or {}, "files": files}, SourceMapping, "test source")


def _harmonised(source: SourceMapping, rows: list[dict[str, str | None]], field: str) -> list:
    """The harmonised values of `field` for raw rows (column → cell; a column a row lacks is empty)."""
    spec = source.files[0]
    cells = {c: pa.array([r.get(c) for r in rows], pa.string()) for c in source.columns(spec).values()}
    raw = pa.table({"file_id": ["f"] * len(rows), RECORD_NO: list(range(1, len(rows) + 1)), **cells})
    con = duckdb.connect()
    con.register("raw", raw)
    return [v for (v,) in con.sql(f"SELECT {field} FROM ({harmonise_sql(source, spec, 'raw')})").fetchall()]  # noqa: S608


def test_a_spelling_of_not_known_in_a_country_column_is_no_country():
    src = _source(columns={"record_id": "id", "citizenship": "nat"})
    cells = ["NG", "ng", "-99", " ", None, "XX"]
    assert _harmonised(src, [{"nat": c} for c in cells], "citizenship") == ["NG", "NG", None, None, None, "?"]


@pytest.mark.parametrize(
    ("date_format", "cell", "expected"),
    [
        ("%Y", "2021", date(2021, 7, 1)),  # a year alone: 1 July, so its quarter is Q3
        ("%Y", " 2002 ", date(2002, 7, 1)),
        ("FY%Y", "FY2019", date(2019, 7, 1)),
        ("%Y", "-99", date.fromisoformat(BAD_DATE)),  # reported by the row contract
        ("%Y", "21.03.2021", date.fromisoformat(BAD_DATE)),
        ("%Y", "1899", date.fromisoformat(BAD_DATE)),
        ("%Y", "", None),
        ("%m/%Y", "03/2021", date(2021, 3, 1)),  # a month: its first day, as before
        ("%d.%m.%Y", "05.03.2021", date(2021, 3, 5)),
    ],
)
def test_dates_in_the_registered_format(date_format, cell, expected):
    src = _source(date_format=date_format, columns={"record_id": "id", "reference_date": "year"})
    assert _harmonised(src, [{"year": cell}], "reference_date") == [expected]


def test_a_past_year_alone_passes_the_date_contract():
    src = _source(date_format="%Y", columns={"record_id": "id", "reference_date": "year"})
    (placed,) = _harmonised(src, [{"year": "2000"}], "reference_date")
    assert date.fromisoformat(MIN_DATE[:10]) <= placed < date.today()


CTDC_BANDS = [  # the HTCDS/CTDC ageBroad bands → our group (the one holding most of the band's years)
    ("0--8", "0-11"),
    ("9--17", "12-17"),  # 3 years in 0-11, 6 in 12-17
    ("18--20", "18-24"),
    ("21--23", "18-24"),
    ("24--26", "25-34"),  # 1 year in 18-24, 2 in 25-34
    ("27--29", "25-34"),
    ("30--38", "25-34"),  # 5 years in 25-34, 4 in 35-44
    ("39--47", "35-44"),  # 6 years in 35-44, 3 in 45+
    ("48+", "45+"),
]
OTHER_BANDS = [
    ("9-17", "12-17"),  # one dash, an en dash, blanks
    ("9 – 17", "12-17"),
    (" 48 + ", "45+"),
    ("6--17", "0-11"),  # a tie (6 and 6 years) goes to the younger group
    ("40+", "45+"),  # an open band ends at 120
    ("-99", "unknown"),  # the source's spelling of 'not known'
    ("Minor", "12-17"),  # a label of the source's values
    ("adult", "?"),  # no band: reported by the row contract
    ("17--9", "?"),
    ("121+", "?"),  # no group holds it
    ("9--", "?"),
    ("", "unknown"),
]


def _band_source() -> SourceMapping:
    columns = {"record_id": "id", "age_group": "ageBroad"}
    return _source(values={"age_group": {"Minor": "12-17"}}, age_bands=True, columns=columns)


@pytest.mark.parametrize(("band", "group"), CTDC_BANDS + OTHER_BANDS)
def test_an_age_band_is_the_group_that_holds_most_of_its_years(band, group):
    assert _harmonised(_band_source(), [{"ageBroad": band}], "age_group") == [group]


def _most_years(lo: int, hi: int) -> str:
    """The oracle: count the band's years in each group, in plain Python."""
    groups = {c: (v.min, v.max) for c, v in codelists()["age_group"].codes.items() if v.min is not None}
    held = {c: sum(g_lo <= age <= g_hi for age in range(lo, hi + 1)) for c, (g_lo, g_hi) in groups.items()}
    return max(held, key=lambda c: (held[c], -groups[c][0]))


def test_every_band_up_to_sixty_agrees_with_counting_years():
    bands = [(lo, hi) for lo in range(61) for hi in range(lo, 61)]
    got = _harmonised(_band_source(), [{"ageBroad": f"{lo}-{hi}"} for lo, hi in bands], "age_group")
    assert got == [_most_years(lo, hi) for lo, hi in bands]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"age_bands": True, "age_in_years": True}, "age_in_years or age_bands"),
        ({"age_bands": True, "columns": {"record_id": "id"}}, "no age_group column"),
    ],
)
def test_age_bands_are_refused_where_they_cannot_apply(spec, message):
    with pytest.raises(ConfigError, match=message):
        _source(**{"columns": {"record_id": "id", "age_group": "ageBroad"}, **spec})


FLAGS = {"a": "sexual", "b": "labour", "c": "other", "d": "other"}
FLAG_RULE = {"columns": FLAGS, "several": "begging", "none": "organ_removal"}  # codes that tell the cases apart
FLAG_CASES = [  # (a, b, c, d) → exploitation_form
    (("1", "0", "0", "0"), "sexual"),
    ((" 1 ", "-99", "", "0"), "sexual"),  # a known 1 wins over flags not known
    (("ja", "nein", "0", "0"), "sexual"),  # the source's yes/no labels
    (("1", "1", "0", "0"), "begging"),  # several codes: `several`
    (("0", "0", "1", "1"), "other"),  # two flags of one code are one code
    (("1", "0", "1", "1"), "begging"),
    (("0", "0", "0", "0"), "organ_removal"),  # every flag 0: `none`
    (("0", "-99", "0", "0"), "unknown"),  # no 1, some not known
    (("-99", "-99", "-99", "-99"), "unknown"),
    ((None, None, None, None), "unknown"),
    (("2", "0", "0", "0"), "?"),  # not a flag: reported by the row contract
    (("1", "yes", "0", "0"), "?"),
]


@pytest.mark.parametrize(("cells", "form"), FLAG_CASES)
def test_a_code_from_flags(cells, form):
    src = _source(
        values={"flag": {"ja": "yes", "nein": "no"}},
        columns={"record_id": "id"},
        from_flags={"exploitation_form": FLAG_RULE},
    )
    assert _harmonised(src, [dict(zip(FLAGS, cells, strict=True))], "exploitation_form") == [form]


def test_flag_columns_are_columns_of_the_export():
    src = _source(columns={"record_id": "id"}, from_flags={"exploitation_form": {"columns": FLAGS}})
    rule = src.files[0].from_flags["exploitation_form"]
    assert (rule.several, rule.none) == ("other", "unknown")
    assert src.columns(src.files[0]) == {"record_id": "id", **{f"exploitation_form[{c}]": c for c in FLAGS}}


@pytest.mark.parametrize(
    ("columns", "from_flags", "message"),
    [
        ({"exploitation_form": "form"}, {"exploitation_form": FLAG_RULE}, "also in columns or constants"),
        ({}, {"exploitation_form": {"columns": {"a": "sexaul"}}}, r"\['sexaul'\] are not codes of the exploitation"),
        ({}, {"exploitation_form": {"columns": FLAGS, "several": "mixed"}}, r"\['mixed'\] are not codes"),
        ({}, {"smuggling_debt": {"columns": {"a": "yes"}}}, "not a coded field"),  # a yes/no field
        ({}, {"status": {"columns": {"a": "identified"}}}, "not a coded field"),  # a list without unknown
        ({}, {"citizenship": {"columns": {"a": "DE"}}}, "not a coded field"),
        ({}, {"screening_date": {"columns": {"a": "other"}}}, "not a coded field"),
        ({}, {"exploitation_form": {"columns": {"id": "sexual"}}}, r"column\(s\) \['id'\] already feed another"),
        ({}, {"exploitation_form": FLAG_RULE, "gender": {"columns": {"a": "female"}}}, "already feed another"),
        ({}, {"exploitation_form": {"columns": {}}}, "at least 1 item"),
    ],
)
def test_a_flag_rule_is_checked_at_load(columns, from_flags, message):
    with pytest.raises(ConfigError, match=message):
        _source(columns={"record_id": "id", **columns}, from_flags=from_flags)
