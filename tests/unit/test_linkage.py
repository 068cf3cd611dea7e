"""The linkage (pipelines/link.py) on random records, against a plain pandas computation of
what docs/warehouse.md and pipelines/linkage.yaml say: one person per key and country, a
keyless record its own person, the first quarter (or the frozen one), the reconciled
attributes by source-type precedence, and the capture histories of the person's (frozen) year."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from data_contracts.codelists import codes
from pipelines.link import link, precedence
from pipelines.warehouse import connect
from tests.helpers import SOURCES

CASES = 40
PERSON_COLUMNS = [
    "reporting_country", "person_id", "linkable", "first_date", "first_quarter", "first_year", "status",
    "exploitation_form", "route_stage", "gender", "age_group", "exploitation_country", "citizenship",
    "unaccompanied_child", "smuggling_debt", "referred_to_assistance", "identification_date", "n_records",
    "sources", "sources_first_year", "quarter_frozen",
]  # fmt: skip
BY_SOURCE = ["rank", "reference_date", "source_id", "record_id"]
BY_DATE = ["reference_date", "rank", "source_id", "record_id"]


def random_records(rng: np.random.Generator) -> pd.DataFrame:
    """Records of a few countries: keys drawn from a small pool (shared across countries,
    where they are different persons), some keyless, dates from a few days over three years
    (ties in every ordering), every coded field sometimes 'unknown', the others sometimes null."""
    countries = rng.choice(sorted({s.country for s in SOURCES.values()}), size=rng.integers(1, 4), replace=False)
    sources = [s for s in SOURCES.values() if s.country in countries]
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 3 * 365, size=12)]
    n = int(rng.integers(1, 120))

    def some(values, none_share=0.0):
        return [None if rng.random() < none_share else values[rng.integers(len(values))] for _ in range(n)]

    picked = [sources[i] for i in rng.integers(len(sources), size=n)]
    return pd.DataFrame(
        {
            "file_id": "f1",
            "record_no": np.arange(n),
            "source_id": [s.source_id for s in picked],
            "source_type": [s.source_type for s in picked],
            "reporting_country": [s.country for s in picked],
            "record_id": [f"r{rng.integers(1000)}-{i}" for i in range(n)],
            "person_key": some([f"pk-{k}" for k in range(max(1, n // 4))], none_share=0.3),
            "reference_date": some(days),
            "status": some(codes("status")),
            "exploitation_form": some(codes("exploitation_form")),
            "route_stage": some(codes("route_stage")),
            "exploitation_country": some(["DE", "GR", "RO"], none_share=0.5),
            "citizenship": some(["NG", "SY", "UA"], none_share=0.5),
            "gender": some(codes("gender")),
            "age_group": some(codes("age_group")),
            "unaccompanied_child": some([True, False], none_share=0.4),
            "smuggling_debt": some([True, False], none_share=0.4),
            "identification_date": some(days, none_share=0.6),
            "referred_to_assistance": some([True, False], none_share=0.4),
        }
    )


def expected_persons(records: pd.DataFrame, frozen: dict[tuple[str, str], str]) -> pd.DataFrame:
    keys = ["reporting_country", "person_id"]
    r = records.assign(
        person_id=records.person_key.where(
            records.person_key.notna(), "record:" + records.source_id + "/" + records.record_id
        ),
        rank=records.source_type.map({t: i for i, t in enumerate(precedence())}),
        reference_date=pd.to_datetime(records.reference_date),
        identification_date=pd.to_datetime(records.identification_date),
    )
    # 'unknown' is no value: with it as null, first() is the first known value in each order
    known = r.replace({f: {"unknown": None} for f in ("exploitation_form", "route_stage", "gender", "age_group")})
    by_source, by_date = known.sort_values(BY_SOURCE).groupby(keys), known.sort_values(BY_DATE).groupby(keys)
    first = r.groupby(keys).reference_date.min().rename("first")
    year = first.dt.year.rename("year")  # the first record's year, unless the person's quarter is frozen
    year = pd.Series([int(frozen[k][:4]) if k in frozen else y for k, y in year.items()], index=year.index, name="year")
    in_first_year = r.join(year, on=keys).pipe(lambda x: x[x.reference_date.dt.year == x["year"]])
    flags = r.groupby(keys).referred_to_assistance
    p = pd.DataFrame(
        {
            "linkable": r.groupby(keys).person_key.count() > 0,
            "first_date": first.dt.date,
            "status": r.status.eq("identified").groupby([r.reporting_country, r.person_id]).any(),
            **{f: by_source[f].first() for f in ("exploitation_form", "route_stage", "gender")},
            "age_group": by_date.age_group.first(),  # age at first contact
            **{
                f: by_source[f].first()
                for f in ("exploitation_country", "citizenship", "unaccompanied_child", "smuggling_debt")
            },
            "referred_to_assistance": flags.apply(lambda s: bool(s.dropna().any()) if s.notna().any() else None),
            "identification_date": r.groupby(keys).identification_date.min().dt.date,
            "n_records": r.groupby(keys).size(),
            "sources": r.groupby(keys).source_id.agg(lambda s: sorted(set(s))),
            "sources_first_year": in_first_year.groupby(keys).source_id.agg(lambda s: sorted(set(s))),
        }
    ).reset_index()
    for f in ("exploitation_form", "route_stage", "gender", "age_group"):
        p[f] = p[f].fillna("unknown")
    p["sources_first_year"] = [s if isinstance(s, list) else [] for s in p.sources_first_year]  # none that year
    p["status"] = p.status.map({True: "identified", False: "presumed"})
    computed = p.first_date.map(lambda d: f"{d.year}-Q{(d.month - 1) // 3 + 1}")
    p["first_quarter"] = [
        frozen.get(k, q) for k, q in zip(zip(p.reporting_country, p.person_id, strict=True), computed, strict=True)
    ]
    p["first_year"] = p.first_quarter.str[:4].astype(int)
    p["quarter_frozen"] = [k in frozen for k in zip(p.reporting_country, p.person_id, strict=True)]
    out = p[PERSON_COLUMNS].astype(object)
    return out.where(out.notna(), None)  # nulls as None, as DuckDB gives them


def expected_histories(persons: pd.DataFrame) -> list[tuple]:
    """Per country and year, each combination of lists (1 saw the person in their first year,
    0 did not, null for another country's list) and how many keyed persons have it."""
    ids = sorted(SOURCES)
    keyed = persons[persons.linkable.astype(bool)]
    table = pd.DataFrame(
        {
            sid: [
                (int(sid in seen) if SOURCES[sid].country == country else None)
                for country, seen in zip(keyed.reporting_country, keyed.sources_first_year, strict=True)
            ]
            for sid in ids
        },
        index=keyed.index,
        dtype=object,
    )
    table.insert(0, "year", keyed.first_year)
    table.insert(0, "reporting_country", keyed.reporting_country)
    counts = table.groupby(list(table.columns), dropna=False).size()
    return canonical(key + (n,) for key, n in counts.items())


def canonical(rows) -> list[tuple]:
    """Rows in one order, nulls as None and whole numbers as int (pandas may give 1.0 or NaN)."""
    plain = [tuple(None if pd.isna(v) else int(v) if isinstance(v, float | np.number) else v for v in r) for r in rows]
    return sorted(plain, key=repr)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    """One empty warehouse for every case (each clears what the last one left)."""
    con = connect(tmp_path_factory.mktemp("linkage") / "w.duckdb")
    yield con
    con.close()


@pytest.mark.parametrize("seed", range(CASES))
def test_persons_and_histories_are_the_pandas_ones(seed, con):
    rng = np.random.default_rng(seed)
    records = random_records(rng)
    con.sql("DELETE FROM harmonised.case_records")
    con.sql("DELETE FROM ledger.person_quarters")
    con.register("records", records)
    con.sql("INSERT INTO harmonised.case_records BY NAME SELECT * FROM records")
    con.unregister("records")
    unfrozen = expected_persons(records, {})
    frozen = {
        (c, p): f"{rng.integers(2023, 2026)}-Q{rng.integers(1, 5)}"
        for c, p in zip(unfrozen.reporting_country, unfrozen.person_id, strict=True)
        if rng.random() < 0.2
    }
    for (c, p), q in frozen.items():  # released persons stay in their quarter, whatever their first record
        con.execute("INSERT INTO ledger.person_quarters VALUES (?, ?, ?, 'x.1')", [c, p, q])
    link(con, SOURCES)
    got = con.sql(f"SELECT {', '.join(PERSON_COLUMNS)} FROM linked.persons ORDER BY 1, 2").fetchall()  # noqa: S608 — this module's column names
    histories = con.sql("SELECT * FROM linked.capture_histories").fetchall()
    columns = [c for (c,) in con.sql("SELECT column_name FROM (DESCRIBE linked.capture_histories)").fetchall()]
    expected = expected_persons(records, frozen).sort_values(["reporting_country", "person_id"])
    assert got == [tuple(row) for row in expected.itertuples(index=False)]
    assert columns == ["reporting_country", "year", *sorted(SOURCES), "count"]
    assert canonical(histories) == expected_histories(expected)
