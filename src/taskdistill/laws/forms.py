"""The law families (docs/laws.md, "Forms"), each as retention q(u; x) with its analytic Jacobian.

Every form works in fit coordinates ``u`` on normalised inputs (κ and D divided by their geometric
means, so the optimiser sees numbers near 1 whatever the units); positive coefficients and
exponents are stored as logs or bounded values. :meth:`Form.natural` turns ``u`` back into the
paper's parameters in the data's own units.

  a1  −log q = a·κ^(−α)                         collapse scale κ_c = a^(1/α)
  a2  q = 1/(1 + (κ*/κ)^s)                      κ* = retention 0.5
  b1  q(D) = q∞ − (q∞ − q0)(1 + D/D0)^(−β)      q0 = retention right after pruning (D = 0)
  c1  −log q = E + a·(e_s κ)^(−α) + b·(m_f D)^(−β)   (c3: supervision f multiplies D, schedule s
                                                      multiplies κ; m_ref = e_ref = 1)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from itertools import product

import numpy as np
from scipy.special import expit

LOG_COEF = (-25.0, 25.0)  # log of a positive coefficient (normalised units)
EXPONENT = (0.02, 6.0)
LOG_MULT = (-8.0, 8.0)  # log of a c3 multiplier
_ALPHA_GRID = (0.1, 0.3, 0.6, 1.0, 1.6, 2.5, 4.0)


@dataclass
class Design:
    """Normalised inputs of one fit: κ/κ_scale, D/D_scale, categorical level indices, b1 anchor."""

    kappa: np.ndarray
    D: np.ndarray
    sup: np.ndarray  # index into supervision levels (0 = reference level)
    sched: np.ndarray  # index into schedule levels (0 = reference level)
    n_sup: int = 1
    n_sched: int = 1
    q0: float | None = None  # b1: retention right after pruning, when observed


@dataclass
class Form(ABC):
    name: str
    axis: str  # "kappa", "D" or "joint": what a level-out validation leaves out
    space: str  # transformed value the Huber / least-squares losses use: "neglog" (−log q) or "identity" (q)
    summary: str
    min_levels: dict = field(default_factory=dict)

    # Every family implements names, bounds, q and natural; linear-in-coefficient families also
    # phi_grid / basis / assemble (variable projection), the others grid.
    @abstractmethod
    def names(self, X: Design) -> list[str]:
        """Names of the fit coordinates u."""

    @abstractmethod
    def bounds(self, X: Design) -> list[tuple[float, float]]:
        """L-BFGS-B search bounds of u."""

    @abstractmethod
    def q(self, u, X: Design):
        """Retention q (n,) at the design rows and its Jacobian dq/du (n, k)."""

    @abstractmethod
    def natural(self, u, X: Design, scales, levels) -> dict:
        """The paper's parameters, in the data's units."""

    def inactive(self, u, X: Design) -> set[int]:
        """Indices of fit coordinates left undetermined because their term vanished (coefficient → 0)."""
        return set()

    def phi_grid(self, X: Design) -> list[np.ndarray] | None:
        """Grid of the nonlinear parameters φ for variable projection; None if the form has no linear part."""
        return None

    def basis(self, phi, X: Design):
        """(basis (n, m), offset, nonneg): the transformed value is basis @ coef + offset for fixed φ."""
        raise TypeError(f"{self.name} has no linear part")

    def assemble(self, phi, coef, X: Design) -> np.ndarray:
        """Fit coordinates u from φ and the linear coefficients."""
        raise TypeError(f"{self.name} has no linear part")

    def grid(self, X: Design) -> list[np.ndarray]:
        """Starts for forms without a linear part."""
        raise TypeError(f"{self.name} has no start grid")

    def n_params(self, X: Design) -> int:
        return len(self.names(X))


def _log_coef(c: float) -> float:
    return float(np.clip(np.log(max(c, 1e-300)), *LOG_COEF))


class A1(Form):
    def __init__(self):
        super().__init__("a1", "kappa", "neglog", "−log q = a·κ^(−α); collapse scale κ_c = a^(1/α)", {"kappa": 3})

    def names(self, X):
        return ["log_a", "alpha"]

    def bounds(self, X):
        return [LOG_COEF, EXPONENT]

    def q(self, u, X):
        la, alpha = u
        h = np.exp(la - alpha * np.log(X.kappa))
        q = np.exp(-h)
        return q, np.column_stack([-q * h, q * h * np.log(X.kappa)])

    def inactive(self, u, X):
        return {0, 1} if u[0] <= LOG_COEF[0] + 1e-6 else set()

    def phi_grid(self, X):
        return [np.array([a]) for a in _ALPHA_GRID]

    def basis(self, phi, X):
        return X.kappa[:, None] ** -phi[0], 0.0, True

    def assemble(self, phi, coef, X):
        return np.array([_log_coef(coef[0]), phi[0]])

    def natural(self, u, X, scales, levels):
        alpha = float(u[1])
        a = float(np.exp(u[0])) * scales[0] ** alpha
        return {"a": a, "alpha": alpha, "kappa_c": a ** (1 / alpha)}


class A2(Form):
    def __init__(self):
        super().__init__("a2", "kappa", "neglog", "q = 1/(1 + (κ*/κ)^s); κ* = retention 0.5", {"kappa": 3})

    def names(self, X):
        return ["log_kappa_star", "log_s"]

    def bounds(self, X):
        return [(-8.0, 8.0), (np.log(0.1), np.log(50.0))]

    def q(self, u, X):
        lk, ls = u
        s = np.exp(ls)
        z = s * (lk - np.log(X.kappa))
        q = expit(-z)
        g = -q * (1 - q)
        return q, np.column_stack([g * s, g * z])

    def grid(self, X):
        lk = np.log(X.kappa)
        centres = np.linspace(lk.min() - 0.5, lk.max() + 0.5, 6)
        return [np.array([c, np.log(s)]) for c, s in product(centres, (0.5, 1.5, 4.0, 10.0))]

    def natural(self, u, X, scales, levels):
        return {"kappa_star": float(np.exp(u[0])) * scales[0], "s": float(np.exp(u[1]))}


class B1(Form):
    """Data law in q, anchored at q0 (retention at D = 0) when D = 0 was observed, else q0 is free."""

    def __init__(self):
        super().__init__("b1", "D", "identity", "q(D) = q∞ − (q∞ − q0)(1 + D/D0)^(−β); q0 at D = 0", {"D": 3})

    def names(self, X):
        return ["q_inf", "log_D0", "log_beta"] + ([] if X.q0 is not None else ["q0"])

    def bounds(self, X):
        return [(-0.5, 2.0), (-12.0, 12.0), (np.log(0.02), np.log(8.0))] + ([] if X.q0 is not None else [(-0.5, 2.0)])

    def _q0(self, u, X):
        return X.q0 if X.q0 is not None else u[3]

    def q(self, u, X):
        q_inf, ld0, lb = u[:3]
        q0, beta = self._q0(u, X), np.exp(lb)
        x = X.D * np.exp(-ld0)
        g = np.exp(-beta * np.log1p(x))
        q = q_inf * (1 - g) + q0 * g
        cols = [1 - g, (q0 - q_inf) * g * beta * x / (1 + x), (q0 - q_inf) * g * (-beta * np.log1p(x))]
        if X.q0 is None:
            cols.append(g)
        return q, np.column_stack(cols)

    def phi_grid(self, X):
        ld = np.log(np.unique(X.D[X.D > 0]))
        d0s = np.linspace(ld.min() - 1, ld.max() + 1, 5)
        q0s = [X.q0] if X.q0 is not None else [0.0, 0.5]
        return [np.array([d, np.log(b), q0]) for d, b, q0 in product(d0s, (0.2, 0.5, 1.0, 2.0), q0s)]

    def basis(self, phi, X):
        g = np.exp(-np.exp(phi[1]) * np.log1p(X.D * np.exp(-phi[0])))
        return (1 - g)[:, None], phi[2] * g, False

    def assemble(self, phi, coef, X):
        u = [float(np.clip(coef[0], -0.5, 2.0)), phi[0], phi[1]]
        return np.array(u + ([] if X.q0 is not None else [phi[2]]))

    def natural(self, u, X, scales, levels):
        return {"q_inf": float(u[0]), "q0": float(self._q0(u, X)), "D0": float(np.exp(u[1])) * scales[1],
                "beta": float(np.exp(u[2]))}


class C1(Form):
    """Joint law; with several supervision / schedule levels it is the c3 extension (shared exponents)."""

    def __init__(self):
        super().__init__("c1", "kappa", "neglog", "−log q = E + a·(e_s κ)^(−α) + b·(m_f D)^(−β)",
                         {"kappa": 3, "D": 3})

    def names(self, X):
        return (["E", "log_a", "alpha", "log_b", "beta"] + [f"log_m{i}" for i in range(1, X.n_sup)]
                + [f"log_e{i}" for i in range(1, X.n_sched)])

    def bounds(self, X):
        return [(0.0, 50.0), LOG_COEF, EXPONENT, LOG_COEF, EXPONENT] + [LOG_MULT] * (X.n_sup + X.n_sched - 2)

    def _effective(self, u, X):
        lm = np.concatenate([[0.0], u[5:5 + X.n_sup - 1]])
        le = np.concatenate([[0.0], u[5 + X.n_sup - 1:]])
        return np.log(X.kappa) + le[X.sched], np.log(X.D) + lm[X.sup]

    def q(self, u, X):
        E, la, alpha, lb, beta = u[:5]
        lk, ld = self._effective(u, X)
        tk, td = np.exp(la - alpha * lk), np.exp(lb - beta * ld)
        q = np.exp(-(E + tk + td))
        cols = [np.ones_like(q), tk, -tk * lk, td, -td * ld]
        cols += [-beta * td * (X.sup == i) for i in range(1, X.n_sup)]
        cols += [-alpha * tk * (X.sched == i) for i in range(1, X.n_sched)]
        return q, -q[:, None] * np.column_stack(cols)

    def inactive(self, u, X):
        out = set()
        if u[1] <= LOG_COEF[0] + 1e-6:
            out |= {1, 2} | set(range(5 + X.n_sup - 1, len(u)))
        if u[3] <= LOG_COEF[0] + 1e-6:
            out |= {3, 4} | set(range(5, 5 + X.n_sup - 1))
        return out

    def phi_grid(self, X):
        mults = [np.zeros(X.n_sup + X.n_sched - 2)]
        return [np.concatenate([[a, b], m]) for a, b, m in product(_ALPHA_GRID[:6], _ALPHA_GRID[:6], mults)]

    def basis(self, phi, X):
        u = np.concatenate([[0.0, 0.0, phi[0], 0.0, phi[1]], phi[2:]])
        lk, ld = self._effective(u, X)
        return np.column_stack([np.ones_like(lk), np.exp(-phi[0] * lk), np.exp(-phi[1] * ld)]), 0.0, True

    def assemble(self, phi, coef, X):
        return np.concatenate([[min(coef[0], 50.0), _log_coef(coef[1]), phi[0], _log_coef(coef[2]), phi[1]], phi[2:]])

    def natural(self, u, X, scales, levels):
        alpha, beta = float(u[2]), float(u[4])
        out = {"E": float(u[0]), "a": float(np.exp(u[1])) * scales[0] ** alpha, "alpha": alpha,
               "b": float(np.exp(u[3])) * scales[1] ** beta, "beta": beta}
        sup, sched = levels
        for i in range(1, X.n_sup):
            out[f"m[{sup[i]}]"] = float(np.exp(u[4 + i]))
        for i in range(1, X.n_sched):
            out[f"e[{sched[i]}]"] = float(np.exp(u[4 + X.n_sup - 1 + i]))
        return out


FORMS: dict[str, Form] = {f.name: f for f in (A1(), A2(), B1(), C1())}
