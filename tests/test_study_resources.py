"""Sizing a study for its hardware: the memory estimator against measured peaks, the presets on their GPUs,
refusals in one line, and what the runtime block does to the spec hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from taskdistill.cli import app
from taskdistill.errors import TaskDistillError
from taskdistill.study.plan import plan
from taskdistill.study.resources import (
    Shape,
    estimate_plan,
    prune_bytes,
    pruned_shape,
    scoring_bytes,
    training_bytes,
    wall_seconds,
)
from taskdistill.study.spec import load_spec, parse_bytes, parse_spec

TESTS = Path(__file__).parent
CONFIGS = TESTS.parent / "configs"
GiB = 2**30


def test_memory_estimates_match_measured_peaks():
    """Resident-set rise of a fresh process loading a small random Llama and pruning / training / scoring it,
    against the estimator's formulas for the same shapes (measured: every estimate 8–15 % above)."""
    from memory_probe import BATCH, config

    sizes = [(512, 6, 1536), (384, 4, 1024)]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    proc = subprocess.run([sys.executable, str(TESTS / "memory_probe.py"), *map(str, sum(sizes, ()))], env=env,
                          capture_output=True, text=True, cwd=TESTS, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    measured = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if measured[0]["train"] is None:
        pytest.skip("needs Linux /proc/self/clear_refs to reset the resident-set high-water mark")
    for (h, layers, i), m in zip(sizes, measured, strict=True):
        cfg = config(h, layers, i)
        shape = Shape.of(cfg)
        estimate = {
            "prune": prune_bytes(shape, pruned_shape(cfg, 0.5, "width"), weight_bytes=4, batch=BATCH,
                                 tokens=m["calib_tokens"]),
            "train": training_bytes(shape, method="logit", frozen_bytes=4, act_bytes=4, batch=BATCH,
                                    tokens=m["train_tokens"], supervised=BATCH * 8, logit_chunk=1024),
            "evaluate": scoring_bytes(shape, weight_bytes=4, batch=BATCH, context=m["eval_tokens"],
                                      block=m["label_block"]),
        }
        for case, parts in estimate.items():
            ratio = sum(parts.values()) / m[case]
            assert 0.7 <= ratio <= 1.3, (h, case, round(ratio, 3), parts, m[case])


def test_presets_plan_for_their_gpus():
    for name, gpus, hours in (("paper", 8, None), ("gpu-1x", 1, (1.5, 3.0))):
        spec = load_spec(CONFIGS / f"{name}.yaml")
        if name == "paper":
            spec = spec.with_runtime(gpus=8, gpu_memory="80GB")
        assert spec.runtime.gpus == gpus
        p = plan(spec)
        est = estimate_plan(p, spec)
        assert set(est) == set(p.steps) and all(e.gpus <= gpus for e in est.values())
        assert all(e.peak_bytes <= 0.9 * 80 * GiB for e in est.values())
        wall = wall_seconds(est, p, gpus) / 3600
        if hours:
            assert hours[0] <= wall <= hours[1]  # "a full study in about two hours"
        else:  # the 32B teacher: its full-parameter recoveries shard over GPUs, its inference spreads
            assert {"fsdp2", "device map"} <= {e.strategy for e in est.values()}
            full = [e for e in est.values() if e.kind == "recover" and "/logit" in e.label]
            assert all(e.strategy == "fsdp2" for e in full)


def test_cli_plans_and_refuses_too_small_gpus_in_one_line():
    runner = CliRunner()
    ok = runner.invoke(app, ["study", "plan", str(CONFIGS / "gpu-1x.yaml")], env={"COLUMNS": "200"})
    assert ok.exit_code == 0, ok.output
    assert "resources: peak per GPU (1 × 80.0 GiB)" in ok.output and "estimated wall time on 1 GPU(s)" in ok.output
    ok = runner.invoke(app, ["study", "plan", str(CONFIGS / "paper.yaml"), "--gpus", "8", "--gpu-memory", "80GB"])
    assert ok.exit_code == 0, ok.output
    for args, step in (([str(CONFIGS / "gpu-1x.yaml"), "--gpu-memory", "16GB"], "teacher correction"),
                       ([str(CONFIGS / "paper.yaml"), "--gpus", "1", "--gpu-memory", "80GB"], "")):
        bad = runner.invoke(app, ["study", "plan", *args])
        assert bad.exit_code == 2, bad.output
        line = bad.output.strip()
        assert len(line.splitlines()) == 1 and f"step '{step}" in line and "per GPU" in line
        assert "raise runtime.gpus or runtime.gpu_memory" in line
    bad = runner.invoke(app, ["study", "plan", str(CONFIGS / "paper.yaml"), "--gpus", "2"])
    assert bad.exit_code == 2 and "needs gpu_memory" in bad.output


def test_run_refuses_hardware_it_does_not_have_before_writing(tmp_path):
    from test_study_run import tiny_spec, tiny_teacher

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(tiny_spec(tiny_teacher(tmp_path))))
    runner = CliRunner()
    for args, message in ((["--device", "cuda"], "no CUDA GPU is visible"),
                          (["--gpus", "1", "--gpu-memory", "80GB"], "runtime.gpus=1 but this machine shows 0"),
                          (["--dtype", "float16"], "float16 kernels are missing")):
        result = runner.invoke(app, ["study", "run", str(tmp_path / "spec.yaml"), "--dir", str(tmp_path / "s"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "s" / "study.sqlite").exists()  # nothing started


def test_runtime_block_and_the_spec_hash():
    from test_study_spec import spec_with

    base = spec_with()
    plain = parse_spec(base)
    assert plain.spec_hash() == parse_spec(dict(base, runtime={})).spec_hash()
    moved = parse_spec(dict(base, runtime={"device": "cuda:1", "gpus": 4, "gpu_memory": "80GB"}))
    assert moved.spec_hash() == plain.spec_hash()  # placement does not change results
    assert parse_spec(dict(base, runtime={"dtype": "bfloat16"})).spec_hash() != plain.spec_hash()
    assert moved.runtime.gpu_bytes == 80 * GiB and parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("1.5TB") == int(1.5 * 2**40) and parse_bytes(123) == 123
    for runtime, message in (({"dtype": "bf16"}, "Did you mean 'bfloat16'"),
                             ({"gpu_memory": "lots"}, "not a memory size"),
                             ({"gpus": 2}, "needs gpu_memory"),
                             ({"device": "cpu", "gpus": 2, "gpu_memory": "80GB"}, "set runtime.device"),
                             ({"parallel": "fsdp"}, "Did you mean 'fsdp2'")):
        with pytest.raises(TaskDistillError, match=message):
            parse_spec(dict(base, runtime=runtime))


def test_a_recovery_given_two_devices_trains_in_two_processes(tmp_path, monkeypatch, one_thread):
    """The study's multi-process path on the CPU (gloo): the KL teacher's cache is built once in the step's
    process, two ranks train the student (DDP) and the first saves it; the result equals one process's."""
    from safetensors.torch import load_file
    from test_study_run import tiny_spec, tiny_teacher

    from taskdistill.study import steps
    from taskdistill.study.run import run_study

    spec = tiny_spec(tiny_teacher(tmp_path))
    spec["axes"] = dict(spec["axes"], dataset_sizes=[8], keep_fractions=[0.7], supervision=["kl"])
    spec["training"] = dict(spec["training"], max_steps=2, bf16=False)
    spec["evaluation"] = dict(spec["evaluation"], after_prune=False, test_limit=8)
    spec["knowledge"] = dict(spec["knowledge"], limit=4)
    parsed = parse_spec(spec)
    run_study(parsed, tmp_path / "one")
    monkeypatch.setattr(steps.Context, "training_processes", lambda self: 2)
    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home-two"))
    run_study(parsed, tmp_path / "two")
    from test_study_run import step_rows

    [one] = [r for r in step_rows(tmp_path / "one").values() if r["kind"] == "recover"]
    [two] = [r for r in step_rows(tmp_path / "two").values() if r["kind"] == "recover"]
    assert json.loads(two["result"])["train"]["processes"] == 2
    assert json.loads(two["result"])["train"]["strategy"] == "ddp"
    a = load_file(Path(one["artifact"]) / "model.safetensors")
    b = load_file(Path(two["artifact"]) / "model.safetensors")
    assert all((a[k] - b[k]).abs().max() < 5e-5 for k in a)
