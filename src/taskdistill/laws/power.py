"""Power before compute: what a planned study's grid can detect (docs/laws.md, "Power").

``plan_power(design)`` is a pure, fast function of the planned grid and a few guesses::

    design = {"test_size": 1000, "n_classes": 35, "gk_items": 400, "gk_chance": 0.25,
              "seeds": [0, 1, 2], "keep_fractions": [0.79, 0.58, 0.37, 0.16], "dataset_sizes": [4000, 16000],
              "supervisions": ["label", "cot"], "methods": ["logit"], "schedules": ["iterative"],
              "expected": {"task_accuracy": 0.9, "gk_accuracy": 0.6},          # the teacher, guessed
              "assume": {"seed_sd": 0.01, "kappa50_task": 0.35, "kappa50_gk": 0.65, "alpha": 2.0}}

It returns the standard error of each metric, the smallest detectable difference (80 % power,
two-sided 5 %: 2.80 standard errors) of the two comparisons the findings make, and one warning per
question the grid cannot answer, naming the knob to change. How each number is computed:

- accuracy: √(p(1 − p)/n) at the teacher's guessed accuracy (n = test_size, or gk_items);
- macro-F1: the spread of macro-F1 over 200 seeded simulations of a balanced C-class test set of
  test_size items scored by a student of the guessed accuracy whose errors fall uniformly on the
  other classes (deterministic; one macro-F1 per simulation, from per-class TP/FP/FN);
- GK retention q = (v − c)/(g − c) at q = ½ (where the collapse is located), delta method with the
  teacher g measured on as many items as the student: √(v(1 − v)/m + q²·g(1 − g)/m)/(g − c);
- CoT − label GK retention (F3), mean of matched pairs: pairs = κ levels × D × methods × schedules ×
  seeds per CoT-family supervision; test noise averages over pairs, the seed effect (seed_sd, one per
  chain, shared along its κ levels) only over chains; the teacher's error scales the difference, so
  the detectable difference solves d = 2.80·√(V + d²·g(1 − g)/m/(g − c)²);
- κ50 gap (F2): delta method from assumed a1 laws −log q = a·κ^(−α) through each metric's κ50
  (a = ln 2·κ50^α): the Fisher information of (log a, α) for every a1 slice (κ levels × seeds
  points, binomial test noise + seed_sd²), the slices sharing one teacher value measured on the
  metric's items; the gap is the mean over slices, the two metrics independent.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from taskdistill.distill.supervision import cot_family
from taskdistill.errors import TaskDistillError

Z_ALPHA, Z_POWER = float(norm.ppf(0.975)), float(norm.ppf(0.8))
DETECT = Z_ALPHA + Z_POWER  # 2.80: standard errors between a detectable effect and 0
DEFAULTS = {"test_size": 1000, "n_classes": 35, "gk_items": 400, "gk_chance": 0.25, "seeds": [0],
            "keep_fractions": [0.79, 0.58, 0.37, 0.16], "dataset_sizes": [1000], "supervisions": ["label"],
            "methods": ["logit"], "schedules": ["iterative"]}
EXPECTED = {"task_accuracy": 0.9, "gk_accuracy": 0.6}
ASSUME = {"seed_sd": 0.01, "kappa50_task": 0.35, "kappa50_gk": 0.65, "alpha": 2.0}
# Thresholds behind the warnings: what a question needs to be answerable at all.
LIMITS = {"task_se": 0.01, "gk_retention_se": 0.1, "cot_mdd": 0.1, "gap_power": 0.8, "items_per_class": 10}


def plan_power(design: dict) -> dict:
    """Standard errors, smallest detectable differences and warnings for a planned study (see module)."""
    d = {**DEFAULTS, **{k: v for k, v in design.items() if k not in ("expected", "assume")}}
    exp = {**EXPECTED, **(design.get("expected") or {})}
    assume = {**ASSUME, **(design.get("assume") or {})}
    n_task, n_cls, m, c_gk = int(d["test_size"]), int(d["n_classes"]), int(d["gk_items"]), float(d["gk_chance"])
    _check(n_task >= 1, "test_size", "≥ 1")
    _check(n_cls >= 2, "n_classes", "≥ 2")
    _check(m >= 1, "gk_items", "≥ 1")
    _check(0 <= c_gk < 1, "gk_chance", "in [0, 1)")
    p_task, g = float(exp["task_accuracy"]), float(exp["gk_accuracy"])
    _check(1 / n_cls < p_task < 1, "expected.task_accuracy", "above chance (1/n_classes) and below 1")
    _check(c_gk < g < 1, "expected.gk_accuracy", "above gk_chance and below 1")
    if isinstance(d["keep_fractions"], str):
        raise TaskDistillError("power design: give keep_fractions as a list of κ values (resolve a named schedule "
                               "such as `paper` first)")
    seeds = _count(d["seeds"])
    kappas = sorted({float(k) for k in d["keep_fractions"]})
    grid = {"kappa": len(kappas), "seeds": seeds, "D": _count(d["dataset_sizes"]), "methods": _count(d["methods"]),
            "schedules": _count(d["schedules"])}
    sups = list(d["supervisions"])
    n_cot = sum(s in cot_family() for s in sups)

    se = {"task_accuracy": _binomial_se(p_task, n_task),
          "task_macro_f1": _macro_f1_se(p_task, n_task, n_cls),
          "gk_accuracy": _binomial_se(g, m)}
    v_half = c_gk + 0.5 * (g - c_gk)
    student, teacher = v_half * (1 - v_half) / m, 0.25 * g * (1 - g) / m
    se["gk_retention"] = math.sqrt(student + teacher) / (g - c_gk)
    se["gk_retention_without_teacher_error"] = math.sqrt(student) / (g - c_gk)

    chains = grid["D"] * grid["methods"] * grid["schedules"] * seeds
    cot = _cot_mdd(v_half, g, c_gk, m, grid["kappa"] * chains * n_cot, chains * n_cot, assume["seed_sd"])
    slices_ = grid["D"] * grid["methods"] * grid["schedules"] * max(len(sups), 1)
    gap = _gap(kappas, seeds, slices_, assume, {"task": (p_task, 1 / n_cls, n_task), "gk": (g, c_gk, m)})
    out = {"se": se,
           "mdd": {"cot_vs_label_gk_retention": cot, "collapse_gap": gap},
           "grid": {**grid, "supervisions": sups, "cot_family": n_cot, "chains_per_supervision": chains,
                    "slices": slices_},
           "assumptions": {"expected": exp, **assume, "power": 0.8, "significance": 0.05}}
    out["warnings"] = _warnings(out, kappas, sups, n_task, n_cls, d.get("test_knob", "task.test_size"))
    return out


def _check(ok: bool, key: str, what: str) -> None:
    if not ok:
        raise TaskDistillError(f"power design: {key} must be {what}")


def _count(value) -> int:
    return int(value) if isinstance(value, (int, float)) else len(list(value))


def _binomial_se(p: float, n: float) -> float:
    return math.sqrt(p * (1 - p) / n)


def _macro_f1_se(p: float, n: int, classes: int, reps: int = 200) -> float:
    """SD of macro-F1 over ``reps`` simulated test sets (balanced classes, errors uniform over the
    other classes; see the module docstring). Seeded, so the function stays pure."""
    rng = np.random.default_rng(12345)
    per = max(n // classes, 1)
    tp = rng.binomial(per, p, size=(reps, classes))
    wrong = rng.multinomial(per - tp, np.full(classes - 1, 1 / (classes - 1)))  # (reps, C, C − 1)
    fp = np.zeros((reps, classes))
    for k in range(classes - 1):  # class i's k-th other class is i + 1 + k (mod C)
        fp += np.roll(wrong[:, :, k], 1 + k, axis=1)
    fn = per - tp
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(np.std(f1.mean(axis=1), ddof=1))


def _cot_mdd(v, g, c, m, pairs, chains, seed_sd) -> dict:
    """Smallest detectable mean CoT − label GK retention difference (see the module docstring)."""
    span = g - c
    if pairs == 0:
        return {"value": math.inf, "pairs": 0, "chains": 0, "se_at_zero": math.inf}
    var = (2 * v * (1 - v) / m / pairs + 2 * seed_sd**2 / chains) / span**2
    teacher = g * (1 - g) / m / span**2
    room = 1 - DETECT**2 * teacher
    mdd = DETECT * math.sqrt(var) / math.sqrt(room) if room > 0 else math.inf
    return {"value": mdd, "pairs": pairs, "chains": chains, "se_at_zero": math.sqrt(var)}


def _kappa50_variance(kappas, seeds, slices_, law, seed_sd, alpha, k50) -> float:
    """Variance of the slice-mean κ50 of one metric: S identical a1 slices sharing one teacher value."""
    h, c, items = law
    a = math.log(2) * k50**alpha
    k = np.array(kappas)
    q = np.exp(-a * k**-alpha)
    v = c + (h - c) * q
    var = v * (1 - v) / items + seed_sd**2
    t = a * k**-alpha
    grads = np.column_stack([-(h - c) * q * t, (h - c) * q * t * np.log(k), q])  # dv/d(log a, α, h)
    per = (grads.T * (seeds / var)) @ grads  # one slice's information in (log a, α, h)
    size = 2 * slices_ + 1
    info = np.zeros((size, size))
    for s in range(slices_):
        ix = [2 * s, 2 * s + 1, size - 1]
        info[np.ix_(ix, ix)] += per
    info[-1, -1] += items / (h * (1 - h))  # the teacher's own measurement
    dk = np.zeros(size)
    for s in range(slices_):  # d mean κ50 / d θ_s
        dk[2 * s] = k50 / alpha / slices_
        dk[2 * s + 1] = -k50 * math.log(a / math.log(2)) / alpha**2 / slices_
    try:
        return float(dk @ np.linalg.solve(info, dk))
    except np.linalg.LinAlgError:
        return math.inf


def _gap(kappas, seeds, slices_, assume, laws) -> dict:
    """Standard error and smallest detectable κ50 gap (F2), and the power at the assumed gap."""
    if len(kappas) < 3 or len(kappas) * seeds < 5:  # a1 cannot be fitted per slice
        return {"value": math.inf, "se": math.inf, "assumed_gap": assume["kappa50_gk"] - assume["kappa50_task"],
                "power_at_assumed_gap": 0.0}
    var = sum(_kappa50_variance(kappas, seeds, slices_, laws[m], assume["seed_sd"], assume["alpha"],
                                assume[f"kappa50_{m}"]) for m in ("task", "gk"))
    se = math.sqrt(var)
    gap = assume["kappa50_gk"] - assume["kappa50_task"]
    power = float(norm.cdf(gap / se - Z_ALPHA) + norm.cdf(-gap / se - Z_ALPHA)) if se > 0 else 1.0
    return {"value": DETECT * se, "se": se, "assumed_gap": gap, "power_at_assumed_gap": power}


def _warnings(out, kappas, sups, n_task, n_cls, test_knob="task.test_size") -> list[str]:
    grid, se, mdd, assume = out["grid"], out["se"], out["mdd"], out["assumptions"]
    w = []
    if len(kappas) < 3:
        w.append(f"only {len(kappas)} keep fraction(s): no law along κ can be fitted (a1 needs 3), so no κ50, "
                 "collapse gap or F1/F2: set axes.keep_fractions to at least 4 levels")
    elif len(kappas) < 4:
        w.append("3 keep fractions: leaving one out (F1, held-out checks) leaves too few to refit: add a 4th to "
                 "axes.keep_fractions")
    if len(kappas) * grid["seeds"] < 5 and len(kappas) >= 3:
        w.append(f"{len(kappas)} keep fractions × {grid['seeds']} seed(s) = {len(kappas) * grid['seeds']} points per "
                 "slice; a1 needs 5: add axes.keep_fractions or axes.seeds")
    if grid["seeds"] < 2:
        w.append("one seed: the between-seed spread cannot be measured (F1 compares with sampling error alone; "
                 "a new student's spread comes from residuals): set axes.seeds to at least 2")
    if not any(s in cot_family() for s in sups):
        w.append("no chain-of-thought supervision: F3 (CoT vs label general knowledge) is untestable: add cot to "
                 "axes.supervision")
    if "label" not in sups:
        w.append("no label-only supervision: F3 has no baseline: add label to axes.supervision")
    if se["task_accuracy"] > LIMITS["task_se"]:
        w.append(f"in-domain accuracy is measured to ±{100 * se['task_accuracy']:.1f} points (SE): raise {test_knob}")
    if n_task / n_cls < LIMITS["items_per_class"]:
        w.append(f"{n_task / n_cls:.1f} test items per class: macro-F1 (SE {se['task_macro_f1']:.3f}) is noisy: "
                 f"raise {test_knob}")
    if se["gk_retention"] > LIMITS["gk_retention_se"]:
        w.append(f"GK retention at the collapse is measured to ±{se['gk_retention']:.2f} (SE, teacher included): "
                 "raise knowledge.limit")
    cot = mdd["cot_vs_label_gk_retention"]
    if grid["cot_family"] and "label" in sups and cot["value"] > LIMITS["cot_mdd"]:
        w.append(f"F3 can only detect a CoT − label GK retention difference of {cot['value']:.2f} or more: raise "
                 "knowledge.limit or axes.seeds")
    gap = mdd["collapse_gap"]
    if math.isfinite(gap["se"]) and gap["power_at_assumed_gap"] < LIMITS["gap_power"]:
        w.append(f"F2 has {gap['power_at_assumed_gap']:.0%} power for the assumed collapse gap "
                 f"{gap['assumed_gap']:.2f} (detectable: {gap['value']:.2f}): raise knowledge.limit, task.test_size, "
                 "axes.seeds or axes.keep_fractions")
    for m in ("task", "gk"):
        k50 = assume[f"kappa50_{m}"]
        if kappas and not kappas[0] <= k50 <= kappas[-1]:
            w.append(f"the assumed {m} collapse point κ50 = {k50:g} lies outside the keep fractions "
                     f"[{kappas[0]:g}, {kappas[-1]:g}]: it would be extrapolated: add keep fractions around it "
                     "(axes.keep_fractions)")
    return w
