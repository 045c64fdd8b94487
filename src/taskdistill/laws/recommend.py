"""Recommend settings (κ, D, supervision, method, schedule) that meet quality and cost constraints.

Laws: the joint law c1 (+ c3 multipliers) per method where it can be fitted, else a1 per slice
(then only observed D values are candidates). Candidates: κ on a grid inside the observed range (no
extrapolation beyond it) × observed D > 0 × supervision × schedule. For each candidate the
bootstrap gives predicted metrics with intervals and P(meet every constraint) = the share of
replicates (all metrics drawn from the same runs) in which every quality constraint holds; cost
constraints use cost models fitted to the observed params (∝ κ) and latency (linear in κ).

Ranking: candidates with P ≥ ``confidence`` within budget, smallest student first, then least data.
Next run: the candidate whose evaluation would most shrink the predictive variance at the
recommended point, from the bootstrap ensemble (Kalman-style update: cov² / (var + noise)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.laws.analysis import slices
from taskdistill.laws.bootstrap import bootstrap_joint
from taskdistill.laws.fit import fit_points
from taskdistill.laws.observations import metrics_of, points

KNOWLEDGE_HINTS = ("aggregate", "gk", "knowledge")


@dataclass
class Model:
    family: str
    where: dict  # slice values fixed by this model (method for c1; + supervision, schedule, D for a1)
    boots: dict  # metric → Bootstrap (same runs per replicate)
    pts: dict  # metric → Points
    settings: list = field(default_factory=list)


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


def _models(rows, metrics, B, seed, loss) -> tuple[list, list]:
    models, notes, reasons = [], [], []
    for (method_kv,), mrows in sorted(slices(rows, "c1").items(), key=str):
        try:
            pts = {m: points(mrows, m) for m in metrics}
            fits = {m: fit_points(pts[m], "c1", loss=loss) for m in metrics}
            models.append(Model("c1", dict([method_kv]), {}, pts))
            models[-1].boots = bootstrap_joint({m: (pts[m], fits[m]) for m in metrics}, B=B, seed=seed)
            continue
        except TaskDistillError as exc:
            reasons.append(str(exc))
            notes.append(f"{method_kv[1]}: joint law c1 not used ({exc}); falling back to a1 per slice")
        for key, srows in sorted(slices(mrows, "a1").items(), key=str):
            try:
                pts = {m: points(srows, m) for m in metrics}
                fits = {m: fit_points(pts[m], "a1", loss=loss) for m in metrics}
            except TaskDistillError as exc:
                notes.append(f"{dict(key)}: a1 not fitted ({exc})")
                continue
            boots = bootstrap_joint({m: (pts[m], fits[m]) for m in metrics}, B=B, seed=seed)
            models.append(Model("a1", dict(key), boots, pts))
    return models, notes, reasons


def _candidates(model: Model, kappas) -> list[dict]:
    any_pts = next(iter(model.pts.values()))
    if model.family == "c1":
        Ds = sorted({d for d in any_pts.dataset_size if d > 0})
        fit = next(iter(model.boots.values())).fit
        return [{"keep_fraction": k, "dataset_size": d, "supervision": s, "method": model.where["method"],
                 "schedule": c} for k in kappas for d in Ds for s in fit.levels[0] for c in fit.levels[1]]
    return [{**model.where, "keep_fraction": k} for k in kappas]


def _draws(model: Model, metric: str, cands: list[dict], as_retention: bool):
    """Point predictions (m,) and bootstrap draws (B, m) of a metric at candidate settings."""
    boot, pts = model.boots[metric], model.pts[metric]
    kappa = np.array([c["keep_fraction"] for c in cands])
    D = np.array([c["dataset_size"] for c in cands], dtype=float)
    sup = np.array([c["supervision"] for c in cands], dtype=object) if model.family == "c1" else None
    sched = np.array([c["schedule"] for c in cands], dtype=object) if model.family == "c1" else None
    chance, ref = float(np.mean(pts.chance)), float(np.mean(pts.reference))

    def f(fit):
        q = fit.predict_q(kappa, D, sup, sched)
        return q if as_retention else chance + (ref - chance) * q

    return f(boot.fit), boot.draws(f)


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


def recommend(rows: list[dict], *, min_macro_f1: float | None = None, min_gk_retention: float | None = None,
              max_params: float | None = None, max_latency_ms: float | None = None, in_domain: str | None = None,
              gk_metric: str | None = None, B: int = 100, seed: int = 0, confidence: float = 0.8,
              level: float = 0.95, loss: str = "auto", top: int = 10, grid: int = 25) -> dict:
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
    metrics = list(quality)
    rows = [r for r in rows if r["metric"] in metrics]
    models, notes, reasons = _models(rows, metrics, B, seed, loss)
    if not models:
        raise TaskDistillError(f"no law could be fitted for recommending (joint law c1 and every a1 slice refused); "
                               f"c1: {reasons[0]}")
    kap = sorted({r["keep_fraction"] for r in rows})
    kappas = sorted(set(np.round(np.geomspace(kap[0], kap[-1], grid), 4)) | set(kap))
    table, ens = [], []
    for model in models:
        cands = _candidates(model, kappas)
        meet, valid, preds = True, True, {}
        for m, (kind, bound) in quality.items():
            point, draws = _draws(model, m, cands, kind == "retention")
            meet = meet & (draws >= bound)  # NaN (a failed replicate) compares False
            valid = valid & ~np.isnan(draws).any(axis=1)  # replicates every metric could be fitted in
            lo, hi = np.nanpercentile(draws, [50 * (1 - level), 100 - 50 * (1 - level)], axis=0)
            preds[m] = (point, lo, hi, draws)
        p_meet = meet[valid].mean(axis=0) if np.any(valid) else np.zeros(len(cands))
        for j, c in enumerate(cands):
            entry = {**c, "family": model.family, "p_meet": float(p_meet[j]), "predicted": {
                m: {"kind": quality[m][0], "value": float(v[0][j]), "lo": float(v[1][j]), "hi": float(v[2][j])}
                for m, v in preds.items()}}
            within = True
            for key, (limit, cm) in cost.items():
                if cm is not None:
                    entry[key] = float(cm(c["keep_fraction"]))
                    within &= limit is None or entry[key] <= limit
            entry["within_budget"] = bool(within)
            table.append(entry)
            ens.append((model, j, {m: v[3][:, j] for m, v in preds.items()}))
    ok = [e for e in table if e["within_budget"] and e["p_meet"] >= confidence]
    ok.sort(key=lambda e: (e.get("params", e["keep_fraction"]), e["dataset_size"], -e["p_meet"]))
    result = {"constraints": {"quality": {m: {"kind": k, "min": b} for m, (k, b) in quality.items()},
                              "max_params": max_params, "max_latency_ms": max_latency_ms, "confidence": confidence},
              "bootstrap": B, "level": level, "notes": notes, "ranked": ok[:top]}
    if not ok:
        closest = sorted(table, key=lambda e: (not e["within_budget"], -e["p_meet"], _shortfall(e, quality)))[:top]
        result["closest"] = closest
        return result
    best = table.index(ok[0])
    result["recommended"] = ok[0]
    result["next_run"] = _next_run(table, ens, best, quality, models)
    return result


def _shortfall(entry, quality) -> float:
    return sum(max(0.0, b - entry["predicted"][m]["value"]) for m, (_, b) in quality.items())


def _next_run(table, ens, best, quality, models) -> dict:
    """The candidate whose evaluation most reduces the predictive variance at the recommended point.

    With ensemble draws f* (recommended point) and f (candidate), observing f with evaluation noise
    σ² shrinks var f* by cov(f*, f)² / (var f + σ²) (linear-Gaussian update); scores sum the shares
    of var f* removed over the constrained metrics. Only candidates of the same law can inform it.
    """
    model_b, _, star = ens[best]
    scores = []
    for i, (model, _, draws) in enumerate(ens):
        if model is not model_b:
            scores.append(-1.0)
            continue
        total = 0.0
        for m, fs in star.items():
            f = draws[m]
            keep = ~(np.isnan(fs) | np.isnan(f))
            if keep.sum() < 3 or np.var(fs[keep]) == 0:
                continue
            pts = model.pts[m]
            p = float(np.clip(np.nanmean(f), 1e-3, 1 - 1e-3))
            span = float(np.mean(pts.reference - pts.chance)) if quality[m][0] == "retention" else 1.0
            noise = p * (1 - p) / float(np.median(pts.n)) / span ** 2
            cov = np.cov(fs[keep], f[keep])
            total += cov[0, 1] ** 2 / (cov[1, 1] + noise) / cov[0, 0]
        scores.append(total / len(star))
    i = int(np.argmax(scores))
    keys = ("keep_fraction", "dataset_size", "supervision", "method", "schedule")
    return {**{k: table[i][k] for k in keys if k in table[i]}, "variance_share_removed": float(scores[i])}
