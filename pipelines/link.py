"""Link records into persons (one row per person per reporting country) and build the
capture histories (per country and year, which sources saw each person).

Within a reporting country, records that share a person_key, or whose identity encodings
the matching puts together (pipelines/match.py, docs/linkage.md), are one person; a record
with neither is its own person (linked.record_persons says which person each record is).
A person belongs to the quarter of their first record, frozen once that quarter, or their
year, is measured for a release (ledger.person_quarters): a late record with an earlier
date does not move a measured person.
Capture histories count a person in their (frozen) year, captured by the sources that
recorded them in that year: a closed year's table does not change when later years arrive,
and a late record of an earlier year does not move a measured person out of it. Only
linkable persons (a key or an encoding) have a history: a record with neither cannot be
found on another list, and counting it as a person of its own would hide overlaps and
inflate the estimate of the unseen (docs/mse.md).
"""

from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from pydantic import field_validator

from connectors.mapping import SourceMapping
from data_contracts.codelists import codes
from pipelines.match import Encodings, Pairs, candidate_pairs, clusters, comparisons, match_probabilities
from thb.config import ConfigModel, load_yaml
from thb.sql import ident, literal


class Linkage(ConfigModel):
    """linkage.yaml: how records are linked into persons and reconciled (docs/warehouse.md)."""

    source_type_precedence: list[str]
    """Every source type once, most trusted first: where a person's records disagree, the first known value wins."""
    encodings: Encodings
    """Matching of the provider kit's identity encodings."""

    @field_validator("source_type_precedence")
    @classmethod
    def _every_type_once(cls, v: list[str]) -> list[str]:
        if sorted(v) != sorted(codes("source_type")):
            raise ValueError(f"list every source type exactly once: {', '.join(codes('source_type'))}")
        return v


@cache
def linkage(path: Path = Path(__file__).parent / "linkage.yaml") -> Linkage:
    """The linkage rules (linkage.yaml, validated)."""
    return load_yaml(path, Linkage)


def precedence() -> list[str]:
    """Source types, most trusted first."""
    return linkage().source_type_precedence


def _pick(field: str, known: str, order: str) -> str:
    return f"arg_min({field}, {order}) FILTER (WHERE {known}) AS {field}"


def persons_sql() -> str:
    """One row per person and country from harmonised.case_records; the precedence of source
    types is bound as $ranks. A person's quarter and year are those frozen in
    ledger.person_quarters if they were ever measured, else those of their first record; the
    sources of their capture history are those that recorded them in that year."""
    by_source = "(rank, reference_date, source_id, record_id)"
    by_date = "(reference_date, rank, source_id, record_id)"
    coded = [_pick(f, f"{f} <> 'unknown'", by_source) for f in ("exploitation_form", "route_stage", "gender")]
    return f"""
    WITH k AS (
        SELECT c.*, r.person_id, list_position($ranks, source_type) AS rank, f.quarter AS frozen_quarter
        FROM harmonised.case_records c JOIN linked.record_persons r USING (reporting_country, source_id, record_id)
        LEFT JOIN ledger.person_quarters f USING (reporting_country, person_id)),
    r AS (SELECT *, coalesce(CAST(left(frozen_quarter, 4) AS INTEGER),
                             year(min(reference_date) OVER (PARTITION BY reporting_country, person_id))) AS person_year
          FROM k)
    SELECT reporting_country, person_id, bool_or(person_key IS NOT NULL OR identity_encoding IS NOT NULL) AS linkable,
           min(reference_date) AS first_date,
           coalesce(any_value(frozen_quarter), year(min(reference_date)) || '-Q' || quarter(min(reference_date)))
               AS first_quarter,
           any_value(person_year) AS first_year,
           CASE WHEN bool_or(status = 'identified') THEN 'identified' ELSE 'presumed' END AS status,
           {", ".join(coded)},
           {_pick("age_group", "age_group <> 'unknown'", by_date)},
           {_pick("exploitation_country", "exploitation_country IS NOT NULL", by_source)},
           {_pick("citizenship", "citizenship IS NOT NULL", by_source)},
           {_pick("unaccompanied_child", "unaccompanied_child IS NOT NULL", by_source)},
           {_pick("smuggling_debt", "smuggling_debt IS NOT NULL", by_source)},
           bool_or(referred_to_assistance) AS referred_to_assistance,
           min(identification_date) AS identification_date,
           count(*) AS n_records,
           list(DISTINCT source_id ORDER BY source_id) AS sources,
           coalesce(list(DISTINCT source_id ORDER BY source_id) FILTER (WHERE year(reference_date) = person_year), [])
               AS sources_first_year,
           any_value(frozen_quarter) IS NOT NULL AS quarter_frozen
    FROM r GROUP BY reporting_country, person_id"""  # noqa: S608 (generated from constants)


