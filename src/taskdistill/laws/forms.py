"""The law forms (docs/laws.md, "Forms"): one :class:`Form` record per form, registered by name.

A record holds everything the rest of the laws stage needs to know about a form, so fitting,
checks, analysis, derived answers, recommend and the synthetic generator never branch on a name:

- the fit coordinates ``u`` (names, search bounds, starts), retention q(u; x) and dq/du (analytic, or
  central differences when ``retention`` returns q alone), and ``natural``: u → the paper's
  parameters in the data's units;
- the linear part for variable projection (:class:`Linear`: which coordinates are nonlinear, the
  basis for fixed nonlinear ones, how to assemble u), or plain ``starts``;
- what it is fitted on: ``slice_keys`` (row keys held fixed in one fit), ``axis`` (held-out checks),
  ``min_levels``, ``inputs`` (κ and/or D), ``factors`` (categorical multipliers fitted jointly);
- closed forms: ``kappa50`` and ``data_needed`` (None where the form has none);
- ``evaluate``: retention from natural parameters — what the synthetic generator draws from.

Every form works in fit coordinates on normalised inputs (κ and D divided by their geometric means,
``normalise``), so the optimiser sees numbers near 1 whatever the units.

  a1   −log q = a·κ^(−α)                         collapse scale κ_c = a^(1/α)
  a1h  −log q = E + a·κ^(−α), E ≥ −log q_max     a1 with a free ceiling h ≤ 1 (accuracy units)
  a2   q = 1/(1 + (κ*/κ)^s)                      κ* = retention 0.5
  b1   q(D) = q∞ − (q∞ − q0)(1 + D/D0)^(−β)      q0 = retention right after pruning (D = 0)
  c1   −log q = E + a·(e_s κ)^(−α) + b·(m_f D)^(−β), E ≥ 0   (c3: supervision f multiplies D,
                                                      schedule s multiplies κ; m_ref = e_ref = 1)
  c1h  c1 with E ≥ −log q_max                    a free ceiling above the teacher

q_max = (1 − chance)/(reference − chance): the retention of a student scoring 1 (a perfect student).

Adding a form: ``register(Form(name=..., summary=..., coords=[...], search_bounds=[...],
retention=..., natural=..., evaluate=..., starts=...))`` — see docs/laws.md, "Adding a law form".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np
from scipy.special import expit

from taskdistill.errors import TaskDistillError, did_you_mean

LOG_COEF = (-25.0, 25.0)  # log of a positive coefficient (normalised units)
EXPONENT = (0.02, 6.0)
LOG_MULT = (-8.0, 8.0)  # log of a c3 multiplier
E_MAX = 50.0
LN2 = math.log(2.0)
_ALPHA_GRID = (0.1, 0.3, 0.6, 1.0, 1.6, 2.5, 4.0)

# Row keys held fixed inside one fit (the slice); the rest varies along the law's inputs.
KAPPA_SLICE = ("supervision", "method", "schedule", "dataset_size")  # along κ at fixed nominal D
DATA_SLICE = ("supervision", "method", "schedule", "keep_fraction")  # along D at fixed κ
JOINT_SLICE = ("method",)  # everything of one method


@dataclass
class Design:
    """Normalised inputs of one fit: κ/κ_scale, D/D_scale (effective D), level indices, b1 anchor."""

    kappa: np.ndarray
    D: np.ndarray
    sup: np.ndarray  # index into supervision levels (0 = reference level)
    sched: np.ndarray  # index into schedule levels (0 = reference level)
    n_sup: int = 1
    n_sched: int = 1
    q0: float | None = None  # anchored forms: retention right after pruning, when observed
    q_max: float = 1.0  # retention of a perfect student, (1 − chance)/(reference − chance): ceiling forms


@dataclass
class Linear:
    """Variable projection: for fixed nonlinear coordinates φ the transformed value (−log q, or q) is
    ``basis @ coef + offset``; the linear coefficients then come from (non-negative) least squares.

    ``basis(φ, X)`` returns (basis (n, m), offset, nonneg); ``assemble(φ, coef, X)`` returns u.
    ``phi_of`` / ``phi_bounds`` default to the ``nonlinear`` coordinates of u and their bounds; a form
    whose φ carries something else (b1: its anchor q0) overrides them.
    """

    nonlinear: Callable[[Design], list[int]]
    grid: Callable[[Design], list[np.ndarray]]
    basis: Callable
    assemble: Callable
    phi_of: Callable | None = None
    phi_bounds: Callable | None = None

    def phi(self, u, X: Design) -> np.ndarray:
        return self.phi_of(u, X) if self.phi_of else np.asarray(u)[self.nonlinear(X)]

    def bounds(self, X: Design, bounds) -> list:
        return self.phi_bounds(X, bounds) if self.phi_bounds else [bounds[i] for i in self.nonlinear(X)]


def _const(value):
    return value if callable(value) else (lambda X, _v=list(value): list(_v))


@dataclass(eq=False)
class Form:
    """One law form; see the module docstring. Callables get the :class:`Design` ``X`` of the fit."""

    name: str
    summary: str
    coords: Sequence[str] | Callable  # names of the fit coordinates u (or X → names)
    search_bounds: Sequence[tuple] | Callable  # L-BFGS-B bounds of u (or X → bounds)
    retention: Callable  # (u, X) → q, or (q, dq/du (n, k))
    natural: Callable  # (u, X, scales, levels) → the paper's parameters in the data's units
    evaluate: Callable  # (p, kappa, D, supervision, schedule) → q from natural parameters p
    starts: Callable | None = None  # X → start points of u (forms without a linear part)
    linear: Linear | None = None
    axis: str = "kappa"  # what a level-out validation leaves out: "kappa" or "D"
    space: str = "neglog"  # transformed value the Huber / least-squares losses use: −log q, or q ("identity")
    inputs: tuple = ("kappa",)  # the continuous inputs the law reads
    factors: tuple = ()  # categorical multipliers fitted jointly ("supervision", "schedule")
    slice_keys: tuple = KAPPA_SLICE
    min_levels: dict = field(default_factory=lambda: {"kappa": 3})  # distinct levels (D: D > 0) needed
    normalise: tuple = ("kappa", "D")  # inputs divided by their geometric mean before fitting
    anchor_q0: bool = False  # q0 fixed at the pooled retention of the D = 0 (pruned) points
    positive_D: bool = False  # points at D = 0 are left out (the law diverges there)
    decline_check: bool = True  # refuse data that never fall below the reference
    physical: frozenset = frozenset()  # coordinates whose bounds are physical limits, not search limits
    vanished: Callable | None = None  # (u, X) → coordinates left undetermined by a vanished term
    kappa50: Callable | None = None  # (p, q, D, supervision, schedule) → κ where retention = q
    data_needed: Callable | None = None  # (p, q, kappa, supervision, schedule) → effective D reaching q
    ceiling: str | None = None  # name of this form's variant with a free ceiling h ≤ 1

    def __post_init__(self):
        self._names, self._bounds = _const(self.coords), _const(self.search_bounds)
        if self.linear is None and self.starts is None:
            raise TaskDistillError(f"law form {self.name!r} needs starts or a linear part")

    def names(self, X: Design) -> list[str]:
        return list(self._names(X))

    def bounds(self, X: Design) -> list[tuple[float, float]]:
        return [tuple(map(float, b)) for b in self._bounds(X)]

    def n_params(self, X: Design) -> int:
        return len(self.names(X))

    def q(self, u, X: Design):
        """Retention q (n,) at the design rows and its Jacobian dq/du (n, k)."""
        u = np.asarray(u, dtype=np.float64)
        out = self.retention(u, X)
        if isinstance(out, tuple):
            return out
        return out, _numeric_jacobian(self.retention, u, X, out)

    def inactive(self, u, X: Design) -> set[int]:
        """Indices of fit coordinates left undetermined because their term vanished (coefficient → 0)."""
        return set(self.vanished(u, X)) if self.vanished else set()

    def phi_grid(self, X: Design):
        """Grid of the nonlinear parameters for variable projection; None without a linear part."""
        return self.linear.grid(X) if self.linear else None

    def grid(self, X: Design) -> list[np.ndarray]:
        """Starts of u: the record's ``starts``."""
        return list(self.starts(X))


