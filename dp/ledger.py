"""The privacy ledger, in the private warehouse (schema `ledger`). The ledger is law:

- every measurement is charged before anything is published, with its mechanism, scale and
  privacy loss (ρ, and ε at the spec's δ), and its noisy values are stored with the charge
  in one transaction, so a crash before publishing is recovered from them, never by
  measuring again;
- a release that would exceed the quarter's or the year's cap is refused, writing nothing.

A person counts in the quarter of their first record, and that quarter is frozen when it is
first measured, or when the person's year is (`ledger.person_quarters`): a late record with
an earlier date does not move a measured person into another quarter or year. So the case
tables of different quarters hold disjoint persons, and a person's loss in a year is what
their quarter spent on cases (all revisions), plus what every quarter of the year spent on
screenings, plus the year's annual tables. The year cap bounds that sum.

Screenings are not linked to persons and no quarter is frozen for them: they count
applicants (dp/measure.py), once per country and quarter, in every quarter in which the
applicant was screened. So one person is in at most one cell of each screening marginal of
a quarter (sensitivity 1 per measurement), and in the tables of up to all four quarters of
a year: their screening loss is at most the sum of every quarter's screening charges (every
revision), which is what `year_load` adds up for every person of the year, applicant or not.
"""

import dataclasses
from datetime import UTC, datetime
from enum import StrEnum

import duckdb
import opendp.prelude as dp

from dp.spec import ReleaseSpec
from thb.errors import BudgetError
from thb.periods import Period

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
        published_at TIMESTAMPTZ,           -- when its files were complete
        person_rho DOUBLE                   -- the promise to each person of its year once it was charged
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
        quarter VARCHAR NOT NULL,           -- frozen when the quarter, or the year, was first measured
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


class BudgetExceeded(BudgetError):
    """The release would spend more than a cap allows; nothing was measured."""


class LedgerMismatch(BudgetError):
    """The ledger does not hold what the published releases say they spent; nothing was measured."""


class Status(StrEnum):
    """Where a release is in its life: charged with its noise stored, then published."""

    MEASURED = "measured"
    PUBLISHED = "published"


@dataclasses.dataclass(frozen=True)
class Release:
    """One charged release of a scope: a quarter's case and screening tables, or a year's
    capture histories."""

    release_id: str
    scope: Period
    revision: int
    status: Status
    rho: float
    epsilon: float
    delta: float
    released_at: datetime


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger's schema and tables if they are not there."""
    con.sql("CREATE SCHEMA IF NOT EXISTS ledger")
    for ddl in DDL:
        con.sql(ddl)
    con.sql("ALTER TABLE ledger.releases ADD COLUMN IF NOT EXISTS person_rho DOUBLE")  # a wave-1 ledger


def epsilon_of(rho: float, delta: float) -> float:
    """ε at δ of a zCDP loss ρ, by OpenDP's conversion."""
    if rho <= 0:
        return 0.0
    m = dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=(2 * rho) ** -0.5)
    return dp.c.make_zCDP_to_approxDP(m).map(1).epsilon(delta)


def releases(con: duckdb.DuckDBPyConnection, scope: Period | None = None) -> list[Release]:
    """The charged releases, of one scope or all, in order of scope and revision."""
    rows = con.execute(
        "SELECT release_id, scope, revision, status, rho, epsilon, delta, released_at FROM ledger.releases "
        "WHERE ? IS NULL OR scope = ? ORDER BY scope, revision",
        [str(scope) if scope else None] * 2,
    ).fetchall()
    return [Release(r[0], Period.parse(r[1]), r[2], Status(r[3]), *r[4:]) for r in rows]


def latest(con: duckdb.DuckDBPyConnection, scope: Period) -> Release | None:
    """The scope's newest revision, if it was ever charged."""
    found = releases(con, scope)
    return found[-1] if found else None


def is_published(con: duckdb.DuckDBPyConnection, scope: Period) -> bool:
    """Whether the scope's newest revision is published (not merely charged)."""
    last = latest(con, scope)
    return last is not None and last.status is Status.PUBLISHED


def spent(con: duckdb.DuckDBPyConnection, scope: Period) -> float:
    """ρ charged to one scope over all its revisions."""
    ((rho,),) = con.execute(
        "SELECT coalesce(sum(rho), 0) FROM ledger.releases WHERE scope = ?", [str(scope)]
    ).fetchall()
    return rho


LINKED = {"cases"}  # datasets whose rows are linked persons, each in one frozen quarter


