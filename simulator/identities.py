"""Who the victims are, and how each source writes them down.

Every true victim gets an identity (given and family name from the pools of their
citizenship in names.yaml, sex, date of birth). Each source records it its own way: in its
script (Greek, Cyrillic or Latin) and romanisation, with the slips that registers make
(typos, swapped name order, missing parts, placeholder or swapped dates of birth, year
only). The rates live in world.yaml (`identity`); docs/simulator.md says where they come from.
"""

import unicodedata
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from anyascii import anyascii
from pydantic import Field

from connectors.mapping import FileSpec, SourceMapping
from data_contracts.codelists import codelists
from simulator.world import IdentityErrors, params
from thb.config import ConfigModel, load_yaml

Script = Literal["latin", "greek", "cyrillic"]
NAMES_FILE = Path(__file__).parent / "names.yaml"


class Population(ConfigModel):
    """The names of one population (a citizenship)."""

    script: Script
    """The script the names are written in, in this file."""
    source: str
    """Where the names come from."""
    female: list[str]
    """Given names of women, most common first; spellings of one name separated by '|'."""
    male: list[str]
    """Given names of men, as `female`."""
    family: list[str]
    """Family names, as `female`."""
    father_name_share: float = Field(0.0, ge=0, le=1)
    """Share of people registered with their father's given name between given and family name."""


class NamePools(ConfigModel):
    """names.yaml: name pools by citizenship (ISO 3166-1 alpha-2)."""

    populations: dict[str, Population]


@cache
def pools(path: Path = NAMES_FILE) -> NamePools:
    """The name pools (names.yaml, validated)."""
    return load_yaml(path, NamePools)


def _zipf(n: int, exponent: float) -> np.ndarray:
    """Draw weights of a pool ordered most common first: common names repeat."""
    w = 1.0 / np.arange(1, n + 1) ** exponent
    return w / w.sum()


def _population(citizenship: str) -> str:
    """The pool of a citizenship; a citizenship without a pool draws from a neighbour's."""
    pops = pools().populations
    return citizenship if citizenship in pops else params().identity.pool_fallback.get(citizenship, "DE")


def identities(rng: np.random.Generator, victims: pd.DataFrame) -> pd.DataFrame:
    """One identity per victim: population, given name, father's name (where the population
    registers one), family name (entries of the pools), sex and date of birth (consistent
    with the age group at entry)."""
    n = len(victims)
    pops = victims.citizenship.map(_population).to_numpy(object)
    gender = victims.gender.to_numpy(object)
    sex = np.where(gender == "other", np.where(rng.random(n) < 0.5, "female", "male"), gender)
    given = np.empty(n, dtype=object)
    middle = np.full(n, None, dtype=object)
    family = np.empty(n, dtype=object)
    exponents = params().identity.name_frequency_exponent

    def draw(names: list[str], size: int, exponent: float) -> np.ndarray:
        return np.array(names, dtype=object)[rng.choice(len(names), size, p=_zipf(len(names), exponent))]

    for pop in np.unique(pops):
        pool = pools().populations[pop]
        for s, names in (("female", pool.female), ("male", pool.male)):
            rows = np.flatnonzero((pops == pop) & (sex == s))
            given[rows] = draw(names, len(rows), exponents["given"])
        rows = np.flatnonzero(pops == pop)
        family[rows] = draw(pool.family, len(rows), exponents["family"])
        fathers = rows[rng.random(len(rows)) < pool.father_name_share]
        middle[fathers] = draw(pool.male, len(fathers), exponents["given"])
    bounds = codelists()["age_group"].codes
    lo = victims.age_group.map(lambda g: bounds[g].min or 0).to_numpy(int)
    hi = victims.age_group.map(lambda g: min(bounds[g].max or 65, 65)).to_numpy(int)
    age_days = (rng.integers(lo, hi + 1) * 365.25 + rng.integers(0, 365, n)).astype("timedelta64[D]")
    return pd.DataFrame(
        {
            "population": pops,
            "given": given,
            "middle": middle,
            "family": family,
            "sex": sex,
            "birth_date": victims.entry_date.to_numpy().astype("datetime64[D]") - age_days,
        }
    )


