"""Multiple systems estimation: the published reference figures, the model checks, bad
input, and the batched bootstrap fits against statsmodels."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dp.mse import CaptureData, CaptureDataError, Estimator, Model, NotEstimable, _exists
from thb.cli import app
from thb.settings import Settings

DATA = Settings().shared_data / "mse"
assert DATA.is_dir(), (
    f"the published datasets are not at {DATA}: put shared/ beside the checkout or set THB_SHARED_DATA"
)
REFERENCE = {"UKdat": (11_418, 9_267, 14_307), "UKdat_5": (11_313, 8_785, 14_701)}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_the_uk_reference_figures(name):
    estimate, low, high = REFERENCE[name]
    result = Estimator(CaptureData.read(DATA / f"{name}.csv")).bootstrap(1000, seed=1)
    assert abs(result.estimate - estimate) / estimate < 0.01
    assert abs(result.ci95[0] - low) / low < 0.08, result.ci95
    assert abs(result.ci95[1] - high) / high < 0.08, result.ci95
    assert result.ci95[0] < result.estimate < result.ci95[1]


@pytest.mark.parametrize("name", ["NewOrl", "NewOrl_5", "Ned", "Ned_5", "Western"])
def test_every_published_table_runs(name):
    data = CaptureData.read(DATA / f"{name}.csv")
    result = Estimator(data).bootstrap(200, seed=2)
    assert result.observed == data.observed < result.estimate
    assert result.ci95[0] <= result.estimate <= result.ci95[1]


def test_the_selection_adds_the_most_significant_pair_while_below_the_threshold():
    data = CaptureData.read(DATA / "UKdat_5.csv")
    strict = Estimator(data, pthresh=1e-12).point()
    loose = Estimator(data, pthresh=0.02).point()
    main = Estimator(data, pthresh=0.0).point()
    assert main.terms == []
    assert len(strict.terms) < len(loose.terms)
    assert loose.terms[: len(strict.terms)] == strict.terms  # the same path, stopped earlier


def test_the_existence_check_is_the_linear_program():
    two = CaptureData.from_frame(pd.DataFrame({"A": [1, 0, 1], "B": [0, 1, 1], "count": [5, 4, 0]}))
    x = np.column_stack([np.ones(3), two.patterns])
    assert not _exists(x, two.counts)  # the cell on both lists is zero in a saturated model
    assert _exists(x, two.counts + np.array([0, 0, 1]))


def test_a_model_that_is_not_identifiable_is_refused():
    data = CaptureData.from_frame(pd.DataFrame({"A": [1, 0, 1], "B": [0, 1, 1], "count": [5, 4, 2]}))
    est = Estimator(data)
    assert est.identifiable(Model(), data.counts > 0)
    assert not est.identifiable(Model(terms=((0, 1),)), data.counts > 0)  # 4 parameters, 3 cells
    assert est.point().terms == []


def test_a_known_dependence_is_in_every_model():
    data = CaptureData.read(DATA / "UKdat_5.csv")
    free = Estimator(data).point()
    pair = next((a, b) for a, b in itertools.combinations(data.lists, 2) if f"{a}:{b}" not in free.terms)
    forced = Estimator(data, include=[pair]).point()
    assert forced.terms[0] == f"{pair[0]}:{pair[1]}"
    assert forced.estimate != pytest.approx(free.estimate)
    boot = Estimator(data, include=[pair]).bootstrap(50, seed=1)
    assert boot.ci95[0] <= forced.estimate <= boot.ci95[1]
    with pytest.raises(CaptureDataError, match="no list named X"):
        Estimator(data, include=[(data.lists[0], "X")])


def test_a_known_dependence_without_shared_cases_is_not_forced():
    table = pd.DataFrame({"A": [1, 0, 0, 1, 1, 0], "B": [0, 1, 0, 1, 0, 1], "C": [0, 0, 1, 0, 1, 1],
                          "count": [80, 60, 40, 20, 10, 0]})  # fmt: skip
    est = Estimator(CaptureData.from_frame(table), include=[("B", "C")])
    assert "B:C" not in est.point().terms


def test_lists_without_overlap_cannot_be_estimated():
    with pytest.raises(NotEstimable, match="do not overlap"):
        Estimator(CaptureData.from_frame(pd.DataFrame({"A": [1, 0], "B": [0, 1], "count": [5, 4]})))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"A": [1, 2], "B": [0, 1], "count": [3, 4]}, "only 0 and 1"),
        ({"A": [1, 0], "B": [0, 1], "count": [3, -1]}, "non-negative"),
        ({"A": [1, 0], "count": [3, 4]}, "at least two list columns"),
        ({"A": [1, 0], "B": [0, 1], "count": [0, 0]}, "every count is zero"),
        ({"A": [1, 1], "B": [0, 0], "count": [2, 3]}, "listed twice"),
        ({"A": [0, 1], "B": [0, 1], "count": [7, 3]}, "on no list"),
        ({"A": [1, 0], "B": [0, 0], "C": [0, 1], "count": [3, 0]}, "one list only"),
    ],
)
def test_bad_input_gets_a_clear_error(frame, message):
    with pytest.raises(CaptureDataError, match=message):
        CaptureData.from_frame(pd.DataFrame(frame))


def test_batched_fits_equal_statsmodels():
    est = Estimator(CaptureData.read(DATA / "UKdat.csv"))
    model = Model(terms=((2, 5), (0, 1)))
    rng = np.random.default_rng(0)
    counts = rng.multinomial(int(est.data.observed), est.data.counts / est.data.observed, size=5).astype(float)
    beta0, fitted = est._fit_batch(counts, model)
    for i in range(5):
        ref0, ref_fitted = est._fit(counts[i], model)
        assert beta0[i] == pytest.approx(ref0, rel=1e-8)
        assert np.allclose(fitted[i], ref_fitted, rtol=1e-6)


def test_a_list_that_saw_nobody_is_left_out():
    data = CaptureData.read(DATA / "UKdat_5.csv")
    frame = pd.DataFrame(data.patterns.astype(int), columns=list(data.lists)).assign(count=data.counts)
    frame.insert(2, "EMPTY", 0)
    with_empty = CaptureData.from_frame(frame)
    assert Estimator(with_empty).point().estimate == pytest.approx(Estimator(data).point().estimate)


def test_the_command_line(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["mse", "estimate", str(DATA / "UKdat_5.csv"), "--json", "--nboot", "200", "--seed", "3"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert set(result) >= {"observed", "estimate", "ci95", "terms", "pthresh", "nboot"}
    assert result["observed"] == 2744
    assert round(result["estimate"]) == 11_313
    assert result["nboot"] == 200
    forced = runner.invoke(app, ["mse", "estimate", str(DATA / "UKdat_5.csv"), "--json", "--nboot", "0",
                                 "--include", "LA:NG"])  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.output)["terms"][0] == "LA:NG"
    wrong = runner.invoke(app, ["mse", "estimate", str(DATA / "UKdat_5.csv"), "--include", "LA"])
    assert wrong.exit_code == 2
    assert "two list names" in wrong.output
    bad = tmp_path / "bad.csv"
    bad.write_text("A,B,count\n1,0,3\n0,1,x\n")
    out = runner.invoke(app, ["mse", "estimate", str(bad)])
    assert out.exit_code == 2
    assert "non-negative whole numbers" in out.output
    assert "Traceback" not in out.output