def record_persons(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Which person each case record is: (reporting_country, source_id, record_id, person_id).
    A person's id is its smallest shared key, else the record first loaded ('record:<source>/<id>'),
    so that it stays the same as later deliveries arrive."""
    records = con.sql(
        """SELECT c.reporting_country, c.source_id, c.record_id, c.person_key, c.identity_encoding,
                  c.citizenship, c.gender, c.exploitation_form, c.route_stage, c.exploitation_country,
                  c.age_group, c.reference_date
        FROM harmonised.case_records c LEFT JOIN landing.manifest m USING (file_id)
        ORDER BY c.reporting_country, m.processed_at NULLS LAST, c.file_id, c.record_no"""
    ).df()
    settings = linkage().encodings
    countries = dict(list(records.groupby("reporting_country", sort=True)))
    named = records.identity_encoding.str.split(":").str[1].str.len() > 0  # encodings with a name part
    encoded = {cc: rows[named.loc[rows.index].fillna(False).astype(bool)] for cc, rows in countries.items()}
    pairs = {cc: candidate_pairs(rows.identity_encoding.tolist(), settings) for cc, rows in encoded.items()}
    levels = [comparisons(pairs[cc], encoded[cc]) for cc in countries]
    probability = match_probabilities(np.concatenate(levels)) if levels else np.empty(0)
    ids, start = [], 0
    for cc, rows in countries.items():
        where = rows.index.get_indexer(encoded[cc].index)
        p = pairs[cc]
        cluster = clusters(
            len(rows),
            Pairs(p.score, where[p.left], where[p.right], p.compared),
            probability[start : start + len(p.score)],
            settings.match_probability,
            [k if isinstance(k, str) else None for k in rows.person_key],
        )
        start += len(p.score)
        first = pd.Series(np.arange(len(rows))).groupby(cluster).transform("min").to_numpy()
        own = ("record:" + rows.source_id + "/" + rows.record_id).to_numpy()[first]
        key = rows.person_key.groupby(cluster).transform("min").to_numpy()
        ids.append(pd.Series(np.where(pd.isna(key), own, key), index=rows.index))
    out = records[["reporting_country", "source_id", "record_id"]].copy()
    out["person_id"] = pd.concat(ids) if ids else pd.Series(dtype=object)
    return out


def link(
    con: duckdb.DuckDBPyConnection, sources: dict[str, SourceMapping], persons_of: pd.DataFrame | None = None
) -> None:
    """Rebuild linked.record_persons, linked.persons and linked.capture_histories in one
    transaction. `persons_of` (reporting_country, source_id, record_id, person_id) replaces
    the linkage's own answer: benchmarks compare linkages on the same records."""
    persons_of = record_persons(con) if persons_of is None else persons_of
    unknown = ["exploitation_form", "route_stage", "gender", "age_group"]
    fill = ", ".join(f"coalesce({f}, 'unknown') AS {f}" for f in unknown)
    history = ", ".join(  # one 0/1 column per registered source, named by its validated id
        f"CASE WHEN reporting_country = {literal(s.country)} "
        f"THEN list_contains(sources_first_year, {literal(s.source_id)})::INTEGER END AS {ident(s.source_id)}"
        for s in sorted(sources.values(), key=lambda s: s.source_id)
    )
    con.begin()
    try:
        con.register("__record_persons", persons_of)
        con.sql("CREATE OR REPLACE TABLE linked.record_persons AS SELECT * FROM __record_persons")
        con.unregister("__record_persons")
        con.execute(
            f"CREATE OR REPLACE TABLE linked.persons AS SELECT * REPLACE ({fill}) FROM ({persons_sql()})",  # noqa: S608 (constants)
            {"ranks": precedence()},
        )
        con.sql(f"""CREATE OR REPLACE TABLE linked.capture_histories AS
            SELECT reporting_country, first_year AS year, {history}, count(*) AS count
            FROM linked.persons WHERE linkable GROUP BY ALL ORDER BY ALL""")  # noqa: S608 (codes, quoted)
        con.commit()
    except BaseException:
        con.rollback()
        raise