# How a clerk writing in Greek or Cyrillic spells a name heard in Latin letters: a simple
# phonetic rendering, longest letter groups first. Diacritics are dropped beforehand.
_TO_CYRILLIC = {
    "sch": "ш", "sh": "ш", "ch": "ч", "zh": "ж", "kh": "х", "ts": "ц", "dj": "ђ", "th": "т", "ph": "ф",
    "gh": "г", "ck": "к", "ou": "у", "oo": "у", "ee": "и", "ya": "ја", "yu": "ју", "a": "а", "b": "б",
    "c": "к", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х", "i": "и", "j": "ј", "k": "к", "l": "л",
    "m": "м", "n": "н", "o": "о", "p": "п", "q": "к", "r": "р", "s": "с", "t": "т", "u": "у", "v": "в",
    "w": "в", "x": "кс", "y": "ј", "z": "з",
}  # fmt: skip
_CYRILLIC_LOCAL = {"bg": {"ј": "й", "ђ": "дж"}, "mk": {"ђ": "ѓ"}, "sr": {}}
_TO_GREEK = {
    "sch": "σ", "sh": "σ", "ch": "τσ", "zh": "ζ", "kh": "χ", "ts": "τσ", "dj": "τζ", "th": "θ", "ph": "φ",
    "ps": "ψ", "ks": "ξ", "gh": "γ", "ck": "κ", "ou": "ου", "oo": "ου", "ee": "ι", "mb": "μπ", "nd": "ντ",
    "a": "α", "b": "μπ", "c": "κ", "d": "ντ", "e": "ε", "f": "φ", "g": "γκ", "h": "χ", "i": "ι", "j": "τζ",
    "k": "κ", "l": "λ", "m": "μ", "n": "ν", "o": "ο", "p": "π", "q": "κ", "r": "ρ", "s": "σ", "t": "τ",
    "u": "ου", "v": "β", "w": "β", "x": "ξ", "y": "ι", "z": "ζ",
}  # fmt: skip
# Serbian Latin (Gaj's alphabet) from Cyrillic, as RS sources writing in Latin spell it.
_GAJ = {
    "љ": "lj", "њ": "nj", "џ": "dž", "ђ": "đ", "ћ": "ć", "ч": "č", "ш": "š", "ж": "ž", "ј": "j", "х": "h",
    "ц": "c", "й": "j", "щ": "št", "ъ": "a", "ь": "", "ю": "ju", "я": "ja", "ѓ": "đ", "ќ": "ć", "ѕ": "dz",
}  # fmt: skip


