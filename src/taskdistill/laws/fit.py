"""Fit one law to one metric's points: bounded multi-start L-BFGS-B with variable-projection starts.

Losses: ``binomial`` / ``betabinomial`` on counts (``auto`` picks beta-binomial when seeds show
overdispersion), ``huber`` or ``lsq`` on the transformed value (−log q, or q for b1). Starts come from
a grid of the nonlinear parameters with the linear coefficients solved by scipy.optimize.nnls
(variable projection); for ``lsq`` the whole fit is variable projection. The best few starts are
polished; the result reports how many reached the best objective. Degenerate data raise
:class:`NotIdentifiable` with a plain statement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize, nnls

from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.laws import likelihood as lik
from taskdistill.laws.fitcheck import (
    NotIdentifiable,
    check_data,
    check_identified,
    min_points,
)
from taskdistill.laws.forms import FORMS, Design, Form, get_form
from taskdistill.laws.observations import Points
from taskdistill.laws.transforms import Q_MIN, neglog_retention, value_from_retention

__all__ = ["CEILING_MODES", "FORMS", "LOSSES", "Fit", "NotIdentifiable", "fit_points", "fit_with_ceiling",
           "get_form", "single_thread"]

LOSSES = ("auto", "binomial", "betabinomial", "huber", "lsq")
CEILING_MODES = ("auto", "never", "always")
CEILING_DELTA_AICC = 2.0  # the free-ceiling variant must beat its base form by this much AICc
REF_LEVELS = {"supervision": "label", "schedule": "iterative"}


@dataclass
class Fit:
    """A fitted law: parameters in the data's units plus everything needed to predict and audit it."""

    form: Form
    metric: str
    loss: str
    u: np.ndarray
    params: dict
    scales: tuple  # (κ scale, D scale) the inputs were divided by
    levels: tuple  # (supervision levels, schedule levels); index 0 is the reference level
    q0: float | None
    objective: float
    n_points: int
    n_params: int
    starts_reached: int
    starts_polished: int
    converged: bool
    rho: float = 0.0
    log_likelihood: float | None = None
    aicc: float | None = None
    notes: list = field(default_factory=list)
    chance: float = math.nan  # mean chance and reference of the fitted points: predict_value's defaults
    reference: float = math.nan
    q_max: float = 1.0

    def design(self, kappa, dataset_size=1.0, supervision=None, schedule=None) -> Design:
        kappa, D = np.asarray(kappa, dtype=np.float64), np.asarray(dataset_size, dtype=np.float64)
        shape = np.broadcast_shapes(np.shape(kappa), np.shape(D), np.shape(supervision), np.shape(schedule)) or (1,)
        kappa, D = np.broadcast_to(kappa, shape), np.broadcast_to(D, shape)
        sup = _index(supervision, self.levels[0], "supervision", shape)
        sched = _index(schedule, self.levels[1], "schedule", shape)
        return Design(kappa / self.scales[0], D / self.scales[1], sup, sched,
                      len(self.levels[0]), len(self.levels[1]), self.q0, self.q_max)

    def predict_q(self, kappa, dataset_size=1.0, supervision=None, schedule=None) -> np.ndarray:
        """Predicted retention q at the given settings (arrays broadcast against κ)."""
        return self.form.q(self.u, self.design(kappa, dataset_size, supervision, schedule))[0]

    def predict_value(self, chance, reference, kappa, dataset_size=1.0, supervision=None, schedule=None):
        """Predicted metric value; ``chance`` / ``reference`` None → those of the fitted points."""
        chance = self.chance if chance is None else chance
        reference = self.reference if reference is None else reference
        return value_from_retention(self.predict_q(kappa, dataset_size, supervision, schedule), chance, reference)

    def predict_points(self, pts: Points) -> np.ndarray:
        """Predicted metric values at the settings of ``pts`` (their own chance and reference, effective D)."""
        factors = self.form.factors
        return self.predict_value(pts.chance, pts.reference, pts.kappa, pts.D,
                                  pts.supervision if "supervision" in factors else None,
                                  pts.schedule if "schedule" in factors else None)

    def to_dict(self) -> dict:
        return {"form": self.form.name, "metric": self.metric, "loss": self.loss, "params": self.params,
                "n_points": self.n_points, "n_params": self.n_params, "objective": self.objective,
                "log_likelihood": self.log_likelihood, "aicc": self.aicc, "rho": self.rho,
                "starts_reached": self.starts_reached, "starts_polished": self.starts_polished,
                "converged": self.converged, "levels": {"supervision": list(self.levels[0]),
                                                        "schedule": list(self.levels[1])}, "notes": self.notes,
                "chance": self.chance, "reference": self.reference}