def _numeric_jacobian(fn, u, X, q0):
    cols = []
    for i in range(len(u)):
        h = 1e-6 * max(1.0, abs(u[i]))
        up, dn = u.copy(), u.copy()
        up[i] += h
        dn[i] -= h
        cols.append((np.asarray(fn(up, X)) - np.asarray(fn(dn, X))) / (2 * h))
    return np.column_stack(cols) if cols else np.zeros((len(q0), 0))


FORMS: dict[str, Form] = {}


def register(form: Form, *, replace: bool = False) -> Form:
    """Make ``form`` available by name to every part of the laws stage (fit, CLI, analysis, ...)."""
    if form.name in FORMS and not replace:
        raise TaskDistillError(f"a law form named {form.name!r} is already registered")
    FORMS[form.name] = form
    return form


def unregister(name: str) -> None:
    FORMS.pop(name, None)


def get_form(form: str | Form) -> Form:
    if isinstance(form, Form):
        return form
    if form not in FORMS:
        raise did_you_mean(form, FORMS, "law family")
    return FORMS[form]


def _log_coef(c: float) -> float:
    return float(np.clip(np.log(max(c, 1e-300)), *LOG_COEF))


def _e_floor(X: Design, ceiling: bool) -> float:
    """Lowest E: 0 (q ≤ 1, capped at the teacher) or −log q_max (a student may reach value 1)."""
    return -math.log(max(X.q_max, 1.0)) if ceiling else 0.0


