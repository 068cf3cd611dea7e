"""Multiple systems estimation (MSE): how many victims no list saw.

Chan, Silverman & Vincent (2019, arXiv:1902.05156). A Poisson log-linear model on the
capture-history table (one cell per non-empty combination of lists) with every main effect;
two-list interactions are added stepwise: at each step, for each pair not in the model, the
number of cases on both lists is compared with its mean under the current model, and the
pair with the smallest one-sided Poisson p-value (the tail the observation lies in) is added
while that p-value is below `pthresh` (0.02). A pair that no case shares (an empty overlap)
enters as a structural zero: the cells of both lists leave the fit. A model enters only if
its maximum likelihood estimate exists (the linear-programming test of Fienberg & Rinaldo,
2012) and is identifiable (full-rank design). The unseen are exp(intercept); intervals are
BCa bootstrap intervals (resampling the cases, repeating the selection, jackknife for the
acceleration). Point fits use statsmodels' GLM; the bootstrap fits all resamples at once
with the same IRLS, vectorised over resamples.

>>> import pandas as pd
>>> table = pd.DataFrame({"A": [1, 0, 0, 1, 1, 0, 1], "B": [0, 1, 0, 1, 0, 1, 1],
...                       "C": [0, 0, 1, 0, 1, 1, 1], "count": [80, 60, 40, 20, 10, 8, 3]})
>>> est = Estimator(CaptureData.from_frame(table)).point()
>>> est.observed, round(est.estimate)
(221.0, 487)
"""

import dataclasses
import itertools
import warnings
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.optimize import linprog
from scipy.stats import norm, poisson

from thb.errors import UserInputError

Pair = tuple[int, int]


class CaptureDataError(UserInputError):
    """The table is not a capture-history table MSE can use."""


class NotEstimable(CaptureDataError):
    """The table holds no information on the unseen: even the main-effects model has no
    maximum likelihood estimate (typically, no case is on two lists)."""


@dataclasses.dataclass(frozen=True)
class CaptureData:
    """Counts for every non-empty capture history (unlisted histories count 0)."""

    lists: tuple[str, ...]
    counts: np.ndarray  # one per non-empty history, in `patterns` order

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "CaptureData":
        """0/1 list columns then `count` (the last column)."""
        if frame.shape[1] < 3:
            raise CaptureDataError("need at least two list columns and a count column")
        lists, count = list(frame.columns[:-1]), frame.columns[-1]
        flags = frame[lists]
        if flags.isna().any().any() or not flags.isin([0, 1]).all().all():
            raise CaptureDataError("list columns must hold only 0 and 1")
        counts = pd.to_numeric(frame[count], errors="coerce")
        if counts.isna().any() or (counts < 0).any() or (counts != counts.round()).any():
            raise CaptureDataError(f"'{count}' must hold non-negative whole numbers")
        if (flags.sum(axis=1) == 0).any() and counts[flags.sum(axis=1) == 0].sum() > 0:
            raise CaptureDataError("a case on no list cannot be observed: remove the all-zero row")
        keys = [tuple(int(v) for v in row) for row in flags.itertuples(index=False)]
        if len(set(keys)) != len(keys):
            raise CaptureDataError("a capture history is listed twice")
        by_key = dict(zip(keys, counts.astype(float), strict=True))
        patterns = all_patterns(len(lists))
        data = cls(tuple(lists), np.array([by_key.get(tuple(p), 0.0) for p in patterns]))
        if data.counts.sum() == 0:
            raise CaptureDataError("every count is zero: nobody was seen")
        seen_on = patterns.T @ data.counts
        if (seen_on > 0).sum() < 2:
            raise CaptureDataError("cases appear on one list only: MSE needs at least two lists with cases")
        return data

    @classmethod
    def read(cls, path: Path | str) -> "CaptureData":
        """The table in a CSV file, checked as by `from_frame`. A file pandas cannot read is a
        `CaptureDataError` naming the exception's type only, not its message."""
        try:
            frame = pd.read_csv(path)
        except Exception as exc:
            raise CaptureDataError(f"cannot read {path} as CSV ({type(exc).__name__})") from None
        return cls.from_frame(frame)

    @property
    def patterns(self) -> np.ndarray:
        """The capture history of each count: one 0/1 row per non-empty history (`all_patterns`)."""
        return all_patterns(len(self.lists))

    @property
    def observed(self) -> float:
        """The number of cases seen, on any list."""
        return float(self.counts.sum())

    def informative(self) -> "CaptureData":
        """Without the lists that saw nobody (their main effect has no finite estimate)."""
        seen = self.patterns.T @ self.counts > 0
        if seen.all():
            return self
        keep = np.flatnonzero(seen)
        merged: dict[tuple, float] = {}
        for pattern, count in zip(self.patterns[:, keep].astype(int), self.counts, strict=True):
            if pattern.any():
                merged[tuple(pattern)] = merged.get(tuple(pattern), 0.0) + count
        patterns = all_patterns(len(keep))
        return CaptureData(tuple(self.lists[i] for i in keep), np.array([merged.get(tuple(p), 0.0) for p in patterns]))


