"""Run a study: lock its folder, record the plan in the store, execute the steps.

The local executor (:mod:`taskdistill.study.executor`) runs ready steps one at a time in plan order;
the Ray executor (:mod:`taskdistill.study.ray_executor`) runs independent ready steps in parallel.
Only this (driver) process writes the store; workers only write artifacts.
"""

from __future__ import annotations

import fcntl
import os
import platform
from pathlib import Path

from taskdistill.cache import atomic_write_text
from taskdistill.errors import TaskDistillError
from taskdistill.study.executor import Event, run_local
from taskdistill.study.plan import Plan, plan
from taskdistill.study.spec import StudySpec, dump_spec, load_spec
from taskdistill.study.store import STORE_NAME, Store

SPEC_NAME = "spec.yaml"
LOCK_NAME = ".lock"
PACKAGES = ("taskdistill", "torch", "transformers", "peft", "lm_eval", "datasets", "numpy", "scipy")

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


def provenance(spec: StudySpec | None = None) -> dict:
    """Package versions and the machine; with ``spec`` (local executor) the resolved runtime too."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            versions[name] = None
    out = {"packages": versions, "machine": {"platform": platform.platform(), "python": platform.python_version(),
                                             "cpu_count": os.cpu_count(), "node": platform.node()}}
    if spec is not None:
        from taskdistill.models.runtime import resolve_runtime

        out["runtime"] = resolve_runtime(**spec.runtime.request()).describe()
    return out


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
    """Validate everything that can be checked before work starts (no store is written) and plan."""
    from taskdistill.data.load import source_fingerprint
    from taskdistill.models.load import check_model, reference_fingerprint
    from taskdistill.study.steps import check_sizes, load_source

    if folder.exists() and not folder.is_dir():
        raise TaskDistillError(f"study folder {folder} is a file, not a folder; give --dir a folder path")
    check_folder(spec, folder)
    check_model(spec.teacher)  # a broken local checkpoint is refused now, not by the first step that loads it
    task = spec.task.model_dump()
    dropped = None
    if not task["source"].startswith("hf:") and task["source"].lower() != "finheadlinemix":  # hub data: checked
        data = load_source(task, {})                                                     # when the data step loads it
        check_sizes(task, spec.subset_sizes(), data)
        dropped = data.meta.get("dropped_duplicates")
    p = plan(spec, {"teacher": reference_fingerprint(spec.teacher), "data": source_fingerprint(task["source"])})
    if dropped is not None:
        p.warnings.append(f"task.drop_duplicates: dropped {dropped} exact duplicate row(s) of {task['source']}")
    return p


def check_hardware(p: Plan, spec: StudySpec, executor: str) -> dict:
    """Before anything starts: the runtime this machine gives the local executor (one line if it cannot), the
    declared GPUs against the visible ones, and every step against the declared hardware (study/resources.py).
    Returns the Ray executor's per-step needs."""
    from taskdistill.study.resources import ray_needs

    if executor == "local":
        from taskdistill.models.runtime import resolve_runtime

        local = resolve_runtime(**spec.runtime.request())
        seen = local.visible_gpus()
        if spec.runtime.gpus > seen:
            raise TaskDistillError(f"runtime.gpus={spec.runtime.gpus} but this machine shows {seen} CUDA GPU(s); lower "
                                   "runtime.gpus (--gpus), or run on a Ray cluster with --executor ray")
        if spec.runtime.gpus:
            ray_needs(p, spec)  # refuses a step that cannot fit
        return {}
    return ray_needs(p, spec)


def run_study(spec: StudySpec, folder: str | Path, executor: str = "local", address: str | None = None,
              on_event: Event | None = None, num_cpus: int | None = None) -> dict:
    """Run (or continue) a study in ``folder``; returns a summary of step statuses."""
    from taskdistill.cache import check_writable

    folder = Path(folder)
    if executor not in ("local", "ray"):
        raise TaskDistillError(f"unknown executor {executor!r}; use local or ray")
    check_writable(folder, "study folder", folder=True, inside=True)
    p = prepare(spec, folder)  # everything is checked before the folder, its lock or its store exist
    needs = check_hardware(p, spec, executor)
    with StudyLock(folder):
        check_folder(spec, folder)  # again under the lock: another run may have started the folder meanwhile
        if on_event:
            on_event("plan", {"kind": "plan", "key": "", "label": "plan", "warnings": p.warnings})
        if not (folder / SPEC_NAME).is_file():  # first, so a folder with a store always has its spec copy
            atomic_write_text(folder / SPEC_NAME, dump_spec(spec))
        store = Store(folder / STORE_NAME)
        try:
            store.register(p, spec.model_dump(mode="json"), provenance(spec if executor == "local" else None))
            store.recover_interrupted(p.study)
            if executor == "local":
                run_local(p, spec, store, folder, on_event)
            elif executor == "ray":
                from taskdistill.study.ray_executor import run_ray

                run_ray(p, spec, store, folder, address=address, on_event=on_event, num_cpus=num_cpus, needs=needs)
            return summarize(store.steps(p.study))
        finally:
            store.close()


def saved_spec(folder: str | Path) -> StudySpec:
    """The spec copy a study folder keeps."""
    folder = Path(folder)
    if not (folder / SPEC_NAME).is_file():
        raise TaskDistillError(f"{folder} holds no {SPEC_NAME}; it is not a study folder (start one with `study run`)")
    return load_spec(folder / SPEC_NAME)


def resume_study(folder: str | Path, **kwargs) -> dict:
    """Finish the study in ``folder`` from its spec copy."""
    return run_study(saved_spec(folder), folder, **kwargs)


def summarize(steps: dict[str, dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in steps.values():
        out[row["status"]] = out.get(row["status"], 0) + 1
    return out