def _multipliers(p: dict, supervision, schedule) -> tuple[float, float]:
    m = p.get(f"m[{supervision}]", 1.0) if supervision is not None else 1.0
    e = p.get(f"e[{schedule}]", 1.0) if schedule is not None else 1.0
    return m, e


# -- a1 (and a1h: with a free ceiling) ---------------------------------------------------------------

def _kappa_power(ceiling: bool) -> Form:
    """−log q = [E +] a·κ^(−α); with ``ceiling`` E is free down to −log q_max (students above the teacher)."""
    k0 = 1 if ceiling else 0  # index of log_a in u

    def split(u):
        return (u[0] if ceiling else 0.0), u[k0], u[k0 + 1]

    def retention(u, X):
        E, la, alpha = split(u)
        h = np.exp(la - alpha * np.log(X.kappa))
        q = np.exp(-(E + h))
        cols = ([-q] if ceiling else []) + [-q * h, q * h * np.log(X.kappa)]
        return q, np.column_stack(cols)

    def vanished(u, X):
        return {k0, k0 + 1} if u[k0] <= LOG_COEF[0] + 1e-6 else set()

    def basis(phi, X):
        col = X.kappa[:, None] ** -phi[0]
        if ceiling:  # E' = E − floor ≥ 0 keeps the coefficient non-negative for NNLS
            return np.column_stack([np.ones(len(X.kappa)), col[:, 0]]), _e_floor(X, True), True
        return col, 0.0, True

    def assemble(phi, coef, X):
        if ceiling:
            return np.array([min(coef[0] + _e_floor(X, True), E_MAX), _log_coef(coef[1]), phi[0]])
        return np.array([_log_coef(coef[0]), phi[0]])

    def natural(u, X, scales, levels):
        E, la, alpha = split(u)
        a = float(np.exp(la)) * scales[0] ** float(alpha)
        out = {"a": a, "alpha": float(alpha)}
        if ceiling:
            out = {"E": float(E), **out, "q_ceiling": float(np.exp(-E))}
        else:
            out["kappa_c"] = a ** (1 / float(alpha))
        return out

    def evaluate(p, kappa, D=0.0, supervision=None, schedule=None):
        return np.exp(-(p.get("E", 0.0) + p["a"] * np.asarray(kappa, dtype=np.float64) ** -p["alpha"]))

    def kappa50(p, q=0.5, D=None, supervision=None, schedule=None):
        room = -math.log(q) - p.get("E", 0.0)
        return math.inf if room <= 0 else (p["a"] / room) ** (1 / p["alpha"])

    coords = (["E"] if ceiling else []) + ["log_a", "alpha"]
    return Form(
        name="a1h" if ceiling else "a1",
        summary=("−log q = E + a·κ^(−α); free ceiling e^(−E) ≤ q_max" if ceiling
                 else "−log q = a·κ^(−α); collapse scale κ_c = a^(1/α)"),
        coords=coords,
        search_bounds=(lambda X: [(_e_floor(X, True), E_MAX), LOG_COEF, EXPONENT]) if ceiling else [LOG_COEF, EXPONENT],
        retention=retention, natural=natural, evaluate=evaluate,
        linear=Linear(nonlinear=lambda X: [k0 + 1], grid=lambda X: [np.array([a]) for a in _ALPHA_GRID],
                      basis=basis, assemble=assemble),
        physical=frozenset({"E"}), vanished=vanished, kappa50=kappa50, ceiling=None if ceiling else "a1h",
    )


