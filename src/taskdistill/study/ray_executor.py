"""Ray executor: independent ready steps run in parallel as Ray tasks; the driver alone writes the store.

Workers run :func:`taskdistill.study.steps.execute` and write artifacts into the study folder, which
must be visible to every node (one machine, or a shared filesystem on a cluster). ``ray`` is an
optional extra (``pip install taskdistill[ray]``) and imported only here.

Every step asks Ray for what it needs (study/resources.py): its GPUs (the fewest whose memory holds its
peak) and its host memory, so no step starts without them and ready recoveries wait for free GPUs instead
of all starting at once. Ray shows each task only its own GPUs (``CUDA_VISIBLE_DEVICES``; a task without
GPUs sees none); a recovery given N GPUs trains in N processes.
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
# a task that asked for no GPU sees none (Ray ≥ 2.4x leaves CUDA_VISIBLE_DEVICES alone for it otherwise)
WORKER_ENV = {"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise TaskDistillError("the ray executor needs Ray: pip install 'taskdistill[ray]' "
                               "(or use --executor local)") from None
    return ray


def _task(step: dict, deps: list[dict], folder: str, threads: int, runtime: dict):
    import torch

    from taskdistill.study.steps import execute

    torch.set_num_threads(threads)
    return execute(step, deps, folder, runtime)


def options(need: dict | None, cpus_per_step: int) -> dict:
    """Ray task options of one step: its CPUs, GPUs and host memory (bytes)."""
    out = {"num_cpus": cpus_per_step}
    if need:
        out["num_gpus"] = need["gpus"]
        if need.get("host_bytes"):
            out["memory"] = int(need["host_bytes"])
    return out


def check_cluster(needs: dict, cluster: dict, spec: StudySpec, labels: dict) -> None:
    """One line when a step needs more GPUs or host memory than the whole cluster has (it would wait forever)."""
    gpus, memory = cluster.get("GPU", 0), cluster.get("memory", float("inf"))
    if spec.runtime.device.startswith("cuda") and not gpus:
        raise TaskDistillError(f"runtime.device is {spec.runtime.device!r} but the Ray cluster has no GPU; use "
                               "--device auto or cpu, or a cluster with GPUs")
    for key, need in needs.items():
        if need["gpus"] > gpus:
            raise TaskDistillError(f"step '{labels[key]}' needs {need['gpus']} GPU(s) but the Ray cluster has "
                                   f"{gpus:g}; add GPUs to the cluster or lower runtime.gpus")
        if need.get("host_bytes", 0) > memory:
            raise TaskDistillError(f"step '{labels[key]}' needs {need['host_bytes'] / 2**30:.1f} GiB of host memory "
                                   f"but the Ray cluster offers {memory / 2**30:.1f} GiB; add memory or lower "
                                   "evaluation/training batch sizes")


def run_ray(p: Plan, spec: StudySpec, store: Store, folder: Path, address: str | None = None,
            on_event: Event | None = None, num_cpus: int | None = None, cpus_per_step: int = 1,
            needs: dict | None = None, task=None) -> None:
    """Run the plan's pending steps on Ray: a local instance (started and stopped here; logical GPUs =
    ``runtime.gpus``) or ``address``. ``needs``: step key → {"gpus", "host_bytes"} (study/resources.py:
    ray_needs); ``task``: the remote function (default: run the step)."""
    ray = _import_ray()
    env = {k: os.environ[k] for k in ENV_VARS if k in os.environ} | WORKER_ENV
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"runtime_env": {"env_vars": env}, "include_dashboard": False, "log_to_driver": False}
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                gpus = {"num_gpus": spec.runtime.gpus} if spec.runtime.gpus else {}
                ray.init(num_cpus=num_cpus or os.cpu_count(), **gpus, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise TaskDistillError(f"could not reach a Ray cluster at {address or 'a new local instance'} "
                                   f"({exc}); check --address or use --executor local") from None
    needs = needs or {}
    runtime = spec.runtime.model_dump(mode="json")
    remote = ray.remote(max_retries=0)(task or _task)
    running: dict = {}  # object ref → step
    try:
        check_cluster(needs, ray.cluster_resources(), spec, {k: s.label for k, s in p.steps.items()})
        while True:
            rows = store.steps(p.study)
            for step in ready(p, spec, store, rows, on_event):
                if step.key in {s.key for s in running.values()} or not store.claim(p.study, step.key):
                    continue
                if on_event:
                    on_event("start", rows[step.key])
                ref = remote.options(**options(needs.get(step.key), cpus_per_step)).remote(
                    {"key": step.key, "kind": step.kind, "inputs": step.inputs}, dep_rows(step, rows), str(folder),
                    cpus_per_step, runtime)
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
