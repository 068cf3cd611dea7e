"""An empirical audit of the release's privacy claim, in the style of DP auditing papers
(Jagielski et al. 2020, Nasr et al. 2021): measure two neighbouring datasets many times with
the real release machinery and lower-bound the privacy loss from what comes out.

D is one country's joint count array for a quarter; D' is D with one person added to one
cell (so one cell of every measured marginal moves by one). Each run calls
`dp.measure.measure` on both (two independent draws of OpenDP's discrete Gaussian at the
release's scales) and reduces the noisy marginals y to the likelihood-ratio statistic (the
privacy loss of a Gaussian, discrete or not, is affine in it), in its standard deviations:

    T = Σ_m Σ_cells (y_m − x_m(D)) · Δ_m / σ_m²,   Δ = D' − D.

The events {T > t} and {T ≤ t}, for a grid of thresholds fixed before any run, give with
one-sided Clopper-Pearson bounds p0 ≤ p0_high and p1 ≥ p1_low (p = P(T > t) on D and on D'),
which hold all together at the confidence level (Bonferroni over 2 × the grid):

    ε ≥ max_t max( log((p1_low − δ) / p0_high), log((1 − p0_high − δ) / (1 − p1_low)) )
    μ ≥ max_t Φ⁻¹(1 − p0_high) − Φ⁻¹(1 − p1_low)        (Gaussian DP, μ-GDP)

A mechanism that is (ε, δ)-DP, or μ-GDP, exceeds these with probability at most
1 − confidence. The release states ρ (zCDP) and ε(δ) by OpenDP's maps, and a Gaussian
mechanism of zCDP ρ is μ-GDP with μ = √(2ρ); the audit passes when both bounds are within
these. (The discrete Gaussian's threshold tests behave like a continuous Gaussian of variance
σ² − 1/12, Sheppard's correction: its μ is 0.2 % above √(2ρ) at the release's scales,
`effective_mu`, far below what any feasible audit resolves; ρ and ε(δ) are exact.)

`rows` > 1 audits a deliberately wrong claim: a "person" who adds several rows to one cell
(as if linkage had failed to deduplicate their records), against a mechanism calibrated, and
a loss stated, for sensitivity 1. It must fail. `failure_probability` computes before any
run how likely an audit is to fail: the risk of failing a correct mechanism, and the power
against a misstatement.

>>> import numpy as np
>>> from dp.spec import release_spec
>>> from dp.measure import plan
>>> spec = release_spec()
>>> ds = spec.datasets["cases"]
>>> joint = np.zeros(list(ds.sizes.values()), dtype=np.int64)
>>> result = audit(joint, ds, plan(spec, "cases"), spec.budget.delta, n=200)
>>> result.passed, round(result.mu, 3), round(result.epsilon, 2)
(True, 0.67, 3.34)
>>> risk = failure_probability(effective_mu(plan(spec, "cases")), result.epsilon, result.mu, result.delta, n=200)
>>> risk["mu"][1] < 1e-5, risk["epsilon"][1] < 1e-20   # a correct mechanism fails at most this often
(True, True)
"""

import dataclasses
import math
import time
from functools import cache

import numpy as np
from scipy.stats import beta, binom, norm

from dp.marginals import Marginal
from dp.measure import loss, marginal, measure
from dp.spec import Dataset

GRID = np.round(np.arange(-3.0, 6.0 + 1e-9, 0.25), 2)  # thresholds on T, in its standard deviations under D
CONFIDENCE = 0.99


@dataclasses.dataclass(frozen=True)
class AuditResult:
    """Stated loss of the measurement and its empirical lower bounds."""

    rows: int  # rows the added person contributes (1: the stated unit of privacy)
    n: int  # runs of the measurement on each of D and D'
    confidence: float  # of the two lower bounds, jointly
    rho: float  # stated zCDP
    epsilon: float  # stated ε at δ
    delta: float
    mu: float  # stated Gaussian-DP μ = √(2ρ)
    epsilon_lb: float
    mu_lb: float
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether both empirical lower bounds are within the stated loss: ε_lb ≤ ε and μ_lb ≤ μ."""
        return self.epsilon_lb <= self.epsilon and self.mu_lb <= self.mu


def neighbour(joint: np.ndarray, cell: tuple[int, ...], rows: int = 1) -> np.ndarray:
    """D': the joint counts with `rows` more in one cell (one person when rows = 1)."""
    out = joint.copy()
    out[cell] += rows
    return out


