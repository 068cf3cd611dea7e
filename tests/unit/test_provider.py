"""The provider kit's normalisation, encodings and applicant keys (no warehouse, no Prefect)."""

import hashlib
import hmac
import re

import duckdb
import pandas as pd
import pytest

from connectors.mapping import load_sources
from data_contracts.build import pii
from provider.encode import Identity, applicant_keys, decode, dice, encode, load_secret, parts
from provider.kit import anonymise
from provider.normalise import birth_date, name_tokens
from simulator.identities import write_in
from thb.errors import ConfigError

SECRET = b"a linkage secret of at least 32 characters"


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        (("Ελένη", "Παπαδοπούλου"), ("Eleni", "Papadopoulou")),  # Greek script and a passport's Latin
        (("Јелена", "Јовановић"), ("Jelena", "Jovanović")),  # Serbian Cyrillic and Latin
        (("Мохамед", "Хусеин"), ("Mohamed", "Husein")),  # Bulgarian Cyrillic
        (("Mohammed",), ("Mohamed",)),  # doubled letters
        (("Mueller",), ("Müller",)),  # German ue and ü
        (("Youssef",), ("Jusef",)),  # y, j and ou
        (("Al-Hassan", "Ahmad"), ("Ahmad", "Al Hasan")),  # order, hyphen, blank
        (("HUSSEIN, Mohammed",), ("mohamed", "husein")),  # case and punctuation
    ],
)
def test_one_name_in_any_script_and_romanisation_normalises_alike(written, canonical):
    assert name_tokens(*written) == name_tokens(*canonical)


def test_names_that_differ_stay_different():
    assert name_tokens("Mohammad", "Ahmadi") != name_tokens("Mahmoud", "Ahmadi")
    assert name_tokens(None, "") == []


@pytest.mark.parametrize("script", ["greek", "cyrillic", "latin"])
def test_a_name_written_in_a_sources_script_comes_back_to_its_tokens(script):
    """The simulator's rendering of a Latin name in Greek or Cyrillic letters and the kit's
    normalisation agree for names without sounds those scripts lack."""
    assert name_tokens(write_in("Mariam", script, "latin", "GR", "ascii")) == ["mariam"]


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("17.05.1990", "%d.%m.%Y", (1990, 5, 17)),
        ("1990", "%d.%m.%Y", (1990, None, None)),  # year only
        ("01.01.1990", "%d.%m.%Y", (1990, None, None)),  # the placeholder of an unknown date
        ("1990-05-17", "%d.%m.%Y", (None, None, None)),  # not in the source's format
        (None, "%d.%m.%Y", (None, None, None)),
    ],
)
def test_dates_of_birth(text, fmt, expected):
    assert birth_date(text, fmt) == expected


def test_encodings_are_keyed_balanced_and_robust_to_swapped_day_and_month():
    a = Identity(("ahmadi", "mohamad"), "m", 1990, 5, 17)
    assert encode([a], SECRET) == encode([a], SECRET)  # deterministic: the same person, the same encoding
    assert encode([a], SECRET) != encode([a], SECRET + b"x")  # keyed
    assert encode([a], SECRET)[0].startswith("v2:")
    assert encode([Identity(("ahmadi", "mohamad"), "m", 1990, 17, 5)], SECRET) == encode([a], SECRET)
    short, long = encode([Identity(("ali",), "m", None, None, None), a], SECRET)
    assert decode(parts(short)[0]).count() == decode(parts(long)[0]).count() == 1024  # balanced: length hidden
    assert parts(short)[1:] == ["", ""]  # no date of birth: empty parts, not a different date


