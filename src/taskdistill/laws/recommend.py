"""Recommend settings (κ, D, supervision, method, schedule) that meet quality and cost constraints.

Laws: the joint law c1 (+ c3 multipliers) per method where it can be fitted, else a1 per slice
(then only observed D values are candidates); the in-domain metric may use the free-ceiling
variant (c1h / a1h) when the data need it, so constraints above the teacher's value get a real
probability. Candidates: κ on a grid inside the observed range (no extrapolation beyond it) ×
observed nominal D > 0 × supervision × schedule; the laws read each candidate's effective D (the
mean share of the nominal D that runs of that supervision actually trained on).

Two probabilities per candidate (docs/laws.md, "Recommend"):

- ``p_mean_meets`` (per constraint) and ``p_mean_meets_all``: the share of bootstrap replicates (all
  metrics drawn from the same branches, teacher redrawn) whose predicted *mean* meets the bound —
  the confidence that the setting's average student meets it. It goes to 0 or 1 as data grow.
- ``p_new_meets`` / ``p_new_meets_all``: the predictive probability that a *newly trained* student
  meets them: each replicate's mean plus between-seed spread and test noise (spread.py), the
  metrics' noise correlated as their residuals are. It stays near ½ for a setting whose mean sits
  on the bound.

Ranking: candidates with ``p_new_meets_all`` ≥ ``confidence`` within budget, smallest student first,
then least data (``p_meet`` is that same predictive probability). Next run: the candidate whose
evaluation would most shrink the predictive variance at the recommended point, from the bootstrap
ensemble (Kalman-style update: cov² / (var + noise)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.laws.analysis import slices
from taskdistill.laws.bootstrap import bootstrap_joint
from taskdistill.laws.fit import fit_with_ceiling
from taskdistill.laws.forms import Form, get_form
from taskdistill.laws.observations import metrics_of, points, stage_of
from taskdistill.laws.spread import Spread, estimate_spread, residual_correlation

KNOWLEDGE_HINTS = ("aggregate", "gk", "knowledge")
JOINT, FALLBACK = "c1", "a1"  # the laws recommend uses: joint per method, else along κ per slice
PREDICTIVE_DRAWS = 200  # normal draws per bootstrap replicate for the predictive probabilities


@dataclass
class Model:
    form: Form  # the family (c1 or a1); a metric's own fit may be its free-ceiling variant
    where: dict  # slice values fixed by this model (method for c1; + supervision, schedule, D for a1)
    boots: dict  # metric → Bootstrap (same branches per replicate)
    pts: dict  # metric → Points
    spread: dict = field(default_factory=dict)  # metric → Spread
    rho: float = 0.0  # correlation of the two constrained metrics' residuals (0 with one metric)


def knowledge_metric(metrics, in_domain: str) -> str:
    """The general-knowledge metric to constrain: an aggregate if present, else the only other one."""
    others = [m for m in metrics if m != in_domain]
    for hint in KNOWLEDGE_HINTS:
        hits = [m for m in others if hint in m.lower()]
        if len(hits) == 1:
            return hits[0]
    if len(others) == 1:
        return others[0]
    raise TaskDistillError(f"cannot tell which metric is general knowledge among {', '.join(others) or 'none'}; "
                           "name it with --gk-metric")


def _model(form, where, rows, metrics, in_domain, B, seed, loss, ceiling, kind) -> Model:
    pts = {m: points(rows, m) for m in metrics}
    fits = {m: fit_with_ceiling(pts[m], form, loss=loss, mode=ceiling if m == in_domain else "never")
            for m in metrics}
    boots = bootstrap_joint({m: (pts[m], fits[m]) for m in metrics}, B=B, kind=kind, seed=seed)
    spread = {m: estimate_spread(pts[m], fits[m]) for m in metrics}
    rho = 0.0
    if len(metrics) == 2:
        a, b = metrics
        rho = residual_correlation(pts[a], fits[a], spread[a], pts[b], fits[b], spread[b])
    return Model(form, where, boots, pts, spread, rho)


def _models(rows, metrics, in_domain, B, seed, loss, ceiling, kind) -> tuple[list, list, list]:
    models, notes, reasons = [], [], []
    joint, fallback = get_form(JOINT), get_form(FALLBACK)
    for (method_kv,), mrows in sorted(slices(rows, JOINT).items(), key=str):
        try:
            models.append(_model(joint, dict([method_kv]), mrows, metrics, in_domain, B, seed, loss, ceiling, kind))
            continue
        except TaskDistillError as exc:
            reasons.append(str(exc))
            notes.append(f"{method_kv[1]}: joint law {JOINT} not used ({exc}); falling back to {FALLBACK} per slice")
        for key, srows in sorted(slices(mrows, FALLBACK).items(), key=str):
            try:
                models.append(_model(fallback, dict(key), srows, metrics, in_domain, B, seed, loss, ceiling, kind))
            except TaskDistillError as exc:
                notes.append(f"{dict(key)}: {FALLBACK} not fitted ({exc})")
    return models, notes, reasons


def _effective(pts, supervision, nominal) -> float:
    """Effective D a run of ``supervision`` at nominal D trains on: observed mean, else the
    supervision's mean effective/nominal ratio times the nominal D."""
    mine = (pts.supervision == supervision) & (pts.dataset_size > 0)
    at = mine & (pts.dataset_size == nominal)
    if at.any():
        return float(np.mean(pts.D[at]))
    if mine.any():
        return float(nominal * np.mean(pts.D[mine] / pts.dataset_size[mine]))
    return float(nominal)


