"""The privacy ledger, in the private warehouse (schema `ledger`). The ledger is law:

- every measurement is charged before anything is published, with its mechanism, scale and
  privacy loss (ρ, and ε at the spec's δ), and its noisy values are stored with the charge
  in one transaction, so a crash before publishing is recovered from them, never by
  measuring again;
- a release that would exceed the quarter's or the year's cap is refused, writing nothing.

A person counts in the quarter of their first record, and that quarter is frozen when it is
first measured (`ledger.person_quarters`): a late record with an earlier date does not move
a released person into another quarter. So the case tables of different quarters hold
disjoint persons, and a person's loss in a year is what their quarter spent on cases (all
revisions), plus what every quarter of the year spent on screenings (screening rows are not
linked to persons: an applicant may be screened in any quarter), plus the year's annual
tables. The year cap bounds that sum.
"""

import dataclasses
from datetime import datetime, timezone

import duckdb
import opendp.prelude as dp

from dp.spec import ReleaseSpec

dp.enable_features("contrib")

DDL = [
    """CREATE TABLE IF NOT EXISTS ledger.releases (
        release_id VARCHAR PRIMARY KEY,     -- 2025-Q3.1: quarter, then revision
        scope VARCHAR NOT NULL,             -- the persons measured: a quarter (2025-Q3) or a year (2025)
        revision INTEGER NOT NULL,
        status VARCHAR NOT NULL,            -- measured (charged, noise stored) | published
        rho DOUBLE NOT NULL,                -- zCDP spent by this release
        epsilon DOUBLE NOT NULL,            -- the same loss as (ε, δ)-DP
        delta DOUBLE NOT NULL,
        method_version VARCHAR NOT NULL,
        spec_hash VARCHAR NOT NULL,
        released_at TIMESTAMPTZ NOT NULL,   -- when it was measured; the published date
        published_at TIMESTAMPTZ            -- when its files were complete
    )""",
    """CREATE TABLE IF NOT EXISTS ledger.charges (
        release_id VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        marginal VARCHAR NOT NULL,          -- the measured query: a marginal, e.g. exploitation_form*gender
        mechanism VARCHAR NOT NULL,
        sensitivity_l2 INTEGER NOT NULL,    -- one person changes one cell by one
        scale DOUBLE NOT NULL,              -- σ of the discrete Gaussian
        rho DOUBLE NOT NULL,
        epsilon DOUBLE NOT NULL,
        delta DOUBLE NOT NULL,
        areas INTEGER NOT NULL,             -- reporting countries measured (disjoint: parallel composition)
        PRIMARY KEY (release_id, dataset, marginal)
    )""",
    """CREATE TABLE IF NOT EXISTS ledger.person_quarters (
        reporting_country VARCHAR NOT NULL,
        person_id VARCHAR NOT NULL,         -- PRIVATE: as in linked.persons
        quarter VARCHAR NOT NULL,           -- frozen when the quarter was first measured
        release_id VARCHAR NOT NULL,
        PRIMARY KEY (reporting_country, person_id)
    )""",
    """CREATE TABLE IF NOT EXISTS ledger.measurements (
        release_id VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        marginal VARCHAR NOT NULL,
        ref_area VARCHAR NOT NULL,
        noisy BIGINT[] NOT NULL,            -- PRIVATE: the noisy cells, in domain order
        PRIMARY KEY (release_id, dataset, marginal, ref_area)
    )""",
]

MECHANISM = "discrete Gaussian (OpenDP make_gaussian on integer vectors), zCDP"


class BudgetExceeded(Exception):
    """The release would spend more than the ledger allows; nothing was measured."""


@dataclasses.dataclass
class Release:
    release_id: str
    scope: str
    revision: int
    status: str
    rho: float
    epsilon: float
    delta: float
    released_at: datetime


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.sql("CREATE SCHEMA IF NOT EXISTS ledger")
    for ddl in DDL:
        con.sql(ddl)


def epsilon_of(rho: float, delta: float) -> float:
    """ε at δ of a zCDP loss ρ, by OpenDP's conversion."""
    if rho <= 0:
        return 0.0
    m = dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=(2 * rho) ** -0.5)
    return dp.c.make_zCDP_to_approxDP(m).map(1).epsilon(delta)


def releases(con, scope: str | None = None) -> list[Release]:
    where = f"WHERE scope = '{scope}'" if scope else ""
    rows = con.sql(
        f"SELECT release_id, scope, revision, status, rho, epsilon, delta, released_at "
        f"FROM ledger.releases {where} ORDER BY scope, revision"
    ).fetchall()
    return [Release(*r) for r in rows]


def latest(con, scope: str) -> Release | None:
    found = releases(con, scope)
    return found[-1] if found else None


def spent(con, scope: str) -> float:
    return con.sql(f"SELECT coalesce(sum(rho), 0) FROM ledger.releases WHERE scope = '{scope}'").fetchall()[0][0]


LINKED = {"cases"}  # datasets whose rows are linked persons, each in one frozen quarter


def spent_by_dataset(con, scope: str) -> dict[str, float]:
    rows = con.sql(f"""SELECT c.dataset, sum(c.rho) FROM ledger.charges c JOIN ledger.releases r USING (release_id)
                       WHERE r.scope = '{scope}' GROUP BY 1""").fetchall()
    return dict(rows)


