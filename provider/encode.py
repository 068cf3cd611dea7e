"""Keyed Bloom-filter encodings of a person's identifiers (built by clkhash).

An encoding has three parts, each a Bloom filter made by clkhash from its schema in
encoding.json: the **name** (the name's bigrams and the sex, 1024 bits), the **year of
birth** (256 bits; neighbouring years share bits) and the **day and month of birth** (256
bits; the smaller number first, so that a swapped day and month still agree). A part whose
identifier is not known is left empty, so that the warehouse can tell a missing date of
birth from a different one. The keys of every hash come from the country's linkage secret
(HKDF), which only providers hold: without it nobody can encode a guessed name to compare.

Each filter is then *balanced*: the filter and its complement, every part with exactly half
its bits set, so the count of set bits says nothing about the length of a name; and its
bits are put in an order drawn from the secret. The Dice coefficient of two balanced filters
is the share of the original bits on which they agree (docs/linkage.md).

Written: 'v2:' name ':' year ':' day-month, each part in base64 (the tag names this scheme,
and keeps a spreadsheet from reading a leading + as a formula).

>>> secret = b"a linkage secret of at least 32 characters"
>>> a = encode([Identity(("ahmadi", "mohamad"), "m", 1990, 5, 17)], secret)[0]
>>> b = encode([Identity(("ahmadi", "mohamad"), "m", 1990, 17, 5)], secret)[0]
>>> a == b, len(a), [round(dice(x, y), 2) for x, y in zip(parts(a), parts(a))]
(True, 525, [1.0, 1.0, 1.0])
>>> parts(encode([Identity(("ali",), "m", 1990, None, None)], secret)[0])[2]
''
>>> encode([Identity((), "", None, None, None)], secret)
[None]

An asylum service's **applicant number** (its registration number: personal data, like a
name) becomes an **applicant key**: HMAC-SHA256 of the normalised number under the same
secret, written as text a pseudonymous id may be. The same number gives the same key in
every export of the country, so the warehouse can count each applicant once; without the
secret nobody can compute the key of a number, and nobody can read a number back from it.

>>> keys = applicant_keys(["2024/0012345", " 2024/0012345", "2024/0012346", None], secret)
>>> keys[0] == keys[1] != keys[2], keys[3], keys[0][:3], len(keys[0])
(True, None, 'ak-', 43)
"""

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from bitarray import bitarray

from provider.normalise import applicant_number
from thb.errors import ConfigError

SCHEMA_FILE = Path(__file__).parent / "encoding.json"
SECRET_ENV = "THB_LINKAGE_SECRET"
MIN_SECRET_BYTES = 32
VERSION = "v2"  # of encoding.json and the balancing: encodings of two versions never compare
PARTS = ("name", "year", "day_month")
APPLICANT_KEY = "ak-"  # the prefix of an applicant key; 40 hex digits follow (160 bits of the HMAC)


class Identity(NamedTuple):
    """A person's identifiers in canonical form (provider/normalise.py)."""

    name: tuple[str, ...]
    sex: str  # f, m or '' (not known)
    year: int | None
    month: int | None
    day: int | None

    def features(self, part: str) -> list[str]:
        """The values of one part's fields in encoding.json ([] where the part is not known)."""
        if part == "name":
            return [" ".join(self.name), self.sex] if self.name else []
        if part == "year":
            return [str(self.year)] if self.year else []
        if self.month and self.day:
            return ["-".join(f"{v:02d}" for v in sorted((self.month, self.day)))]
        return []

    @property
    def known(self) -> bool:
        """Whether anything is known to encode."""
        return bool(self.name or self.year)


@cache
def schema(part: str):
    """The fields and weights of one part (encoding.json, clkhash's schema format v3).
    clkhash is imported here: the warehouse reads encodings but never makes one."""
    from clkhash import schema as clk_schema

    return clk_schema.from_json_dict(json.loads(SCHEMA_FILE.read_text())[part])


def load_secret(path: Path | None = None) -> bytes:
    """The country's linkage secret: from a file, else from THB_LINKAGE_SECRET. Errors never
    show the secret."""
    if path is not None:
        try:
            secret = Path(path).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the linkage secret file {path}: {exc.strerror}") from None
        where = str(path)
    else:
        secret = os.environ.get(SECRET_ENV, "").strip().encode()
        where = SECRET_ENV
    if not secret:
        raise ConfigError(f"no linkage secret: pass --secret FILE or set {SECRET_ENV} (ask your country's coordinator)")
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the linkage secret in {where} is shorter than {MIN_SECRET_BYTES} characters: too easy to guess"
        )
    return secret


@cache
def _order(secret: bytes, part: str, bits: int) -> np.ndarray:
    """A keyed order of a balanced part's bits."""
    keys = [hmac.new(secret, f"order:{part}:{i}".encode(), hashlib.sha256).digest() for i in range(bits)]
    return np.array(sorted(range(bits), key=keys.__getitem__))


def _balanced(filters: list[bitarray], secret: bytes, part: str) -> np.ndarray:
    """Each filter and its complement, in the secret's order: one row of bytes per filter."""
    packed = np.frombuffer(b"".join(f.tobytes() for f in filters), dtype=np.uint8).reshape(len(filters), -1)
    bits = np.unpackbits(packed, axis=1)
    whole = np.concatenate([bits, 1 - bits], axis=1)
    return np.packbits(whole[:, _order(secret, part, whole.shape[1])], axis=1)


def _part(identities: Sequence["Identity"], secret: bytes, part: str) -> list[str]:
    """One part of every encoding, '' where its identifiers are not known."""
    from clkhash import clk

    known = [i for i, ident in enumerate(identities) if ident.features(part)]
    out = [""] * len(identities)
    if known:
        filters = clk.generate_clks([identities[i].features(part) for i in known], schema(part), secret, max_workers=1)
        for i, row in zip(known, _balanced(filters, secret, part), strict=True):
            out[i] = base64.b64encode(row.tobytes()).decode()
    return out


def encode(identities: Sequence[Identity], secret: bytes) -> list[str | None]:
    """Each identity's encoding, or None where nothing is known."""
    columns = [_part(identities, secret, part) for part in PARTS]
    return [
        ":".join([VERSION, *values]) if ident.known else None
        for ident, *values in zip(identities, *columns, strict=True)
    ]


def parts(encoding: str) -> list[str]:
    """The name, year and day-month parts of an encoding (base64; '' where not known)."""
    return encoding.split(":")[1:]


def decode(part: str) -> bitarray:
    """The bits of one part."""
    bits = bitarray()
    bits.frombytes(base64.b64decode(part))
    return bits


def dice(a: str, b: str) -> float:
    """The Dice coefficient of two parts (0 where either is not known)."""
    if not (a and b):
        return 0.0
    x, y = decode(a), decode(b)
    return 2 * (x & y).count() / (x.count() + y.count())


def applicant_keys(numbers: Iterable[str | None], secret: bytes) -> list[str | None]:
    """Each applicant number's keyed pseudonym, or None where there is no number."""
    canonical = (applicant_number(n) for n in numbers)
    return [
        APPLICANT_KEY + hmac.new(secret, f"applicant_key:{c}".encode(), hashlib.sha256).hexdigest()[:40] if c else None
        for c in canonical
    ]