def _candidates(model: Model, kappas) -> list[dict]:
    any_pts = next(iter(model.pts.values()))
    if "supervision" in model.form.factors:
        Ds = sorted({d for d in any_pts.dataset_size if d > 0})
        fit = next(iter(model.boots.values())).fit
        return [{"keep_fraction": k, "dataset_size": d, "supervision": s, "method": model.where["method"],
                 "schedule": c, "effective_dataset_size": _effective(any_pts, s, d)}
                for k in kappas for d in Ds for s in fit.levels[0] for c in fit.levels[1]]
    eff = float(np.mean(any_pts.D))
    return [{**model.where, "keep_fraction": k, "effective_dataset_size": eff} for k in kappas]


def _draws(model: Model, metric: str, cands: list[dict]):
    """Point predictions and bootstrap draws (B, m) of the metric's retention and value at the
    candidates (each replicate's value uses its own redrawn reference), and the replicates' span r − c."""
    boot = model.boots[metric]
    kappa = np.array([c["keep_fraction"] for c in cands])
    D = np.array([c["effective_dataset_size"] for c in cands], dtype=float)
    joint = "supervision" in model.form.factors
    sup = np.array([c["supervision"] for c in cands], dtype=object) if joint else None
    sched = np.array([c["schedule"] for c in cands], dtype=object) if joint else None

    def q(fit):
        return fit.predict_q(kappa, D, sup, sched)

    def value(fit):
        return fit.chance + (fit.reference - fit.chance) * q(fit)

    span = boot.draws(lambda f: f.reference - f.chance)
    return (q(boot.fit), value(boot.fit)), (boot.draws(q), boot.draws(value)), span


def _cost_model(rows, key):
    """Least-squares cost model from observed runs: params ∝ κ; latency linear in κ."""
    obs = [(r["keep_fraction"], r[key]) for r in rows if r[key] is not None]
    if not obs:
        return None
    k, v = np.array(obs).T
    if key == "params":
        return lambda kappa: np.asarray(kappa) * float(k @ v / (k @ k))
    if len(np.unique(k)) < 2:
        return lambda kappa: np.full(np.shape(kappa), float(v.mean()))
    slope, icpt = np.polyfit(k, v, 1)
    return lambda kappa: icpt + slope * np.asarray(kappa)