def all_patterns(k: int) -> np.ndarray:
    """Every non-empty capture history over k lists, one 0/1 row each (the first list varies
    slowest): the order of `CaptureData.counts`.

    >>> all_patterns(2)
    array([[0., 1.],
           [1., 0.],
           [1., 1.]])
    """
    return np.array([p for p in itertools.product([0, 1], repeat=k) if any(p)], dtype=float)


@dataclasses.dataclass(frozen=True)
class Model:
    """A log-linear model beyond its main effects: pairs of lists (indices into the data's
    lists) with a fitted interaction, and pairs whose empty overlap is a structural zero."""

    terms: tuple[Pair, ...] = ()  # fitted two-list interactions
    empty: tuple[Pair, ...] = ()  # pairs no case shares: structural zeros

    def add(self, pair: Pair, overlap: float) -> "Model":
        """The model with one more pair: an interaction if the two lists share cases
        (`overlap` > 0), else a structural zero.

        >>> Model().add((0, 1), overlap=12.0).add((0, 2), overlap=0.0)
        Model(terms=((0, 1),), empty=((0, 2),))
        """
        return Model(self.terms, self.empty + (pair,)) if overlap == 0 else Model(self.terms + (pair,), self.empty)


@dataclasses.dataclass
class Estimate:
    """An MSE result: the cases seen; the estimated total, seen and unseen; its BCa interval
    (None, and `nboot` 0, for a point estimate); the selected model's interactions and empty
    overlaps, as "A:B" list pairs; and the p-value threshold of the selection."""

    observed: float
    estimate: float
    ci95: tuple[float, float] | None
    terms: list[str]
    empty_overlaps: list[str]
    pthresh: float
    nboot: int

    def as_dict(self) -> dict:
        """The result in JSON's types (the interval as a list), for `thb mse --json`.

        >>> Estimate(221.0, 487.2, (401.5, 655.0), ["A:B"], [], 0.02, 1000).as_dict()["ci95"]
        [401.5, 655.0]
        """
        return {
            "observed": self.observed,
            "estimate": self.estimate,
            "ci95": list(self.ci95) if self.ci95 else None,
            "terms": self.terms,
            "empty_overlaps": self.empty_overlaps,
            "pthresh": self.pthresh,
            "nboot": self.nboot,
        }


