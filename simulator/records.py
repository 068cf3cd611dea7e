"""The records each source made of the victims it saw, with realistic imperfections."""

import numpy as np
import pandas as pd

from connectors.mapping import SourceMapping
from data_contracts.codelists import codes
from simulator.world import choose, draw_dates, params, period_end, period_names, periods, seasonal_volume
from thb.periods import quarter_index


def _unknown(rng, values: np.ndarray, share: float) -> np.ndarray:
    return np.where(rng.random(len(values)) < share, "unknown", values)


def _flag(values: np.ndarray) -> np.ndarray:
    return np.where(values, "yes", "no").astype(object)


def _record_ids(source: SourceMapping, dates: np.ndarray, tag: str = "") -> np.ndarray:
    """Source-local ids: <prefix>-<tag><year>-<sequence>, numbered in date order."""
    prefix = source.source_id.split("-")[-1][:6]
    seq = pd.Series(np.arange(1, len(dates) + 1)).astype(str).str.zfill(6)
    years = pd.Series(dates.astype("datetime64[Y]").astype(int) + 1970).astype(str)
    return (f"{prefix}-{tag}" + years + "-" + seq).to_numpy(object)


def delivery_periods(rng, source: SourceMapping) -> np.ndarray:
    """For each quarter, the quarter whose file carries its records (a skipped quarter's
    records come with the next delivery)."""
    n = len(periods())
    skipped = rng.random(n) < params().missed_delivery.get(source.source_type, 0.0)
    skipped[-1] = False
    target = np.arange(n)
    for i in range(n - 2, -1, -1):  # one pass over quarters, not over records
        target[i] = target[i + 1] if skipped[i] else i
    return target


def case_records(
    rng, victims: pd.DataFrame, seen: np.ndarray, source: SourceMapping, delivery: np.ndarray
) -> pd.DataFrame:
    """The case records of one source, in harmonised codes, with truth columns; `delivery`
    is the source's delivery plan (see delivery_periods)."""
    p, t = params(), source.source_type
    first = np.flatnonzero(seen)
    contact = victims.entry_date.to_numpy()[first] + np.round(
        rng.exponential(p.contact_delay_days[t], len(first))
    ).astype("timedelta64[D]")
    dup = rng.random(len(first)) < p.duplicate_share
    idx = np.concatenate([first, first[dup]])
    date = np.concatenate([contact, contact[dup] + rng.integers(5, 60, dup.sum()).astype("timedelta64[D]")])
    duplicate = np.arange(len(idx)) >= len(first)
    keep = date <= period_end()
    idx, date, duplicate = idx[keep], date[keep], duplicate[keep]
    order = np.argsort(date, kind="stable")
    idx, date, duplicate = idx[order], date[order], duplicate[order]
    v = victims.iloc[idx].reset_index(drop=True)
    n = len(v)

    ages = codes("age_group")[:-1]
    age_i = pd.Series(v.age_group).map({a: i for i, a in enumerate(ages)}).to_numpy(int)
    shifted = np.clip(age_i + rng.choice([-1, 1], n), 0, len(ages) - 1)
    age = np.where(rng.random(n) < p.age_misreport_share, np.array(ages, dtype=object)[shifted], v.age_group)
    unk = p.unknown_share
    identified = rng.random(n) < p.identified_share.get(t, 0.0)
    id_delay = np.round(rng.gamma(2.0, p.identification_delay_days / 2, n)).astype("timedelta64[D]")
    referred = rng.random(n) < (0.7 if t in ("ngo", "social_services") else 0.4)
    missing_cc = p.missing_country_share
    keyed = any("person_key" in spec.columns for spec in source.files)  # a shared referral number
    file_q = np.minimum(quarter_index(date, periods()[0]) + (rng.random(n) < p.late_share), len(periods()) - 1)
    return pd.DataFrame(
        {
            "source_id": source.source_id,
            "record_id": _record_ids(source, date),
            "person_key": np.where((not keyed) | (rng.random(n) < p.missing_person_key[t]), None, v.person_key),
            "reference_date": date,
            "status": np.where(identified, "identified", "presumed").astype(object),
            "exploitation_form": _unknown(rng, v.exploitation_form.to_numpy(), unk.exploitation_form),
            "route_stage": _unknown(rng, v.route_stage.to_numpy(), unk.route_stage),
            "exploitation_country": np.where(
                rng.random(n) < missing_cc.exploitation_country, None, v.exploitation_country
            ),
            "citizenship": np.where(rng.random(n) < missing_cc.citizenship, None, v.citizenship),
            "gender": _unknown(rng, v.gender.to_numpy(), unk.gender),
            "age_group": _unknown(rng, age, unk.age_group),
            "unaccompanied_child": _unknown(rng, _flag(v.unaccompanied_child), unk.unaccompanied_child),
            "smuggling_debt": _unknown(rng, _flag(v.smuggling_debt), unk.smuggling_debt),
            "identification_date": np.where(identified, date + id_delay, np.datetime64("NaT")),
            "referred_to_assistance": _unknown(rng, _flag(referred), unk.referred_to_assistance),
            "file_period": period_names()[delivery[file_q]],
            "victim_key": v.person_key,
            "duplicate": duplicate,
        }
    )


