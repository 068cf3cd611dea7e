"""The provider kit's normalisation and encodings (no warehouse, no Prefect)."""

import pytest

from provider.encode import Identity, decode, dice, encode, load_secret, parts
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
