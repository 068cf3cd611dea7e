"""Hidden-victim estimates without a warehouse: referral pathways are in every model, and
too little data gets no estimate. Estimates from a released world are in
tests/integration/test_estimates.py."""

import numpy as np

from dp import estimates
from dp.spec import release_spec
from pipelines.release import sources_by_country


def test_referral_pathways_are_in_every_model():
    """Finland's social services receive victims from its NGO and police (release spec): those
    interactions are in the model even when the table alone would not select them."""
    spec, fi = release_spec(), sources_by_country()["FI"]
    pairs = estimates.known_dependence(spec, fi)
    assert len(pairs) == 2
    assert all("FI-SOC" in a + b for a, b in pairs)
    chance = np.array([0.3, 0.2, 0.25, 0.15])  # each list's chance of seeing each of 2,000 victims
    seen = np.random.default_rng(7).random((2000, 4)) < chance
    cells = [int((seen == np.array(p, bool)).all(axis=1).sum()) for p in estimates.domain(list(fi))]
    free = estimates.estimate(spec, list(fi), cells, estimates.scale(spec))
    out = estimates.table(spec, "2025.1", 2025, {"FI": fi}, {"FI": cells}, estimates.scale(spec))
    assert not any(f"{a}:{b}" in free["note"] for a, b in pairs)
    assert all(f"{a}:{b}" in out.model[0] for a, b in pairs), out.model[0]
    assert out.ci_low[0] <= 2000 <= out.ci_high[0]


def test_too_little_data_gets_no_estimate():
    spec = release_spec()
    lists = ["A", "B", "C"]
    few = estimates.estimate(spec, lists, [10, 5, 1, 8, 0, 2, 0], estimates.scale(spec))
    assert few["obs_value"] is None
    assert few["obs_status"] == "u"
    assert "fewer than" in few["note"]
    apart = estimates.estimate(spec, lists, [60, 50, 0, 70, 0, 0, 0], estimates.scale(spec))
    assert apart["obs_value"] is None
    assert "overlap" in apart["note"]
