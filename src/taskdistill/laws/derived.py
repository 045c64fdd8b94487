"""Answers derived from fitted laws (closed forms from docs/laws.md), each a function of one Fit so
the bootstrap turns it into an interval: ``boot.interval(lambda f: kappa50(f, ...))``.

- κ50: keep fraction where retention q = 0.5 (the collapse point);
- the gap between the general-knowledge and in-domain collapse points;
- D needed at a given κ to reach a target retention;
- the data-equivalent value of a supervision format over the reference (label-only): its multiplier.
"""

from __future__ import annotations

import math

import numpy as np

from taskdistill.errors import TaskDistillError

LN2 = math.log(2.0)


def _c1_mult(p: dict, supervision, schedule) -> tuple[float, float]:
    m = p.get(f"m[{supervision}]", 1.0) if supervision is not None else 1.0
    e = p.get(f"e[{schedule}]", 1.0) if schedule is not None else 1.0
    return m, e


def kappa50(fit, dataset_size: float | None = None, supervision=None, schedule=None, q: float = 0.5) -> float:
    """Keep fraction at which retention falls to ``q`` (0.5: the collapse point); inf if never above it."""
    p, target = fit.params, -math.log(q)
    name = fit.form.name
    if name == "a1":
        return (p["a"] / target) ** (1 / p["alpha"])
    if name == "a2":
        return p["kappa_star"] * (1 / q - 1) ** (-1 / p["s"])
    if name == "c1":
        if dataset_size is None:
            raise TaskDistillError("κ50 under the joint law depends on D: pass dataset_size")
        m, e = _c1_mult(p, supervision, schedule)
        room = target - p["E"] - p["b"] * (m * dataset_size) ** -p["beta"]
        return math.inf if room <= 0 else (p["a"] / room) ** (1 / p["alpha"]) / e
    raise TaskDistillError(f"{name} is a law along D; κ50 needs a1, a2 or c1")


def collapse_gap(in_domain_fit, knowledge_fit, **at) -> float:
    """κ50(general knowledge) − κ50(in-domain): how much earlier (in κ) general knowledge collapses."""
    return kappa50(knowledge_fit, **at) - kappa50(in_domain_fit, **at)


def data_needed(fit, target_q: float, kappa: float | None = None, supervision=None, schedule=None) -> float:
    """Distillation examples D needed to reach retention ``target_q`` (inf: unreachable at this κ)."""
    p = fit.params
    if not 0 < target_q < 1:
        raise TaskDistillError(f"target retention {target_q:g} must lie in (0, 1)")
    if fit.form.name == "c1":
        if kappa is None:
            raise TaskDistillError("data needed under the joint law depends on κ: pass kappa")
        m, e = _c1_mult(p, supervision, schedule)
        room = -math.log(target_q) - p["E"] - p["a"] * (e * kappa) ** -p["alpha"]
        return math.inf if room <= 0 else (p["b"] / room) ** (1 / p["beta"]) / m
    if fit.form.name == "b1":
        if target_q >= p["q_inf"]:
            return math.inf
        if target_q <= p["q0"]:
            return 0.0
        return p["D0"] * (((p["q_inf"] - target_q) / (p["q_inf"] - p["q0"])) ** (-1 / p["beta"]) - 1)
    raise TaskDistillError(f"{fit.form.name} has no data term; data needed needs b1 or c1")


def data_equivalent(fit, supervision: str) -> float:
    """How many label-only examples one example of ``supervision`` is worth (the c3 multiplier m_f)."""
    if fit.form.name != "c1":
        raise TaskDistillError("data-equivalent values need the joint law c1 fitted over several supervisions")
    ref = fit.levels[0][0]
    if supervision == ref:
        return 1.0
    key = f"m[{supervision}]"
    if key not in fit.params:
        raise TaskDistillError(f"supervision {supervision!r} was not in the fitted data "
                               f"(levels: {', '.join(fit.levels[0])})")
    return fit.params[key]


def summarise(boot, fn, level: float = 0.95) -> dict:
    """Point estimate and percentile interval of fn(fit) over a Bootstrap."""
    lo, hi = boot.interval(fn, level)
    value = float(fn(boot.fit))
    return {"value": value, "lo": lo, "hi": hi, "level": level,
            "replicates": int(np.sum(np.isfinite(boot.draws(fn))))}