def _probabilities(quality, mean, sd, valid, rho, level, seed, chunk: int = 64):
    """(a) share of replicates whose mean meets each bound / all; (b) predictive probabilities that a
    new student meets each / all, and predictive intervals. ``mean``/``sd``: metric → (B, m)."""
    metrics = list(quality)
    bounds = np.array([quality[m][1] for m in metrics])
    mu = np.stack([mean[m] for m in metrics])[:, valid]  # (k, B', m)
    sig = np.stack([sd[m] for m in metrics])[:, valid]
    n_cands = mu.shape[2]
    if mu.shape[1] == 0:
        zeros = np.zeros(n_cands)
        nan = np.full(n_cands, np.nan)
        return ({m: zeros for m in metrics}, zeros, {m: zeros for m in metrics}, zeros,
                {m: (nan, nan) for m in metrics})
    meets = mu >= bounds[:, None, None]
    p_mean = {m: meets[i].mean(axis=0) for i, m in enumerate(metrics)}
    p_mean_all = meets.all(axis=0).mean(axis=0)
    corr = np.eye(len(metrics))
    if len(metrics) == 2:
        corr[0, 1] = corr[1, 0] = rho
    z = np.random.default_rng(seed).standard_normal((PREDICTIVE_DRAWS, len(metrics))) @ np.linalg.cholesky(corr).T
    p_new, p_new_all = {m: np.empty(n_cands) for m in metrics}, np.empty(n_cands)
    tail = 50 * (1 - level)
    pred = {m: (np.empty(n_cands), np.empty(n_cands)) for m in metrics}
    for start in range(0, n_cands, chunk):
        sl = slice(start, start + chunk)
        # (k, B', K, c): a new student's value for every replicate and normal draw
        y = mu[:, :, None, sl] + sig[:, :, None, sl] * z.T[:, None, :, None]
        ok = y >= bounds[:, None, None, None]
        for i, m in enumerate(metrics):
            p_new[m][sl] = ok[i].mean(axis=(0, 1))
            lo, hi = np.percentile(y[i].reshape(-1, y.shape[3]), [tail, 100 - tail], axis=0)
            pred[m][0][sl], pred[m][1][sl] = lo, hi
        p_new_all[sl] = ok.all(axis=0).mean(axis=(0, 1))
    return p_mean, p_mean_all, p_new, p_new_all, pred


def recommend(rows: list[dict], *, min_macro_f1: float | None = None, min_gk_retention: float | None = None,
              max_params: float | None = None, max_latency_ms: float | None = None, in_domain: str | None = None,
              gk_metric: str | None = None, B: int = 100, seed: int = 0, confidence: float = 0.8,
              level: float = 0.95, loss: str = "auto", top: int = 10, grid: int = 25, ceiling: str = "auto",
              kind: str = "auto") -> dict:
    """Ranked settings meeting every constraint (see the module docstring); raises when none does."""
    known = metrics_of(rows)
    in_domain = in_domain or next((m for m in ("task_macro_f1", "macro_f1") if m in known), "task_macro_f1")
    quality = {}
    if min_macro_f1 is not None:
        if in_domain not in known:
            raise did_you_mean(in_domain, known, "in-domain metric")
        quality[in_domain] = ("value", float(min_macro_f1))
    if min_gk_retention is not None:
        gk = gk_metric or knowledge_metric(known, in_domain)
        if gk not in known:
            raise did_you_mean(gk, known, "general-knowledge metric")
        quality[gk] = ("retention", float(min_gk_retention))
    if not quality:
        raise TaskDistillError("give at least one quality constraint: --min-macro-f1 and/or --min-gk-retention")
    cost = {"params": (max_params, _cost_model(rows, "params")), "latency_ms": (max_latency_ms, _cost_model(rows, "latency_ms"))}
    for key, (limit, model) in cost.items():
        if limit is not None and model is None:
            raise TaskDistillError(f"the observations record no {key}; drop the --max-{key.replace('_', '-')} constraint")
    metrics, notes = list(quality), []
    rows = [r for r in rows if r["metric"] in metrics]
    # candidates are trained students: rows evaluated right after a prune (stage pruned, D = 0) stay out,
    # unless the study holds nothing else
    recovered = [r for r in rows if stage_of(r) == "recovered"]
    if recovered:
        rows = recovered
    else:
        notes.append("every row is a student right after a prune (D = 0): recommending among pruned students")
    models, fit_notes, reasons = _models(rows, metrics, in_domain, B, seed, loss, ceiling, kind)
    notes += fit_notes
    if not models:
        raise TaskDistillError(f"no law could be fitted for recommending (joint law {JOINT} and every {FALLBACK} "
                               f"slice refused); {JOINT}: {reasons[0]}")
    kap = sorted({r["keep_fraction"] for r in rows})
    kappas = sorted(set(np.round(np.geomspace(kap[0], kap[-1], grid), 4)) | set(kap))
    table, ens = [], []
    for model in models:
        cands = _candidates(model, kappas)
        valid, preds, mean, sd = None, {}, {}, {}
        for m, (kind_m, bound) in quality.items():
            (q_pt, v_pt), (q_dr, v_dr), span = _draws(model, m, cands)
            sp = model.spread[m]
            draws = q_dr if kind_m == "retention" else v_dr
            mean[m] = draws
            sd[m] = sp.sd(v_dr) / (span[:, None] if kind_m == "retention" else 1.0)
            fitted = ~np.isnan(draws).any(axis=1)  # replicates every metric could be fitted in
            valid = fitted if valid is None else valid & fitted
            lo, hi = np.nanpercentile(draws, [50 * (1 - level), 100 - 50 * (1 - level)], axis=0)
            preds[m] = (q_pt if kind_m == "retention" else v_pt, lo, hi, draws)
        p_mean, p_mean_all, p_new, p_new_all, pred = _probabilities(quality, mean, sd, valid, model.rho, level, seed)
        forms = {m: model.boots[m].fit.form.name for m in quality}
        for j, c in enumerate(cands):
            entry = {**c, "family": model.form.name, "forms": forms, "p_meet": float(p_new_all[j]),
                     "p_new_meets_all": float(p_new_all[j]), "p_new_meets": {m: float(p_new[m][j]) for m in quality},
                     "p_mean_meets_all": float(p_mean_all[j]),
                     "p_mean_meets": {m: float(p_mean[m][j]) for m in quality},
                     "predicted": {m: {"kind": quality[m][0], "value": float(v[0][j]), "lo": float(v[1][j]),
                                       "hi": float(v[2][j]), "new_lo": float(pred[m][0][j]),
                                       "new_hi": float(pred[m][1][j])} for m, v in preds.items()}}
            within = True
            for key, (limit, cm) in cost.items():
                if cm is not None:
                    entry[key] = float(cm(c["keep_fraction"]))
                    within &= limit is None or entry[key] <= limit
            entry["within_budget"] = bool(within)
            table.append(entry)
            ens.append((model, j, {m: v[3][:, j] for m, v in preds.items()}))
    ok = [e for e in table if e["within_budget"] and e["p_new_meets_all"] >= confidence]
    ok.sort(key=lambda e: (e.get("params", e["keep_fraction"]), e["dataset_size"], -e["p_new_meets_all"]))
    first = models[0]
    result = {"constraints": {"quality": {m: {"kind": k, "min": b} for m, (k, b) in quality.items()},
                              "max_params": max_params, "max_latency_ms": max_latency_ms, "confidence": confidence},
              "bootstrap": B, "level": level, "notes": notes, "ranked": ok[:top],
              "ranking": "p_new_meets_all ≥ confidence (a new student meets every constraint), smallest first",
              "spread": {m: first.spread[m].to_dict() for m in quality},
              "noise_correlation": first.rho,
              "reference": {m: first.boots[m].reference for m in quality},
              "bootstrap_kind": {m: first.boots[m].kind for m in quality}}
    if not ok:
        closest = sorted(table, key=lambda e: (not e["within_budget"], -e["p_new_meets_all"], _shortfall(e, quality)))
        result["closest"] = closest[:top]
        return result
    best = table.index(ok[0])
    result["recommended"] = ok[0]
    result["next_run"] = _next_run(table, ens, best, quality)
    return result


