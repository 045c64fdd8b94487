"""The source paper's three findings, tested on a study's own rows (docs/laws.md, "Findings").

``test_findings(rows)`` returns one dict per finding::

    {"id": "F1" | "F2" | "F3", "claim": str,
     "effect": {"name", "value", "lo", "hi", "level", "n": {points, branches, items, ...}},
     "verdict": "reproduced" | "contradicted" | "inconclusive" | "untestable", "why": str}

Only recovered students count (``stage`` "recovered"; rows right after a prune are left out).

- **F1** in-domain quality declines predictably with compression. a1 (or its free-ceiling variant
  when the data need it) is fitted per slice at fixed nominal D; every κ level is left out in turn
  and predicted from the rest. The effect is R = mean |LOO error| / (√(2/π)·mean s_i), where
  s_i = √(σ²_seed + p_i(1 − p_i)/n_i) is point i's own spread (σ²_seed from settings run with several
  seeds, else 0): R ≈ 1 when the law predicts held-out levels as well as the noise allows. Interval:
  percentile bootstrap over branches of the pooled errors (no refits). Verdict against the tolerance
  :data:`F1_TOLERANCE` (a held-out refit adds its own prediction error, so R runs a little above 1
  even for a true law): hi ≤ T reproduced, lo > T contradicted, else inconclusive.
- **F2** general knowledge collapses first: Δ = κ50(general knowledge) − κ50(in-domain), a1 per
  slice, averaged over slices. One joint bootstrap over all slices and both metrics (branches
  resampled when there are enough, else parametric; the teacher of each metric redrawn once per
  replicate, shared by every slice) gives paired replicates of Δ. lo > 0 reproduced, hi < 0
  contradicted, else inconclusive.
- **F3** chain-of-thought supervision keeps more general knowledge than label-only at matched κ and
  budget: the mean of d = q(CoT-family) − q(label) over pairs with the same κ, nominal D, method,
  schedule and seed. Interval: resample pair units (a CoT chain with its label chain) when there are
  enough, else redraw every value from its item noise (binomial at n, or its stderr) plus a chain
  effect with the measured between-seed variance; either way the teacher is redrawn. Same verdict
  rule as F2.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from taskdistill.distill.supervision import cot_family
from taskdistill.errors import TaskDistillError
from taskdistill.laws import derived
from taskdistill.laws.analysis import in_domain_metric, slices
from taskdistill.laws.bootstrap import (
    MIN_UNITS_FOR_CASES,
    bootstrap_joint,
    percentile_interval,
)
from taskdistill.laws.fit import fit_with_ceiling
from taskdistill.laws.observations import metrics_of, points, stage_of, validate_rows
from taskdistill.laws.spread import estimate_spread
from taskdistill.laws.validate import level_out_errors

__all__ = ["F1_TOLERANCE", "LABEL", "test_findings"]

LABEL = "label"
F1_TOLERANCE = 1.5
FAMILY = "a1"  # the law along κ the findings fit per slice
KNOB = {"kappa": "add keep fractions (axes.keep_fractions)", "seeds": "add seeds (axes.seeds)",
        "items": "evaluate on more items (task.test_size, knowledge.limit)",
        "cot": "add cot to axes.supervision", "label": "add label to axes.supervision",
        "gk": "add general-knowledge benchmarks (knowledge.benchmarks)"}
CLAIMS = {"F1": "in-domain quality declines predictably with compression",
          "F2": "general knowledge collapses first (at milder compression than the in-domain task)",
          "F3": "chain-of-thought supervision keeps more general knowledge than label-only at matched κ and budget"}


def test_findings(rows: list[dict], level: float = 0.95, B: int = 100, seed: int = 0, *,
                  in_domain: str | None = None, gk_metric: str | None = None) -> list[dict]:
    """The three findings on ``rows`` (study observations; teacher rows are dropped)."""
    rows = [r for r in validate_rows(rows) if stage_of(r) == "recovered"]
    if not rows:
        why = "no recovered students (every row is right after a prune, D = 0): add dataset sizes (axes.dataset_sizes)"
        return [_result(fid, "untestable", why) for fid in ("F1", "F2", "F3")]
    known = metrics_of(rows)
    ind = in_domain or in_domain_metric(known)
    gk = gk_metric or _knowledge(known, ind)
    return [_f1(rows, ind, level, B, seed), _f2(rows, ind, gk, level, B, seed), _f3(rows, gk, level, B, seed)]


test_findings.__test__ = False  # a library function, not a pytest test


def _knowledge(metrics, ind) -> str | None:
    others = [m for m in metrics if m != ind and m not in ("task_macro_f1", "macro_f1", "task_accuracy", "accuracy")]
    for hint in ("aggregate", "gk", "knowledge"):
        hits = [m for m in others if hint in m.lower()]
        if len(hits) == 1:
            return hits[0]
    return others[0] if len(others) == 1 else None


def _result(fid, verdict, why, effect=None) -> dict:
    return {"id": fid, "claim": CLAIMS[fid], "effect": effect, "verdict": verdict, "why": why}


def _effect(name, value, lo, hi, level, n) -> dict:
    return {"name": name, "value": float(value), "lo": float(lo), "hi": float(hi), "level": level, "n": n}


def _sign_verdict(lo, hi, what: str, knobs: str) -> tuple[str, str]:
    if lo > 0:
        return "reproduced", f"{what} is positive: its interval [{lo:.3g}, {hi:.3g}] excludes 0"
    if hi < 0:
        return "contradicted", f"{what} is negative: its interval [{lo:.3g}, {hi:.3g}] excludes 0"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive", f"{what} has no interval (too few bootstrap replicates fitted): {knobs}"
    return "inconclusive", f"the interval of {what} [{lo:.3g}, {hi:.3g}] includes 0 at this power: {knobs}"


def _fit_slices(rows, metrics, in_domain):
    """{slice: {metric: (points, fit)}} for the a1 slices where every metric fits, and the refusals.
    The in-domain metric may take the free-ceiling variant when its data need it."""
    fitted, refusals = {}, []
    for key, srows in sorted(slices(rows, FAMILY).items(), key=str):
        got = {}
        for m in metrics:
            if not any(r["metric"] == m for r in srows):
                break
            pts = points(srows, m)
            try:
                got[m] = (pts, fit_with_ceiling(pts, FAMILY, mode="auto" if m == in_domain else "never"))
            except TaskDistillError as exc:
                refusals.append(f"{m} at {dict(key)}: {exc}")
                break
        else:
            fitted[key] = got
    return fitted, refusals


def _refused(fid, refusals, what) -> dict:
    first = refusals[0] if refusals else "no slice holds the metrics"
    knob = f"{KNOB['items']} or {KNOB['kappa']}" if "standard errors" in first else KNOB["kappa"]
    return _result(fid, "untestable", f"{what} could not be fitted in any slice ({first}); {knob}")


# -- F1 -------------------------------------------------------------------------------------------------

def _f1(rows, ind, level, B, seed) -> dict:
    if ind is None:
        return _result("F1", "untestable", "no in-domain metric (task_macro_f1 / task_accuracy) in the rows: "
                                           "evaluate the task in the study")
    fitted, refusals = _fit_slices(rows, [ind], ind)
    if not fitted:
        return _refused("F1", refusals, f"the in-domain law ({FAMILY}) of {ind}")
    err, spread, branch, items, levels = [], [], [], [], 0
    sources = set()
    for slice_fits in fitted.values():
        pts, fit = slice_fits[ind]
        e, _ = level_out_errors(pts, fit.form, loss=fit.loss)
        sp = estimate_spread(pts)  # seeds, or none: the residuals would hide misfit
        sources.add(sp.source)
        keep = np.isfinite(e)
        v = np.clip(pts.value, 0.5 / pts.n, 1 - 0.5 / pts.n)
        s = 100 * np.sqrt(sp.seed_var + v * (1 - v) / pts.n)
        err.append(np.abs(e[keep]))
        spread.append(s[keep])
        branch += [b for b, k in zip(pts.branch, keep) if k]
        items.append(pts.n)
        levels = max(levels, len(np.unique(pts.kappa)))
    err, spread = np.concatenate(err), np.concatenate(spread)
    if not err.size:
        return _result("F1", "untestable", f"no κ level of {ind} could be left out and predicted (a refit needs 3 "
                                           f"levels and 4 points): {KNOB['kappa']}")
    ratio, lo, hi = _loo_ratio(err, spread, branch, level, B, seed)
    n = {"points": int(err.size), "slices": len(fitted), "branches": len(set(branch)), "kappa_levels": levels,
         "items": float(np.median(np.concatenate(items)))}
    effect = _effect("LOO mean |error| / error expected from seed and sampling spread", ratio, lo, hi, level, n)
    effect.update(loo_mae_points=float(err.mean()), spread_points=float(spread.mean()), tolerance=F1_TOLERANCE)
    basis = ("seed and sampling spread" if "seeds" in sources else
             "sampling spread only (no setting was run with several seeds: stricter)")
    if hi <= F1_TOLERANCE:
        return _result("F1", "reproduced", f"held-out κ levels are predicted within {F1_TOLERANCE:g}× the error "
                                           f"expected from {basis} (R = {ratio:.2f} [{lo:.2f}, {hi:.2f}])", effect)
    if lo > F1_TOLERANCE:
        return _result("F1", "contradicted", f"held-out κ levels miss by more than {F1_TOLERANCE:g}× the error "
                                             f"expected from {basis} (R = {ratio:.2f} [{lo:.2f}, {hi:.2f}]): the "
                                             f"decline is not the law's", effect)
    return _result("F1", "inconclusive", f"R = {ratio:.2f} [{lo:.2f}, {hi:.2f}] straddles the tolerance "
                                         f"{F1_TOLERANCE:g} ({basis}): {KNOB['kappa']} or {KNOB['seeds']}", effect)


def _loo_ratio(err, spread, branch, level, B, seed):
    const = math.sqrt(2 / math.pi)  # E|Z| for a standard normal Z
    ratio = float(err.mean() / (const * spread.mean()))
    units = sorted(set(branch), key=str)
    if B < 1 or len(units) < 2:
        return ratio, math.nan, math.nan
    idx = {u: [] for u in units}
    for i, b in enumerate(branch):
        idx[b].append(i)
    groups = [np.array(idx[u]) for u in units]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(B):
        pick = np.concatenate([groups[j] for j in rng.integers(0, len(groups), len(groups))])
        draws.append(err[pick].mean() / (const * spread[pick].mean()))
    lo, hi = percentile_interval(np.array(draws), level)
    return ratio, lo, hi


# -- F2 -------------------------------------------------------------------------------------------------

def _f2(rows, ind, gk, level, B, seed) -> dict:
    if ind is None:
        return _result("F2", "untestable", "no in-domain metric (task_macro_f1 / task_accuracy) to compare with")
    if gk is None:
        return _result("F2", "untestable", f"no general-knowledge metric in the rows: {KNOB['gk']}")
    fitted, refusals = _fit_slices(rows, [ind, gk], ind)
    if not fitted:
        return _refused("F2", refusals, f"the {FAMILY} laws of {ind} and {gk}")
    gaps = [derived.collapse_gap(p[ind][1], p[gk][1]) for p in fitted.values()]
    value = float(np.mean(gaps))
    lo = hi = math.nan
    kinds, refs, replicates = set(), {}, 0
    if B > 0:
        problems = {(str(k), m): fitted[k][m] for k in fitted for m in (ind, gk)}
        boots = bootstrap_joint(problems, B=B, seed=seed)
        per_slice = np.stack([boots[(str(k), gk)].draws(derived.kappa50) - boots[(str(k), ind)].draws(derived.kappa50)
                              for k in fitted])
        with warnings.catch_warnings():  # replicates in which no slice could be refitted: NaN, dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            pooled = np.nanmean(per_slice, axis=0)
        pooled = pooled[np.isfinite(pooled)]
        replicates = int(pooled.size)
        if pooled.size:
            lo, hi = percentile_interval(pooled, level)
        kinds = {b.kind for b in boots.values()}
        refs = {m: boots[(str(next(iter(fitted))), m)].reference for m in (ind, gk)}
    pts_all = [p for v in fitted.values() for p, _ in v.values()]
    n = {"slices": len(fitted), "points": int(sum(len(p) for p in pts_all)),
         "branches": len({b for p in pts_all for b in p.branch}),
         "items": {m: float(np.median(np.concatenate([v[m][0].n for v in fitted.values()]))) for m in (ind, gk)},
         "replicates": replicates, "bootstrap": sorted(kinds), "reference": refs}
    effect = _effect(f"κ50({gk}) − κ50({ind})", value, lo, hi, level, n)
    verdict, why = _sign_verdict(lo, hi, "the collapse gap", f"{KNOB['seeds']} or {KNOB['items']}")
    return _result("F2", verdict, why, effect)


# -- F3 -------------------------------------------------------------------------------------------------

def _f3(rows, gk, level, B, seed) -> dict:
    if gk is None:
        return _result("F3", "untestable", f"no general-knowledge metric in the rows: {KNOB['gk']}")
    mine = [r for r in rows if r["metric"] == gk]
    family = cot_family()
    cot = [r for r in mine if r["supervision"] in family]
    label = {_match(r): r for r in mine if r["supervision"] == LABEL}
    if not cot:
        return _result("F3", "untestable", f"no chain-of-thought runs ({', '.join(family)}): {KNOB['cot']}")
    if not label:
        return _result("F3", "untestable", f"no label-only runs to compare with: {KNOB['label']}")
    pairs = [(c, label[_match(c)]) for c in cot if _match(c) in label]
    if not pairs:
        return _result("F3", "untestable", "CoT and label-only runs share no (κ, D, method, schedule, seed): run both "
                                           "supervisions on the same grid (axes.supervision with the same axes)")
    pts = points([r for pair in pairs for r in pair], gk)  # rows 2i (CoT) and 2i + 1 (label)
    v, n, c, ref = pts.value, pts.n, pts.chance, pts.reference
    dv = v[0::2] - v[1::2]
    span = (ref[0::2] - c[0::2])
    value = float(np.mean(dv / span))
    units = [(pts.branch[2 * i], pts.branch[2 * i + 1]) for i in range(len(pairs))]
    spread = estimate_spread(pts)
    draws, how = _f3_draws(pts, units, spread, B, seed)
    lo, hi = percentile_interval(draws, level) if draws.size else (math.nan, math.nan)
    by_sup = {}
    for s in sorted({p[0]["supervision"] for p in pairs}):
        sel = np.array([p[0]["supervision"] == s for p in pairs])
        by_sup[s] = float(np.mean((dv / span)[sel]))
    n_ = {"pairs": len(pairs), "units": len(set(units)), "branches": len(set(pts.branch)),
          "items": float(np.median(n)), "bootstrap": how, "by_supervision": by_sup,
          "reference": pts.reference_error and f"redrawn ({pts.reference_error[0]})" or "exact"}
    effect = _effect(f"mean {gk} retention, CoT-family − label (matched pairs)", value, lo, hi, level, n_)
    verdict, why = _sign_verdict(lo, hi, "the CoT − label retention difference",
                                 f"{KNOB['seeds']} or {KNOB['items']}")
    if spread.source != "seeds":  # one seed per setting: no training-seed spread in the interval
        why += ("; one seed per setting, so the interval holds test noise only (a seed-to-seed difference could "
                f"pass for an effect): {KNOB['seeds']}")
    return _result("F3", verdict, why, effect)


def _match(r) -> tuple:
    return (r["keep_fraction"], r["dataset_size"], r["method"], r["schedule"], r["seed"])


def _f3_draws(pts, units, spread, B, seed) -> tuple[np.ndarray, str]:
    """B replicates of the mean CoT − label retention difference (see the module docstring)."""
    if B < 1:
        return np.zeros(0), "none"
    rng = np.random.default_rng(seed)
    v, n, c, ref = pts.value, pts.n, pts.chance[0::2], pts.reference[0::2]
    dv = v[0::2] - v[1::2]
    keys = sorted(set(units), key=str)
    groups = [np.array([i for i, u in enumerate(units) if u == k]) for k in keys]
    shift = _teacher_shift(pts)
    case = len(keys) >= MIN_UNITS_FOR_CASES
    sd_item = np.sqrt(np.clip(v, 1e-6, 1 - 1e-6) * (1 - np.clip(v, 1e-6, 1 - 1e-6)) / n)
    unit_of = np.empty(len(units), int)
    for j, g in enumerate(groups):
        unit_of[g] = j
    out = np.empty(B)
    for b in range(B):
        delta = shift(rng)
        if case:
            pick = np.concatenate([groups[j] for j in rng.integers(0, len(groups), len(groups))])
            out[b] = np.mean(dv[pick] / (ref[pick] + delta - c[pick]))
        else:  # item noise per value, one chain effect per unit (both chains of the pair)
            chain = rng.normal(0.0, np.sqrt(2 * spread.seed_var), len(groups))[unit_of]
            noisy = v + rng.normal(0.0, sd_item)
            out[b] = np.mean((noisy[0::2] - noisy[1::2] + chain) / (ref + delta - c))
    return out, "pair units" if case else "parametric (item noise + chain effect)"


def _teacher_shift(pts):
    err = pts.reference_error
    if err is None:
        return lambda rng: 0.0
    ref = float(np.median(pts.reference))
    how, size = err
    se = size if how == "stderr" else math.sqrt(ref * (1 - ref) / size)
    return lambda rng: float(rng.normal(0.0, se))

