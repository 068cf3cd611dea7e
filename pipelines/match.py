"""Which records are one person, from the provider kit's identity encodings (docs/linkage.md).

Within each reporting country:

1. **Blocking.** Records are compared when their name parts agree on all bits of at least
   one of `blocking_tables` fixed samples of `blocking_bits` bit positions (Hamming LSH): two
   encodings that agree on a share s of their bits meet with probability 1 - (1 - s^bits)^tables,
   0.999 at s = 0.9. benchmarks/linkage.py measures the recall this keeps.
2. **Candidates.** Pairs whose name parts' Dice coefficient reaches `floor` (numpy's popcount
   over 64-bit words).
3. **Weights from the data** (Fellegi–Sunter). Each candidate is compared on its name band,
   year and day-month of birth (the same, near, different, or not known: a missing date is
   not a different one), and the attributes the records hold in clear. How often each level
   occurs among non-matches (u) is counted on all candidates, nearly all of them different
   people; among matches (m), and the share of matches, by EM. The floor keeps that share
   large enough for EM to find it (below 0.83 the strangers outnumber the matches 200 to one
   and EM settles on a spurious class).
4. **Clusters.** Records sharing a person_key start together; then, most probable pair first,
   two clusters merge when the *average* match probability over all their pairs of records
   reaches `match_probability` (average linkage: one strong pair cannot chain two unrelated
   people together).
"""

import dataclasses
import hashlib
from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd
from pydantic import Field

from data_contracts.codelists import codes
from provider.encode import decode, parts
from thb.config import ConfigModel


class Encodings(ConfigModel):
    """How identity encodings are matched (pipelines/match.py, docs/linkage.md)."""

    blocking_bits: int = Field(ge=4, le=64)
    """Bits of each blocking key: more bits, fewer comparisons, less recall."""
    blocking_tables: int = Field(ge=1, le=200)
    """Blocking keys per record: more keys, more recall, more comparisons."""
    floor: float = Field(ge=0.5, le=1)
    """Scores below this are never kept as candidates."""
    match_probability: float = Field(gt=0, lt=1)
    """Pairs are linked when their match probability, estimated from the data, reaches this."""


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Candidate pairs of one country's records (indices into its list), with their scores."""

    score: np.ndarray
    left: np.ndarray
    right: np.ndarray
    compared: int  # pairs whose encodings were compared (after blocking)


@cache
def _positions(tables: int, bits: int, length: int) -> np.ndarray:
    """The bit positions of each blocking key: a fixed, public choice (tables × bits)."""
    order = [sorted(range(length), key=lambda i: hashlib.sha256(f"{t}:{i}".encode()).digest()) for t in range(tables)]
    return np.array([o[:bits] for o in order])


def _matrix(part: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """One part of each encoding as rows of 64-bit words (zeros where not known), and
    whether it is known."""
    known = np.array([bool(p) for p in part], dtype=bool)
    if not len(part):
        return np.zeros((0, 1), dtype=np.uint64), known
    size = next((len(decode(p).tobytes()) for p in part if p), 8)
    raw = b"".join(decode(p).tobytes() if p else bytes(size) for p in part)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(part), -1).view(np.uint64), known


def _dice(words: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    ones = np.bitwise_count(words).sum(axis=1)
    common = np.bitwise_count(words[left] & words[right]).sum(axis=1)
    return 2 * common / np.maximum(ones[left] + ones[right], 1)


def candidate_pairs(encodings: Sequence[str], settings: Encodings) -> Pairs:
    """Pairs of distinct records whose name parts share a blocking key and score at least
    `settings.floor`, each pair once (vectorised: numpy's popcount over 64-bit words).
    Every encoding must hold a name part."""
    n = len(encodings)
    if n < 2:
        return Pairs(np.empty(0), np.empty(0, int), np.empty(0, int), 0)
    words, _ = _matrix([parts(e)[0] for e in encodings])
    bits = np.unpackbits(words.view(np.uint8), axis=1)
    positions = _positions(settings.blocking_tables, settings.blocking_bits, bits.shape[1])
    found = []
    weights = np.uint64(1) << np.arange(settings.blocking_bits, dtype=np.uint64)
    for table in positions:
        keys = pd.DataFrame({"key": (bits[:, table].astype(np.uint64) * weights).sum(axis=1), "i": np.arange(n)})
        keys = keys[keys.duplicated("key", keep=False)]
        both = keys.merge(keys, on="key")
        found.append(both[both.i_x < both.i_y][["i_x", "i_y"]].to_numpy())
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 2), int)
    left, right = pairs[:, 0], pairs[:, 1]
    score = _dice(words, left, right)
    keep = score >= settings.floor
    return Pairs(score[keep], left[keep], right[keep], len(pairs))


