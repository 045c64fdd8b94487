"""Held-out checks of a law, in accuracy points (100 × predicted − observed value), and AICc choice.

- leave-one-level-out: refit without one κ level (D level for b1), predict it;
- mild → severe: refit on the mildest levels (largest κ; smallest D for b1), predict the most severe
  third (fewer when that would leave under 4 levels to fit) — the direction recommendations
  extrapolate in.

Refits relax the ~4-points-per-parameter rule to 2 residual degrees of freedom (``parsimony=False``):
otherwise small studies could never be validated.
"""

from __future__ import annotations

import math

import numpy as np

from taskdistill.errors import TaskDistillError
from taskdistill.laws.fit import fit_points, get_form
from taskdistill.laws.observations import Points


def _axis_values(points: Points, form) -> tuple[str, np.ndarray]:
    return ("dataset_size", points.dataset_size) if form.axis == "D" else ("keep_fraction", points.kappa)


def _errors(fit, test: Points) -> np.ndarray:
    return 100.0 * (fit.predict_points(test) - test.value)


def _summary(errors: list) -> dict:
    if not errors:
        return {"mae_points": None, "rmse_points": None, "max_abs_points": None}
    e = np.concatenate(errors)
    return {"mae_points": float(np.mean(np.abs(e))), "rmse_points": float(np.sqrt(np.mean(e * e))),
            "max_abs_points": float(np.max(np.abs(e)))}


def level_out_errors(points: Points, form, *, loss: str = "auto") -> tuple[np.ndarray, list[dict]]:
    """Per-point held-out errors (accuracy points; NaN where a level's refit was refused) from
    refitting without each level of the form's axis in turn, and one summary per level."""
    form = get_form(form)
    values = _axis_values(points, form)[1]
    errors = np.full(len(points), np.nan)
    levels = []
    for level in np.unique(values):
        test = values == level
        try:
            fit = fit_points(points.take(~test), form, loss=loss, parsimony=False)
        except TaskDistillError as exc:
            levels.append({"level": float(level), "skipped": str(exc)})
            continue
        e = _errors(fit, points.take(test))
        errors[test] = e
        levels.append({"level": float(level), "n": int(test.sum()), "mean_error_points": float(e.mean()),
                       "mae_points": float(np.abs(e).mean())})
    return errors, levels


def leave_one_level_out(points: Points, form, *, loss: str = "auto") -> dict:
    """Refit without each level of the form's axis in turn; errors on the left-out level."""
    form = get_form(form)
    errors, levels = level_out_errors(points, form, loss=loss)
    scored = errors[np.isfinite(errors)]
    return {"check": "leave-one-level-out", "axis": _axis_values(points, form)[0], "levels": levels,
            **_summary([scored] if scored.size else [])}


def mild_to_severe(points: Points, form, *, loss: str = "auto", n_severe: int | None = None) -> dict:
    """Fit on the mild levels, score the most severe ``n_severe`` (default: a third, at least one)."""
    form = get_form(form)
    axis, values = _axis_values(points, form)
    levels = np.unique(values)  # ascending: for κ the first are the most severe, for D the last are the largest
    if n_severe is None:
        n_severe = math.ceil(len(levels) / 3)
        n_severe = max(1, min(n_severe, len(levels) - 4))
    held = levels[:n_severe] if axis == "keep_fraction" else levels[-n_severe:]
    test = np.isin(values, held)
    out = {"check": "mild-to-severe", "axis": axis, "held_out": [float(v) for v in held]}
    try:
        fit = fit_points(points.take(~test), form, loss=loss, parsimony=False)
    except TaskDistillError as exc:
        return {**out, "skipped": str(exc), **_summary([])}
    e = _errors(fit, points.take(test))
    return {**out, "n": int(test.sum()), "mean_error_points": float(e.mean()), **_summary([e])}


def compare_forms(points: Points, forms=("a1", "a2"), *, loss: str = "auto") -> list[dict]:
    """AICc of each form on the same points, best first, with ΔAICc and Akaike weights."""
    rows = []
    for name in forms:
        try:
            fit = fit_points(points, name, loss=loss)
            rows.append({"form": name, "aicc": fit.aicc, "n_params": fit.n_params})
        except TaskDistillError as exc:
            rows.append({"form": name, "aicc": None, "skipped": str(exc)})
    scored = [r for r in rows if r["aicc"] is not None and math.isfinite(r["aicc"])]
    if scored:
        best = min(r["aicc"] for r in scored)
        total = sum(math.exp(-(r["aicc"] - best) / 2) for r in scored)
        for r in scored:
            r["delta_aicc"] = r["aicc"] - best
            r["weight"] = math.exp(-r["delta_aicc"] / 2) / total
    return sorted(rows, key=lambda r: (r.get("delta_aicc") is None, r.get("delta_aicc") or 0.0))
