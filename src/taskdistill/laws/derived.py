"""Answers derived from fitted laws, each a function of one Fit so the bootstrap turns it into an
interval: ``boot.interval(lambda f: kappa50(f, ...))``. The closed forms live in the form records
(``Form.kappa50``, ``Form.data_needed``); these functions check the arguments a form needs.

- κ50: keep fraction where retention q = 0.5 (the collapse point);
- the gap between the general-knowledge and in-domain collapse points;
- D needed at a given κ to reach a target retention (effective D: examples actually trained on);
- the data-equivalent value of a supervision format over the reference (label-only): its multiplier.
"""

from __future__ import annotations

import math

import numpy as np

from taskdistill.errors import TaskDistillError

LN2 = math.log(2.0)


def kappa50(fit, dataset_size: float | None = None, supervision=None, schedule=None, q: float = 0.5) -> float:
    """Keep fraction at which retention falls to ``q`` (0.5: the collapse point); inf if never above it.

    ``dataset_size`` is the effective D, for forms whose law reads D."""
    form = fit.form
    if form.kappa50 is None:
        raise TaskDistillError(f"{form.name} has no closed-form κ50 (a law along D?); use a form along κ")
    if "D" in form.inputs and dataset_size is None:
        raise TaskDistillError(f"κ50 under {form.name} depends on D: pass dataset_size")
    return float(form.kappa50(fit.params, q, dataset_size, supervision, schedule))


def collapse_gap(in_domain_fit, knowledge_fit, **at) -> float:
    """κ50(general knowledge) − κ50(in-domain): how much earlier (in κ) general knowledge collapses."""
    return kappa50(knowledge_fit, **at) - kappa50(in_domain_fit, **at)


def data_needed(fit, target_q: float, kappa: float | None = None, supervision=None, schedule=None) -> float:
    """Effective distillation examples D needed to reach retention ``target_q`` (inf: unreachable).

    A target above 1 (a student beating the teacher) is reachable only under a free-ceiling form."""
    form = fit.form
    if not target_q > 0:
        raise TaskDistillError(f"target retention {target_q:g} must be above 0 (chance)")
    if form.data_needed is None:
        raise TaskDistillError(f"{form.name} has no data term; data needed needs a law in D (b1, c1)")
    if "kappa" in form.inputs and kappa is None:
        raise TaskDistillError(f"data needed under {form.name} depends on κ: pass kappa")
    return float(form.data_needed(fit.params, target_q, kappa, supervision, schedule))


def data_equivalent(fit, supervision: str) -> float:
    """How many label-only examples one example of ``supervision`` is worth (the c3 multiplier m_f)."""
    if "supervision" not in fit.form.factors:
        raise TaskDistillError("data-equivalent values need a joint law (c1) fitted over several supervisions")
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
