"""The privacy audit end to end: two warehouses that differ by one person's records, built
by the real ingest, linkage and release code, against the promise the ledger makes to that
person (docs/privacy-audit.md).

D' is a simulated world; D is the same world plus one person's records (several records,
several sources, one delivered late, after its quarter was released), written as their
providers write them and anonymised by the real provider kit (simulator/neighbours.py). The
same steps run on both: ingest, release quarters, ingest the late delivery, revise, release
the year. Every count vector a release hands to OpenDP is observed (dp.measure.observed),
with its scale, so the audit compares exactly what the mechanisms saw. Three verdicts:

1. **Same releases.** D and D' publish the same releases and measurements (the calendar
   decides them, not the data).
2. **Charged scales.** Every observed vector was measured at the scale the ledger charged.
3. **The promise holds.** The person's actual loss over the year, ρ = Σ ‖x(D) − x(D')‖² / 2σ²
   over every measurement that moved, is at most the ledger's per-person promise for the year
   (dp.ledger.promise). Exact, for these neighbours.
4. **Empirically** (dp/audit.py's method): n draws of OpenDP's noise on every moved vector of
   D and of D', reduced to the likelihood-ratio statistic, give Clopper-Pearson lower bounds
   ε_lb and μ_lb; they must not exceed the promise's ε and μ = √(2ρ).
"""

import dataclasses
import math
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np

from dp import ledger
from dp.audit import failure_probability, lower_bounds
from dp.estimates import HISTORIES
from dp.measure import gaussian, observed
from dp.spec import release_spec
from simulator.neighbours import PersonRecord, deliver
from thb.periods import Period
from thb.settings import Settings

Key = tuple[str, str, str, str]  # release_id, dataset, marginal, area


@dataclasses.dataclass(frozen=True)
class Deliver:
    """A step: the person's records delivered (in D; the same files without them in D')."""

    records: tuple[PersonRecord, ...]


@dataclasses.dataclass(frozen=True)
class Ingest:
    """A step: ingest every new file in landing/."""


@dataclasses.dataclass(frozen=True)
class Release:
    """A step: `thb release <period>` (a revision when `revise`)."""

    period: str
    revise: bool = False


Step = Deliver | Ingest | Release


@dataclasses.dataclass(frozen=True)
class PathAudit:
    """The verdicts of one end-to-end audit and their figures."""

    releases: list[str]  # what both worlds released, in order
    same_releases: bool
    scales_charged: bool
    moved: int  # measurements (vector × release) that the person moved
    rho: float  # the person's actual loss, from the observed inputs
    promised_rho: float
    promised_epsilon: float
    delta: float
    n: int
    epsilon_lb: float
    mu_lb: float
    shift: float  # the statistic's shift between D' and D under the discrete Gaussian (effective μ)
    seconds: float

    def risk(self) -> dict[str, tuple[float, float]]:
        """How likely the empirical verdict was to exceed the promise, given the shift the
        path produced (dp.audit.failure_probability): for a correct path, the risk of a false
        alarm; for a broken one, the power to see it."""
        return failure_probability(
            self.shift, self.promised_epsilon, math.sqrt(2 * self.promised_rho), self.delta, self.n
        )

    @property
    def passed(self) -> bool:
        """All four verdicts: same releases, charged scales, the promise holds, and the
        empirical bounds are within it."""
        return (
            self.same_releases
            and self.scales_charged
            and self.rho <= self.promised_rho + 1e-9
            and self.epsilon_lb <= self.promised_epsilon
            and self.mu_lb <= math.sqrt(2 * self.promised_rho)
        )


def replay(
    world: Path, data: Path, steps: list[Step], present: bool, today: date, country: str
) -> dict[Key, tuple[float, list]]:
    """Run the steps on a copy of the world's deliveries of one country in `data`; the inputs
    of every release's measurements, {(release_id, dataset, marginal, area): (σ, counts)}."""
    from pipelines.ingest import ingest
    from pipelines.release import release_quarter
    from pipelines.warehouse import connect

    names = {ds.source: name for name, ds in release_spec().datasets.items()} | {HISTORIES: "capture_histories"}
    shutil.copytree(world / "landing" / country, data / "landing" / country)
    settings = Settings(data_dir=data)
    inputs: dict[Key, tuple[float, list]] = {}
    for step in steps:
        if isinstance(step, Deliver):
            deliver(world, data / "landing", list(step.records), present)
        elif isinstance(step, Ingest):
            ingest(data)
        else:
            con = connect(settings.warehouse)
            try:
                with observed() as log:
                    done = release_quarter(con, settings, Period.parse(step.period), step.revise, today=today)
            finally:
                con.close()
            for source, marginal, area, scale, counts in log:
                inputs[(done.release_id, names[source], marginal, area)] = (scale, counts)
    return inputs