def _index(value, levels, what, shape):
    if value is None:
        return np.zeros(shape, dtype=int)
    values = np.broadcast_to(np.asarray(value, dtype=object), shape)
    out = np.empty(shape, dtype=int)
    for i, v in np.ndenumerate(values):
        if v not in levels:
            raise did_you_mean(str(v), levels, what)
        out[i] = list(levels).index(v)
    return out


def _levels(values, what) -> tuple:
    uniq = sorted(set(values))
    ref = REF_LEVELS[what]
    return tuple([ref] + [v for v in uniq if v != ref]) if ref in uniq else tuple(uniq)


_CONTROLLER = None


def single_thread():
    """One BLAS thread: the matrices are tiny, and threads fighting over shared cores cost 10×."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def fit_points(points: Points, form: str | Form, *, loss: str = "auto", huber_delta: float = 0.1,
               n_polish: int = 6, rho: float | None = None, check: bool = True, parsimony: bool = True) -> Fit:
    """Fit ``form`` to ``points`` (one metric; one slice for a1/a2/b1, one method for c1).

    ``rho`` fixes the beta-binomial overdispersion (default: estimated from seed replicates).
    ``check=False`` skips the after-fit identifiability checks (bootstrap replicates: a replicate
    whose exponent runs to a bound still predicts, and dropping it would bias the percentiles).
    ``parsimony=False`` relaxes the ~4-points-per-parameter rule to 2 residual degrees of freedom
    (held-out refits, which would otherwise be impossible on small studies).
    """
    with single_thread():
        return _fit_points(points, form, loss, huber_delta, n_polish, rho, check, parsimony)


def _fit_points(points, form, loss, huber_delta, n_polish, rho, check=True, parsimony=True) -> Fit:
    form = get_form(form)
    if loss not in LOSSES:
        raise did_you_mean(loss, LOSSES, "loss")
    notes = []
    if form.positive_D and np.any(points.D == 0):
        keep = points.D > 0
        notes.append(f"{form.name} needs D > 0: {int((~keep).sum())} point(s) right after pruning (D = 0) are "
                     "left to b1")
        points = points.take(keep)
    pseudo = int(np.sum(points.likelihood == "pseudo"))
    if pseudo:
        notes.append(f"{pseudo} point(s) of {points.metric} have neither counts nor a standard error: fitted as "
                     "pseudo-counts value·n (a quasi-binomial that assumes binomial noise at the test size)")
    check_data(points, form)
    X, scales, levels = _design(points, form)
    k, n, chance, ref = points.correct, points.n, points.chance, points.reference
    q_obs = points.q
    n_params = form.n_params(X)
    need = min_points(n_params) if parsimony else n_params + 2
    if len(points) < need:
        raise TaskDistillError(
            f"{form.name} has {n_params} free parameters but {points.metric} has only {len(points)} points; "
            f"a fit needs at least {need} (about 4 per parameter): add runs or use a smaller form")
    if loss in ("auto", "betabinomial") and rho is None:
        rho = lik.overdispersion(k, n, [r[:5] for r in points.runs])
    if loss == "auto":
        loss = "betabinomial" if rho > 0 else "binomial"
    rho = float(rho or 0.0) if loss == "betabinomial" else 0.0

    y = neglog_retention(q_obs) if form.space == "neglog" else q_obs
    p_hat = np.clip(k / n, 0.5 / (n + 1), 1 - 0.5 / (n + 1))
    var_q = p_hat * (1 - p_hat) / n / (ref - chance) ** 2
    w = 1.0 / (var_q / np.maximum(q_obs, Q_MIN) ** 2 if form.space == "neglog" else var_q)
    objective = _objective(form, X, loss, k, n, chance, ref, y, huber_delta, rho)
    bounds = form.bounds(X)
    starts = _starts(form, X, y, np.ones_like(y) if loss in ("lsq", "huber") else w, bounds)
    if loss == "lsq" and form.linear is not None:
        starts = [_vp_refine(form, X, y, s, bounds) for s in _best(starts, objective, n_polish)]
    else:
        starts = _best(starts, objective, n_polish)
    results = [minimize(objective, s, jac=True, method="L-BFGS-B", bounds=bounds,
                        options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-10}) for s in starts]
    best = min(results, key=lambda r: r.fun)
    tol = 1e-6 * max(1.0, abs(best.fun))
    reached = [r for r in results if r.fun <= best.fun + tol]
    if check:
        check_identified(form, X, best.x, [r.x for r in reached], bounds, points.metric,
                         lambda u: _fisher(form, X, u, n, chance, ref, loss))
    gnorm = float(np.max(np.abs(_projected_grad(objective, best.x, bounds))))
    converged = bool(best.success) or gnorm < 1e-5 * max(1.0, abs(best.fun))
    if not converged:
        notes.append(f"optimiser did not converge: {best.message} (projected gradient {gnorm:.2g})")
    logl = _log_likelihood(loss, best.fun, len(points))
    k_aic = n_params + (1 if loss == "betabinomial" else 0)
    aicc = None if logl is None else _aicc(logl, k_aic, len(points))
    return Fit(form, points.metric, loss, best.x, form.natural(best.x, X, scales, levels),
               scales, levels, X.q0, float(best.fun), len(points), n_params, len(reached),
               len(results), converged, rho, logl, aicc, notes, float(np.mean(chance)), float(np.mean(ref)), X.q_max)


def fit_with_ceiling(points: Points, form: str | Form, *, loss: str = "auto", mode: str = "auto", **kw) -> Fit:
    """Fit ``form``, or its free-ceiling variant (``Form.ceiling``: students may exceed the teacher).

    ``never``: the form itself; ``always``: the variant; ``auto``: the variant only when the data
    need it — it passes the parsimony rule and lowers AICc by at least :data:`CEILING_DELTA_AICC`.
    """
    if mode not in CEILING_MODES:
        raise did_you_mean(mode, CEILING_MODES, "ceiling mode")
    form = get_form(form)
    if mode == "never" or form.ceiling is None:
        return fit_points(points, form, loss=loss, **kw)
    variant = get_form(form.ceiling)
    if mode == "always":
        return fit_points(points, variant, loss=loss, **kw)
    base = fit_points(points, form, loss=loss, **kw)
    try:
        alt = fit_points(points, variant, loss=base.loss, rho=base.rho, **kw)
    except TaskDistillError:
        return base
    if base.aicc is None or alt.aicc is None or not alt.aicc <= base.aicc - CEILING_DELTA_AICC:
        return base
    alt.notes.append(f"free ceiling: {variant.name} preferred over {form.name} (ΔAICc {alt.aicc - base.aicc:.1f}); "
                     f"the fitted ceiling is retention {alt.params.get('q_ceiling', math.nan):.3g} of the teacher's")
    return alt


def _design(points: Points, form: Form):
    """Normalised inputs (κ, effective D over their geometric means), factor level indices, the
    anchor q0 (forms anchored at D = 0) and q_max (the retention of a student scoring 1)."""
    by_sup, by_sched = "supervision" in form.factors, "schedule" in form.factors
    sup = _levels(points.supervision, "supervision") if by_sup else tuple(sorted(set(points.supervision)))
    sched = _levels(points.schedule, "schedule") if by_sched else tuple(sorted(set(points.schedule)))
    q0 = None
    at0 = points.D == 0
    if form.anchor_q0 and at0.any():  # pooled retention of the runs right after pruning
        c, r = points.chance[at0].mean(), points.reference[at0].mean()
        q0 = float((points.correct[at0].sum() / points.n[at0].sum() - c) / (r - c))
    d_pos = points.D[~at0]
    scales = (float(np.exp(np.mean(np.log(points.kappa)))) if "kappa" in form.normalise else 1.0,
              float(np.exp(np.mean(np.log(d_pos)))) if "D" in form.normalise and d_pos.size else 1.0)
    zeros = np.zeros(len(points), int)
    q_max = float(np.min((1 - points.chance) / (points.reference - points.chance)))
    X = Design(points.kappa / scales[0], points.D / scales[1],
               np.array([sup.index(s) for s in points.supervision]) if by_sup else zeros,
               np.array([sched.index(s) for s in points.schedule]) if by_sched else zeros,
               len(sup) if by_sup else 1, len(sched) if by_sched else 1, q0, q_max)
    return X, scales, (sup, sched)


def _objective(form, X, loss, k, n, chance, ref, y, delta, rho):
    span = ref - chance

    def f(u):
        q, dq = form.q(u, X)
        if loss in ("binomial", "betabinomial"):
            p = chance + span * q
            val, dp = lik.betabinomial_nll(k, n, p, rho) if loss == "betabinomial" else lik.binomial_nll(k, n, p)
            inside = (p > 1e-9) & (p < 1 - 1e-9)
            return val, (dp * span * inside) @ dq
        if form.space == "neglog":
            qc = np.maximum(q, 1e-300)
            pred, dpred = -np.log(qc), -dq / qc[:, None]
        else:
            pred, dpred = q, dq
        if loss == "huber":
            val, dr = lik.huber(pred - y, delta)
        else:
            r = pred - y
            val, dr = float(r @ r), 2 * r
        return val, dr @ dpred

    return f


def _starts(form: Form, X: Design, y, w, bounds):
    if form.linear is None:
        return [np.clip(u, *np.array(bounds).T) for u in form.grid(X)]
    out = []
    sw = np.sqrt(w)
    for phi in form.linear.grid(X):
        coef = _linear(form, phi, X, y, sw)
        out.append(np.clip(form.linear.assemble(phi, coef, X), *np.array(bounds).T))
    return out


def _linear(form, phi, X, y, sw):
    """Variable projection: the linear coefficients for fixed nonlinear ones (weighted (N)NLS)."""
    basis, offset, nonneg = form.linear.basis(phi, X)
    A, b = basis * sw[:, None], (y - offset) * sw
    if not np.all(np.isfinite(A)):
        return np.zeros(basis.shape[1])
    return nnls(A, b)[0] if nonneg else np.linalg.lstsq(A, b, rcond=None)[0]


def _vp_refine(form, X, y, u0, bounds):
    """Least squares by variable projection: minimise over the nonlinear parameters only."""
    lin = form.linear
    ones = np.ones_like(y)

    def rss(phi):
        coef = _linear(form, phi, X, y, ones)
        basis, offset, _ = lin.basis(phi, X)
        r = basis @ coef + offset - y
        return float(r @ r) if np.all(np.isfinite(r)) else 1e300

    res = minimize(rss, lin.phi(u0, X), method="L-BFGS-B", bounds=lin.bounds(X, bounds),
                   options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
    coef = _linear(form, res.x, X, y, ones)
    return np.clip(lin.assemble(res.x, coef, X), *np.array(bounds).T)


def _best(starts, objective, m):
    vals = [objective(s)[0] for s in starts]
    order = [i for i in np.argsort(vals) if np.isfinite(vals[i])]
    chosen = []
    for i in order:
        if all(np.max(np.abs(starts[i] - starts[j])) > 1e-3 for j in chosen):
            chosen.append(i)
        if len(chosen) == m:
            break
    return [starts[i] for i in chosen] or [starts[0]]


def _projected_grad(objective, u, bounds):
    g = objective(u)[1]
    lo, hi = np.array(bounds).T
    g = np.where((u <= lo + 1e-10) & (g > 0), 0.0, g)
    return np.where((u >= hi - 1e-10) & (g < 0), 0.0, g)


def _fisher(form, X, u, n, chance, ref, loss):
    """Information matrix in fit coordinates (binomial for counts; identity weights otherwise)."""
    q, dq = form.q(u, X)
    if loss in ("binomial", "betabinomial"):
        p = np.clip(chance + (ref - chance) * q, 1e-6, 1 - 1e-6)
        J = dq * (ref - chance)[:, None]
        return J.T @ (J * (n / (p * (1 - p)))[:, None])
    J = -dq / np.maximum(q, 1e-300)[:, None] if form.space == "neglog" else dq
    return J.T @ J


def _log_likelihood(loss, value, n):
    if loss in ("binomial", "betabinomial"):
        return -value
    if loss == "lsq":
        return -0.5 * n * (math.log(2 * math.pi * max(value, 1e-300) / n) + 1)
    return None


def _aicc(logl, k, n):
    if n - k - 1 <= 0:
        return math.inf
    return -2 * logl + 2 * k + 2 * k * (k + 1) / (n - k - 1)
