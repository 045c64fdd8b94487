"""Crash-safe resume: SIGKILL a tiny study at random moments, `study resume` it, compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import yaml
from test_study_run import TASKDISTILL, metrics, step_rows, tiny_spec, tiny_teacher

from taskdistill.study.run import run_study
from taskdistill.study.spec import parse_spec
from taskdistill.study.store import STORE_NAME


def small_spec(teacher: Path) -> dict:
    """One branch, an iterative chain teacher → κ=0.7 → κ=0.45, each pruned model evaluated before recovery: 11 steps."""
    spec = tiny_spec(teacher)
    spec["axes"] = dict(spec["axes"], dataset_sizes=[8])
    spec["training"] = dict(spec["training"], max_steps=1)
    spec["evaluation"] = dict(spec["evaluation"], test_limit=8)
    spec["knowledge"] = dict(spec["knowledge"], limit=4)
    return spec


def _cli(args, env):
    return subprocess.Popen([*TASKDISTILL, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _done(folder: Path) -> int:
    try:
        return sum(1 for r in step_rows(folder).values() if r["status"] == "done")
    except sqlite3.Error:  # the store does not exist yet
        return 0


def test_sigkill_at_random_moments_then_resume(tmp_path, monkeypatch):
    spec = small_spec(tiny_teacher(tmp_path))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home-ref"))
    run_study(parse_spec(spec), tmp_path / "ref")  # the uninterrupted run
    total = len(step_rows(tmp_path / "ref"))

    folder = tmp_path / "killed"
    env = dict(os.environ, TASKDISTILL_HOME=str(tmp_path / "home"))  # no evaluation cache shared with ref
    rng = random.Random(7)
    kills = 0
    for attempt in range(8):
        args = ["study", "resume", str(folder)] if (folder / "spec.yaml").exists() else \
            ["study", "run", str(tmp_path / "spec.yaml"), "--dir", str(folder)]
        before = {k: (r["finished"], r["attempts"]) for k, r in step_rows(folder).items()
                  if r["status"] == "done"} if (folder / STORE_NAME).exists() else {}
        proc = _cli(args, env)
        if kills < 3:  # let 0–2 more steps finish, then kill at a random moment of the next one
            target = min(total - 1, len(before) + rng.randint(0, 2))
            while proc.poll() is None and _done(folder) < target:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.5))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read()
        rows = step_rows(folder)
        for key, stamp in before.items():  # no finished step was redone
            assert (rows[key]["finished"], rows[key]["attempts"]) == stamp
        for r in rows.values():  # no step is marked done without its artifact
            if r["status"] == "done" and r["kind"] != "teacher":
                assert Path(r["artifact"]).is_dir()
        if proc.returncode == 0:
            break
    assert kills == 3
    assert all(r["status"] == "done" for r in step_rows(folder).values())
    assert len(metrics(folder)) == 5 * 4  # the teacher, 2 pruned and 2 recovered students × 4 metrics
    assert metrics(folder) == metrics(tmp_path / "ref")  # identical final metrics


def test_sigkill_mid_recovery_resumes_from_its_checkpoint(tmp_path, monkeypatch, one_thread):
    """A recovery checkpoints into STUDY/work/recover/<key>; killed there, `study resume` continues mid-training
    (resumed_from > 0 in the stored train report) and ends with the uninterrupted run's weights and metrics."""
    import multiprocessing

    from safetensors.torch import load_file

    from taskdistill.study.run import resume_study

    spec = small_spec(tiny_teacher(tmp_path))
    spec["axes"] = dict(spec["axes"], keep_fractions=[0.7])
    spec["training"] = dict(spec["training"], max_steps=10, bf16=False)  # 10 checkpoints by default: every step
    spec["evaluation"] = dict(spec["evaluation"], after_prune=False)
    parsed = parse_spec(spec)
    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home-ref"))
    run_study(parsed, tmp_path / "ref")

    folder = tmp_path / "killed"
    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home"))  # no evaluation cache shared with ref
    child = multiprocessing.get_context("fork").Process(target=run_study, args=(parsed, folder))
    child.start()
    deadline = time.time() + 120
    while child.is_alive() and time.time() < deadline and not list(folder.glob("work/recover/*/checkpoint/state.json")):
        time.sleep(0.002)
    assert child.is_alive(), "the study ended before its recovery wrote a checkpoint"
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    [state] = list(folder.glob("work/recover/*/checkpoint/state.json"))
    assert 0 < json.loads(state.read_text())["step"] < 10
    resume_study(folder)
    rows = step_rows(folder)
    [recover] = [r for r in rows.values() if r["kind"] == "recover"]
    train = json.loads(recover["result"])["train"]
    assert train["resumed_from"] > 0 and train["steps"] == 10 and len(train["history"]) == 10
    assert recover["attempts"] == 2 and not state.parent.exists()  # the finished run removed its checkpoint
    ref = step_rows(tmp_path / "ref")[recover["key"]]
    mine = load_file(Path(recover["artifact"]) / "model.safetensors")
    theirs = load_file(Path(ref["artifact"]) / "model.safetensors")
    assert all(mine[k].equal(theirs[k]) for k in theirs)
    assert metrics(folder) == metrics(tmp_path / "ref")