# -- a2 -----------------------------------------------------------------------------------------------

def _a2_retention(u, X):
    lk, ls = u
    s = np.exp(ls)
    z = s * (lk - np.log(X.kappa))
    q = expit(-z)
    g = -q * (1 - q)
    return q, np.column_stack([g * s, g * z])


def _a2_starts(X):
    lk = np.log(X.kappa)
    centres = np.linspace(lk.min() - 0.5, lk.max() + 0.5, 6)
    return [np.array([c, np.log(s)]) for c, s in product(centres, (0.5, 1.5, 4.0, 10.0))]


A2 = Form(
    name="a2", summary="q = 1/(1 + (κ*/κ)^s); κ* = retention 0.5",
    coords=["log_kappa_star", "log_s"], search_bounds=[(-8.0, 8.0), (np.log(0.1), np.log(50.0))],
    retention=_a2_retention,
    natural=lambda u, X, scales, levels: {"kappa_star": float(np.exp(u[0])) * scales[0], "s": float(np.exp(u[1]))},
    evaluate=lambda p, kappa, D=0.0, supervision=None, schedule=None: 1.0 / (
        1.0 + (p["kappa_star"] / np.asarray(kappa, dtype=np.float64)) ** p["s"]),
    starts=_a2_starts,
    kappa50=lambda p, q=0.5, D=None, supervision=None, schedule=None: p["kappa_star"] * (1 / q - 1) ** (-1 / p["s"]),
)


# -- b1 -----------------------------------------------------------------------------------------------

def _b1_q0(u, X):
    return X.q0 if X.q0 is not None else u[3]


def _b1_retention(u, X):
    q_inf, ld0, lb = u[:3]
    q0, beta = _b1_q0(u, X), np.exp(lb)
    x = X.D * np.exp(-ld0)
    g = np.exp(-beta * np.log1p(x))
    q = q_inf * (1 - g) + q0 * g
    cols = [1 - g, (q0 - q_inf) * g * beta * x / (1 + x), (q0 - q_inf) * g * (-beta * np.log1p(x))]
    if X.q0 is None:
        cols.append(g)
    return q, np.column_stack(cols)


def _b1_grid(X):
    ld = np.log(np.unique(X.D[X.D > 0]))
    d0s = np.linspace(ld.min() - 1, ld.max() + 1, 5)
    q0s = [X.q0] if X.q0 is not None else [0.0, 0.5]
    return [np.array([d, np.log(b), q0]) for d, b, q0 in product(d0s, (0.2, 0.5, 1.0, 2.0), q0s)]


def _b1_basis(phi, X):
    g = np.exp(-np.exp(phi[1]) * np.log1p(X.D * np.exp(-phi[0])))
    return (1 - g)[:, None], phi[2] * g, False