def spent_by_dataset(con: duckdb.DuckDBPyConnection, scope: Period) -> dict[str, float]:
    """ρ charged to one scope, per dataset, over all its revisions."""
    rows = con.execute(
        "SELECT c.dataset, sum(c.rho) FROM ledger.charges c JOIN ledger.releases r USING (release_id) "
        "WHERE r.scope = ? GROUP BY 1",
        [str(scope)],
    ).fetchall()
    return dict(rows)


def year_load(
    con: duckdb.DuckDBPyConnection,
    year: Period,
    new_scope: Period | None = None,
    new: dict[str, float] | None = None,
) -> float:
    """The most any one person of `year` carries: their quarter's case tables, every
    quarter's screenings (an applicant counts at most once a quarter, and may be screened in
    all four: the sum is their bound), and the year's annual tables (with a planned charge
    added)."""
    planned = new or {}

    def spend(scope: Period) -> dict[str, float]:
        s = spent_by_dataset(con, scope)
        if scope == new_scope:
            for k, v in planned.items():
                s[k] = s.get(k, 0.0) + v
        return s

    quarters = [spend(q) for q in year.quarters()]
    linked = max(sum(v for k, v in q.items() if k in LINKED) for q in quarters)
    unlinked = sum(v for q in quarters for k, v in q.items() if k not in LINKED)
    return linked + unlinked + sum(spend(year).values())


def reconcile(con: duckdb.DuckDBPyConnection, published: dict[str, float]) -> None:
    """Refuse (LedgerMismatch) unless every published release, {release_id: ρ} as its own
    record states it, is charged in the ledger with that ρ. A ledger restored from an old
    backup, or one beside another warehouse's releases, would otherwise let new releases
    spend what was already spent. Run before any charge."""
    charged = {r.release_id: r.rho for r in releases(con)}
    missing = sorted(i for i in published if i not in charged)
    different = sorted(i for i in published if i in charged and abs(charged[i] - published[i]) > 1e-12)
    if missing or different:
        problems = [f"{', '.join(missing)} published but not charged in the ledger"] if missing else []
        problems += [f"{', '.join(different)} charged with another ρ than published"] if different else []
        raise LedgerMismatch(
            f"the ledger does not match the published releases ({'; '.join(problems)}). It may have "
            "been restored from an old backup, or belong to another warehouse: restore the ledger "
            "that published them before releasing more. Nothing was measured."
        )


def check_caps(con: duckdb.DuckDBPyConnection, spec: ReleaseSpec, scope: Period, charges: dict[str, float]) -> None:
    """Refuse (BudgetExceeded, with the figures) new charges {dataset: ρ} on `scope`."""
    b = spec.budget
    rho = sum(charges.values())
    if scope.is_quarter:
        now = spent(con, scope)
        if now + rho > b.rho_per_quarter + 1e-12:
            raise BudgetExceeded(
                f"{scope} has spent ρ = {now:.4g} of its quarterly cap {b.rho_per_quarter:g}; "
                f"a release of ρ = {rho:.4g} would exceed it. Raise the cap in dp/release_spec.yaml "
                "only if the data steward accepts the extra privacy loss."
            )
    worst = year_load(con, scope.year_period, scope, charges)
    if worst > b.rho_per_year + 1e-12:
        raise BudgetExceeded(
            f"persons of {scope.year} would carry ρ = {worst:.4g}, over the yearly cap {b.rho_per_year:g}; "
            "the release was refused and nothing was measured."
        )


