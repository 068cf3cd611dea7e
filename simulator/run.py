"""`thb simulate`: the whole world, written as providers' exports plus the ground truth."""

import dataclasses
import hashlib
import json
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.mapping import SourceMapping, load_sources
from data_contracts.codelists import codes, route_role
from simulator.exports import write_export
from simulator.identities import identities
from simulator.onward import arrive, leave
from simulator.records import case_records, delivery_periods, screenings
from simulator.world import detect, params, period_names, simulate_victims


def country_rng(seed: int, country: str) -> np.random.Generator:
    """One generator per country, so a country's world does not depend on the others."""
    return np.random.default_rng([seed, zlib.crc32(country.encode())])


@dataclasses.dataclass(frozen=True)
class CountrySummary:
    """One simulated country: its true victims, those any source saw, and what was exported."""

    victims: int
    seen: int
    rows: int
    files: int
    detection_shift: float  # the calibrated logit shift of every source's detection


@dataclasses.dataclass(frozen=True)
class SimulationSummary:
    """A simulated world: its seed and scale, the rows exported and each country's figures."""

    seed: int
    scale: float
    rows: int
    countries: dict[str, CountrySummary]
    moved_on: int  # humans recorded in a transit country who moved on to a destination


def demo_secret(seed: int, country: str) -> bytes:
    """The simulated linkage secret of a country (a real one is drawn by the country's
    coordinator and handed to its providers only)."""
    return hashlib.sha256(f"thb-simulated-linkage-secret/{seed}/{country}".encode()).hexdigest().encode()


def simulate(
    out: Path,
    seed: int = 2025,
    scale: float = 1.0,
    progress: Callable[[str], None] = lambda country: None,
    kit: bool = True,
) -> SimulationSummary:
    """Write the providers' internal exports (out/providers/<CC>/<source_id>/), their linkage
    secrets (out/secrets/<CC>.key), the truth (out/truth/) and, unless `kit` is False, run
    the provider kit on every internal export into out/landing/; return a summary. Transit
    countries come first: some of their victims move on to a destination (simulator/onward.py).

    >>> import tempfile; from pathlib import Path
    >>> summary = simulate(Path(tempfile.mkdtemp()), seed=1, scale=0.02)
    >>> summary.countries["DE"].victims > summary.countries["DE"].seen > 0
    True
    """
    out = Path(out)
    providers, truth, secrets = out / "providers", out / "truth", out / "secrets"
    truth.mkdir(parents=True, exist_ok=True)
    secrets.mkdir(parents=True, exist_ok=True)
    sources = load_sources()
    victims, records, screened, identified = [], [], [], []
    moving: list[pd.DataFrame] = []  # humans moving on from the transit countries
    summary: dict[str, CountrySummary] = {}
    for country in sorted(codes("reporting_country"), key=lambda c: route_role(c) != "transit"):
        progress(country)
        rng = country_rng(seed, country)
        mine = [s for s in sources.values() if s.country == country]
        world_victims = simulate_victims(rng, country, scale)
        people = identities(country_rng(seed, country + "/identities"), world_victims).set_index(
            world_victims.person_key.to_numpy()
        )
        (secrets / f"{country}.key").write_bytes(demo_secret(seed, country) + b"\n")
        target = 1 / params().countries[country].hidden_ratio
        seen, shift = detect(rng, world_victims, mine, target)
        onward = country_rng(seed, country + "/onward")
        if moving and route_role(country) == "destination":
            arriving = pd.concat(moving, ignore_index=True).query("destination == @country").reset_index(drop=True)
            seen_any = np.logical_or.reduce(list(seen.values())) if seen else np.zeros(len(world_victims), bool)
            world_victims, people = arrive(onward, world_victims, seen_any, people, arriving)
        files = n_records = 0
        mine_records = []
        for source in mine:
            delivery = delivery_periods(rng, source)
            recs = case_records(rng, world_victims, seen[source.source_id], source, delivery)
            records.append(recs)
            mine_records.append(recs)
            kinds = {"case": recs}
            if any(spec.kind == "screening" for spec in source.files):
                kinds["screening"] = screenings(rng, country, recs, source, scale)
                screened.append(_screening_truth(kinds["screening"]))  # not the rows: 98 % of the world
            files += _deliver(rng, source, kinds, delivery, providers, people)
            n_records += sum(len(k) for k in kinds.values())
        if mine_records and route_role(country) == "transit":
            moving.append(leave(onward, world_victims, pd.concat(mine_records), people))
        world_victims["n_sources"] = np.sum(list(seen.values()), axis=0) if seen else 0
        victims.append(world_victims)
        identified.append(people.rename_axis("person_key").reset_index())
        seen_any = int((world_victims.n_sources > 0).sum())
        summary[country] = CountrySummary(len(world_victims), seen_any, n_records, files, round(shift, 4))
    _write_truth(truth, victims, records, screened, identified, seed, scale)
    if kit:
        run_kit(out)
    rows = sum(len(r) for r in records) + sum(int(s.screened.sum()) for s in screened)
    moved_on = sum(int((v.human_id != v.person_key).sum()) for v in victims)
    return SimulationSummary(seed, scale, rows, summary, moved_on)


