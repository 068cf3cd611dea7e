"""The true population of victims in one country and the records its sources made.

Everything is vectorised over victims with one numpy Generator; no loop per record.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator
from scipy.optimize import brentq
from scipy.special import expit

from connectors.mapping import SourceMapping
from data_contracts.codelists import ROUTE_ROLES, codes, country_codes, route_role
from thb.config import ConfigModel, load_yaml
from thb.periods import Period, quarter_start

WORLD_FILE = Path(__file__).parent / "world.yaml"
CHILD = ["0-11", "12-17"]
TRANSIT_COUNTRIES = [c for c in codes("reporting_country") if route_role(c) == "transit"]
DESTINATION_COUNTRIES = [c for c in codes("reporting_country") if route_role(c) == "destination"]
FIRST_STAGE = ["ngo", "asylum", "police", "labour_inspection"]  # referral-driven types come after

Share = Annotated[float, Field(ge=0)]  # a weight of a {value: share} table (need not sum to one)
Probability = Annotated[float, Field(ge=0, le=1)]


def _keys(table: dict, allowed: list[str] | tuple[str, ...], what: str, complete: bool = False) -> None:
    """Raise if a table has keys outside `allowed` (or, if complete, lacks some)."""
    if unknown := [k for k in table if k not in allowed]:
        raise ValueError(f"{unknown} are not {what} (expected: {', '.join(allowed)})")
    if complete and (missing := [k for k in allowed if k not in table]):
        raise ValueError(f"missing {what}: {missing}")


def _shares(table: dict[str, float]) -> None:
    if table and sum(table.values()) <= 0:
        raise ValueError("the shares add up to zero: nothing to draw")


class SimulatedPeriod(ConfigModel):
    """The quarters simulated."""

    first: Period
    """The first quarter, e.g. 2023-Q1."""
    last: Period
    """The last quarter, e.g. 2025-Q4."""

    @model_validator(mode="after")
    def _quarters_in_order(self):
        if not (self.first.is_quarter and self.last.is_quarter):
            raise ValueError("first and last are quarters, like 2023-Q1")
        if self.last < self.first:
            raise ValueError(f"{self.first} is after {self.last}")
        return self


class Country(ConfigModel):
    """One reporting country's volumes."""

    registered: int = Field(gt=0)
    """Victims registered a year (Eurostat / national reports)."""
    hidden_ratio: float = Field(ge=1)
    """True victims / registered victims."""
    screenings: int = Field(ge=0)
    """Asylum applicants screened for THB indicators a year."""


class Detection(ConfigModel):
    """The logit of the chance that a source of one type sees a victim."""

    base: float
    """The logit for a victim with none of the attributes below."""
    male: float = 0.0
    """Effect of being male."""
    labour: float = 0.0
    """Effect of labour exploitation."""
    sexual: float = 0.0
    """Effect of sexual exploitation."""
    transit: float = 0.0
    """Effect of exploitation in a transit country."""
    child: float = 0.0
    """Effect of being a child."""
    referred_by: dict[str, float] = {}
    """Source type → effect of having been seen by a source of that type (list dependence)."""

    @field_validator("referred_by")
    @classmethod
    def _referrers(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, codes("source_type"), "source types")
        return v


class UnknownShares(ConfigModel):
    """The share of records that say 'unknown' for a coded field."""

    exploitation_form: Probability
    route_stage: Probability
    gender: Probability
    age_group: Probability
    unaccompanied_child: Probability
    smuggling_debt: Probability
    referred_to_assistance: Probability


class MissingCountryShares(ConfigModel):
    """The share of records that leave a country field empty."""

    citizenship: Probability
    exploitation_country: Probability