def year_load(con, year: str, new_scope: str | None = None, new: dict[str, float] | None = None) -> float:
    """The most any one person of `year` carries: their quarter's case tables, every
    quarter's screenings, and the year's annual tables (with a planned charge added)."""
    new = new or {}

    def spend(scope):
        s = spent_by_dataset(con, scope)
        if scope == new_scope:
            for k, v in new.items():
                s[k] = s.get(k, 0.0) + v
        return s

    quarters = [spend(f"{year}-Q{i}") for i in range(1, 5)]
    linked = max(sum(v for k, v in q.items() if k in LINKED) for q in quarters)
    unlinked = sum(v for q in quarters for k, v in q.items() if k not in LINKED)
    return linked + unlinked + sum(spend(year).values())


def check_caps(con, spec: ReleaseSpec, scope: str, charges: dict[str, float]) -> None:
    """Refuse (BudgetExceeded, with the figures) new charges {dataset: ρ} on `scope`."""
    b = spec.budget
    rho = sum(charges.values())
    if "-Q" in scope:
        now = spent(con, scope)
        if now + rho > b.rho_per_quarter + 1e-12:
            raise BudgetExceeded(
                f"{scope} has spent ρ = {now:.4g} of its quarterly cap {b.rho_per_quarter:g}; "
                f"a release of ρ = {rho:.4g} would exceed it. Raise the cap in dp/release_spec.yaml "
                "only if the data steward accepts the extra privacy loss."
            )
    worst = year_load(con, scope[:4], scope, charges)
    if worst > b.rho_per_year + 1e-12:
        raise BudgetExceeded(
            f"persons of {scope[:4]} would carry ρ = {worst:.4g}, over the yearly cap {b.rho_per_year:g}; "
            "the release was refused and nothing was measured."
        )


def record(
    con, release: Release, spec_hash: str, method_version: str, charges: list[dict], measurements: list[tuple]
) -> None:
    """Charge the release and store its noisy measurements, in one transaction."""
    con.begin()
    try:
        con.execute(
            "INSERT INTO ledger.releases VALUES (?, ?, ?, 'measured', ?, ?, ?, ?, ?, ?, NULL)",
            [
                release.release_id,
                release.scope,
                release.revision,
                release.rho,
                release.epsilon,
                release.delta,
                method_version,
                spec_hash,
                release.released_at,
            ],
        )
        if charges:
            con.executemany(
                "INSERT INTO ledger.charges VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
                [
                    [
                        release.release_id,
                        c["dataset"],
                        c["marginal"],
                        MECHANISM,
                        c["scale"],
                        c["rho"],
                        c["epsilon"],
                        c["delta"],
                        c["areas"],
                    ]
                    for c in charges
                ],
            )
        if "-Q" in release.scope:  # the quarter's persons stay in it, whatever arrives later
            con.execute(
                """INSERT INTO ledger.person_quarters
                SELECT reporting_country, person_id, ?, ? FROM linked.persons p WHERE first_quarter = ?
                AND NOT EXISTS (SELECT 1 FROM ledger.person_quarters f
                                WHERE f.reporting_country = p.reporting_country AND f.person_id = p.person_id)""",
                [release.scope, release.release_id, release.scope],
            )
        if measurements:
            con.executemany(
                "INSERT INTO ledger.measurements VALUES (?, ?, ?, ?, ?)",
                [[release.release_id, *m] for m in measurements],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def mark_published(con, release_id: str) -> None:
    con.execute(
        "UPDATE ledger.releases SET status = 'published', published_at = ? WHERE release_id = ? "
        "AND status = 'measured'",
        [datetime.now(timezone.utc), release_id],
    )


def stored(con, release_id: str) -> tuple[dict, dict]:
    """A release's stored noisy measurements {dataset: {area: {marginal: values}}} and scales
    {dataset: {marginal: σ}}."""
    noisy: dict = {}
    for dataset, marginal, area, values in con.sql(
        f"SELECT dataset, marginal, ref_area, noisy FROM ledger.measurements WHERE release_id = '{release_id}'"
    ).fetchall():
        noisy.setdefault(dataset, {}).setdefault(area, {})[marginal] = values
    scales: dict = {}
    for dataset, marginal, scale in con.sql(
        f"SELECT dataset, marginal, scale FROM ledger.charges WHERE release_id = '{release_id}'"
    ).fetchall():
        scales.setdefault(dataset, {})[marginal] = scale
    return noisy, scales


def budget_table(con, spec: ReleaseSpec) -> list[dict]:
    """Spent and left per scope (quarter or year), for `thb ledger`."""
    out = []
    for (scope,) in con.sql("SELECT DISTINCT scope FROM ledger.releases ORDER BY scope").fetchall():
        rho = spent(con, scope)
        out.append(
            {
                "scope": scope,
                "releases": [r.release_id for r in releases(con, scope)],
                "rho_spent": rho,
                "epsilon_spent": epsilon_of(rho, spec.budget.delta),
                "rho_left_quarter": round(spec.budget.rho_per_quarter - rho, 12) if "-Q" in scope else None,
                "rho_left_year": round(spec.budget.rho_per_year - year_load(con, scope[:4]), 12),
            }
        )
    return out


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