def screenings(rng, country: str, records: pd.DataFrame, source: SourceMapping, scale: float) -> pd.DataFrame:
    """Every screening of an asylum applicant, under the applicant's number: each applicant's
    first screening (the source's presumed victims among them, flagged), then, as world.yaml
    `screening` says, a second interview in the same quarter for some and a re-screening in a
    later quarter for others, with the applicant's attributes. Truth columns: `screening`
    (first, second_interview or rescreening) and `first_period` (the quarter of the
    applicant's first screening)."""
    p = params()
    flagged = records[~records.duplicate]
    volume = rng.poisson(seasonal_volume(p.countries[country].screenings, scale))
    flagged_q = np.bincount(quarter_index(flagged.reference_date.to_numpy(), periods()[0]), minlength=len(volume))
    qi = np.repeat(np.arange(len(volume)), np.maximum(volume - flagged_q, 0))
    n = len(qi)
    s = p.screening
    male = rng.random(n) < s.male_share
    others = pd.DataFrame(
        {
            "screening_date": draw_dates(rng, qi),
            "flagged": "no",
            "gender": np.where(male, "male", "female").astype(object),
            "age_group": choose(rng, s.ages, n),
            "citizenship": choose(rng, p.third_country_citizenship, n),
        }
    )
    hits = pd.DataFrame(
        {
            "screening_date": flagged.reference_date.to_numpy(),
            "flagged": "yes",
            "gender": flagged.gender.to_numpy(),
            "age_group": flagged.age_group.to_numpy(),
            "citizenship": flagged.citizenship.to_numpy(),
        }
    )
    first = pd.concat([others, hits], ignore_index=True).sort_values("screening_date", kind="stable")
    first = first.reset_index(drop=True)
    dates = first.screening_date.to_numpy().astype("datetime64[D]")
    first["applicant_number"] = _applicant_numbers(dates)
    first["first_period"] = period_names()[quarter_index(dates, periods()[0])]
    out = pd.concat([first.assign(screening="first"), *_screened_again(rng, first, dates)], ignore_index=True)
    out = out.sort_values("screening_date", kind="stable").reset_index(drop=True)
    dates = out.screening_date.to_numpy()
    out.insert(0, "record_id", _record_ids(source, dates, tag="S"))
    out.insert(0, "source_id", source.source_id)
    out["file_period"] = period_names()[quarter_index(dates, periods()[0])]
    return out


def _applicant_numbers(dates: np.ndarray) -> np.ndarray:
    """The asylum service's registration numbers of applicants first screened on these
    (sorted) dates: <year>/<sequence within the year>, e.g. 2024/0012345."""
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    seq = np.arange(len(dates)) - np.searchsorted(years, years) + 1
    return (pd.Series(years).astype(str) + "/" + pd.Series(seq).astype(str).str.zfill(7)).to_numpy(object)


def _screened_again(rng, first: pd.DataFrame, dates: np.ndarray) -> list[pd.DataFrame]:
    """The second interviews (a day in the rest of the first screening's quarter) and the
    re-screenings (rescreening_delay_days later, within the simulated period) of the
    applicants first screened in `first`."""
    s, n = params().screening, len(first)
    ends = np.array([np.datetime64(q.last_day, "D") for q in periods()])[quarter_index(dates, periods()[0])]
    second = rng.random(n) < s.second_interview_share
    second_date = dates + rng.integers(0, (ends - dates).astype(np.int64) + 1).astype("timedelta64[D]")
    lo, hi = s.rescreening_delay_days
    later_date = dates + rng.integers(lo, hi + 1, n).astype("timedelta64[D]")
    later = (rng.random(n) < s.rescreening_share) & (later_date <= period_end())
    return [
        first[second].assign(screening_date=second_date[second], screening="second_interview"),
        first[later].assign(screening_date=later_date[later], screening="rescreening"),
    ]
