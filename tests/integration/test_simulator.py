"""The simulated world: deterministic, calibrated to the public figures it claims,
imperfect in the ways real exports are, and with the truth, the providers' internal exports
(names, dates of birth) and the linkage secrets kept out of landing/."""

import filecmp
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.mapping import load_sources
from data_contracts.build import ENCODING_PATTERN
from data_contracts.codelists import codes
from simulator import simulate
from simulator.onward import PERSONAL, age_group_at
from simulator.run import country_rng
from simulator.world import (
    DESTINATION_COUNTRIES,
    TRANSIT_COUNTRIES,
    detect,
    params,
    period_end,
    periods,
    simulate_victims,
)
from tests.helpers import SCALE, SEED, read_rows

REFERRAL_NUMBER = ("GR-POL-HP", "GR-SOC-EKKA", "BG-POL-MVR", "BG-GOV-NCCTHB")  # sources that share a person_key

pytestmark = pytest.mark.xdist_group("simulator")  # one worker builds the calibration world


@pytest.fixture(scope="module")
def calibration_world(tmp_path_factory):
    """Scale 0.5: large enough to check shares against their calibration."""
    out = tmp_path_factory.mktemp("calibration")
    simulate(out, seed=3, scale=0.5)
    return out


def test_same_seed_same_world(world, tmp_path):
    """The same internal exports and secrets, and the same anonymised exports in landing/."""
    simulate(tmp_path, seed=SEED, scale=SCALE)
    for folder in ("landing", "providers", "secrets"):
        left, right = world / folder, tmp_path / folder
        files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file()), folder
        assert files, folder
        # spreadsheets carry a creation time, the kit's receipts the time and place of the run
        text = [f for f in files if f.suffix != ".xlsx" and not f.name.endswith(".receipt.json")]
        _, mismatch, errors = filecmp.cmpfiles(left, right, [str(f) for f in text], shallow=False)
        assert not mismatch, folder
        assert not errors, folder
    assert pd.read_parquet(world / "truth/victims.parquet").equals(pd.read_parquet(tmp_path / "truth/victims.parquet"))


def test_another_seed_another_world(world, tmp_path):
    simulate(tmp_path, seed=SEED + 1, scale=SCALE)
    a = pd.read_parquet(world / "truth/victims.parquet")
    b = pd.read_parquet(tmp_path / "truth/victims.parquet")
    assert len(a) != len(b) or not a.person_key.equals(b.person_key)


def test_truth_is_kept_apart_from_landing(world):
    apart = ("truth", "providers", "secrets")
    landed = list((world / "landing").rglob("*"))
    assert not any(set(apart) & set(p.parts) or p.suffix in (".parquet", ".key", ".json") for p in landed)
    assert {p.name for p in (world / "truth").iterdir()} >= {"victims.parquet", "records.parquet", "world.json"}
    countries = {p.name for p in (world / "landing").iterdir()}
    assert {p.name for p in (world / "secrets").iterdir()} == {f"{cc}.key" for cc in countries}
    internal = {p.relative_to(world / "providers") for p in (world / "providers").rglob("*") if p.is_file()}
    exports = {p.relative_to(world / "landing") for p in landed if p.is_file()}
    assert exports == {p for p in internal if not p.name.endswith(".receipt.json")}, "one export per internal file"
    assert {p.with_name(p.name + ".receipt.json") for p in exports} <= internal, "the kit's receipts stay home"


def test_registered_victims_match_public_figures(calibration_world):
    """Persons seen a year ≈ registered victims (per country, ±35 %), a hidden ratio of 4-9."""
    v = pd.read_parquet(calibration_world / "truth/victims.parquet")
    seen = v[v.n_sources > 0].groupby("country").size() / 3 / 0.5  # per year at scale 1
    for country, c in params().countries.items():
        if c.registered >= 50:
            assert abs(seen[country] / c.registered - 1.06) < 0.35, country
    ratio = len(v) / (v.n_sources > 0).sum()
    assert 4 <= ratio <= 9


