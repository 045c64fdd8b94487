"""Run a study: lock its folder, record the plan in the store, execute the steps, fit laws, write the report.

The local executor runs ready steps one at a time in plan order; the Ray executor
(:mod:`taskdistill.study.ray_executor`) runs independent ready steps in parallel. Both share the
bookkeeping here: only this (driver) process writes the store, workers only write artifacts.
"""

from __future__ import annotations

import fcntl
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from taskdistill.cache import atomic_write_text
from taskdistill.errors import TaskDistillError
from taskdistill.study.plan import Plan, plan
from taskdistill.study.spec import StudySpec, dump_spec, load_spec
from taskdistill.study.store import Store

STORE_NAME = "study.sqlite"
SPEC_NAME = "spec.yaml"
LOCK_NAME = ".lock"
PACKAGES = ("taskdistill", "torch", "transformers", "peft", "lm_eval", "datasets", "numpy", "scipy")

Event = Callable[[str, dict], None]  # (what, step row) → None: "start", "done", "skip", "fail"


class StudyLock:
    """An exclusive lock on a study folder (released by the kernel when the process dies, even by SIGKILL)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.fh = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            pid = self.fh.read().strip() or "?"
            self.fh.close()
            raise TaskDistillError(f"{self.path.parent} is in use by another live process (pid {pid}); wait for "
                                   "it to finish or stop it, then `study resume` the folder") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False


def is_locked(folder: Path) -> bool:
    """Whether a live process is running the study in ``folder``."""
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return False
    with open(path) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def provenance() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            versions[name] = None
    return {"packages": versions, "machine": {"platform": platform.platform(), "python": platform.python_version(),
                                              "cpu_count": os.cpu_count(), "node": platform.node()}}


def open_store(folder: Path) -> Store:
    return Store(Path(folder) / STORE_NAME, create=False)


def check_folder(spec: StudySpec, folder: Path) -> None:
    """A folder already holding a study must hold this spec's study (the store is only read)."""
    path = folder / STORE_NAME
    if path.exists():
        store = Store(path, create=False)
        try:
            existing = store.study()
        finally:
            store.close()
        if existing and existing["spec_hash"] != spec.spec_hash():
            raise TaskDistillError(
                f"{folder} belongs to study {existing['name']!r} with a different spec (hash "
                f"{existing['spec_hash']} ≠ {spec.spec_hash()}); use another --dir, or `study resume {folder}`")


def prepare(spec: StudySpec, folder: Path) -> Plan:
    """Validate everything that can be checked before work starts (no store is written)."""
    from taskdistill.study.steps import check_sizes

    check_folder(spec, folder)
    if not spec.task.source.startswith("hf:"):  # hub data is checked when the data step loads it
        check_sizes(spec.task.model_dump(), spec.subset_sizes())
    return plan(spec)


def run_study(spec: StudySpec, folder: str | Path, executor: str = "local", address: str | None = None,
              on_event: Event | None = None, num_cpus: int | None = None) -> dict:
    """Run (or continue) a study in ``folder``; returns a summary of step statuses."""
    folder = Path(folder)
    with StudyLock(folder):
        p = prepare(spec, folder)
        if not (folder / SPEC_NAME).is_file():  # first, so a folder with a store always has its spec copy
            atomic_write_text(folder / SPEC_NAME, dump_spec(spec))
        store = Store(folder / STORE_NAME)
        try:
            store.register(p, spec.model_dump(mode="json"), provenance())
            store.recover_interrupted(p.study)
            if executor == "local":
                run_local(p, spec, store, folder, on_event)
            elif executor == "ray":
                from taskdistill.study.ray_executor import run_ray

                run_ray(p, spec, store, folder, address=address, on_event=on_event, num_cpus=num_cpus)
            else:
                raise TaskDistillError(f"unknown executor {executor!r}; use local or ray")
            summary = summarize(store.steps(p.study))
            if spec.report and summary.get("done", 0) + summary.get("skipped", 0) == len(p.steps):
                finalize(folder, store, p.study, on_event)
            return summary
        finally:
            store.close()


def resume_study(folder: str | Path, **kwargs) -> dict:
    """Finish the study in ``folder`` from its spec copy."""
    folder = Path(folder)
    if not (folder / SPEC_NAME).is_file():
        raise TaskDistillError(f"{folder} holds no {SPEC_NAME}; it is not a study folder (start one with `study run`)")
    return run_study(load_spec(folder / SPEC_NAME), folder, **kwargs)


def summarize(steps: dict[str, dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in steps.values():
        out[row["status"]] = out.get(row["status"], 0) + 1
    return out


# -- scheduling shared by both executors --------------------------------------------------------
def dep_rows(step, rows: dict[str, dict]) -> list[dict]:
    return [{"key": d, "kind": rows[d]["kind"], "artifact": rows[d]["artifact"], "result": rows[d]["result"]}
            for d in step.deps]


def gate_retention(store: Store, p: Plan, gate: str) -> float | None:
    """General-knowledge retention q = (A − chance)/(teacher − chance) of the gate's evaluation."""
    metrics = store._metrics(p.study)
    own, ref = metrics.get(gate, {}).get("gk_aggregate"), metrics.get(p.teacher_eval, {}).get("gk_aggregate")
    if own is None or ref is None or ref["value"] <= ref["chance"]:
        return None  # a teacher at chance leaves nothing to retain: never stop
    return (own["value"] - own["chance"]) / (ref["value"] - ref["chance"])


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
                                                dep_rows(step, rows), folder)
        except BaseException as exc:
            store.fail(p.study, step.key, f"{type(exc).__name__}: {exc}")
            if on_event:
                on_event("fail", rows[step.key] | {"error": str(exc)})
            raise
        store.finish(p.study, step.key, artifact, result, metrics)
        if on_event:
            on_event("done", store.steps(p.study)[step.key])


def finalize(folder: Path, store: Store, study: str, on_event: Event | None = None) -> None:
    """Fit the laws and write report.html / report.md / results.json into the study folder."""
    from taskdistill.report import build_report

    start = time.time()
    build_report(folder, out_dir=folder, study=study)
    if on_event:
        on_event("report", {"label": "laws + report", "kind": "report", "seconds": time.time() - start,
                            "artifact": str(folder)})
