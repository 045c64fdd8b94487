"""Scheduling shared by both executors (which steps are ready, early stop, skips) and the local executor.

The local executor runs ready steps one at a time in plan order, in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from taskdistill.retention import retention
from taskdistill.study.plan import Plan
from taskdistill.study.spec import StudySpec
from taskdistill.study.store import Store

Event = Callable[[str, dict], None]  # (what, step row) → None: "start", "done", "skip", "fail"


def dep_rows(step, rows: dict[str, dict]) -> dict[str, dict]:
    """What a step reads of each step it names: role → key, kind, artifact, result."""
    return {role: {"key": d, "kind": rows[d]["kind"], "artifact": rows[d]["artifact"], "result": rows[d]["result"]}
            for role, d in step.deps.items()}


def gate_retention(store: Store, p: Plan, gate: str) -> float | None:
    """General-knowledge retention q = (A − chance)/(teacher − chance) of the gate's evaluation."""
    metrics = store._metrics(p.study)
    own, ref = metrics.get(gate, {}).get("gk_aggregate"), metrics.get(p.teacher_eval, {}).get("gk_aggregate")
    if own is None or ref is None:
        return None
    return retention(own["value"], own["chance"], ref["value"])  # None for a teacher at chance: never stop


def ready(p: Plan, spec: StudySpec, store: Store, rows: dict[str, dict], on_event: Event | None) -> list:
    """Pending steps whose inputs are done, after skipping the ones that can never run."""
    out = []
    for step in p.steps.values():
        if rows[step.key]["status"] != "pending":
            continue
        waits = step.waits_for(p.teacher_eval)
        states = [rows[d]["status"] for d in waits]
        if any(s == "skipped" for s in states):
            _skip(store, p, step.key, "an input step was skipped", rows, on_event)
            continue
        if not all(s == "done" for s in states):
            continue
        if step.gate and spec.early_stop.min_gk_retention is not None:
            q = gate_retention(store, p, step.gate)
            if q is not None and q < spec.early_stop.min_gk_retention:
                _skip(store, p, step.key, f"early stop: GK retention {q:.3f} < "
                      f"{spec.early_stop.min_gk_retention}", rows, on_event)
                continue
        out.append(step)
    return out


def _skip(store: Store, p: Plan, key: str, reason: str, rows: dict, on_event: Event | None) -> None:
    keys = [key, *sorted(p.descendants(key))]
    store.skip(p.study, keys, reason)
    for k in keys:
        if rows[k]["status"] == "pending":
            rows[k]["status"] = "skipped"
            if on_event:
                on_event("skip", rows[k] | {"error": reason})


def run_local(p: Plan, spec: StudySpec, store: Store, folder: Path, on_event: Event | None = None) -> None:
    from taskdistill.study.steps import execute

    while True:
        rows = store.steps(p.study)
        todo = ready(p, spec, store, rows, on_event)
        if not todo:
            return
        step = todo[0]
        if not store.claim(p.study, step.key):
            continue
        if on_event:
            on_event("start", rows[step.key])
        try:
            artifact, result, metrics = execute({"key": step.key, "kind": step.kind, "inputs": step.inputs},
                                                dep_rows(step, rows), folder, spec.runtime.model_dump(mode="json"))
        except BaseException as exc:
            store.fail(p.study, step.key, f"{type(exc).__name__}: {exc}")
            if on_event:
                on_event("fail", rows[step.key] | {"error": str(exc)})
            raise
        store.finish(p.study, step.key, artifact, result, metrics)
        if on_event:
            on_event("done", store.steps(p.study)[step.key])