COMPARED = ("citizenship", "gender", "exploitation_form")
NAME_LEVELS = (0.85, 0.9, 0.95)  # the name parts' score, in bands
BIRTH_LEVELS = {"year": (0.75, 0.99), "day_month": (0.99,)}  # different / near / the same
DAYS_APART = (90, 365)  # records of one person are made within months of each other


def comparisons(pairs: Pairs, records: pd.DataFrame) -> np.ndarray:
    """One row of levels per pair: the name parts' score band; the year and the day and month
    of birth (bands of their parts' score, or not known); for each attribute the records hold
    in clear agree (1), disagree (0) or not known (2); the age groups (same, adjacent,
    further apart, not known); and the days between the records (bands)."""
    a, b = records.iloc[pairs.left], records.iloc[pairs.right]
    cols = [np.digitize(pairs.score, NAME_LEVELS)]
    split = [parts(e) for e in records.identity_encoding]
    for i, levels in enumerate(BIRTH_LEVELS.values(), start=1):
        words, known = _matrix([p[i] for p in split])
        both = known[pairs.left] & known[pairs.right]
        score = _dice(words, pairs.left, pairs.right)
        cols.append(np.where(both, np.digitize(score, levels), len(levels) + 1))
    for field in COMPARED:
        x, y = a[field].to_numpy(object), b[field].to_numpy(object)
        known = pd.notna(x) & pd.notna(y) & (x != "unknown") & (y != "unknown")
        cols.append(np.where(known, (x == y).astype(int), 2))
    age = {g: i for i, g in enumerate(codes("age_group")) if g != "unknown"}
    x, y = a.age_group.map(age).to_numpy(float), b.age_group.map(age).to_numpy(float)
    cols.append(np.where(np.isnan(x) | np.isnan(y), 3, 2 - np.minimum(np.abs(x - y), 2)).astype(int))
    days = np.abs((a.reference_date.to_numpy() - b.reference_date.to_numpy()).astype("timedelta64[D]").astype(int))
    cols.append(len(DAYS_APART) - np.digitize(days, DAYS_APART))
    return np.column_stack(cols)


def match_probabilities(levels: np.ndarray, iterations: int = 500) -> np.ndarray:
    """Fellegi–Sunter: each pair's probability of being one person (comparisons independent
    within matches and within non-matches). How often each level occurs among non-matches
    (u) is counted on all candidate pairs, which are nearly all different people; how often
    among matches (m), and the share of matches, are estimated by EM."""
    if len(levels) == 0:
        return np.empty(0)
    n_levels = levels.max(axis=0) + 1
    onehots = [np.eye(k)[levels[:, j]] for j, k in enumerate(n_levels)]
    log_u = sum(np.log(oh @ _shares(oh, np.ones(len(levels)))) for oh in onehots)
    p = np.clip((levels[:, 0] == len(NAME_LEVELS)).astype(float), 0.05, 0.95)  # start: the best band are matches
    for _ in range(iterations):
        share = p.mean()
        log_m = sum(np.log(oh @ _shares(oh, p)) for oh in onehots)
        new = 1 / (1 + np.exp(np.log(1 - share) + log_u - np.log(share) - log_m))
        if np.max(np.abs(new - p)) < 1e-7:
            break
        p = new
    return p


def _shares(onehot: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weighted share of each level (never exactly 0 or 1)."""
    counts = weight @ onehot + 0.5
    return counts / counts.sum()


def clusters(n: int, pairs: Pairs, probability: np.ndarray, threshold: float, keys: Sequence[str | None]) -> np.ndarray:
    """A cluster number per record: shared keys first, then average-linkage merges of the
    pairs whose match probability reaches `threshold`, most probable first."""
    parent = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        members[a].extend(members.pop(b))

    first_with_key: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key is not None:
            if key in first_with_key and (a := find(first_with_key[key])) != (b := find(i)):
                union(a, b)
            first_with_key.setdefault(key, i)
    score = {(int(a), int(b)): float(s) for s, a, b in zip(probability, pairs.left, pairs.right, strict=True)}
    for k in np.argsort(-probability, kind="stable"):
        if probability[k] < threshold:
            break
        a, b = find(int(pairs.left[k])), find(int(pairs.right[k]))
        if a == b:
            continue
        cross = [score.get((min(x, y), max(x, y)), 0.0) for x in members[a] for y in members[b]]
        if sum(cross) / len(cross) >= threshold:
            union(a, b)
    return np.array([find(i) for i in range(n)])