def test_registered_shares_reflect_under_identification(calibration_world):
    v = pd.read_parquet(calibration_world / "truth/victims.parquet")
    seen = v[v.n_sources > 0]
    assert 0.58 <= (seen.gender == "female").mean() <= 0.70  # Eurostat: 63 % female
    assert (seen.gender == "female").mean() > (v.gender == "female").mean()  # men under-identified
    assert (seen.exploitation_form == "labour").mean() < (v.exploitation_form == "labour").mean()
    assert (seen.exploitation_form == "sexual").mean() > (seen.exploitation_form == "labour").mean()
    transit = seen[seen.country.isin(["GR", "MK", "RS", "BG"])]
    assert (transit.route_stage == "transit").mean() > 0.3
    assert v.unaccompanied_child.any()
    assert v.smuggling_debt.any()


def test_lists_overlap_and_most_victims_are_unseen(calibration_world):
    v = pd.read_parquet(calibration_world / "truth/victims.parquet")
    assert (v.n_sources == 0).mean() > 0.6
    assert (v.n_sources >= 2).sum() > 0.05 * (v.n_sources >= 1).sum()


def recorded(world: Path) -> pd.DataFrame:
    """The truth's records, each with its victim's human and country."""
    v = pd.read_parquet(world / "truth/victims.parquet", columns=["person_key", "human_id", "country"])
    r = pd.read_parquet(world / "truth/records.parquet")
    return r.merge(v, left_on="victim_key", right_on="person_key")


def test_victims_recorded_in_transit_move_on_at_the_configured_rate(calibration_world):
    """Of the humans last recorded in a transit country a year or more before the period ends
    (time to move on and be recorded again), world.yaml's share is recorded in a destination
    too (within three standard errors), and only in the destinations world.yaml names."""
    r = recorded(calibration_world)
    last = r[r.country.isin(TRANSIT_COUNTRIES)].groupby("human_id").reference_date.max()
    early = last[last <= pd.Timestamp(period_end()) - pd.Timedelta(days=365)].index
    onward = r[r.country.isin(DESTINATION_COUNTRIES) & r.human_id.isin(early)]
    share = params().onward.share
    assert len(early) > 200
    assert abs(early.isin(onward.human_id).mean() - share) < 3 * np.sqrt(share * (1 - share) / len(early))
    assert set(onward.country) <= {cc for cc, weight in params().onward.destinations.items() if weight > 0}


def test_a_human_in_two_countries_is_one_identity_recorded_later_in_the_second(calibration_world):
    """A human's victim rows: one in a transit country, then one in a destination, with the
    same identity (names, sex, date of birth), gender and citizenship, an age group that fits
    the date of birth, and every record in the destination after every record in transit."""
    v = pd.read_parquet(calibration_world / "truth/victims.parquet")
    ids = pd.read_parquet(calibration_world / "truth/identities.parquet")
    two = v[v.human_id.duplicated(keep=False)].merge(ids, on="person_key").sort_values(["human_id", "entry_date"])
    assert two.human_id.nunique() > 20
    assert (two.groupby("human_id").size() == 2).all()
    first, then = (
        two.groupby("human_id").nth(0).set_index("human_id"),
        two.groupby("human_id").nth(1).set_index("human_id"),
    )
    assert first.country.isin(TRANSIT_COUNTRIES).all()
    assert then.country.isin(DESTINATION_COUNTRIES).all()
    for column in ("population", "given", "middle", "family", "sex", "birth_date", "gender", "citizenship"):
        assert first[column].equals(then[column]), column
    assert (then.age_group.to_numpy() == age_group_at(then.birth_date.to_numpy(), then.entry_date.to_numpy())).all()
    r = recorded(calibration_world)
    r = r[r.human_id.isin(then.index)]
    last_transit = r[r.country.isin(TRANSIT_COUNTRIES)].groupby("human_id").reference_date.max()
    first_onward = r[r.country.isin(DESTINATION_COUNTRIES)].groupby("human_id").reference_date.min()
    both = first_onward.index.intersection(last_transit.index)
    assert len(both) > 20
    assert (first_onward[both] > last_transit[both]).all()


