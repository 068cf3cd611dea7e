"""simulator/quality.py's privacy units on a tiny hand-built truth and warehouse: which humans
are in how many countries, and which true persons linkage split into how many linked persons."""

import duckdb
import pandas as pd
import pytest

from simulator.quality import privacy_units

# h1 was recorded in GR and again in DE; h2 in DE only; h3 in AT only, by no source; h4 in AT.
VICTIMS = pd.DataFrame(
    {
        "person_key": ["pk-gr-1", "pk-de-1", "pk-de-2", "pk-at-3", "pk-at-4"],
        "human_id": ["pk-gr-1", "pk-gr-1", "pk-de-2", "pk-at-3", "pk-at-4"],
        "country": ["GR", "DE", "DE", "AT", "AT"],
    }
)
# (source, record, victim, the person linkage made of it, its reporting country)
RECORDS = [
    ("GR-POL-HP", "HP-1", "pk-gr-1", "p-gr-a", "GR"),
    ("GR-ASY-GAS", "GAS-1", "pk-gr-1", "p-gr-a", "GR"),
    ("DE-POL-BKA", "BKA-1", "pk-de-1", "p-de-a", "DE"),
    ("DE-NGO-KOK", "KOK-1", "pk-de-1", "p-de-b", "DE"),  # linkage missed this one: h1 is split in DE
    ("DE-ASY-BAMF", "BAMF-1", "pk-de-1", "p-de-c", "DE"),  # ... into three
    ("DE-POL-BKA", "BKA-2", "pk-de-2", "p-de-d", "DE"),
    ("AT-POL-BK", "BK-1", "pk-at-4", "p-at-a", "AT"),
    ("AT-NGO-LEFOE", "LEF-1", "pk-at-4", "p-at-a", "AT"),
]


@pytest.fixture
def truth(tmp_path):
    folder = tmp_path / "truth"
    folder.mkdir()
    VICTIMS.to_parquet(folder / "victims.parquet", index=False)
    records = pd.DataFrame(RECORDS, columns=["source_id", "record_id", "victim_key", "person_id", "country"])
    records[["source_id", "record_id", "victim_key"]].to_parquet(folder / "records.parquet", index=False)
    return folder


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA linked")
    con.execute(
        "CREATE TABLE linked.record_persons (reporting_country TEXT, source_id TEXT, record_id TEXT, person_id TEXT)"
    )
    con.executemany(
        "INSERT INTO linked.record_persons VALUES (?, ?, ?, ?)", [(cc, s, r, p) for s, r, _, p, cc in RECORDS]
    )
    yield con
    con.close()


def test_humans_by_the_countries_that_recorded_them(truth):
    """Three humans have records (h3 has none): h1 in two countries, h2 and h4 in one."""
    units = privacy_units(truth)
    assert units.humans == 3
    assert units.countries == pytest.approx({1: 2 / 3, 2: 1 / 3})
    assert (units.persons, units.split, units.split_share) == (0, {}, 0)  # no warehouse: no linkage to judge


def test_persons_by_the_linked_persons_linkage_made_of_them(truth, warehouse):
    """Four true persons within a country (h1 in GR, h1 in DE, h2, h4): h1's DE records are in
    three linked persons, the others' in one each."""
    units = privacy_units(truth, warehouse)
    assert units.countries == pytest.approx({1: 2 / 3, 2: 1 / 3})
    assert units.persons == 4
    assert units.split == pytest.approx({1: 3 / 4, 3: 1 / 4})
    assert units.split_share == pytest.approx(1 / 4)


def test_records_the_warehouse_does_not_hold_are_not_judged(truth, warehouse):
    """A quarantined file's records never reached linkage: its persons are not counted as split."""
    warehouse.execute("DELETE FROM linked.record_persons WHERE source_id IN ('DE-NGO-KOK', 'DE-ASY-BAMF')")
    units = privacy_units(truth, warehouse)
    assert units.persons == 4
    assert units.split == {1: 1.0}
    assert units.countries == pytest.approx({1: 2 / 3, 2: 1 / 3})  # the truth says who was recorded
