"""`thb simulate`: the whole world, written as providers' exports plus the ground truth."""

import dataclasses
import json
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.mapping import SourceMapping, load_sources
from data_contracts.codelists import codes
from simulator.exports import write_export
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


def simulate(
    out: Path, seed: int = 2025, scale: float = 1.0, progress: Callable[[str], None] = lambda country: None
) -> SimulationSummary:
    """Write out/landing/<CC>/<source_id>/<files> and out/truth/; return a summary.

    >>> import tempfile; from pathlib import Path
    >>> summary = simulate(Path(tempfile.mkdtemp()), seed=1, scale=0.02)
    >>> summary.countries["DE"].victims > summary.countries["DE"].seen > 0
    True
    """
    out = Path(out)
    landing, truth = out / "landing", out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    sources = load_sources()
    victims, records, screened = [], [], []
    summary: dict[str, CountrySummary] = {}
    for country in codes("reporting_country"):
        progress(country)
        rng = country_rng(seed, country)
        mine = [s for s in sources.values() if s.country == country]
        world_victims = simulate_victims(rng, country, scale)
        target = 1 / params().countries[country].hidden_ratio
        seen, shift = detect(rng, world_victims, mine, target)
        files = n_records = 0
        for source in mine:
            delivery = delivery_periods(rng, source)
            recs = case_records(rng, world_victims, seen[source.source_id], source, delivery)
            records.append(recs)
            kinds = {"case": recs}
            if any(spec.kind == "screening" for spec in source.files):
                kinds["screening"] = screenings(rng, country, recs, source, scale)
                screened.append(_screening_truth(kinds["screening"]))  # not the rows: 98 % of the world
            files += _deliver(rng, source, kinds, delivery, landing)
            n_records += sum(len(k) for k in kinds.values())
        world_victims["n_sources"] = np.sum(list(seen.values()), axis=0) if seen else 0
        victims.append(world_victims)
        seen_any = int((world_victims.n_sources > 0).sum())
        summary[country] = CountrySummary(len(world_victims), seen_any, n_records, files, round(shift, 4))
    _write_truth(truth, victims, records, screened, seed, scale)
    rows = sum(len(r) for r in records) + sum(int(s.screened.sum()) for s in screened)
    return SimulationSummary(seed, scale, rows, summary)


def _deliver(rng, source: SourceMapping, kinds: dict[str, pd.DataFrame], delivery: np.ndarray, landing: Path) -> int:
    """One file per kind and delivered quarter (header-only when a quarter had no records)."""
    delivered = sorted(set(period_names()[delivery]))
    n = 0
    for spec in source.files:
        frame = kinds[spec.kind]
        for period in delivered:
            write_export(rng, source, spec, frame[frame.file_period == period], landing, period)
            n += 1
    return n


def _screening_truth(rows: pd.DataFrame) -> pd.DataFrame:
    """Applicants screened and flagged, per source and delivered quarter."""
    return (
        rows.assign(flagged=rows.flagged == "yes")
        .groupby(["source_id", "file_period"])
        .agg(screened=("record_id", "size"), flagged=("flagged", "sum"))
        .reset_index()
    )


def _write_truth(truth: Path, victims, records, screened, seed: int, scale: float) -> None:
    pd.concat(victims, ignore_index=True).to_parquet(truth / "victims.parquet", index=False)
    pd.concat(records, ignore_index=True).to_parquet(truth / "records.parquet", index=False)
    if screened:
        s = pd.concat(screened).sort_values(["source_id", "file_period"], ignore_index=True)
        s.to_parquet(truth / "screenings.parquet", index=False)
    (truth / "world.json").write_text(
        json.dumps({"seed": seed, "scale": scale, "params": params().model_dump(mode="json")}, indent=1)
    )