def record(
    con: duckdb.DuckDBPyConnection,
    release: Release,
    spec_hash: str,
    method_version: str,
    charges: list[dict],
    measurements: list[tuple],
) -> None:
    """Charge the release and store its noisy measurements, in one transaction."""
    con.begin()
    try:
        con.execute(
            "INSERT INTO ledger.releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            [
                release.release_id,
                str(release.scope),
                release.revision,
                Status.MEASURED.value,
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
        # the measured persons stay in their quarter and year, whatever arrives later
        column = "first_quarter" if release.scope.is_quarter else "CAST(first_year AS VARCHAR)"
        con.execute(
            f"""INSERT INTO ledger.person_quarters
            SELECT reporting_country, person_id, first_quarter, ? FROM linked.persons p WHERE {column} = ?
            AND NOT EXISTS (SELECT 1 FROM ledger.person_quarters f
                            WHERE f.reporting_country = p.reporting_country AND f.person_id = p.person_id)""",  # noqa: S608 (one of two constants)
            [release.release_id, str(release.scope)],
        )
        if measurements:
            con.executemany(
                "INSERT INTO ledger.measurements VALUES (?, ?, ?, ?, ?)",
                [[release.release_id, *m] for m in measurements],
            )
        con.execute(  # what the release will state, fixed now: a crash or a re-publication states the same
            "UPDATE ledger.releases SET person_rho = ? WHERE release_id = ?",
            [year_load(con, release.scope.year_period), release.release_id],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def mark_published(con: duckdb.DuckDBPyConnection, release_id: str) -> None:
    """A release's files are complete: it is published (once; a second call changes nothing)."""
    con.execute(
        "UPDATE ledger.releases SET status = ?, published_at = ? WHERE release_id = ? AND status = ?",
        [Status.PUBLISHED.value, datetime.now(UTC), release_id, Status.MEASURED.value],
    )


def stored(con: duckdb.DuckDBPyConnection, release_id: str) -> tuple[dict, dict]:
    """A release's stored noisy measurements {dataset: {area: {marginal: values}}} and scales
    {dataset: {marginal: σ}}."""
    noisy: dict = {}
    for dataset, marginal, area, values in con.execute(
        "SELECT dataset, marginal, ref_area, noisy FROM ledger.measurements WHERE release_id = ?", [release_id]
    ).fetchall():
        noisy.setdefault(dataset, {}).setdefault(area, {})[marginal] = values
    scales: dict = {}
    for dataset, marginal, scale in con.execute(
        "SELECT dataset, marginal, scale FROM ledger.charges WHERE release_id = ?", [release_id]
    ).fetchall():
        scales.setdefault(dataset, {})[marginal] = scale
    return noisy, scales


@dataclasses.dataclass(frozen=True)
class ScopeBudget:
    """Spent and left for one scope (a quarter or a year), as `thb ledger` shows it."""

    scope: str
    releases: list[str]
    rho_spent: float
    epsilon_spent: float
    rho_left_quarter: float | None  # None for a year
    rho_left_year: float


def budget_table(con: duckdb.DuckDBPyConnection, spec: ReleaseSpec) -> list[ScopeBudget]:
    """Spent and left per scope (quarter or year), for `thb ledger`."""
    out = []
    for scope in sorted({r.scope for r in releases(con)}):
        rho = spent(con, scope)
        out.append(
            ScopeBudget(
                scope=str(scope),
                releases=[r.release_id for r in releases(con, scope)],
                rho_spent=rho,
                epsilon_spent=epsilon_of(rho, spec.budget.delta),
                rho_left_quarter=round(spec.budget.rho_per_quarter - rho, 12) if scope.is_quarter else None,
                rho_left_year=round(spec.budget.rho_per_year - year_load(con, scope.year_period), 12),
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class Promise:
    """The promise to each person for one calendar year: the most their data has cost, over
    every dataset and revision charged so far, and the cap it can never exceed. A person is
    one person in one reporting country (docs/release.md says what a human recorded in k
    countries, or split by linkage, costs)."""

    year: int
    rho: float  # zCDP: the worst case over the year's persons (year_load)
    epsilon: float  # the same loss as (ε, δ)-DP
    delta: float
    rho_cap: float  # the yearly cap: no release may take a person beyond it
    epsilon_cap: float


def promise(con: duckdb.DuckDBPyConnection, spec: ReleaseSpec, year: int, as_of: str | None = None) -> Promise:
    """The per-person promise of one calendar year, from the ledger's charges: all of them,
    or (`as_of` a release id) those up to that release, as recorded when it was charged."""
    b = spec.budget
    stated = con.execute("SELECT person_rho FROM ledger.releases WHERE release_id = ?", [as_of]).fetchall()
    rho = stated[0][0] if stated and stated[0][0] is not None else year_load(con, Period(year))
    return Promise(year, rho, epsilon_of(rho, b.delta), b.delta, b.rho_per_year, epsilon_of(b.rho_per_year, b.delta))


def promises(con: duckdb.DuckDBPyConnection, spec: ReleaseSpec) -> list[Promise]:
    """The per-person promise of every calendar year with a charge, in order."""
    return [promise(con, spec, y) for y in sorted({r.scope.year for r in releases(con)})]


def now() -> datetime:
    """The time a release is charged, to the second (the published date)."""
    return datetime.now(UTC).replace(microsecond=0)
