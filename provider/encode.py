"""Keyed Bloom-filter encodings of a person's identifiers (CLKs, built by clkhash).

The fields and their weights are clkhash's own schema, encoding.json: name bigrams, sex,
year of birth (neighbouring years share bits) and day and month of birth (the smaller number
first, so that a swapped day and month still agree). The keys of every hash come from the
country's linkage secret (HKDF), which only providers hold: without it nobody can encode a
guessed name to compare. Each 1024-bit filter is then *balanced* (the filter and its
complement, 2048 bits, every encoding with 1024 bits set, so the count of set bits says
nothing about the length of a name) and its bits put in an order drawn from the secret.
The Dice coefficient of two balanced encodings is the share of the original bits on which
they agree (docs/linkage.md). An encoding is written 'v1:' and the bits in base64 (the tag
names this scheme, and keeps a spreadsheet from reading a leading + as a formula).

>>> secret = b"a linkage secret of at least 32 characters"
>>> a = encode([Identity(("ahmadi", "mohamad"), "m", 1990, 5, 17)], secret)[0]
>>> b = encode([Identity(("ahmadi", "mohamad"), "m", 1990, 17, 5)], secret)[0]
>>> a == b, len(a), dice(a, a)
(True, 347, 1.0)
>>> encode([Identity((), "", None, None, None)], secret)
[None]
"""

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from bitarray import bitarray

from thb.errors import ConfigError

SCHEMA_FILE = Path(__file__).parent / "encoding.json"
SECRET_ENV = "THB_LINKAGE_SECRET"
MIN_SECRET_BYTES = 32
VERSION = "v1:"  # of encoding.json and the balancing: encodings of two versions never compare


class Identity(NamedTuple):
    """A person's identifiers in canonical form (provider/normalise.py)."""

    name: tuple[str, ...]
    sex: str  # f, m or '' (not known)
    year: int | None
    month: int | None
    day: int | None

    def features(self) -> list[str]:
        """The values of encoding.json's fields, '' where not known."""
        day_month = "-".join(f"{v:02d}" for v in sorted((self.month, self.day))) if self.month and self.day else ""
        return [" ".join(self.name), self.sex, str(self.year or ""), day_month]

    @property
    def known(self) -> bool:
        """Whether anything is known to encode."""
        return bool(self.name or self.year)


@cache
def schema():
    """The encoding's fields and weights (encoding.json, clkhash's schema format v3). clkhash
    is imported here: the warehouse decodes encodings but never makes one."""
    from clkhash import schema as clk_schema

    return clk_schema.from_json_dict(json.loads(SCHEMA_FILE.read_text()))


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
def _order(secret: bytes, bits: int) -> np.ndarray:
    """A keyed order of the balanced encoding's bits."""
    keys = [hmac.new(secret, b"order:%d" % i, hashlib.sha256).digest() for i in range(bits)]
    return np.array(sorted(range(bits), key=keys.__getitem__))


def _balanced(filters: list[bitarray], secret: bytes) -> np.ndarray:
    """Each filter and its complement, in the secret's order: one row of bytes per filter."""
    packed = np.frombuffer(b"".join(f.tobytes() for f in filters), dtype=np.uint8).reshape(len(filters), -1)
    bits = np.unpackbits(packed, axis=1)
    whole = np.concatenate([bits, 1 - bits], axis=1)
    return np.packbits(whole[:, _order(secret, whole.shape[1])], axis=1)


def encode(identities: Sequence[Identity], secret: bytes) -> list[str | None]:
    """Each identity's encoding (base64 of 2048 bits), or None where nothing is known."""
    if not identities:
        return []
    from clkhash import clk

    filters = clk.generate_clks([i.features() for i in identities], schema(), secret, max_workers=1)
    rows = _balanced(filters, secret)
    return [
        VERSION + base64.b64encode(row.tobytes()).decode() if i.known else None
        for i, row in zip(identities, rows, strict=True)
    ]


def decode(encoding: str) -> bitarray:
    """The bits of an encoding."""
    bits = bitarray()
    bits.frombytes(base64.b64decode(encoding.removeprefix(VERSION)))
    return bits


def dice(a: str, b: str) -> float:
    """The Dice coefficient of two encodings."""
    x, y = decode(a), decode(b)
    return 2 * (x & y).count() / (x.count() + y.count())
