"""Ray executor: independent ready steps run in parallel as Ray tasks; the driver alone writes the store.

Workers run :func:`taskdistill.study.steps.execute` and write artifacts into the study folder, which
must be visible to every node (one machine, or a shared filesystem on a cluster). ``ray`` is an
optional extra (``pip install taskdistill[ray]``) and imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path

from taskdistill.errors import TaskDistillError
from taskdistill.study.executor import Event, dep_rows, ready
from taskdistill.study.plan import Plan
from taskdistill.study.spec import StudySpec
from taskdistill.study.store import Store

ENV_VARS = ("TASKDISTILL_HOME", "TASKDISTILL_DATA_DIR", "TASKDISTILL_BENCHMARKS_DIR", "HF_HUB_OFFLINE")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise TaskDistillError("the ray executor needs Ray: pip install 'taskdistill[ray]' "
                               "(or use --executor local)") from None
    return ray


def _task(step: dict, deps: list[dict], folder: str, threads: int):
    import torch

    from taskdistill.study.steps import execute

    torch.set_num_threads(threads)
    return execute(step, deps, folder)


def run_ray(p: Plan, spec: StudySpec, store: Store, folder: Path, address: str | None = None,
            on_event: Event | None = None, num_cpus: int | None = None, cpus_per_step: int = 1) -> None:
    """Run the plan's pending steps on Ray: a local instance (started and stopped here) or ``address``."""
    ray = _import_ray()
    env = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"runtime_env": {"env_vars": env}, "include_dashboard": False, "log_to_driver": False}
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=num_cpus or os.cpu_count(), **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise TaskDistillError(f"could not reach a Ray cluster at {address or 'a new local instance'} "
                                   f"({exc}); check --address or use --executor local") from None
    remote = ray.remote(num_cpus=cpus_per_step, max_retries=0)(_task)
    running: dict = {}  # object ref → step
    try:
        while True:
            rows = store.steps(p.study)
            for step in ready(p, spec, store, rows, on_event):
                if step.key in {s.key for s in running.values()} or not store.claim(p.study, step.key):
                    continue
                if on_event:
                    on_event("start", rows[step.key])
                ref = remote.remote({"key": step.key, "kind": step.kind, "inputs": step.inputs},
                                    dep_rows(step, rows), str(folder), cpus_per_step)
                running[ref] = step
            if not running:
                return
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                step = running.pop(ref)
                try:
                    artifact, result, metrics = ray.get(ref)
                except Exception as exc:
                    cause = getattr(exc, "cause", None) or exc
                    store.fail(p.study, step.key, f"{type(cause).__name__}: {cause}")
                    if on_event:
                        on_event("fail", store.steps(p.study)[step.key])
                    if isinstance(cause, TaskDistillError):
                        raise cause from None
                    raise
                store.finish(p.study, step.key, artifact, result, metrics)
                if on_event:
                    on_event("done", store.steps(p.study)[step.key])
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
