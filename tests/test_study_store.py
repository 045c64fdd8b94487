"""The SQLite study store: atomic transitions, crash recovery, the observation contract, bad folders."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from test_study_spec import BASE, spec_with

from taskdistill.errors import TaskDistillError
from taskdistill.study.plan import plan
from taskdistill.study.run import StudyLock, check_folder, is_locked
from taskdistill.study.spec import parse_spec
from taskdistill.study.store import Store


@pytest.fixture
def planned(tmp_path):
    spec = parse_spec(spec_with(axes__supervision=["label"], axes__keep_fractions=[0.5]))
    p = plan(spec)
    store = Store(tmp_path / "study.sqlite")
    store.register(p, spec.model_dump(mode="json"), {"machine": {"cpu_count": 2}})
    yield spec, p, store
    store.close()


def test_wal_and_transitions(planned, tmp_path):
    spec, p, store = planned
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    key = next(iter(p.steps))
    assert store.claim(p.study, key) and not store.claim(p.study, key)  # only one worker gets a step
    with pytest.raises(RuntimeError, match="does not exist"):
        store.finish(p.study, key, str(tmp_path / "missing"), {}, [])
    assert store.steps(p.study)[key]["status"] == "running"  # nothing half-marked
    art = tmp_path / "artifact"
    art.mkdir()
    store.finish(p.study, key, str(art), {"x": 1}, [])
    row = store.steps(p.study)[key]
    assert row["status"] == "done" and row["result"] == {"x": 1} and row["attempts"] == 1
    with pytest.raises(RuntimeError, match="not running"):
        store.finish(p.study, key, str(art), {}, [])


def test_recover_interrupted(planned, tmp_path):
    spec, p, store = planned
    a, b, c = list(p.steps)[:3]
    for key in (a, b, c):
        store.claim(p.study, key)
    gone = tmp_path / "gone"
    gone.mkdir()
    store.finish(p.study, a, str(gone), {}, [{"metric": "m", "value": 0.5, "correct": 1, "n": 2, "chance": 0.1}])
    gone.rmdir()  # the artifact of a "done" step vanished
    kept = tmp_path / "kept"
    kept.mkdir()
    store.finish(p.study, b, str(kept), {}, [])
    assert store.recover_interrupted(p.study) == 2  # c was running (crash), a lost its artifact
    rows = store.steps(p.study)
    assert rows[a]["status"] == "pending" and rows[b]["status"] == "done" and rows[c]["status"] == "pending"
    assert store._metrics(p.study) == {}


def _finish_eval(store, p, key, tmp_path, metrics, extra=None):
    art = tmp_path / key
    art.mkdir(exist_ok=True)
    assert store.claim(p.study, key)
    store.finish(p.study, key, str(art), {"params": 100, "latency_ms": 2.5, "nll": 1.0, "brier": 0.5, **(extra or {})},
                 metrics)


def test_observations_contract(planned, tmp_path):
    spec, p, store = planned
    teacher = [{"metric": "task_accuracy", "value": 0.8, "correct": 40, "n": 50, "chance": 0.1},
               {"metric": "gk_aggregate", "value": 0.6, "correct": 24, "n": 40, "chance": 0.25}]
    _finish_eval(store, p, p.teacher_eval, tmp_path, teacher)
    student = next(r for r in p.runs if r.stage == "recovered" and r.dataset_size == 40)
    _finish_eval(store, p, student.eval_key, tmp_path,
                 [{"metric": "task_accuracy", "value": 0.5, "correct": 25, "n": 50, "chance": 0.1}])
    rows = store.observations()
    keys = {"metric", "supervision", "method", "schedule", "keep_fraction", "dataset_size", "seed", "correct", "n",
            "value", "chance", "reference", "params", "latency_ms", "branch", "effective_dataset_size", "stage",
            "view", "stderr", "reference_correct", "reference_n", "reference_stderr"}
    assert all(set(r) == keys for r in rows)
    assert len(rows) == 3  # 2 teacher metrics + 1 student metric; unevaluated runs give no rows
    st = next(r for r in rows if r["keep_fraction"] == 0.5)
    assert st == {"metric": "task_accuracy", "supervision": "label", "method": "logit", "schedule": "iterative",
                  "keep_fraction": 0.5, "dataset_size": 40, "seed": 0, "correct": 25, "n": 50, "value": 0.5,
                  "chance": 0.1, "reference": 0.8, "params": 100, "latency_ms": 2.5, "branch": student.branch,
                  "effective_dataset_size": 40, "stage": "recovered", "view": "answer", "stderr": None,
                  "reference_correct": 40, "reference_n": 50, "reference_stderr": None}
    te = [r for r in rows if r["keep_fraction"] == 1.0]
    assert {r["metric"]: r["reference"] for r in te} == {"task_accuracy": 0.8, "gk_aggregate": 0.6}
    runs = store.runs()
    assert len(runs) == len(p.runs)
    done = next(r for r in runs if r["eval_key"] == student.eval_key)
    assert done["task_accuracy"] == 0.5 and done["status"] == "done" and done["nll"] == 1.0
    assert done["step_key"] == student.eval_key and done["parent_key"] == student.parent_key
    prov = store.provenance()
    assert prov["spec_hash"] == spec.spec_hash() and prov["machine"] == {"cpu_count": 2}


def test_different_spec_is_refused_and_store_untouched(planned, tmp_path):
    spec, p, store = planned
    before = (tmp_path / "study.sqlite").read_bytes()
    other = parse_spec(spec_with(training__lr=0.5))
    with pytest.raises(TaskDistillError, match="belongs to study 't' with a different spec"):
        check_folder(other, tmp_path)
    with pytest.raises(TaskDistillError, match="different spec"):
        store.register(plan(other), other.model_dump(mode="json"), {})
    assert (tmp_path / "study.sqlite").read_bytes() == before
    check_folder(spec, tmp_path)  # the same spec is fine


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\x07" * 4000])
def test_corrupt_store_is_one_line_and_untouched(tmp_path, content):
    path = tmp_path / "study.sqlite"
    path.write_bytes(content)
    with pytest.raises(TaskDistillError, match="not a readable study store") as info:
        Store(path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == content
    with pytest.raises(TaskDistillError, match="not a readable study store"):
        check_folder(parse_spec(BASE), tmp_path)
    assert path.read_bytes() == content


def test_folder_locked_by_live_process(tmp_path):
    code = ("import sys, time; from taskdistill.study.run import StudyLock\n"
            "with StudyLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        assert is_locked(tmp_path)
        with pytest.raises(TaskDistillError, match=f"in use by another live process \\(pid {child.pid}\\)"):
            with StudyLock(tmp_path):
                pass
    finally:
        child.kill()
        child.wait()
    deadline = time.time() + 10
    while is_locked(tmp_path) and time.time() < deadline:
        time.sleep(0.05)
    with StudyLock(tmp_path):  # a SIGKILLed holder releases the lock
        assert is_locked(tmp_path)  # now held by this process
