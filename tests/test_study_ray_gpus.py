"""The Ray executor's GPU schedule on a local Ray instance with two *logical* GPUs (no real GPU needed):
every step asks for the GPUs its estimate needs, two 1-GPU recoveries run side by side while a third waits,
and each task sees only its own GPU (CUDA_VISIBLE_DEVICES); a task without a GPU sees none."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from test_study_run import tiny_spec, tiny_teacher

from taskdistill.errors import TaskDistillError
from taskdistill.study.run import run_study
from taskdistill.study.spec import parse_spec

ray = pytest.importorskip("ray")
HOLD = 1.5  # seconds a recovery holds its GPU


def probe(step, deps, folder, threads, runtime):
    """Stands in for a step on the worker: records what Ray gave it, holds recoveries a while."""
    import os

    import ray as worker_ray

    start = time.time()
    if step["kind"] == "recover":
        time.sleep(HOLD)
    out = Path(folder) / "artifacts" / step["kind"] / step["key"]
    out.mkdir(parents=True, exist_ok=True)
    seen = {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "gpu_ids": [str(g) for g in worker_ray.get_gpu_ids()],
            "start": start, "end": time.time(), "runtime": runtime}
    return (None if step["kind"] == "teacher" else str(out)), seen, []


def gpu_spec(tmp_path, **runtime):
    spec = tiny_spec(tiny_teacher(tmp_path))
    spec["axes"] = dict(spec["axes"], dataset_sizes=[8, 12, 16], keep_fractions=[0.7])  # 3 recoveries after 1 prune
    spec["evaluation"] = dict(spec["evaluation"], after_prune=False)
    spec["runtime"] = {"gpus": 2, "gpu_memory": "4GB", **runtime}
    return parse_spec(spec)


def test_logical_gpus_limit_concurrency_and_each_task_sees_only_its_gpu(tmp_path, monkeypatch):
    from taskdistill.study import ray_executor
    from taskdistill.study.store import STORE_NAME, Store

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(ray_executor, "_task", probe)
    summary = run_study(gpu_spec(tmp_path), tmp_path / "s", executor="ray", num_cpus=8)
    assert not ray.is_initialized()
    store = Store(tmp_path / "s" / STORE_NAME)
    rows = store.steps("tiny")
    store.close()
    assert summary == {"done": len(rows)}
    seen = {r["kind"]: [] for r in rows.values()}
    for r in rows.values():
        seen[r["kind"]].append(r["result"])
    for kind in ("data", "teacher"):  # no GPU asked for: none visible
        assert all(s["visible"] == "" and s["gpu_ids"] == [] for s in seen[kind])
    for kind in ("prune", "recover", "evaluate"):  # one GPU each, and only that one
        assert all(s["gpu_ids"] == [s["visible"]] and s["visible"] in ("0", "1") for s in seen[kind]), seen[kind]
    assert all(s["runtime"]["gpus"] == 2 for s in seen["recover"])  # the spec's runtime reached the worker
    recover = sorted(seen["recover"], key=lambda s: s["start"])
    assert len(recover) == 3
    first, second, third = recover
    assert second["start"] < first["end"]  # two recoveries held a GPU each at the same time …
    assert {first["visible"], second["visible"]} == {"0", "1"}  # … on different GPUs
    assert third["start"] >= min(first["end"], second["end"]) - 0.05  # … and the third waited for one


def test_a_step_larger_than_the_cluster_is_refused_before_it_starts(tmp_path):
    from taskdistill.study import ray_executor

    spec = gpu_spec(tmp_path)
    needs = {"k": {"gpus": 3, "host_bytes": 0}}
    with pytest.raises(TaskDistillError, match="needs 3 GPU\\(s\\) but the Ray cluster has 2"):
        ray_executor.check_cluster(needs, {"GPU": 2.0, "memory": 1e12}, spec, {"k": "recover κ=0.7"})
    with pytest.raises(TaskDistillError, match="has no GPU"):
        ray_executor.check_cluster({}, {"CPU": 2.0}, gpu_spec(tmp_path, device="cuda"), {})
    with pytest.raises(TaskDistillError, match="GiB of host memory"):
        ray_executor.check_cluster({"k": {"gpus": 0, "host_bytes": 2**40}}, {"memory": 2**30}, spec, {"k": "x"})
    assert ray_executor.options({"gpus": 1, "host_bytes": 2**30}, 1) == {"num_cpus": 1, "num_gpus": 1,
                                                                         "memory": 2**30}
