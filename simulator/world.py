"""The true population of victims in one country and the records its sources made.

Everything is vectorised over victims with one numpy Generator; no loop per record.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import brentq
from scipy.special import expit

from connectors.mapping import SourceMapping
from data_contracts.codelists import codes, route_role
from thb.periods import quarter_start, quarters

CHILD = ["0-11", "12-17"]
TRANSIT_COUNTRIES = [c for c in codes("reporting_country") if route_role(c) == "transit"]
FIRST_STAGE = ["ngo", "asylum", "police", "labour_inspection"]  # referral-driven types come after


@cache
def params() -> dict:
    return yaml.safe_load((Path(__file__).parent / "world.yaml").read_text(encoding="utf-8"))


def periods() -> list[str]:
    return quarters(params()["period"]["first"], params()["period"]["last"])


def choose(rng: np.random.Generator, shares: dict, n: int) -> np.ndarray:
    """n draws from a {value: share} table (shares need not sum to one)."""
    keys = list(shares)
    p = np.array([shares[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def random_keys(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    """n pseudonymous keys: prefix + 16 hex digits, from the generator's bytes."""
    hex16 = np.frombuffer(rng.bytes(8 * n).hex().encode(), dtype="S16").astype(str)
    return np.char.add(prefix, hex16).astype(object)


@dataclass
class CountryWorld:
    victims: pd.DataFrame  # the truth: one row per victim
    records: pd.DataFrame  # one row per case record, in harmonised codes, with file_period
    screenings: pd.DataFrame  # one row per screened asylum applicant, with file_period
    shift: float  # the calibrated detection shift (logit)


def seasonal_volume(per_year: float, scale: float) -> np.ndarray:
    """Expected volume per quarter of the period, with seasonality and growth."""
    p, qs = params(), periods()
    first_year = int(qs[0][:4])
    season = np.array([p["seasonality"][int(q[-1]) - 1] for q in qs])
    growth = p["growth_per_year"] ** np.array([int(q[:4]) - first_year for q in qs])
    return per_year * scale / 4 * season * growth


def draw_dates(rng, quarter_idx: np.ndarray) -> np.ndarray:
    """A uniform day within each given quarter."""
    qs = periods()
    starts = np.array([quarter_start(q) for q in qs] + [quarter_start(_next(qs[-1]))])
    length = np.diff(starts).astype(np.int64)
    return starts[quarter_idx] + rng.integers(0, length[quarter_idx])


def _next(q: str) -> str:
    y, n = int(q[:4]), int(q[-1])
    return f"{y + n // 4}-Q{n % 4 + 1}"


def period_end() -> np.datetime64:
    return quarter_start(_next(periods()[-1])) - np.timedelta64(1, "D")


def simulate_victims(rng, country: str, scale: float) -> pd.DataFrame:
    """The true victims of one country over the whole period."""
    p = params()
    c = p["countries"][country]
    role = route_role(country)
    n_q = rng.poisson(seasonal_volume(c["registered"] * c["hidden_ratio"], scale))
    qi = np.repeat(np.arange(len(n_q)), n_q)
    n = len(qi)
    form = choose(rng, p["forms"], n)
    female_p = pd.Series(form).map(p["female_share"]).to_numpy(float)
    u = rng.random(n)
    other = p["other_gender_share"]
    gender = np.where(u < other, "other", np.where(u < other + (1 - other) * female_p, "female", "male"))
    age = choose(rng, p["ages"], n)
    stage = choose(rng, p["route_stage"].get(country, p["route_stage"][role]), n)
    child = np.isin(age, CHILD)
    foreign = stage != "origin"
    eu = foreign & (rng.random(n) < p["eu_share"])
    eu_mix = {k: v for k, v in p["eu_citizenship"].items() if k != country}
    citizenship = np.where(
        ~foreign, country, np.where(eu, choose(rng, eu_mix, n), choose(rng, p["third_country_citizenship"], n))
    )
    transit_elsewhere = (stage == "transit") & (role == "destination")
    exploitation_country = np.where(transit_elsewhere, choose(rng, dict.fromkeys(TRANSIT_COUNTRIES, 1), n), country)
    third_country = foreign & ~eu
    return pd.DataFrame(
        {
            "person_key": random_keys(rng, n, f"pk-{country.lower()}-"),
            "country": country,
            "entry_period": np.array(periods(), dtype=object)[qi],
            "entry_date": draw_dates(rng, qi),
            "exploitation_form": form,
            "route_stage": stage,
            "gender": gender,
            "age_group": age,
            "citizenship": citizenship,
            "exploitation_country": exploitation_country,
            "unaccompanied_child": child & (rng.random(n) < p["unaccompanied_share_of_children"][role]),
            "smuggling_debt": foreign & (rng.random(n) < p["smuggling_debt_share"][role]),
            "asylum_applicant": third_country & (rng.random(n) < p["asylum_applicant_share"]),
            "visibility": rng.normal(0, p["visibility_sd"], n),
        }
    )


def detection_logits(victims: pd.DataFrame, source_type: str) -> np.ndarray:
    """Each victim's logit of being seen by a source of this type (no shift, no referral)."""
    eff = params()["detection"][source_type]
    x = {
        "male": victims.gender.to_numpy() == "male",
        "labour": victims.exploitation_form.to_numpy() == "labour",
        "sexual": victims.exploitation_form.to_numpy() == "sexual",
        "transit": victims.route_stage.to_numpy() == "transit",
        "child": victims.age_group.isin(CHILD).to_numpy(),
    }
    logit = eff["base"] + victims.visibility.to_numpy()
    for k, v in x.items():
        logit = logit + eff.get(k, 0.0) * v
    if source_type == "asylum":  # only applicants meet the asylum service
        logit = np.where(victims.asylum_applicant.to_numpy(), logit, -np.inf)
    return logit


def calibrate(logits: dict[str, np.ndarray], target: float) -> float:
    """The shift that makes the mean chance of being seen by any source equal `target`
    (victims nobody referred meet the referral-driven sources at their base rate)."""
    if not logits or len(next(iter(logits.values()))) == 0:
        return 0.0
    stacked = np.vstack(list(logits.values()))

    def seen_share(shift: float) -> float:
        return float(np.mean(1 - np.prod(1 - expit(stacked + shift), axis=0))) - target

    return brentq(seen_share, -20, 20, xtol=1e-6)


def detect(rng, victims: pd.DataFrame, sources: list[SourceMapping], target: float) -> tuple[dict, float]:
    """Which sources saw which victims: {source_id: bool array}, and the calibrated shift."""
    logits = {s.source_id: detection_logits(victims, s.source_type) for s in sources}
    shift = calibrate(logits, target)
    seen: dict[str, np.ndarray] = {}
    for s in sorted(sources, key=lambda s: s.source_type not in FIRST_STAGE):
        logit = logits[s.source_id] + shift
        for referrer_type, effect in params()["detection"][s.source_type].get("referred_by", {}).items():
            by = [seen[r.source_id] for r in sources if r.source_type == referrer_type and r.source_id in seen]
            if by:
                logit = logit + effect * np.logical_or.reduce(by)
        seen[s.source_id] = rng.random(len(victims)) < expit(logit)
    return seen, shift