class Screening(ConfigModel):
    """Asylum applicants screened: who they are (those not flagged) and how often an
    applicant is screened again under the same applicant number."""

    male_share: Probability
    """Share of men among the applicants."""
    ages: dict[str, Share]
    """Age group → share among the applicants."""
    second_interview_share: Probability
    """Share of applicants screened a second time in the quarter of their first screening."""
    rescreening_share: Probability
    """Share of applicants screened again in a later quarter (after an appeal or a transfer)."""
    rescreening_delay_days: tuple[int, int]
    """Days from the first screening to the re-screening (uniform, both ends included)."""

    @field_validator("ages")
    @classmethod
    def _ages(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, codes("age_group"), "age groups")
        _shares(v)
        return v

    @field_validator("rescreening_delay_days")
    @classmethod
    def _later_quarter(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 92 <= v[0] <= v[1]:
            raise ValueError("need 92 <= shortest <= longest: a re-screening falls in a later quarter")
        return v


class Onward(ConfigModel):
    """Humans on the move: victims recorded in a transit country who are later recorded in a
    destination country too (simulator/onward.py)."""

    share: Probability
    """Share of the victims recorded in a transit country who move on and are recorded in a destination."""
    destinations: dict[str, Share]
    """Destination country → weight among those who move on."""
    gap_days: float = Field(ge=0)
    """Mean days from a human's last record in the transit country to their arrival in the destination."""

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, DESTINATION_COUNTRIES, "destination countries")
        _shares(v)
        return v

    @model_validator(mode="after")
    def _somewhere_to_go(self):
        if self.share > 0 and not self.destinations:
            raise ValueError("a share moves on, but no destination is given")
        return self


class IdentityErrors(ConfigModel):
    """How often one type of source slips when it writes an identity down (per record)."""

    typo: Probability
    """A name part with one letter dropped, doubled, swapped or replaced."""
    father_name_dropped: Probability
    """The father's name left out (by sources that do not ask for it)."""
    swapped_order: Probability
    """Given and family name written in each other's place."""
    missing_given: Probability
    """The given name left empty."""
    missing_family: Probability
    """The family name left empty."""
    dob_missing: Probability
    """No date of birth."""
    dob_year_only: Probability
    """The year of birth alone."""
    dob_year_off: Probability
    """The year of birth estimated one year off."""
    dob_placeholder: Probability
    """1 January written for an unknown day and month (people without exact birth dates)."""
    dob_swapped: Probability
    """Day and month swapped (where the day is 12 or less)."""


class Identity(ConfigModel):
    """How identities are drawn and written down (simulator/identities.py)."""

    name_frequency_exponent: dict[Literal["given", "family"], float]
    """Names are drawn with weight 1 / rank^exponent from pools ordered most common first."""
    pool_fallback: dict[str, str]
    """Citizenship without a pool of its own → the pool it draws from."""
    exact_birth_dates: list[str]
    """Populations with civil registers: their dates of birth are never a 1 January placeholder."""
    scripts: dict[str, Literal["latin", "greek", "cyrillic"]]
    """Reporting country or source_id → the script its sources write names in (default latin)."""
    romanisation: dict[str, list[str]]
    """Reporting country → the romanisations its clerks use for Greek and Cyrillic names."""
    keeps_diacritics: list[str]
    """Reporting countries whose Latin-script sources keep diacritics (others write plain letters)."""
    variant_share: Probability
    """Share of names written in a variant spelling (Muhammad for Mohammad)."""
    errors: dict[str, IdentityErrors]
    """Source type → its slips (every source type)."""
    notes: list[str]
    """Free-text notes a case worker writes ({given}: the person's given name)."""

    @field_validator("errors")
    @classmethod
    def _every_source_type(cls, v: dict) -> dict:
        _keys(v, codes("source_type"), "source types", complete=True)
        return v