def test_humans_moving_on_take_places_so_every_country_keeps_its_totals(world):
    """Each country's victims are its own independent draw, detected as before: a transit
    country's unchanged, and a destination's changed only where an arriving human took a
    victim's place, and only in what is the human's (identity, age, arrival), so every
    country's true and seen totals stay as calibrated."""
    v = pd.read_parquet(world / "truth/victims.parquet")
    sources = load_sources()
    human = [*PERSONAL, "age_group", "entry_date", "entry_period", "human_id"]
    arrivals = 0
    for country in codes("reporting_country"):
        rng = country_rng(SEED, country)
        alone = simulate_victims(rng, country, SCALE)
        mine = [s for s in sources.values() if s.country == country]
        seen, _ = detect(rng, alone, mine, 1 / params().countries[country].hidden_ratio)
        got = v[v.country == country].reset_index(drop=True)
        assert len(got) == len(alone), country
        assert (got.n_sources.to_numpy() == np.sum(list(seen.values()), axis=0)).all(), country
        arrived = (got.human_id != got.person_key).to_numpy()
        assert country in DESTINATION_COUNTRIES or not arrived.any(), country
        same = [c for c in alone.columns if c not in human]
        pd.testing.assert_frame_equal(got.loc[~arrived, alone.columns], alone[~arrived], check_dtype=False)
        pd.testing.assert_frame_equal(got.loc[arrived, same], alone.loc[arrived, same], check_dtype=False)
        assert (got.n_sources[arrived] > 0).all(), country  # the place of a victim the sources saw
        arrivals += arrived.sum()
    assert arrivals > 0


def test_exports_are_imperfect_like_real_ones(world):
    r = pd.read_parquet(world / "truth/records.parquet")
    assert r.duplicate.any()
    dup = r[r.duplicate]
    twice = r[r.set_index(["source_id", "victim_key"]).index.isin(dup.set_index(["source_id", "victim_key"]).index)]
    per_victim = twice.groupby(["source_id", "victim_key"]).record_id
    assert (per_victim.nunique() >= 2).all()  # same person twice in a source, two record ids
    keyed = r[r.person_key.notna()]
    assert (keyed.person_key == keyed.victim_key).all()
    assert r.person_key.isna().any()
    late = r.file_period > (r.reference_date.dt.year.astype(str) + "-Q" + r.reference_date.dt.quarter.astype(str))
    assert late.any()
    assert (r.exploitation_form == "unknown").any()
    assert r.citizenship.isna().any()


def test_only_sources_that_share_a_referral_number_carry_person_keys(calibration_world):
    """Keys where a source's export has a person_key column (a national referral number),
    left blank now and then; nowhere else: the other sources are linked by encodings only."""
    sources = load_sources()
    r = pd.read_parquet(calibration_world / "truth/records.parquet")
    keyed = {s for s, src in sources.items() if any("person_key" in f.columns for f in src.files)}
    assert keyed == set(REFERRAL_NUMBER)
    assert set(r[r.person_key.notna()].source_id) == keyed
    assert r[r.source_id.isin(keyed)].person_key.isna().any()


def test_screenings_are_the_bulk_of_the_rows(world):
    s = pd.read_parquet(world / "truth/screenings.parquet")
    r = pd.read_parquet(world / "truth/records.parquet")
    assert s.screened.sum() > 10 * len(r)
    de = s[s.source_id == "DE-ASY-BAMF"].first_screened.sum() / 3 / SCALE
    assert 50_000 < de < 100_000  # DE screens tens of thousands of applicants a year