def test_similar_identities_score_higher_than_different_ones():
    a = Identity(("ahmadi", "mohamad"), "m", 1990, 5, 17)
    typo, year_off, other = encode(
        [
            Identity(("ahmadi", "mohammad"), "m", 1990, 5, 17),
            Identity(("ahmadi", "mohamad"), "m", 1991, 5, 17),
            Identity(("ivanova", "maria"), "f", 1975, 3, 2),
        ],
        SECRET,
    )
    (mine,) = encode([a], SECRET)
    name, year, day_month = (dice(x, y) for x, y in zip(parts(mine), parts(typo), strict=True))
    assert year == day_month == 1.0
    assert 0.85 < name < 1.0
    assert 0.75 < dice(parts(mine)[1], parts(year_off)[1]) < 0.99  # neighbouring years share bits
    assert all(dice(x, y) < 0.75 for x, y in zip(parts(mine)[:2], parts(other)[:2], strict=True))
    assert dice(parts(mine)[2], parts(other)[2]) < 0.99


def test_the_secret_is_required_and_never_shown(tmp_path, monkeypatch):
    monkeypatch.delenv("THB_LINKAGE_SECRET", raising=False)
    with pytest.raises(ConfigError, match="no linkage secret"):
        load_secret(None)
    short = tmp_path / "short.key"
    short.write_text("tiny-secret")
    with pytest.raises(ConfigError, match="shorter than") as err:
        load_secret(short)
    assert "tiny-secret" not in str(err.value)
    monkeypatch.setenv("THB_LINKAGE_SECRET", SECRET.decode())
    assert load_secret(None) == SECRET


def test_applicant_keys_are_keyed_hmacs_of_the_normalised_number():
    """HMAC-SHA256 of "applicant_key:" and the number (blanks removed, upper case) under the
    linkage secret, as a pseudonymous id: the same number the same key however it is typed,
    another number or another country's secret another key, no number no key."""
    numbers = ["2024/0012345", " 2024 / 0012345", "2024/0012346", "w-3312", "W-3312", None, "  "]
    keys = applicant_keys(numbers, SECRET)
    digest = hmac.new(SECRET, b"applicant_key:2024/0012345", hashlib.sha256).hexdigest()
    assert keys[0] == keys[1] == "ak-" + digest[:40]
    assert len({keys[0], keys[2], keys[3]}) == 3
    assert keys[3] == keys[4]
    assert keys[5:] == [None, None]
    assert applicant_keys(numbers[:1], SECRET + b"x") != keys[:1]
    screen = pii()
    for key in keys[:5]:
        assert re.fullmatch(screen.id_pattern, key)
        assert not any(re.search(p, key) for p in screen.value_patterns.values())


def test_the_kit_keys_applicant_numbers_and_drops_them(tmp_path):
    """A screening export of an asylum service, through the kit: the applicant number's
    column is gone, each record carries its number's key, one number one key."""
    source = load_sources()["AT-ASY-BFA"]
    spec = next(f for f in source.files if f.kind == "screening")
    internal = tmp_path / "bfa_screening_2025-Q1.csv"
    number = source.column(spec, "applicant_number")
    header = [c for c in source.internal_columns(spec) if c != number]
    rows = [
        ["BFA-S1", "02.01.2025", "nein", "weiblich", "18-24 Jahre", "SY", "2025/0000007"],
        ["BFA-S2", "20.02.2025", "nein", "weiblich", "18-24 Jahre", "SY", "2025/0000007 "],
        ["BFA-S3", "21.02.2025", "ja", "männlich", "25-34 Jahre", "AF", "2025/0000008"],
        ["BFA-S4", "22.02.2025", "nein", "männlich", "25-34 Jahre", "AF", ""],
    ]
    text = "\r\n".join(";".join(r) for r in [[*header, number], *rows]) + "\r\n"
    internal.write_bytes(text.encode(spec.encoding))
    with duckdb.connect() as con:
        out, counts, _ = anonymise(con, internal, source, spec, SECRET, tmp_path)
    assert number not in out.columns
    assert list(out.columns) == list(source.columns(spec).values())
    keys = out[source.column(spec, "applicant_key")].tolist()
    assert keys[:3] == applicant_keys(["2025/0000007", "2025/0000007", "2025/0000008"], SECRET)
    assert pd.isna(keys[3])
    assert counts == {"identity_encoding": 0, "applicant_key": 3}
    assert "2025/0000007" not in out.to_csv()