def statistics(
    joint: np.ndarray, ds: Dataset, scales: dict[Marginal, float], n: int, cell: tuple[int, ...], rows: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """n draws of the standardised likelihood-ratio statistic on D and on D'."""
    other = neighbour(joint, cell, rows)
    x = np.concatenate([marginal(ds, joint, m) for m in scales])
    step = {m: marginal(ds, other, m) - marginal(ds, joint, m) for m in scales}  # Δ
    weight = np.concatenate([step[m] / s**2 for m, s in scales.items()])
    sd = math.sqrt(sum((step[m] ** 2).sum() / s**2 for m, s in scales.items()))
    t0, t1 = np.empty(n), np.empty(n)
    for i in range(n):
        noisy = measure({"D": joint, "D'": other}, ds, scales)
        t0[i], t1[i] = ((np.concatenate([noisy[area][m] for m in scales]) - x) @ weight for area in ("D", "D'"))
    return t0 / sd, t1 / sd


def effective_mu(scales: dict[Marginal, float], rows: int = 1) -> float:
    """The shift of the standardised statistic between D and D' under the discrete Gaussian,
    rows · √(Σ 1 / (σ² − 1/12)): what `failure_probability` should be given for this audit."""
    return rows * math.sqrt(sum(1 / (s**2 - 1 / 12) for s in scales.values()))


@cache
def _clopper_pearson(n: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """For k = 0..n events in n runs, the one-sided upper and lower Clopper-Pearson bounds,
    each at (1 − confidence) / (2 × thresholds), so that all hold together (Bonferroni)."""
    a = (1 - confidence) / (2 * len(GRID))
    k = np.arange(n + 1)
    high = np.where(k < n, beta.ppf(1 - a, k + 1, np.maximum(n - k, 1)), 1.0)
    low = np.where(k > 0, beta.ppf(a, np.maximum(k, 1), n - k + 1), 0.0)
    return high, low


def _epsilon(p0_high, p1_low, delta: float):
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.log((p1_low - delta) / p0_high)
        down = np.log((1 - p0_high - delta) / (1 - p1_low))
    return np.fmax(np.nan_to_num(up, nan=-np.inf), np.nan_to_num(down, nan=-np.inf))


def _mu(p0_high, p1_low):
    return norm.isf(p0_high) - norm.isf(p1_low)


def lower_bounds(t0: np.ndarray, t1: np.ndarray, delta: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(ε_lb, μ_lb) from samples of the statistic on D and D' (same length), jointly at the
    confidence level; 0 when the samples show nothing."""
    n = len(t0)
    high, low = _clopper_pearson(n, confidence)
    k0 = (t0[None, :] > GRID[:, None]).sum(1)
    k1 = (t1[None, :] > GRID[:, None]).sum(1)
    p0_high, p1_low = high[k0], low[k1]
    return max(0.0, float(_epsilon(p0_high, p1_low, delta).max())), max(0.0, float(_mu(p0_high, p1_low).max()))


def audit(
    joint: np.ndarray,
    ds: Dataset,
    scales: dict[Marginal, float],
    delta: float,
    n: int,
    rows: int = 1,
    cell: tuple[int, ...] | None = None,
    confidence: float = CONFIDENCE,
) -> AuditResult:
    """Audit the measurement of one country's joint counts at these scales against the loss
    OpenDP states for them (sensitivity 1): n runs on each of D and D' (D plus `rows` in
    `cell`, by default its largest cell)."""
    start = time.perf_counter()
    cell = tuple(int(i) for i in np.unravel_index(np.argmax(joint), joint.shape)) if cell is None else cell
    rho, epsilon = loss(scales, delta)
    epsilon_lb, mu_lb = lower_bounds(*statistics(joint, ds, scales, n, cell, rows), delta, confidence)
    return AuditResult(
        rows, n, confidence, rho, epsilon, delta, math.sqrt(2 * rho), epsilon_lb, mu_lb, time.perf_counter() - start
    )


def failure_probability(
    shift: float, epsilon: float, mu: float, delta: float, n: int, confidence: float = CONFIDENCE
) -> dict[str, tuple[float, float]]:
    """If T ~ N(0, 1) on D and N(shift, 1) on D' (a Gaussian mechanism of GDP μ = shift), the
    probability that an audit of n runs per side finds ε_lb > ε, and μ_lb > μ: exact for each
    threshold; over the grid, at least the largest and at most the sum of those. With
    `shift = effective_mu(scales, rows)`: the risk of failing a correct mechanism (rows = 1,
    the sum) and the power against a misstated sensitivity (rows > 1, the largest).
    Returns {"epsilon": (low, high), "mu": (low, high)}."""
    high, low = _clopper_pearson(n, confidence)
    k = np.arange(n + 1)
    needs = {  # for each count on D, the smallest p1_low that makes the bound exceed the claim
        "epsilon": np.minimum(delta + math.exp(epsilon) * high, 1 - (1 - high - delta) * math.exp(-epsilon)),
        "mu": norm.sf(norm.isf(high) - mu),
    }
    first = {name: np.searchsorted(low, need, side="right") for name, need in needs.items()}  # fails from here on D'
    per_t: dict[str, list[float]] = {name: [] for name in needs}
    for t in GRID:
        on_d, from_k_on_other = binom.pmf(k, n, norm.sf(t)), binom.sf(np.arange(-1, n + 1), n, norm.sf(t - shift))
        for name in needs:
            per_t[name].append(float(on_d @ from_k_on_other[first[name]]))
    return {name: (max(p), min(1.0, sum(p))) for name, p in per_t.items()}
