"""Checks before and after a fit: enough points and levels, a trend to fit, an identified optimum."""

from __future__ import annotations

import numpy as np

from taskdistill.errors import TaskDistillError

SPREAD_TOL = 0.05  # fit-coordinate spread (logs / exponents) among equally good starts that counts as a ridge
COND_TOL = 1e-10  # smallest/largest eigenvalue of the information matrix below which a direction is flat
_ATTR = {"keep_fraction": "kappa"}  # row key → Points attribute, where they differ


class NotIdentifiable(TaskDistillError):
    """The data cannot pin down this law (one κ level, all at chance, a flat ridge, ...)."""


def min_points(n_params: int) -> int:
    """Fewest points for a form with ``n_params`` free parameters: about 4 per parameter (4k − 3)."""
    return 4 * n_params - 3


def check_data(points, form) -> None:
    """Refuse data that mixes slices, lacks levels, shows no trend or sits at chance everywhere."""
    name = points.metric
    low = points.reference <= points.chance
    if low.any():
        raise TaskDistillError(f"{name}: the reference (teacher, {points.reference[low][0]:.3g}) is not above chance "
                               f"({points.chance[low][0]:.3g}), so retention is undefined: use the corrected teacher "
                               "as reference (enable correction in the study spec)")
    for key in form.slice_keys:
        field = _ATTR.get(key, key)
        values = np.unique(getattr(points, field))
        if len(values) > 1:
            shown = ", ".join(str(v) for v in values[:4])
            raise TaskDistillError(f"{form.name} fits one slice but {name} mixes {field} = {shown}; "
                                   "fit each slice separately (laws.analysis.fit_study groups them)")
    for axis, need in form.min_levels.items():
        # levels are design levels: nominal D (effective D varies a little from run to run)
        values = points.kappa if axis == "kappa" else points.dataset_size[points.dataset_size > 0]
        levels = np.unique(values)
        if len(levels) < need:
            what = "keep fractions κ" if axis == "kappa" else "dataset sizes D > 0"
            raise NotIdentifiable(
                f"not identifiable: {name} has {len(levels)} distinct {what} "
                f"({', '.join(f'{v:g}' for v in levels)}); {form.name} needs at least {need} to pin down its "
                "shape: add levels")
    value = points.value
    if np.ptp(value) == 0:
        raise NotIdentifiable(f"not identifiable: all {len(points)} values of {name} are identical "
                              f"({value[0]:g}); the data show no trend for a law to describe")
    if form.decline_check and np.all(value >= points.reference - 2 * np.sqrt(value * (1 - value) / points.n)):
        raise NotIdentifiable(f"not identifiable: every point of {name} is at or above its reference (the teacher, "
                              f"{np.mean(points.reference):.3g}) within 2 standard errors; there is no measurable "
                              "decline for a law to describe: evaluate on more test items, add more severe keep "
                              "fractions, or enable correction in the study spec if the teacher is uncorrected")
    se = np.sqrt(points.chance * (1 - points.chance) / points.n)
    if np.all(value - points.chance <= 2 * se):
        raise NotIdentifiable(f"not identifiable: every point of {name} is at chance (within 2 standard errors); "
                              "the metric has collapsed everywhere, so no law can locate the collapse: "
                              "add milder keep fractions")


def check_identified(form, X, u, reached, bounds, metric, fisher, error=NotIdentifiable) -> None:
    """After the fit: equally good starts must agree, no search bound may hold an active parameter,
    and the information matrix must not be singular in the active parameters."""
    names = form.names(X)
    inactive = form.inactive(u, X)
    active = [i for i in range(len(u)) if i not in inactive]
    where = f"not identifiable: {metric} under {form.name}"
    for other in reached:
        diff = np.abs(other - u)
        for i in active:
            if diff[i] > SPREAD_TOL:
                raise error(f"{where}: equally good starts put {names[i]} at {u[i]:.3g} and {other[i]:.3g}; "
                            "the data do not pin it down (add levels or use a smaller form)")
    for i in active:
        lo, hi = bounds[i]
        if names[i] not in form.physical and (u[i] <= lo + 1e-6 or u[i] >= hi - 1e-6):
            raise error(f"{where}: {names[i]} runs to its search bound ({u[i]:.3g}); the data do not pin it "
                        "down: add levels along its axis (or the transition lies outside the observed range)")
    info = fisher(u)[np.ix_(active, active)]
    if info.size:
        scale = np.sqrt(np.clip(np.diag(info), 1e-300, None))
        evals, evecs = np.linalg.eigh(info / np.outer(scale, scale))
        if evals[0] <= COND_TOL * max(evals[-1], 1e-300):
            flat = [names[active[j]] for j in np.argsort(-np.abs(evecs[:, 0]))[:2]]
            raise error(f"{where}: the data constrain only a combination of {' and '.join(flat)} "
                        "(singular information matrix): add levels along the missing axis")