class Estimator:
    """MSE on one capture-history table."""

    def __init__(self, data: CaptureData, pthresh: float = 0.02, include: Iterable[tuple[str, str]] = ()):
        """`include`: pairs of lists known to depend on each other (one refers cases to the
        other): their interaction is in every model, before the stepwise selection."""
        self.data, self.pthresh = data.informative(), pthresh
        self.k = len(self.data.lists)
        self.pairs = list(itertools.combinations(range(self.k), 2))
        self._ident: dict = {}
        unknown = {name for pair in include for name in pair} - set(data.lists)
        if unknown:
            raise CaptureDataError(f"no list named {', '.join(sorted(unknown))}")
        index = {name: i for i, name in enumerate(self.data.lists)}
        self.include: list[Pair] = [
            (min(index[a], index[b]), max(index[a], index[b]))
            for a, b in include
            if a in index and b in index and a != b
        ]
        if self.k < 2 or not self.identifiable(Model(), self.data.counts > 0):
            raise NotEstimable(
                "the lists do not overlap enough to estimate the unseen: even the main-effects "
                "model has no maximum likelihood estimate"
            )

    @cached_property
    def both(self) -> np.ndarray:
        """For each pair, the cells whose cases are on both lists: (pairs, cells)."""
        p = self.data.patterns
        return np.array([(p[:, i] == 1) & (p[:, j] == 1) for i, j in self.pairs])

    def design(self, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """The design over the cells the model keeps, and that mask."""
        p = self.data.patterns
        keep = (
            ~np.logical_or.reduce([self.both[self.pairs.index(e)] for e in model.empty])
            if model.empty
            else np.ones(len(p), bool)
        )
        cols = [np.ones(len(p)), *p.T, *[p[:, i] * p[:, j] for i, j in model.terms]]
        return np.column_stack(cols)[keep], keep

    def identifiable(self, model: Model, positive: np.ndarray) -> bool:
        """The MLE exists (Fienberg-Rinaldo LP: the sufficient statistics lie in the relative
        interior of the cone of the kept cells) and is unique (full-rank design)."""
        key = (model, positive.tobytes())
        if key not in self._ident:
            x, keep = self.design(model)
            y = positive[keep].astype(float)
            self._ident[key] = np.linalg.matrix_rank(x) == x.shape[1] and _exists(x, y)
        return self._ident[key]

    def start(self, counts: np.ndarray) -> Model:
        """Where the model selection starts: main effects plus each known dependence whose
        lists share cases and that keeps the estimate identifiable on these counts."""
        model, positive = Model(), counts > 0
        overlaps = self.both @ counts
        for pair in self.include:
            candidate = Model(model.terms + (pair,))
            if overlaps[self.pairs.index(pair)] > 0 and self.identifiable(candidate, positive):
                model = candidate
        return model

    def _pvalues(self, counts: np.ndarray, fitted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided (smaller tail) Poisson p-values of each pair's overlap, per resample."""
        obs, mean = counts @ self.both.T, fitted @ self.both.T
        return np.minimum(poisson.sf(obs - 1, mean), poisson.cdf(obs, mean)), obs

    def point(self) -> Estimate:
        """The stepwise model and its estimate, fitted with statsmodels."""
        model, beta0 = self._select_one(self.data.counts)
        names = self.data.lists
        return Estimate(
            self.data.observed,
            self.data.observed + float(np.exp(beta0)),
            None,
            [f"{names[i]}:{names[j]}" for i, j in model.terms],
            [f"{names[i]}:{names[j]}" for i, j in model.empty],
            self.pthresh,
            0,
        )

    def _fit(self, counts: np.ndarray, model: Model) -> tuple[float, np.ndarray]:
        x, keep = self.design(model)
        with warnings.catch_warnings():  # a saturated model has no residual degrees of freedom
            warnings.simplefilter("ignore")
            fit = sm.GLM(counts[keep], x, family=sm.families.Poisson()).fit()
        fitted = np.zeros(len(counts))
        fitted[keep] = fit.fittedvalues
        return float(fit.params[0]), fitted

    def _select_one(self, counts: np.ndarray) -> tuple[Model, float]:
        model = self.start(counts)
        positive = counts > 0
        beta0, fitted = self._fit(counts, model)
        while True:
            p, obs = self._pvalues(counts[None, :], fitted[None, :])
            nxt = self._next(model, p[0], obs[0], positive)
            if nxt is None:
                return model, beta0
            model = nxt
            beta0, fitted = self._fit(counts, model)

    def _next(self, model: Model, p: np.ndarray, obs: np.ndarray, positive: np.ndarray) -> Model | None:
        used = set(model.terms) | set(model.empty)
        for idx in np.argsort(p, kind="stable"):
            if p[idx] >= self.pthresh:
                return None
            pair = self.pairs[idx]
            if pair in used:
                continue
            candidate = model.add(pair, obs[idx])
            if self.identifiable(candidate, positive):
                return candidate
        return None

    # --- the bootstrap -------------------------------------------------------------------

    def select_many(self, counts: np.ndarray) -> np.ndarray:
        """The selected model's estimate for each row of counts (resamples), all resamples
        advancing through the stepwise selection together, fitted in batches by model.
        A resample in which a list saw nobody is estimated without that list."""
        lost = (counts @ self.data.patterns) == 0
        out = np.empty(len(counts))
        for pattern in {tuple(row) for row in lost}:
            rows = np.flatnonzero((lost == pattern).all(axis=1))
            if not any(pattern):
                out[rows] = self._select_many(counts[rows])
            else:
                for r in rows:  # rare: re-estimate on the informative lists
                    data = CaptureData(self.data.lists, counts[r]).informative()
                    try:
                        names = [(self.data.lists[i], self.data.lists[j]) for i, j in self.include]
                        kept = [pair for pair in names if set(pair) <= set(data.lists)]
                        out[r] = Estimator(data, self.pthresh, kept).select_many(data.counts[None, :])[0]
                    except NotEstimable:
                        out[r] = np.nan
        return out

    def _select_many(self, counts: np.ndarray) -> np.ndarray:
        """NaN for a resample whose main-effects model has no estimate (too few overlaps)."""
        n = len(counts)
        active = np.array([self.identifiable(Model(), row > 0) for row in counts])
        if not active.all():
            out = np.full(n, np.nan)
            if active.any():
                out[active] = self._select_many(counts[active])
            return out
        models = [self.start(row) for row in counts]
        beta0 = np.zeros(n)
        while active.any():
            groups: dict[Model, list[int]] = {}
            for r in np.flatnonzero(active):
                groups.setdefault(models[r], []).append(int(r))
            for model, members in groups.items():
                rows = np.array(members)
                b0, fitted = self._fit_batch(counts[rows], model)
                beta0[rows] = b0
                p, obs = self._pvalues(counts[rows], fitted)
                for j, r in enumerate(rows):
                    nxt = self._next(model, p[j], obs[j], counts[r] > 0)
                    if nxt is None:
                        active[r] = False
                    else:
                        models[r] = nxt
        return counts.sum(axis=1) + np.exp(beta0)

    def _fit_batch(self, counts: np.ndarray, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """Poisson IRLS for many count vectors with one design (the algorithm statsmodels
        uses, vectorised over resamples)."""
        x, keep = self.design(model)
        y = counts[:, keep]
        eta = np.log(y + 0.5)
        beta = np.zeros((len(y), x.shape[1]))
        for _ in range(100):
            mu = np.exp(np.clip(eta, -30, 30))
            z = eta + (y - mu) / mu
            a = np.einsum("bc,ci,cj->bij", mu, x, x)
            rhs = np.einsum("bc,ci->bi", mu * z, x)
            new = np.linalg.solve(a, rhs[..., None])[..., 0]
            done = np.abs(new - beta).max() < 1e-9
            beta = new
            eta = beta @ x.T
            if done:
                break
        fitted = np.zeros(counts.shape)
        fitted[:, keep] = np.exp(np.clip(eta, -30, 30))
        return beta[:, 0], fitted

    def bootstrap(self, nboot: int = 1000, seed: int = 1234, level: float = 0.95) -> Estimate:
        """The point estimate with its BCa interval from `nboot` resamples of the cases."""
        est = self.point()
        rng = np.random.default_rng(seed)
        n = int(self.data.observed)
        samples = rng.multinomial(n, self.data.counts / n, size=nboot).astype(float)
        boot = self.select_many(samples)
        est.ci95 = bca(est.estimate, boot[~np.isnan(boot)], self._jackknife(), self.data.counts, level)
        est.nboot = nboot
        return est

    def _jackknife(self) -> np.ndarray:
        """The estimate without one case, for each non-empty cell (one value per cell)."""
        cells = np.flatnonzero(self.data.counts > 0)
        leave_one = np.repeat(self.data.counts[None, :], len(cells), axis=0)
        leave_one[np.arange(len(cells)), cells] -= 1
        out = np.full(len(self.data.counts), np.nan)
        out[cells] = self.select_many(leave_one)
        return out


def bca(theta: float, boot: np.ndarray, jack: np.ndarray, counts: np.ndarray, level: float) -> tuple[float, float]:
    """Bias-corrected and accelerated bootstrap interval (Efron 1987); the jackknife leaves
    out one case at a time (cells weighted by their counts)."""
    z0 = norm.ppf((np.sum(boot < theta) + 0.5 * np.sum(boot == theta)) / len(boot))
    cells = counts > 0
    weights = counts[cells]
    values = jack[cells]
    weights, values = weights[~np.isnan(values)], values[~np.isnan(values)]
    mean = np.sum(weights * values) / weights.sum()
    d = mean - values
    a = np.sum(weights * d**3) / (6 * np.sum(weights * d**2) ** 1.5) if np.any(d) else 0.0
    out = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        z = norm.ppf(alpha)
        out.append(float(np.quantile(boot, norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))))
    return out[0], out[1]


def _exists(x: np.ndarray, y: np.ndarray) -> bool:
    """Fienberg & Rinaldo (2012): the MLE exists iff some strictly positive cell vector m has
    the observed sufficient statistics, xᵀm = xᵀy. Maximise the smallest m_c (at most 1).

    It fails only if some direction d separates the positive cells from the others (x d ≥ 0,
    zero on every positive cell, not zero everywhere); if the positive cells' own design has
    full rank, only d = 0 is zero on them all, so the MLE exists and the LP is not needed
    (most supports: it saves ~97 % of the LPs of a bootstrap)."""
    if np.linalg.matrix_rank(x[y > 0]) == x.shape[1]:
        return True
    c, p = x.shape
    res = linprog(
        np.r_[np.zeros(c), -1.0],
        A_ub=np.hstack([-np.eye(c), np.ones((c, 1))]),
        b_ub=np.zeros(c),
        A_eq=np.hstack([x.T, np.zeros((p, 1))]),
        b_eq=x.T @ y,
        bounds=[(0, None)] * c + [(None, 1.0)],
        method="highs",
    )
    return res.status == 0 and -res.fun > 1e-9