def _b1_assemble(phi, coef, X):
    u = [float(np.clip(coef[0], -0.5, 2.0)), phi[0], phi[1]]
    return np.array(u + ([] if X.q0 is not None else [phi[2]]))


def _b1_data_needed(p, q, kappa=None, supervision=None, schedule=None):
    if q >= p["q_inf"]:
        return math.inf
    if q <= p["q0"]:
        return 0.0
    return p["D0"] * (((p["q_inf"] - q) / (p["q_inf"] - p["q0"])) ** (-1 / p["beta"]) - 1)


B1 = Form(
    name="b1", summary="q(D) = q∞ − (q∞ − q0)(1 + D/D0)^(−β); q0 at D = 0",
    coords=lambda X: ["q_inf", "log_D0", "log_beta"] + ([] if X.q0 is not None else ["q0"]),
    search_bounds=lambda X: [(-0.5, 2.0), (-12.0, 12.0), (np.log(0.02), np.log(8.0))]
    + ([] if X.q0 is not None else [(-0.5, 2.0)]),
    retention=_b1_retention,
    natural=lambda u, X, scales, levels: {"q_inf": float(u[0]), "q0": float(_b1_q0(u, X)),
                                          "D0": float(np.exp(u[1])) * scales[1], "beta": float(np.exp(u[2]))},
    evaluate=lambda p, kappa, D=0.0, supervision=None, schedule=None: p["q_inf"] - (p["q_inf"] - p["q0"]) * (
        1 + np.asarray(D, dtype=np.float64) / p["D0"]) ** -p["beta"],
    linear=Linear(nonlinear=lambda X: [1, 2], grid=_b1_grid, basis=_b1_basis, assemble=_b1_assemble,
                  phi_of=lambda u, X: np.array([u[1], u[2], _b1_q0(u, X)]),
                  phi_bounds=lambda X, b: [b[1], b[2], b[3] if X.q0 is None else (X.q0, X.q0)]),
    axis="D", space="identity", inputs=("D",), slice_keys=DATA_SLICE, min_levels={"D": 3}, anchor_q0=True,
    decline_check=False, physical=frozenset({"q_inf", "q0"}), data_needed=_b1_data_needed,
)


# -- c1 (and c1h: with a free ceiling) ---------------------------------------------------------------

