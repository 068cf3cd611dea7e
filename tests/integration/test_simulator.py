"""The simulated world: deterministic, calibrated to the public figures it claims,
imperfect in the ways real exports are, and with the truth kept out of landing/."""

import filecmp

import pandas as pd
import pytest

from connectors.mapping import load_sources
from simulator import simulate
from simulator.world import params
from tests.helpers import SCALE, SEED

pytestmark = pytest.mark.xdist_group("simulator")  # one worker builds the calibration world


@pytest.fixture(scope="module")
def calibration_world(tmp_path_factory):
    """Scale 0.5: large enough to check shares against their calibration."""
    out = tmp_path_factory.mktemp("calibration")
    simulate(out, seed=3, scale=0.5)
    return out


def test_same_seed_same_world(world, tmp_path):
    simulate(tmp_path, seed=SEED, scale=SCALE)
    left, right = world / "landing", tmp_path / "landing"
    files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file())
    text = [f for f in files if f.suffix != ".xlsx"]  # spreadsheets carry a creation time
    _, mismatch, errors = filecmp.cmpfiles(left, right, [str(f) for f in text], shallow=False)
    assert not mismatch
    assert not errors
    assert pd.read_parquet(world / "truth/victims.parquet").equals(pd.read_parquet(tmp_path / "truth/victims.parquet"))


def test_another_seed_another_world(world, tmp_path):
    simulate(tmp_path, seed=SEED + 1, scale=SCALE)
    a = pd.read_parquet(world / "truth/victims.parquet")
    b = pd.read_parquet(tmp_path / "truth/victims.parquet")
    assert len(a) != len(b) or not a.person_key.equals(b.person_key)


def test_truth_is_kept_apart_from_landing(world):
    assert not any("truth" in p.parts or p.suffix == ".parquet" for p in (world / "landing").rglob("*"))
    assert {p.name for p in (world / "truth").iterdir()} >= {"victims.parquet", "records.parquet", "world.json"}


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


def test_exports_are_imperfect_like_real_ones(world):
    r = pd.read_parquet(world / "truth/records.parquet")
    assert r.duplicate.any()
    dup = r[r.duplicate & r.person_key.notna()]
    assert (dup.groupby(["source_id", "person_key"]).size() >= 1).all()  # same person twice, two record ids
    assert r.person_key.isna().any()
    late = r.file_period > (r.reference_date.dt.year.astype(str) + "-Q" + r.reference_date.dt.quarter.astype(str))
    assert late.any()
    assert (r.exploitation_form == "unknown").any()
    assert r.citizenship.isna().any()


def test_screenings_are_the_bulk_of_the_rows(world):
    s = pd.read_parquet(world / "truth/screenings.parquet")
    r = pd.read_parquet(world / "truth/records.parquet")
    assert s.screened.sum() > 10 * len(r)
    de = s[s.source_id == "DE-ASY-BAMF"].screened.sum() / 3 / SCALE
    assert 50_000 < de < 100_000  # DE screens tens of thousands a year


def test_scale_multiplies_volumes(tmp_path):
    small = simulate(tmp_path / "a", seed=5, scale=0.05).rows
    large = simulate(tmp_path / "b", seed=5, scale=0.2).rows
    assert 3.3 < large / small < 4.7


def test_exports_are_in_local_languages_and_encodings(world):
    sources = load_sources()
    greek = next((world / "landing/GR/GR-POL-HP").glob("*.csv")).read_bytes()
    assert greek.decode("cp1253").startswith(sources["GR-POL-HP"].column(sources["GR-POL-HP"].files[0], "record_id"))
    with pytest.raises(UnicodeDecodeError):
        greek.decode("utf-8")
    assert next((world / "landing/DE/DE-POL-BKA").glob("*.csv")).read_bytes().startswith(b"\xef\xbb\xbf")
    serbian = next((world / "landing/RS/RS-NGO-ATINA").glob("*.csv")).read_bytes().decode("cp1250")
    assert "Ključ_osobe" in serbian
