"""Link records into persons (one row per person per reporting country) and build the
capture histories (per country and year, which sources saw each person).

Within a reporting country, records that share a person_key are one person; a record
without a key is its own person. A person belongs to the quarter of their first record.
"""

from functools import cache
from pathlib import Path

import duckdb
import yaml

from connectors.mapping import SourceMapping


@cache
def precedence() -> list[str]:
    text = (Path(__file__).parent / "linkage.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["source_type_precedence"]


def _pick(field: str, known: str, order: str) -> str:
    return f"arg_min({field}, {order}) FILTER (WHERE {known}) AS {field}"


def persons_sql() -> str:
    ranks = "[" + ", ".join(f"'{t}'" for t in precedence()) + "]"
    by_source = "(rank, reference_date, source_id, record_id)"
    by_date = "(reference_date, rank, source_id, record_id)"
    coded = [_pick(f, f"{f} <> 'unknown'", by_source) for f in ("exploitation_form", "route_stage", "gender")]
    return f"""
    WITH r AS (
        SELECT *, coalesce(person_key, 'record:' || source_id || '/' || record_id) AS person_id,
               list_position({ranks}, source_type) AS rank
        FROM harmonised.case_records)
    SELECT reporting_country, person_id, bool_or(person_key IS NOT NULL) AS has_key,
           min(reference_date) AS first_date,
           year(min(reference_date)) || '-Q' || quarter(min(reference_date)) AS first_quarter,
           year(min(reference_date)) AS first_year,
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
           list(DISTINCT source_id ORDER BY source_id) AS sources
    FROM r GROUP BY reporting_country, person_id"""


def link(con: duckdb.DuckDBPyConnection, sources: dict[str, SourceMapping]) -> None:
    """Rebuild linked.persons and linked.capture_histories in one transaction."""
    unknown = ["exploitation_form", "route_stage", "gender", "age_group"]
    fill = ", ".join(f"coalesce({f}, 'unknown') AS {f}" for f in unknown)
    history = ", ".join(
        f"CASE WHEN reporting_country = '{s.country}' THEN list_contains(sources, '{s.source_id}')::INTEGER END "
        f'AS "{s.source_id}"'
        for s in sorted(sources.values(), key=lambda s: s.source_id)
    )
    con.begin()
    try:
        con.sql(f"CREATE OR REPLACE TABLE linked.persons AS SELECT * REPLACE ({fill}) FROM ({persons_sql()})")
        con.sql(f"""CREATE OR REPLACE TABLE linked.capture_histories AS
            SELECT reporting_country, first_year AS year, {history}, count(*) AS count
            FROM linked.persons GROUP BY ALL ORDER BY ALL""")
        con.commit()
    except BaseException:
        con.rollback()
        raise
