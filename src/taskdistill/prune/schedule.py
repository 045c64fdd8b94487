"""Pruning schedules (one-shot, the paper's constant step, geometric, explicit) and the iterative driver."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from taskdistill.errors import TaskDistillError
from taskdistill.prune.api import PruneReport, prune
from taskdistill.prune.params import count_parameters

PRESETS = {"paper": [0.79, 0.58, 0.37, 0.16]}  # 100 → 79 → 58 → 37 → 16 %: constant 21-point steps


def parse_schedule(spec: str | float | list) -> list[float]:
    """Keep fractions (relative to the original model), strictly decreasing, each in (0, 1].

    ``"0.5"`` one-shot; ``"paper"``; ``"geometric:FINAL:STEPS"`` (κ_k = FINAL^(k/STEPS));
    ``"0.8,0.6,0.4"`` explicit. A float or a list of floats is taken as is.
    """
    if isinstance(spec, (int, float)):
        values = [float(spec)]
    elif isinstance(spec, (list, tuple)):
        values = [float(v) for v in spec]
    else:
        text = str(spec).strip()
        if text in PRESETS:
            values = list(PRESETS[text])
        elif text.startswith("geometric:"):
            parts = text.split(":")
            try:
                final, steps = float(parts[1]), int(parts[2])
            except (IndexError, ValueError):
                raise TaskDistillError(f"bad schedule {text!r}; write geometric:FINAL:STEPS, e.g. geometric:0.5:4") from None
            if len(parts) != 3 or steps < 1:
                raise TaskDistillError(f"bad schedule {text!r}; write geometric:FINAL:STEPS with STEPS ≥ 1")
            values = [round(final ** (k / steps), 6) for k in range(1, steps + 1)]
        else:
            try:
                values = [float(v) for v in text.split(",") if v.strip()]
            except ValueError:
                raise TaskDistillError(
                    f"bad schedule {text!r}; use a keep fraction (0.5), a list (0.8,0.6,0.4), "
                    f"geometric:FINAL:STEPS or a preset ({', '.join(PRESETS)})") from None
    if not values:
        raise TaskDistillError("the schedule is empty; pass e.g. 0.5 or paper")
    for v in values:
        if not 0 < v <= 1:
            raise TaskDistillError(f"keep fraction {v} in schedule {spec!r} is outside (0, 1]")
    if any(b >= a for a, b in pairwise(values)):
        raise TaskDistillError(f"schedule {spec!r} must be strictly decreasing")
    return values


@dataclass
class StepInfo:
    step: int  # 1-based
    keep_fraction: float
    schedule: list[float]
    report: PruneReport


def iterative_prune(model, tokenizer, schedule, calib_texts, recover: Callable | None = None,
                    on_step: Callable | None = None, axes: str = "width", **prune_kwargs):
    """Prune step by step along ``schedule``; importance is recomputed on the current model each step.

    Keep fractions are relative to the ORIGINAL model's parameters. After each pruning step
    ``recover(model, tokenizer, step_info) -> model`` runs (identity by default), then
    ``on_step(step_info, model)``. Returns the final model.
    """
    fractions = parse_schedule(schedule)
    reference = count_parameters(model)
    calib_texts = list(calib_texts)
    for step, kappa in enumerate(fractions, start=1):
        model, report = prune(model, tokenizer, kappa, calib_texts, axes=axes, reference_params=reference,
                              **prune_kwargs)
        info = StepInfo(step, kappa, fractions, report)
        if recover is not None:
            model = recover(model, tokenizer, info)
        if on_step is not None:
            on_step(info, model)
    return model
