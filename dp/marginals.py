"""Marginals of a count table under independent Gaussian noise: the budget weights that
minimise the error of a marginal workload, and the generalised least squares (GLS)
estimate of every published marginal, consistent across tables, with its variance.

The algebra is ResidualPlanner's (Xiao et al., 2023). Attribute i has n_i codes; the data
vector x over the full domain splits into orthogonal residuals z_A, one per attribute set A.
A marginal on S holds exactly the residuals A ⊆ S: projected, a marginal measured with noise
σ² per cell estimates z_A with covariance σ²/c_S² I, where c_S² = ∏_{i∉S} n_i. Estimates of
z_A from several marginals combine by inverse variance (precision P_A); a marginal T is then
rebuilt from its residuals, with per-cell variance c_T² Σ_{A⊆T} π(A, T) / P_A, where
π(A, T) = ∏_{i∈A} (1 - 1/n_i) ∏_{i∈T∖A} 1/n_i. Each marginal has L2 sensitivity 1 (a person
is in one cell), so under zCDP its cost is ρ_S = 1 / (2σ_S²): we choose precisions
w_S = 1/σ_S² summing to 2ρ. Where ResidualPlanner measures residuals with real-valued noise,
we measure integer marginals, so that OpenDP's discrete Gaussian applies.

>>> alg = MarginalAlgebra({"a": 2, "b": 3})
>>> w = alg.optimal_weights([(), ("a",), ("b",), ("a", "b")], rho=1.0)
>>> round(sum(w.values()) / 2, 6)  # the whole budget is spent
1.0
"""

import itertools
import math

import numpy as np
from scipy.optimize import minimize

Marginal = tuple[str, ...]


def _complement_basis(n: int) -> np.ndarray:
    """An n × (n-1) orthonormal basis of the vectors orthogonal to the all-ones vector."""
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), np.eye(n)[:, : n - 1]]))
    return q[:, 1:]