class WorldParams(ConfigModel):
    """world.yaml: the simulated world's parameters (docs/simulator.md)."""

    period: SimulatedPeriod
    growth_per_year: float = Field(gt=0)
    """Registered victims of a year / of the year before."""
    seasonality: list[Share] = Field(min_length=4, max_length=4)
    """Q1..Q4: relative volume of each quarter."""
    countries: dict[str, Country]
    """Reporting country → its volumes (every reporting country)."""
    forms: dict[str, Share]
    """Form of exploitation → true share."""
    female_share: dict[str, Probability]
    """Form of exploitation → share of women and girls among its victims."""
    other_gender_share: Probability
    ages: dict[str, Share]
    """Age group → true share."""
    route_stage: dict[str, dict[str, Share]]
    """Route role (transit, destination) or reporting country → {route stage: share}."""
    unaccompanied_share_of_children: dict[str, Probability]
    """Route role → share of children who are unaccompanied."""
    smuggling_debt_share: dict[str, Probability]
    """Route role → share of victims from abroad in debt to smugglers."""
    asylum_applicant_share: Probability
    """Share of third-country nationals who apply for asylum."""
    third_country_citizenship: dict[str, Share]
    """ISO 3166-1 alpha-2 → share among third-country nationals."""
    eu_citizenship: dict[str, Share]
    """ISO 3166-1 alpha-2 → share among EU citizens from another country."""
    eu_share: Probability
    """Share of EU citizens among the victims not exploited in their own country."""
    visibility_sd: float = Field(ge=0)
    """Standard deviation of the individual visibility shared by all lists (logit)."""
    detection: dict[str, Detection]
    """Source type → its detection model (every source type)."""
    contact_delay_days: dict[str, float]
    """Source type → mean days from entry to the first contact (every source type)."""
    identified_share: dict[str, Probability]
    """Source type → share of its records formally identified (others: none)."""
    identification_delay_days: float = Field(ge=0)
    """Mean days from the record to the formal identification."""
    missing_person_key: dict[str, Probability]
    """Source type → share of records without a person key (every source type)."""
    duplicate_share: Probability
    """Share of persons registered twice by one source."""
    late_share: Probability
    """Share of records delivered a quarter late."""
    missed_delivery: dict[str, Probability]
    """Source type → chance a source skips a quarter's delivery (others: never)."""
    unknown_share: UnknownShares
    missing_country_share: MissingCountryShares
    age_misreport_share: Probability
    """Share of records with an adjacent age group."""
    screening: Screening
    onward: Onward
    identity: Identity

    @field_validator("countries")
    @classmethod
    def _countries(cls, v: dict[str, Country]) -> dict[str, Country]:
        _keys(v, codes("reporting_country"), "reporting countries", complete=True)
        return v

    @field_validator("forms", "female_share")
    @classmethod
    def _forms(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, codes("exploitation_form"), "forms of exploitation")
        return v

    @field_validator("ages")
    @classmethod
    def _ages(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, codes("age_group"), "age groups")
        return v

    @field_validator("route_stage")
    @classmethod
    def _route_stage(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        _keys(v, (*ROUTE_ROLES, *codes("reporting_country")), "route roles or reporting countries")
        _keys({k: t for k, t in v.items() if k in ROUTE_ROLES}, ROUTE_ROLES, "route roles", complete=True)
        for table in v.values():
            _keys(table, codes("route_stage"), "route stages")
            _shares(table)
        return v

    @field_validator("unaccompanied_share_of_children", "smuggling_debt_share")
    @classmethod
    def _by_role(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, ROUTE_ROLES, "route roles", complete=True)
        return v

    @field_validator("third_country_citizenship", "eu_citizenship")
    @classmethod
    def _citizenships(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, country_codes(), "ISO 3166-1 alpha-2 codes")
        _shares(v)
        return v

    @field_validator("detection", "contact_delay_days", "missing_person_key")
    @classmethod
    def _every_source_type(cls, v: dict) -> dict:
        _keys(v, codes("source_type"), "source types", complete=True)
        return v

    @field_validator("identified_share", "missed_delivery")
    @classmethod
    def _some_source_types(cls, v: dict[str, float]) -> dict[str, float]:
        _keys(v, codes("source_type"), "source types")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        _shares(self.forms)
        _shares(self.ages)
        if missing := [f for f in self.forms if f not in self.female_share]:
            raise ValueError(f"female_share: no share for the forms {missing}")
        return self


@cache
def params(path: Path = WORLD_FILE) -> WorldParams:
    """The world's parameters (world.yaml, validated)."""
    return load_yaml(path, WorldParams)


def periods() -> list[Period]:
    """The simulated quarters, in order."""
    return Period.span(params().period.first, params().period.last)


def period_names() -> np.ndarray:
    """The simulated quarters' names, indexable by quarter number."""
    return np.array([str(q) for q in periods()], dtype=object)


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
    """One country's simulated truth and what its sources recorded of it."""

    victims: pd.DataFrame  # the truth: one row per victim
    records: pd.DataFrame  # one row per case record, in harmonised codes, with file_period
    screenings: pd.DataFrame  # one row per screening of an asylum applicant, with file_period
    shift: float  # the calibrated detection shift (logit)


def seasonal_volume(per_year: float, scale: float) -> np.ndarray:
    """Expected volume per quarter of the period, with seasonality and growth."""
    p, qs = params(), periods()
    season = np.array([p.seasonality[q.first_day.month // 3] for q in qs])  # Q1..Q4 → 0..3
    growth = p.growth_per_year ** np.array([q.year - qs[0].year for q in qs])
    return per_year * scale / 4 * season * growth


def draw_dates(rng, quarter_idx: np.ndarray) -> np.ndarray:
    """A uniform day within each given quarter."""
    qs = periods()
    starts = np.array([quarter_start(q) for q in [*qs, qs[-1].next()]])
    length = np.diff(starts).astype(np.int64)
    return starts[quarter_idx] + rng.integers(0, length[quarter_idx])


def period_end() -> np.datetime64:
    """The last simulated day."""
    return np.datetime64(periods()[-1].last_day, "D")


def simulate_victims(rng, country: str, scale: float) -> pd.DataFrame:
    """The true victims of one country over the whole period."""
    p = params()
    c = p.countries[country]
    role = route_role(country)
    n_q = rng.poisson(seasonal_volume(c.registered * c.hidden_ratio, scale))
    qi = np.repeat(np.arange(len(n_q)), n_q)
    n = len(qi)
    form = choose(rng, p.forms, n)
    female_p = pd.Series(form).map(p.female_share).to_numpy(float)
    u = rng.random(n)
    other = p.other_gender_share
    gender = np.where(u < other, "other", np.where(u < other + (1 - other) * female_p, "female", "male"))
    age = choose(rng, p.ages, n)
    stage = choose(rng, p.route_stage.get(country, p.route_stage[role]), n)
    child = np.isin(age, CHILD)
    foreign = stage != "origin"
    eu = foreign & (rng.random(n) < p.eu_share)
    eu_mix = {k: v for k, v in p.eu_citizenship.items() if k != country}
    citizenship = np.where(
        ~foreign, country, np.where(eu, choose(rng, eu_mix, n), choose(rng, p.third_country_citizenship, n))
    )
    transit_elsewhere = (stage == "transit") & (role == "destination")
    exploitation_country = np.where(transit_elsewhere, choose(rng, dict.fromkeys(TRANSIT_COUNTRIES, 1), n), country)
    third_country = foreign & ~eu
    keys = random_keys(rng, n, f"pk-{country.lower()}-")
    return pd.DataFrame(
        {
            "person_key": keys,
            "human_id": keys,  # a human's id: the key of their first victim row (simulator/onward.py)
            "country": country,
            "entry_period": period_names()[qi],
            "entry_date": draw_dates(rng, qi),
            "exploitation_form": form,
            "route_stage": stage,
            "gender": gender,
            "age_group": age,
            "citizenship": citizenship,
            "exploitation_country": exploitation_country,
            "unaccompanied_child": child & (rng.random(n) < p.unaccompanied_share_of_children[role]),
            "smuggling_debt": foreign & (rng.random(n) < p.smuggling_debt_share[role]),
            "asylum_applicant": third_country & (rng.random(n) < p.asylum_applicant_share),
            "visibility": rng.normal(0, p.visibility_sd, n),
        }
    )


def detection_logits(victims: pd.DataFrame, source_type: str) -> np.ndarray:
    """Each victim's logit of being seen by a source of this type (no shift, no referral)."""
    eff = params().detection[source_type]
    effects = [  # in this order: the sums are the same, bit for bit
        (eff.male, victims.gender.to_numpy() == "male"),
        (eff.labour, victims.exploitation_form.to_numpy() == "labour"),
        (eff.sexual, victims.exploitation_form.to_numpy() == "sexual"),
        (eff.transit, victims.route_stage.to_numpy() == "transit"),
        (eff.child, victims.age_group.isin(CHILD).to_numpy()),
    ]
    logit = eff.base + victims.visibility.to_numpy()
    for effect, v in effects:
        logit = logit + effect * v
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
        for referrer_type, effect in params().detection[s.source_type].referred_by.items():
            by = [seen[r.source_id] for r in sources if r.source_type == referrer_type and r.source_id in seen]
            if by:
                logit = logit + effect * np.logical_or.reduce(by)
        seen[s.source_id] = rng.random(len(victims)) < expit(logit)
    return seen, shift
