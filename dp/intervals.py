"""Confidence intervals for a count known to be non-negative, from an unbiased estimate with
Gaussian error: the Feldman-Cousins unified intervals (Phys. Rev. D 57, 3873, 1998).

Clipping a symmetric interval at zero over-covers true zeros (the upper side can never miss
them). Feldman and Cousins order the outcomes by their likelihood ratio to the best
non-negative mean, which gives exact coverage for every true value: one-sided upper limits
near zero, the usual ±z·σ far from it.

>>> low, high = feldman_cousins(np.array([-1.0, 1.0, 10.0]), 0.90)
>>> np.round(low, 2).tolist(), np.round(high, 2).tolist()
([0.0, 0.0, 8.36], [0.81, 2.64, 11.64])
"""

from functools import cache

import numpy as np
from scipy.stats import norm

STEP = 0.005
MU_MAX = 8.0  # beyond, the intervals are the usual ±z (in units of σ)


@cache
def _belt(level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The confidence belt: for each true mean μ (in σ), its acceptance interval of outcomes."""
    mus = np.arange(0.0, MU_MAX + 4 + STEP / 2, STEP)
    xs = np.arange(-10.0, MU_MAX + 10 + STEP / 2, STEP)
    best = np.maximum(xs, 0.0)
    x_low, x_high = np.empty_like(mus), np.empty_like(mus)
    for i, mu in enumerate(mus):
        ratio = -((xs - mu) ** 2) / 2 + (xs - best) ** 2 / 2
        order = np.argsort(-ratio, kind="stable")
        mass = np.cumsum(norm.pdf(xs[order] - mu) * STEP)
        chosen = order[: int(np.searchsorted(mass, level)) + 1]
        x_low[i], x_high[i] = xs[chosen].min(), xs[chosen].max()
    return mus, x_low, x_high


@cache
def _table(level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a grid of observed values x (in σ), the interval of the means whose belt holds x."""
    mus, x_low, x_high = _belt(level)
    grid = np.arange(-10.0, MU_MAX + STEP / 2, STEP)
    inside = (x_low[None, :] <= grid[:, None] + 1e-9) & (grid[:, None] - 1e-9 <= x_high[None, :])
    low = np.where(inside.any(1), mus[np.argmax(inside, axis=1)], 0.0)
    high = mus[inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)]
    return grid, low, high


def feldman_cousins(x: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds for non-negative means given estimates x, both in units of σ."""
    grid, low, high = _table(level)
    z = float(norm.ppf(0.5 + level / 2))
    far = x > MU_MAX
    lo = np.where(far, x - z, np.interp(x, grid, low))
    hi = np.where(far, x + z, np.interp(x, grid, high))
    return np.maximum(lo, 0.0), hi
