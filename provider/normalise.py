"""Identifiers to one canonical form, so that one person written in Greek, Cyrillic or
Latin letters, romanised several ways, given and family name in either order, encodes alike.

Names: any script to Latin letters (anyascii), lower case, letters only, spellings that
romanisations disagree on folded together (kh/h, ou/u, j/y/i, doubled letters, ...), the
name's parts sorted. Dates of birth: day, month and year, or the year alone; 1 January is
what registers write for an unknown day and month, so it counts as the year alone.
Applicant numbers (an asylum service's registration number): compatibility characters
folded (NFKC), blanks removed, upper case, so that one number typed twice with a blank or a
lower-case letter more keys alike.

>>> name_tokens("Мохамед Хусеин"), name_tokens("HUSSEIN, Mohammed")
(['husein', 'mohamed'], ['husein', 'mohamed'])
>>> name_tokens("Ελένη Παπαδοπούλου"), name_tokens("Eleni Papadopoulou")
(['eleni', 'papadopulu'], ['eleni', 'papadopulu'])
>>> birth_date("17.05.1990", "%d.%m.%Y"), birth_date("1990", "%d.%m.%Y"), birth_date("01.01.1990", "%d.%m.%Y")
((1990, 5, 17), (1990, None, None), (1990, None, None))
>>> applicant_number(" 2024 / 0012345 "), applicant_number("w-33１２"), applicant_number(" ")
('2024/0012345', 'W-3312', None)
"""

import re
import unicodedata
from datetime import datetime

from anyascii import anyascii

# Greek spellings of sounds that anyascii would spell letter by letter (ου → oy): the
# digraphs first, then the letters that sound alike.
GREEK = [
    ("ου", "u"), ("τζ", "j"), ("μπ", "b"), ("ντ", "d"), ("γκ", "g"), ("αι", "e"), ("ει", "i"), ("οι", "i"), ("χ", "h"),
    ("η", "i"), ("υ", "i"), ("ω", "o"),
]  # fmt: skip
# Applied in order to lower-case ASCII: each folds spellings that romanisations of one
# name disagree on (German, English, French and Slavic conventions).
FOLDS = [
    ("tsch", "ch"), ("sch", "sh"), ("kh", "h"), ("gh", "g"), ("ph", "f"), ("th", "t"), ("dh", "d"),
    ("dj", "d"), ("dz", "z"), ("ts", "c"), ("ck", "k"), ("ou", "u"), ("oo", "u"), ("ee", "i"), ("ae", "a"),
    ("oe", "o"), ("ue", "u"), ("q", "k"), ("w", "v"), ("y", "i"), ("j", "i"), ("x", "ks"),
]  # fmt: skip
_C = re.compile(r"c(?!h)")  # c as k, except in ch
_DOUBLE = re.compile(r"(.)\1+")
_NOT_LETTERS = re.compile(r"[^a-z ]+")


def name_tokens(*parts: str | None) -> list[str]:
    """The canonical, sorted name tokens of a person's name parts (None: not given)."""
    text = "".join(
        c
        for c in unicodedata.normalize("NFD", " ".join(p for p in parts if isinstance(p, str)).lower())
        if not unicodedata.combining(c)
    )
    for a, b in GREEK:
        text = text.replace(a, b)
    text = _NOT_LETTERS.sub("", anyascii(text).lower().replace("-", " ").replace(",", " "))
    tokens = []
    for token in text.split():
        for a, b in FOLDS:
            token = token.replace(a, b)
        tokens.append(_DOUBLE.sub(r"\1", _C.sub("k", token)))
    return sorted(t for t in tokens if t)


def birth_date(text: str | None, date_format: str) -> tuple[int | None, int | None, int | None]:
    """(year, month, day) of a written date of birth; a year alone or 1 January gives the
    year only; an unreadable or empty one gives nothing."""
    text = text.strip() if isinstance(text, str) else ""
    if re.fullmatch(r"(19|20)[0-9]{2}", text):
        return int(text), None, None
    try:
        d = datetime.strptime(text, date_format).date()
    except ValueError:
        return None, None, None
    if (d.month, d.day) == (1, 1):
        return d.year, None, None
    return d.year, d.month, d.day


def applicant_number(text: str | None) -> str | None:
    """The canonical form of an applicant number; None where there is none."""
    if not isinstance(text, str):
        return None
    return "".join(unicodedata.normalize("NFKC", text).split()).upper() or None
