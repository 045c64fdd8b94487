"""Fit a whole study: every law family on every slice of every metric, with bootstrap intervals,
held-out errors, AICc comparison and the derived answers. The result is JSON-ready.

Slices come from the form records (``Form.slice_keys``): a1/a2 along κ at fixed (supervision,
method, schedule, nominal D); b1 along D at fixed (supervision, method, schedule, κ); c1 (with c3
multipliers) over everything of one method. All metrics of a slice are bootstrapped together (same
branches drawn), so cross-metric quantities such as the collapse gap get honest intervals.
In-domain metrics may use a form's free-ceiling variant (``ceiling``; see fit.fit_with_ceiling).
"""

from __future__ import annotations

import math

import numpy as np

from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.laws import derived
from taskdistill.laws.bootstrap import Bootstrap, bootstrap_joint
from taskdistill.laws.fit import fit_with_ceiling
from taskdistill.laws.forms import get_form
from taskdistill.laws.observations import metrics_of, points
from taskdistill.laws.validate import leave_one_level_out, mild_to_severe

IN_DOMAIN_METRICS = ("task_macro_f1", "macro_f1", "task_accuracy", "accuracy")  # the study names them task_*
DEFAULT_FAMILIES = ("a1", "c1")


def in_domain_metric(metrics) -> str | None:
    return next((m for m in IN_DOMAIN_METRICS if m in metrics), None)


def slices(rows: list[dict], family: str) -> dict:
    """{slice (tuple of (key, value)): rows} for one family."""
    keys = get_form(family).slice_keys
    out: dict = {}
    for r in rows:
        key = tuple((k, r[k]) for k in keys)
        out.setdefault(key, []).append(r)
    return out


def fit_study(rows: list[dict], metrics=None, families=DEFAULT_FAMILIES, *, loss: str = "auto", B: int = 100,
              seed: int = 0, level: float = 0.95, validate: bool = True, target: dict | None = None,
              at_kappa: float | None = None, ceiling: str = "auto", kind: str = "auto") -> dict:
    """Fit ``families`` to ``metrics`` (default: all) of ``rows``; see the module docstring.

    ``target`` ({metric: value}) with ``at_kappa`` adds the data needed to reach each target (forms
    with a data term). ``ceiling`` (auto | never | always) governs the free-ceiling variants of
    in-domain fits; ``kind`` the bootstrap (auto | branches | runs | parametric).
    """
    known = metrics_of(rows)
    metrics = list(metrics or known)
    for m in metrics:
        if m not in known:
            raise did_you_mean(m, known, "metric")
    forms = [get_form(f) for f in families]
    rows = [r for r in rows if r["metric"] in metrics]
    groups = []
    for form in forms:
        for key, slice_rows in sorted(slices(rows, form.name).items(), key=lambda kv: str(kv[0])):
            groups += _fit_slice(form, dict(key), slice_rows, metrics, loss, B, seed, level, validate,
                                 target, at_kappa, ceiling, kind)
    _add_delta_aicc(groups)
    fitted = [g for g in groups if g["status"] == "ok"]
    if not fitted:
        more = f" (and {len(groups) - 1} more slices refused)" if len(groups) > 1 else ""
        raise TaskDistillError(f"no law could be fitted to {', '.join(metrics)}: {groups[0]['reason']}{more}")
    return {"metrics": metrics, "families": [f.name for f in forms], "loss": loss, "bootstrap": B, "level": level,
            "ceiling": ceiling, "groups": groups}


def _fit_slice(form, where, slice_rows, metrics, loss, B, seed, level, validate, target, at_kappa, ceiling, kind):
    problems, out = {}, []
    for metric in metrics:
        if not any(r["metric"] == metric for r in slice_rows):
            continue
        entry = {"metric": metric, "form": form.name, "family": form.name, "slice": where}
        pts = points(slice_rows, metric)
        try:
            fit = fit_with_ceiling(pts, form, loss=loss, mode=ceiling if metric in IN_DOMAIN_METRICS else "never")
        except TaskDistillError as exc:
            out.append({**entry, "status": "skipped", "reason": str(exc)})
            continue
        problems[metric] = (pts, fit)
        entry.update(status="ok", form=fit.form.name, fit=fit.to_dict())
        if validate:
            entry["validation"] = {"leave_one_level_out": leave_one_level_out(pts, fit.form, loss=fit.loss),
                                   "mild_to_severe": mild_to_severe(pts, fit.form, loss=fit.loss)}
        out.append(entry)
    if not problems:
        return out
    if B > 0:
        boots = bootstrap_joint(problems, B=B, kind=kind, seed=seed)
    else:  # point estimates only
        boots = {m: Bootstrap(fit, [], "none") for m, (_, fit) in problems.items()}
    by_metric = {e["metric"]: e for e in out if e["status"] == "ok"}
    for metric, boot in boots.items():
        e = by_metric[metric]
        e["bootstrap"] = boot.summary()
        e["intervals"] = {k: list(v) for k, v in boot.param_intervals(level).items()}
        e["derived"] = _derived(boot, problems[metric][0], level, target, at_kappa)
    _add_gaps(boots, problems, by_metric, level)
    return out