def ascii_letters(text: str) -> str:
    """Latin text without diacritics (Müller → Muller)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _by_table(text: str, table: dict[str, str]) -> str:
    """Rewrite text by a table of letter groups (longest match first), keeping capitals."""
    out, i, lower = [], 0, text.lower()
    while i < len(text):
        for size in (3, 2, 1):
            group = lower[i : i + size]
            if len(group) == size and group in table:
                piece = table[group]
                out.append(piece[:1].upper() + piece[1:] if text[i].isupper() else piece)
                i += size
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _greek_final_sigma(text: str) -> str:
    return " ".join(w[:-1] + "ς" if w.endswith("σ") else w for w in text.split(" "))


def romanise(name: str, style: str) -> str:
    """A Greek or Cyrillic name in Latin letters, the way a clerk of `style` writes it:
    'ascii' (anyascii; Greek ου as ou, as passports write it), 'gaj' (Serbian Latin, with
    diacritics), 'phonetic' (ου → u, kh → h)."""
    if style == "gaj":
        return anyascii("".join(_GAJ.get(c.lower(), c) if c.islower() else _gaj_upper(c) for c in name))
    latin = anyascii(name).replace("oy", "ou").replace("Oy", "Ou")  # Greek ου: ou, as passports write it
    if style == "phonetic":
        return latin.replace("ou", "u").replace("Ou", "U").replace("kh", "h").replace("Kh", "H")
    return latin


def _gaj_upper(c: str) -> str:
    g = _GAJ.get(c.lower())
    return c if g is None else g[:1].upper() + g[1:]


def write_in(name: str, script: Script, name_script: Script, target: str, style: str) -> str:
    """One spelling of a name, written in a source's script. `target` is the source's country
    (for local Cyrillic letters); `style` the romanisation of non-Latin names."""
    if script == name_script and script != "latin":
        return name
    latin = name if name_script == "latin" else romanise(name, style)
    if script == "latin":
        return latin
    plain = ascii_letters(latin)
    if script == "greek":
        return _greek_final_sigma(_by_table(plain, _TO_GREEK))
    local = _CYRILLIC_LOCAL.get(target.lower(), {})
    return "".join(local.get(c, c) for c in _by_table(plain, _TO_CYRILLIC))


def _typo(rng: np.random.Generator, text: str) -> str:
    """One slip of the keyboard: a letter dropped, doubled, swapped with its neighbour or
    replaced by another letter of the same name."""
    if len(text) < 3:
        return text
    i = int(rng.integers(1, len(text) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        return text[:i] + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i] + text[i:]
    if kind == 2:
        return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]
    return text[:i] + text[int(rng.integers(len(text)))].lower() + text[i + 1 :]


def _spelling(rng: np.random.Generator, entry: str, variant_share: float) -> str:
    spellings = entry.split("|")
    if len(spellings) > 1 and rng.random() < variant_share:
        return spellings[int(rng.integers(1, len(spellings)))]
    return spellings[0]


def _encodable(text: str, encoding: str) -> str:
    """What a system with a legacy code page stores of a name: letters it cannot hold lose
    their diacritics, or become their nearest plain letters."""
    for candidate in (text, ascii_letters(text), anyascii(text)):
        try:
            candidate.encode(encoding)
            return candidate
        except UnicodeEncodeError:
            continue
    return anyascii(text)


def written_identities(
    rng: np.random.Generator, people: pd.DataFrame, source: SourceMapping, spec: FileSpec
) -> pd.DataFrame:
    """How one source wrote down the identities of its records (`people`: one identity per
    record) in the export `spec`: given_name, family_name, date_of_birth (text in the export's
    date format, a year alone, or empty) and a free-text note."""
    ident = params().identity
    script: Script = ident.scripts.get(source.source_id, ident.scripts.get(source.country, "latin"))
    err: IdentityErrors = ident.errors[source.source_type]
    styles = ident.romanisation.get(source.country, ["ascii"])
    n = len(people)
    out: dict[str, list[str | None]] = {"given_name": [], "family_name": [], "date_of_birth": [], "notes": []}
    u = rng.random((n, 9))
    for i, person in enumerate(people.itertuples(index=False)):
        pop = pools().populations[person.population]
        style = styles[int(rng.integers(len(styles)))]
        names = []
        middle = person.middle if isinstance(person.middle, str) and rng.random() >= err.father_name_dropped else None
        for entry in (person.given, person.family, *([middle] if middle else [])):
            spelled = write_in(_spelling(rng, entry, ident.variant_share), script, pop.script, source.country, style)
            if script == "latin" and source.country not in ident.keeps_diacritics:
                spelled = ascii_letters(spelled)
            spelled = _encodable(spelled, spec.encoding)
            names.append(_typo(rng, spelled) if rng.random() < err.typo else spelled)
        given, family = (f"{names[0]} {names[2]}" if middle else names[0]), names[1]
        if u[i, 0] < err.swapped_order:
            given, family = family, given
        out["given_name"].append(None if u[i, 1] < err.missing_given else given)
        out["family_name"].append(None if u[i, 2] < err.missing_family else family)
        out["date_of_birth"].append(_birth_date(person, u[i, 3:8], err, spec.date_format))
        out["notes"].append(ident.notes[int(u[i, 8] * len(ident.notes))].format(given=given) if u[i, 8] < 0.5 else None)
    return pd.DataFrame(out)


def _birth_date(person, u: np.ndarray, err: IdentityErrors, date_format: str) -> str | None:
    """The date of birth as a source writes it, with its usual slips."""
    born = pd.Timestamp(person.birth_date)
    if u[0] < err.dob_missing:
        return None
    if u[1] < err.dob_year_off:
        born = born.replace(year=born.year + (1 if u[1] < err.dob_year_off / 2 else -1), day=min(born.day, 28))
    if u[2] < err.dob_year_only:
        return str(born.year)
    if person.population not in params().identity.exact_birth_dates and u[3] < err.dob_placeholder:
        born = born.replace(month=1, day=1)  # the date of birth is not known: 1 January is written
    elif u[4] < err.dob_swapped and born.day <= 12:
        born = born.replace(month=born.day, day=born.month)
    return born.strftime(date_format)
