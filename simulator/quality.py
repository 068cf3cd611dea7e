"""How well the warehouse's linkage found the simulated world's persons: pairwise precision,
recall and F1 of linked.record_persons against truth/records.parquet, per country and overall;
and how many privacy units a simulated human is (a human recorded in k countries is k units,
a person whose records linkage split in k is k units). Demo and benchmarks only: real data has
no truth to compare with.

>>> import pandas as pd
>>> linked = pd.DataFrame({"reporting_country": ["AT"] * 3, "person_id": ["a", "a", "b"], "victim_key": [1, 1, 1]})
>>> pairwise(linked)["AT"]
Quality(records=3, true_pairs=3, linked_pairs=1, correct_pairs=1, precision=1.0, recall=0.3333333333333333, f1=0.5)
"""

import dataclasses
from pathlib import Path

import duckdb
import pandas as pd


@dataclasses.dataclass(frozen=True)
class Quality:
    """Pairwise linkage quality: of the pairs of records linked, how many are one person
    (precision); of the pairs that are one person, how many were linked (recall)."""

    records: int
    true_pairs: int
    linked_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float

    @classmethod
    def of(cls, records: int, true: int, linked: int, correct: int) -> "Quality":
        """The rates from the counts (1 where there is nothing to find or nothing linked)."""
        p = correct / linked if linked else 1.0
        r = correct / true if true else 1.0
        return cls(records, true, linked, correct, p, r, 2 * p * r / (p + r) if p + r else 0.0)


def _pairs(groups) -> int:
    sizes = groups.size()
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise(linked: pd.DataFrame) -> dict[str, Quality]:
    """Quality per country and overall ('_T') of records with a `person_id` (linked) and a
    `victim_key` (truth)."""
    counts = {}
    for cc, g in linked.groupby("reporting_country"):
        counts[str(cc)] = (
            len(g),
            _pairs(g.groupby("victim_key")),
            _pairs(g.groupby("person_id")),
            _pairs(g.groupby(["person_id", "victim_key"])),
        )
    out = {cc: Quality.of(*c) for cc, c in counts.items()}
    out["_T"] = Quality.of(*(sum(c[i] for c in counts.values()) for i in range(4)))
    return out


def _records(truth: Path) -> pd.DataFrame:
    """The truth's record → victim map."""
    return pd.read_parquet(Path(truth) / "records.parquet", columns=["source_id", "record_id", "victim_key"])


def _linked(con: duckdb.DuckDBPyConnection, records: pd.DataFrame) -> pd.DataFrame:
    """The warehouse's linked.record_persons, each record with its true victim."""
    linked = con.sql("SELECT reporting_country, source_id, record_id, person_id FROM linked.record_persons").df()
    return linked.merge(records, on=["source_id", "record_id"])


def linkage_quality(con: duckdb.DuckDBPyConnection, truth: Path) -> dict[str, Quality]:
    """The warehouse's linkage against the simulated truth (truth/records.parquet)."""
    return pairwise(_linked(con, _records(truth)))


@dataclasses.dataclass(frozen=True)
class PrivacyUnits:
    """How many privacy units the simulated humans are (docs/linkage.md). The unit is a person
    within one reporting country, as linkage made it: a human recorded in k countries is k
    units, and so is a person whose records linkage split into k linked persons."""

    humans: int
    """Humans with a record at any source."""
    countries: dict[int, float]
    """k → share of those humans recorded in k countries."""
    persons: int
    """True persons (one victim within one country) with records in the warehouse; 0 without one."""
    split: dict[int, float]
    """k → share of those persons whose records linkage put into k linked persons."""

    @property
    def split_share(self) -> float:
        """Share of the true persons that linkage split into two or more linked persons."""
        return sum(share for k, share in self.split.items() if k >= 2)


def shares(counts: pd.Series) -> dict[int, float]:
    """k → share of the units with that k, k ascending.

    >>> shares(pd.Series([1, 2, 1, 1]))
    {1: 0.75, 2: 0.25}
    """
    return {int(k): float(v) for k, v in counts.value_counts(normalize=True).sort_index().items()}


def countries_per_human(victims: pd.DataFrame, records: pd.DataFrame) -> pd.Series:
    """For each human with a record at any source (by human_id), the number of countries that
    recorded them, from the truth's victims (person_key, human_id, country) and records
    (victim_key).

    >>> victims = pd.DataFrame({"person_key": ["a", "b", "c", "d"], "human_id": ["a", "a", "c", "d"],
    ...                         "country": ["GR", "DE", "DE", "AT"]})
    >>> countries_per_human(victims, pd.DataFrame({"victim_key": ["a", "b", "b", "c"]})).to_dict()
    {'a': 2, 'c': 1}
    """
    recorded = victims[victims.person_key.isin(records.victim_key)]
    return recorded.groupby("human_id").country.nunique()


def persons_split(linked: pd.DataFrame) -> pd.Series:
    """For each true person (a `victim_key` within a `reporting_country`), the number of
    linked persons (`person_id`) their records were put into."""
    return linked.groupby(["reporting_country", "victim_key"]).person_id.nunique()


def privacy_units(truth: Path, con: duckdb.DuckDBPyConnection | None = None) -> PrivacyUnits:
    """How many privacy units the simulated world's humans are: from truth/ (victims.parquet,
    records.parquet) and, given the warehouse, its linked.record_persons."""
    victims = pd.read_parquet(Path(truth) / "victims.parquet", columns=["person_key", "human_id", "country"])
    records = _records(truth)
    countries = countries_per_human(victims, records)
    split = persons_split(_linked(con, records)) if con is not None else pd.Series(dtype=int)
    return PrivacyUnits(len(countries), shares(countries), len(split), shares(split))