def charged_scales(data: Path) -> dict[tuple[str, str, str], float]:
    """{(release_id, dataset, marginal): σ} as the ledger of `data` charged them."""
    import duckdb

    con = duckdb.connect(str(Settings(data_dir=data).warehouse), read_only=True)
    try:
        rows = con.sql("SELECT release_id, dataset, marginal, scale FROM ledger.charges").fetchall()
        return {(r, d, m): s for r, d, m, s in rows}
    finally:
        con.close()


def statistics(moved: list[tuple[float, np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """n draws of the standardised likelihood-ratio statistic on D' (without the person) and
    on D (with), each draw through OpenDP on every moved vector."""
    sd = math.sqrt(sum(float(((d - p) ** 2).sum()) / s**2 for s, d, p in moved))
    mechanisms = [(gaussian(s), (d - p) / s**2, d.tolist(), p.tolist(), p) for s, d, p in moved]
    t0, t1 = np.zeros(n), np.zeros(n)
    for i in range(n):
        for mechanism, weight, with_, without, base in mechanisms:
            t0[i] += (np.array(mechanism(without)) - base) @ weight
            t1[i] += (np.array(mechanism(with_)) - base) @ weight
    return t0 / sd, t1 / sd


def audit_path(
    world: Path, workdir: Path, steps: list[Step], year: int, n: int, today: date, country: str = "DE"
) -> PathAudit:
    """Build D (with the person) and D' (without) from one country of `world` in `workdir`,
    run the steps on both, and audit what their releases measured against D's promise for
    `year`."""
    start = time.perf_counter()
    with_ = replay(world, workdir / "with", steps, True, today, country)
    without = replay(world, workdir / "without", steps, False, today, country)
    charged = charged_scales(workdir / "with")
    spec = release_spec()
    from pipelines.warehouse import connect

    con = connect(Settings(data_dir=workdir / "with").warehouse, read_only=True)
    try:
        promise = ledger.promise(con, spec, year)
    finally:
        con.close()
    moved = [
        (s, np.array(x, dtype=np.int64), np.array(without[k][1], dtype=np.int64))
        for k, (s, x) in sorted(with_.items())
        if k in without and list(x) != list(without[k][1])
    ]
    rho = sum(float(((d - p) ** 2).sum()) / (2 * s**2) for s, d, p in moved)
    t0, t1 = statistics(moved, n) if moved else (np.zeros(n), np.zeros(n))
    epsilon_lb, mu_lb = lower_bounds(t0, t1, promise.delta)
    return PathAudit(
        releases=sorted({k[0] for k in with_}, key=lambda r: (Period.parse(r.split(".")[0]), r)),
        same_releases=set(with_) == set(without),
        scales_charged=all(charged.get(k[:3]) == s for k, (s, _) in with_.items()),
        moved=len(moved),
        rho=rho,
        promised_rho=promise.rho,
        promised_epsilon=promise.epsilon,
        delta=promise.delta,
        n=n,
        epsilon_lb=epsilon_lb,
        mu_lb=mu_lb,
        shift=math.sqrt(sum(float(((d - p) ** 2).sum()) / (s**2 - 1 / 12) for s, d, p in moved)),
        seconds=time.perf_counter() - start,
    )


def scenario(year: int) -> list[Step]:
    """The audited path for one year of the German sources: the person is recorded by the
    police and an NGO in the year's second quarter, the quarters are released, a late NGO
    record dated in the first quarter arrives, the second quarter is revised and the year
    released."""
    first = (
        PersonRecord("DE-POL-BKA", date(year, 5, 10), "audit1"),
        PersonRecord("DE-NGO-KOK", date(year, 6, 20), "audit2"),
    )
    late = (PersonRecord("DE-NGO-KOK", date(year, 2, 15), "audit3"),)
    steps: list[Step] = [Deliver(first), Ingest()]
    steps += [Release(str(q)) for q in Period(year).quarters()]
    steps += [Deliver(late), Ingest(), Release(f"{year}-Q2", revise=True), Release(str(year))]
    return steps