class MarginalAlgebra:
    """Marginals over attributes with the given sizes (in this order)."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = dict(sizes)
        self.attributes = list(sizes)
        self._B = {a: _complement_basis(n) for a, n in self.sizes.items()}
        self._lifts: dict[tuple[Marginal, Marginal], np.ndarray] = {}

    def canonical(self, attrs) -> Marginal:
        """The marginal on these attributes, named in the algebra's order (each once).

        >>> MarginalAlgebra({"a": 2, "b": 3}).canonical(["b", "a", "b"])
        ('a', 'b')
        """
        return tuple(a for a in self.attributes if a in set(attrs))

    def cells(self, m: Marginal) -> int:
        """The number of cells of marginal m; the total, (), has one.

        >>> alg = MarginalAlgebra({"a": 2, "b": 3})
        >>> alg.cells(("a", "b")), alg.cells(())
        (6, 1)
        """
        return math.prod(self.sizes[a] for a in m)

    def c2(self, m: Marginal) -> float:
        """c_S² = ∏_{i∉S} n_i: how many cells of the full domain each cell of marginal S adds up.

        >>> alg = MarginalAlgebra({"a": 2, "b": 3})
        >>> alg.c2(("a",)), alg.c2(()), alg.c2(("a", "b"))
        (3, 6, 1)
        """
        return math.prod(n for a, n in self.sizes.items() if a not in m)

    def subsets(self, m: Marginal) -> list[Marginal]:
        """Every subset of m, smallest first: the residuals that marginal m holds.

        >>> MarginalAlgebra({"a": 2, "b": 3}).subsets(("a", "b"))
        [(), ('a',), ('b',), ('a', 'b')]
        """
        return [c for k in range(len(m) + 1) for c in itertools.combinations(m, k)]

    def pi(self, a: Marginal, t: Marginal) -> float:
        """π(A, T) = ∏_{i∈A} (1 - 1/n_i) ∏_{i∈T∖A} 1/n_i: the weight of residual A in the
        per-cell variance of marginal T. Over the residuals of T the weights add up to 1.

        >>> alg = MarginalAlgebra({"a": 2, "b": 3})
        >>> t = ("a", "b")
        >>> round(alg.pi(("a",), t), 4), round(sum(alg.pi(a, t) for a in alg.subsets(t)), 12)
        (0.1667, 1.0)
        """
        return math.prod((1 - 1 / self.sizes[i]) if i in a else 1 / self.sizes[i] for i in t)

    def lift(self, s: Marginal, a: Marginal) -> np.ndarray:
        """L_{S,A}: residual A's coordinates → the cells of marginal S (orthonormal columns)."""
        out = np.ones((1, 1))
        for i in s:
            n = self.sizes[i]
            out = np.kron(out, self._B[i] if i in a else np.full((n, 1), 1 / math.sqrt(n)))
        return out

    def _lift(self, s: Marginal, a: Marginal) -> np.ndarray:
        if (s, a) not in self._lifts:
            self._lifts[(s, a)] = self.lift(s, a)
        return self._lifts[(s, a)]

    # --- the error of a workload under a strategy ----------------------------------

    def precision(self, a: Marginal, weights: dict[Marginal, float]) -> float:
        """P_A = Σ_{S⊇A} c_S² w_S: the precision of the estimate of residual A from marginals
        measured with precisions {S: w_S}; 0 when no measured marginal holds A.

        >>> alg = MarginalAlgebra({"a": 2, "b": 3})
        >>> w = {("a",): 1.0, ("a", "b"): 2.0}
        >>> alg.precision(("a",), w), alg.precision(("b",), w), alg.precision(("b",), {("a",): 1.0})
        (5.0, 2.0, 0)
        """
        return sum(self.c2(s) * w for s, w in weights.items() if set(a) <= set(s))

    def variance(self, t: Marginal, weights: dict[Marginal, float]) -> float:
        """Per-cell variance of the GLS estimate of marginal t."""
        return self.c2(t) * sum(self.pi(a, t) / self.precision(a, weights) for a in self.subsets(t))

    def total_variance(self, workload: list[Marginal], weights: dict[Marginal, float]) -> float:
        """The expected total squared error of every cell of the workload."""
        return sum(self.cells(t) * self.variance(t, weights) for t in workload)

    def optimal_weights(self, workload: list[Marginal], rho: float) -> dict[Marginal, float]:
        """Precisions w_S = 1/σ_S² of the measured marginals minimising the workload's total
        variance, with Σ w_S / 2 = ρ. Candidates: the workload's marginals; a marginal that
        would get under 1 % of the largest weight is not measured (the optimum is flat there,
        so which tiny marginals survive would depend on the solver's last digits)."""
        candidates = list(workload)
        residuals = sorted({a for t in workload for a in self.subsets(t)}, key=lambda a: (len(a), a))
        k = np.array(
            [sum(self.cells(t) * self.c2(t) * self.pi(a, t) for t in workload if set(a) <= set(t)) for a in residuals]
        )
        cover = np.array([[self.c2(s) if set(a) <= set(s) else 0.0 for s in candidates] for a in residuals])

        def f(w):
            p = np.maximum(cover @ w, 1e-12)  # an uncovered residual: a huge, finite error
            return float(np.sum(k / p)), -(cover.T @ (k / p**2))

        total = 2 * rho
        w0 = np.full(len(candidates), total / len(candidates))
        res = minimize(
            f,
            w0,
            jac=True,
            method="SLSQP",
            bounds=[(0, total)] * len(candidates),
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - total, "jac": lambda w: np.ones_like(w)}],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        w = np.where(res.x > 1e-2 * res.x.max(), res.x, 0.0)
        w *= total / w.sum()
        return {s: float(x) for s, x in zip(candidates, w, strict=True) if x > 0}

    # --- estimation -----------------------------------------------------------------

    def estimate(
        self, workload: list[Marginal], measured: dict[Marginal, tuple[np.ndarray, float]]
    ) -> dict[Marginal, tuple[np.ndarray, float]]:
        """GLS estimates of every workload marginal from noisy marginals {S: (y_S, σ_S)}:
        {T: (cell estimates, per-cell variance)}. All are margins of one table: consistent."""
        weights = {s: 1 / sigma**2 for s, (_, sigma) in measured.items()}
        z, precision = {}, {}
        for a in sorted({a for t in workload for a in self.subsets(t)}, key=lambda a: (len(a), a)):
            p = self.precision(a, weights)
            if p <= 0:
                raise ValueError(f"marginal {a} is not covered by any measurement")
            num = sum(
                (math.sqrt(self.c2(s)) / sigma**2) * (self._lift(s, a).T @ y)
                for s, (y, sigma) in measured.items()
                if set(a) <= set(s)
            )
            z[a], precision[a] = num / p, p
        out = {}
        for t in workload:
            values = math.sqrt(self.c2(t)) * sum(self._lift(t, a) @ z[a] for a in self.subsets(t))
            out[t] = (np.asarray(values).reshape(-1), self.variance(t, weights))
        return out