def test_applicants_are_screened_again_as_often_as_world_yaml_says(world):
    """Against the truth: second interviews (rows beyond the quarter's distinct applicants)
    and later re-screenings (of applicants first screened early enough that a re-screening
    cannot fall after the simulated period), each within four binomial standard errors."""
    s, p = pd.read_parquet(world / "truth/screenings.parquet"), params().screening
    first = s.first_screened.sum()
    assert (s.screened - s.applicants).sum() == pytest.approx(
        first * p.second_interview_share, abs=_four_se(first, p.second_interview_share)
    )
    last_day = periods()[-1].last_day
    whole = [str(q) for q in periods() if q.last_day + timedelta(days=p.rescreening_delay_days[1]) <= last_day]
    early = s[s.file_period.isin(whole)]
    assert len(whole) >= 4
    expected = early.first_screened.sum() * p.rescreening_share
    assert early.rescreened_later.sum() == pytest.approx(
        expected, abs=_four_se(early.first_screened.sum(), p.rescreening_share)
    )
    # each re-screened applicant is one more distinct applicant in the quarter of their re-screening
    assert (s.applicants - s.first_screened).sum() == s.rescreened_later.sum() > 0


def _four_se(n: int, share: float) -> float:
    return 4 * (n * share * (1 - share)) ** 0.5


def test_scale_multiplies_volumes(tmp_path):
    small = simulate(tmp_path / "a", seed=5, scale=0.05).rows
    large = simulate(tmp_path / "b", seed=5, scale=0.2).rows
    assert 3.3 < large / small < 4.7


def largest(folder: Path) -> Path:
    return max((p for p in folder.iterdir() if not p.name.endswith(".receipt.json")), key=lambda p: p.stat().st_size)


def test_exports_are_in_local_languages_and_encodings(world):
    sources = load_sources()
    gr, gr_spec = sources["GR-POL-HP"], sources["GR-POL-HP"].files[0]
    greek = largest(world / "landing/GR/GR-POL-HP").read_bytes()
    assert greek.decode("cp1253").startswith(gr.column(gr_spec, "record_id"))
    assert gr.column(gr_spec, "person_key") in greek.decode("cp1253")  # Κλειδί_προσώπου: a referral number
    with pytest.raises(UnicodeDecodeError):
        greek.decode("utf-8")
    assert next((world / "landing/DE/DE-POL-BKA").glob("*.csv")).read_bytes().startswith(b"\xef\xbb\xbf")

    # what leaves a provider: the encoding beside the coded columns; no name, date of birth or note
    rs, rs_spec = sources["RS-NGO-ATINA"], sources["RS-NGO-ATINA"].files[0]
    exported = largest(world / "landing/RS/RS-NGO-ATINA")
    landed = read_rows(exported, "RS-NGO-ATINA")
    assert landed[0] == list(rs.columns(rs_spec).values())
    assert "identity_encoding" in landed[0]
    assert "Ključ_osobe" not in landed[0]  # NGO Atina shares no referral number
    assert not set(landed[0]) & {*rs.identifier_columns(rs_spec).values(), *rs_spec.drop}
    encodings = [row[landed[0].index("identity_encoding")] for row in landed[1:]]
    assert encodings
    assert all(re.fullmatch(ENCODING_PATTERN, e) for e in encodings)

    # what the provider holds: its internal export, names and dates of birth, in its own encoding
    internal = world / "providers/RS/RS-NGO-ATINA" / exported.name
    with pytest.raises(UnicodeDecodeError):
        internal.read_bytes().decode("utf-8")
    rows = read_rows(internal, "RS-NGO-ATINA")  # cp1250
    assert rows[0] == rs.internal_columns(rs_spec)
    assert {"Ime", "Prezime", "Datum_rođenja"} <= set(rows[0])
    assert "identity_encoding" not in rows[0]
    assert len(rows) == len(landed)  # one record out per record in
    assert any(row[rows[0].index("Prezime")] for row in rows[1:])
    rows = read_rows(largest(world / "providers/GR/GR-POL-HP"), "GR-POL-HP")  # cp1253
    given = [row[rows[0].index(gr.column(gr_spec, "given_name"))] for row in rows[1:]]
    assert any("α" <= c <= "ω" for name in given for c in name)  # Greek letters, as the police wrote them