def kappa50_settings(pts) -> list[tuple[str, float, float]]:
    """Where to report κ50 of a law that reads D: each supervision at its largest nominal D, as
    (supervision, nominal D, mean effective D of those runs)."""
    out = []
    for s in sorted(set(pts.supervision)):
        mine = pts.supervision == s
        nominal = float(pts.dataset_size[mine].max())
        out.append((s, nominal, float(np.mean(pts.D[mine & (pts.dataset_size == nominal)]))))
    return out


def _derived(boot, pts, level, target, at_kappa) -> dict:
    form, out = boot.fit.form, {}
    span = (float(pts.kappa.min()), float(pts.kappa.max()))

    def k50(fn, **extra):
        d = derived.summarise(boot, fn, level)
        d["extrapolated"] = not span[0] <= d["value"] <= span[1]  # outside the observed κ range
        return {**d, **extra}

    if form.kappa50 is not None and "D" not in form.inputs:
        out["kappa50"] = k50(derived.kappa50)
    elif form.kappa50 is not None:
        out["kappa50"] = {f"{s}@D={nom:g}": k50(lambda f, s=s, d=eff: derived.kappa50(f, dataset_size=d, supervision=s),
                                                effective_dataset_size=eff)
                          for s, nom, eff in kappa50_settings(pts)}
    if "supervision" in form.factors:
        ref = boot.fit.levels[0][0]
        out["data_equivalent"] = {f"{s} vs {ref}": derived.summarise(boot, lambda f, s=s: derived.data_equivalent(f, s), level)
                                  for s in boot.fit.levels[0][1:]}
    goal = (target or {}).get(boot.fit.metric)
    if form.data_needed is not None and goal is not None:
        chance, ref_v = float(np.mean(pts.chance)), float(np.mean(pts.reference))
        q_star = (goal - chance) / (ref_v - chance)
        if "kappa" not in form.inputs:
            out["data_needed"] = derived.summarise(boot, lambda f: derived.data_needed(f, q_star), level)
        elif at_kappa is not None:
            levels = boot.fit.levels[0] if "supervision" in form.factors else [None]
            out["data_needed"] = {
                f"{s}@kappa={at_kappa:g}": derived.summarise(boot, lambda f, s=s: derived.data_needed(
                    f, q_star, at_kappa, supervision=s), level) for s in levels}
    return out


def _add_gaps(boots, problems, by_metric, level):
    """κ50(general knowledge) − κ50(in-domain), paired replicate by replicate."""
    ind = in_domain_metric(boots)
    if ind is None:
        return
    form = boots[ind].fit.form
    if form.kappa50 is None:
        return
    at = {}
    if "D" in form.inputs:
        s, _, d = kappa50_settings(problems[ind][0])[0]
        at = {"dataset_size": d, "supervision": s}
    for metric, boot in boots.items():
        if metric in IN_DOMAIN_METRICS or boot.fit.form.kappa50 is None:
            continue
        a, b = boots[ind], boot
        draws = b.draws(lambda f: derived.kappa50(f, **at)) - a.draws(lambda f: derived.kappa50(f, **at))
        with np.errstate(invalid="ignore"):
            finite = draws[np.isfinite(draws)]
        lo, hi = (np.percentile(finite, [50 * (1 - level), 100 - 50 * (1 - level)]) if finite.size else (math.nan,) * 2)
        by_metric[metric]["derived"]["collapse_gap_vs_" + ind] = {
            "value": derived.collapse_gap(a.fit, b.fit, **at), "lo": float(lo), "hi": float(hi), "level": level,
            "at": at, "replicates": int(finite.size)}


def _add_delta_aicc(groups):
    """ΔAICc between forms fitted to the same metric and slice (a1 vs a2)."""
    by: dict = {}
    for g in groups:
        if g["status"] == "ok" and g["fit"]["aicc"] is not None:
            keys = tuple(get_form(g["form"]).slice_keys)
            by.setdefault((g["metric"], str(sorted(g["slice"].items())), keys), []).append(g)
    for same in by.values():
        best = min(g["fit"]["aicc"] for g in same)
        for g in same:
            g["delta_aicc"] = g["fit"]["aicc"] - best if len(same) > 1 else None