def _deliver(
    rng, source: SourceMapping, kinds: dict[str, pd.DataFrame], delivery: np.ndarray, root: Path, people: pd.DataFrame
) -> int:
    """One internal export per kind and delivered quarter (header-only when a quarter had no
    records); case records carry their person's identity as the source wrote it."""
    delivered = sorted(set(period_names()[delivery]))
    n = 0
    for spec in source.files:
        frame = kinds[spec.kind]
        for period in delivered:
            part = frame[frame.file_period == period]
            who = people.loc[part.victim_key.to_numpy()] if spec.kind == "case" else None
            write_export(rng, source, spec, part, root, period, who)
            n += 1
    return n


def run_kit(out: Path) -> None:
    """The provider kit on every simulated provider's internal exports, into out/landing/,
    each country with its own secret (as each provider would run it on its own machine)."""
    from provider.kit import export, internal_exports, secrets

    sources = load_sources()
    _, refused = export(
        internal_exports(out / "providers", sources), out / "landing", secrets(out / "secrets"), sources
    )
    if refused:
        raise RuntimeError(f"the provider kit refused {len(refused)} simulated export(s): {refused[0]}")


def _screening_truth(rows: pd.DataFrame) -> pd.DataFrame:
    """Per source and quarter: screenings (rows) and flagged rows; distinct applicants
    screened (what the release counts); applicants first screened; and, of those, how many
    were screened again in a later quarter of the simulated period."""
    keys = ["source_id", "file_period"]
    out = (
        rows.assign(flagged=rows.flagged == "yes", first=rows.screening == "first")
        .groupby(keys)
        .agg(
            screened=("record_id", "size"),
            flagged=("flagged", "sum"),
            applicants=("applicant_number", "nunique"),
            first_screened=("first", "sum"),
        )
    )
    later = rows[rows.screening == "rescreening"].groupby(["source_id", "first_period"]).size()
    out["rescreened_later"] = later.rename_axis(keys).reindex(out.index, fill_value=0)
    return out.reset_index()


def _write_truth(truth: Path, victims, records, screened, identified, seed: int, scale: float) -> None:
    pd.concat(victims, ignore_index=True).to_parquet(truth / "victims.parquet", index=False)
    pd.concat(identified, ignore_index=True).to_parquet(truth / "identities.parquet", index=False)
    pd.concat(records, ignore_index=True).to_parquet(truth / "records.parquet", index=False)
    if screened:
        s = pd.concat(screened).sort_values(["source_id", "file_period"], ignore_index=True)
        s.to_parquet(truth / "screenings.parquet", index=False)
    (truth / "world.json").write_text(
        json.dumps({"seed": seed, "scale": scale, "params": params().model_dump(mode="json")}, indent=1)
    )