def _shortfall(entry, quality) -> float:
    return sum(max(0.0, b - entry["predicted"][m]["value"]) for m, (_, b) in quality.items())


def _next_run(table, ens, best, quality) -> dict:
    """The candidate whose evaluation most reduces the predictive variance at the recommended point.

    With ensemble draws f* (recommended point) and f (candidate), observing f with noise σ² (the
    between-seed spread plus test noise of one new run) shrinks var f* by cov(f*, f)² / (var f + σ²)
    (linear-Gaussian update); scores average the shares of var f* removed over the constrained
    metrics. Only candidates of the same law can inform it.
    """
    model_b, _, star = ens[best]
    scores = []
    for model, _, draws in ens:
        if model is not model_b:
            scores.append(-1.0)
            continue
        total = 0.0
        for m, fs in star.items():
            f = draws[m]
            keep = ~(np.isnan(fs) | np.isnan(f))
            if keep.sum() < 3 or np.var(fs[keep]) == 0:
                continue
            pts, sp = model.pts[m], model.spread[m]
            span = float(np.mean(pts.reference - pts.chance)) if quality[m][0] == "retention" else 1.0
            value = np.nanmean(f) * span + float(np.mean(pts.chance)) if quality[m][0] == "retention" else np.nanmean(f)
            noise = float(sp.sd(value)) ** 2 / span**2
            cov = np.cov(fs[keep], f[keep])
            total += cov[0, 1] ** 2 / (cov[1, 1] + noise) / cov[0, 0]
        scores.append(total / len(star))
    i = int(np.argmax(scores))
    keys = ("keep_fraction", "dataset_size", "supervision", "method", "schedule")
    return {**{k: table[i][k] for k in keys if k in table[i]}, "variance_share_removed": float(scores[i])}


__all__ = ["FALLBACK", "JOINT", "Model", "Spread", "knowledge_metric", "recommend"]