def _joint(ceiling: bool) -> Form:
    """Joint law; with several supervision / schedule levels it is the c3 extension (shared exponents)."""

    def effective(u, X):
        lm = np.concatenate([[0.0], u[5:5 + X.n_sup - 1]])
        le = np.concatenate([[0.0], u[5 + X.n_sup - 1:]])
        return np.log(X.kappa) + le[X.sched], np.log(X.D) + lm[X.sup]

    def retention(u, X):
        E, la, alpha, lb, beta = u[:5]
        lk, ld = effective(u, X)
        tk, td = np.exp(la - alpha * lk), np.exp(lb - beta * ld)
        q = np.exp(-(E + tk + td))
        cols = [np.ones_like(q), tk, -tk * lk, td, -td * ld]
        cols += [-beta * td * (X.sup == i) for i in range(1, X.n_sup)]
        cols += [-alpha * tk * (X.sched == i) for i in range(1, X.n_sched)]
        return q, -q[:, None] * np.column_stack(cols)

    def vanished(u, X):
        out = set()
        if u[1] <= LOG_COEF[0] + 1e-6:
            out |= {1, 2} | set(range(5 + X.n_sup - 1, len(u)))
        if u[3] <= LOG_COEF[0] + 1e-6:
            out |= {3, 4} | set(range(5, 5 + X.n_sup - 1))
        return out

    def grid(X):
        mults = [np.zeros(X.n_sup + X.n_sched - 2)]
        return [np.concatenate([[a, b], m]) for a, b, m in product(_ALPHA_GRID[:6], _ALPHA_GRID[:6], mults)]

    def basis(phi, X):
        u = np.concatenate([[0.0, 0.0, phi[0], 0.0, phi[1]], phi[2:]])
        lk, ld = effective(u, X)
        # E' = E − floor ≥ 0 (floor 0 for c1) keeps every coefficient non-negative for NNLS
        return (np.column_stack([np.ones_like(lk), np.exp(-phi[0] * lk), np.exp(-phi[1] * ld)]),
                _e_floor(X, ceiling), True)

    def assemble(phi, coef, X):
        E = min(coef[0] + _e_floor(X, ceiling), E_MAX)
        return np.concatenate([[E, _log_coef(coef[1]), phi[0], _log_coef(coef[2]), phi[1]], phi[2:]])

    def natural(u, X, scales, levels):
        alpha, beta = float(u[2]), float(u[4])
        out = {"E": float(u[0]), "a": float(np.exp(u[1])) * scales[0] ** alpha, "alpha": alpha,
               "b": float(np.exp(u[3])) * scales[1] ** beta, "beta": beta}
        sup, sched = levels
        for i in range(1, X.n_sup):
            out[f"m[{sup[i]}]"] = float(np.exp(u[4 + i]))
        for i in range(1, X.n_sched):
            out[f"e[{sched[i]}]"] = float(np.exp(u[4 + X.n_sup - 1 + i]))
        if ceiling:
            out["q_ceiling"] = float(np.exp(-u[0]))
        return out

    def evaluate(p, kappa, D=0.0, supervision=None, schedule=None):
        m, e = _multipliers(p, supervision, schedule)
        kappa, D = np.asarray(kappa, dtype=np.float64), np.asarray(D, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.exp(-(p["E"] + p["a"] * (e * kappa) ** -p["alpha"] + p["b"] * (m * D) ** -p["beta"]))

    def kappa50(p, q=0.5, D=None, supervision=None, schedule=None):
        m, e = _multipliers(p, supervision, schedule)
        room = -math.log(q) - p["E"] - p["b"] * (m * D) ** -p["beta"]
        return math.inf if room <= 0 else (p["a"] / room) ** (1 / p["alpha"]) / e

    def data_needed(p, q, kappa=None, supervision=None, schedule=None):
        m, e = _multipliers(p, supervision, schedule)
        room = -math.log(q) - p["E"] - p["a"] * (e * kappa) ** -p["alpha"]
        return math.inf if room <= 0 else (p["b"] / room) ** (1 / p["beta"]) / m

    def coords(X):
        return (["E", "log_a", "alpha", "log_b", "beta"] + [f"log_m{i}" for i in range(1, X.n_sup)]
                + [f"log_e{i}" for i in range(1, X.n_sched)])

    def bounds(X):
        return [(_e_floor(X, ceiling), E_MAX), LOG_COEF, EXPONENT, LOG_COEF, EXPONENT] + [LOG_MULT] * (X.n_sup + X.n_sched - 2)

    return Form(
        name="c1h" if ceiling else "c1",
        summary="−log q = E + a·(e_s κ)^(−α) + b·(m_f D)^(−β)" + ("; free ceiling e^(−E) ≤ q_max" if ceiling else ""),
        coords=coords, search_bounds=bounds, retention=retention, natural=natural, evaluate=evaluate,
        linear=Linear(nonlinear=lambda X: [2, 4] + list(range(5, 5 + X.n_sup + X.n_sched - 2)), grid=grid,
                      basis=basis, assemble=assemble),
        inputs=("kappa", "D"), factors=("supervision", "schedule"), slice_keys=JOINT_SLICE,
        min_levels={"kappa": 3, "D": 3}, positive_D=True, physical=frozenset({"E"}), vanished=vanished,
        kappa50=kappa50, data_needed=data_needed, ceiling=None if ceiling else "c1h",
    )


for _form in (_kappa_power(False), _kappa_power(True), A2, B1, _joint(False), _joint(True)):
    register(_form)
A1, A1H, C1, C1H = (FORMS[n] for n in ("a1", "a1h", "c1", "c1h"))
