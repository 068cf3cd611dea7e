"""How well the warehouse's linkage found the simulated world's persons: pairwise precision,
recall and F1 of linked.record_persons against truth/records.parquet, per country and overall.
Demo and benchmarks only: real data has no truth to compare with.

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


def linkage_quality(con: duckdb.DuckDBPyConnection, truth: Path) -> dict[str, Quality]:
    """The warehouse's linkage against the simulated truth (truth/records.parquet)."""
    records = pd.read_parquet(Path(truth) / "records.parquet", columns=["source_id", "record_id", "victim_key"])
    linked = con.sql("SELECT reporting_country, source_id, record_id, person_id FROM linked.record_persons").df()
    return pairwise(linked.merge(records, on=["source_id", "record_id"]))
