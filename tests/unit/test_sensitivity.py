"""The charge for a marginal of sensitivity one is OpenDP's (the sensitivity itself is checked
on the real warehouse in tests/integration/test_sensitivity.py)."""

import pytest

from dp.measure import gaussian, plan
from dp.spec import release_spec

SPEC = release_spec()


def test_the_charge_is_what_opendp_computes_for_sensitivity_one():
    for dataset in SPEC.datasets:
        for scale in plan(SPEC, dataset).values():
            assert gaussian(scale).map(1) == pytest.approx(1 / (2 * scale**2))
