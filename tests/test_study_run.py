"""A tiny-model study end to end: local run, crash-safe resume under SIGKILL, early stop, CLI errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from taskdistill.errors import TaskDistillError
from taskdistill.report import build_report
from taskdistill.study.run import resume_study, run_study
from taskdistill.study.spec import parse_spec
from taskdistill.study.store import STORE_NAME, Store

TASKDISTILL = [sys.executable, "-c", "from taskdistill.cli import main; main()"]


def tiny_teacher(folder: Path) -> Path:
    from tiny import tiny_model, tiny_tokenizer

    from taskdistill.models.load import save_model

    return save_model(tiny_model("llama", seed=0), tiny_tokenizer(), folder / "teacher")


FACTS = [("What is the capital of France?", ["Paris", "Rome", "Madrid", "Berlin"], 0),
         ("At sea level water boils at how many degrees Celsius?", ["50", "100", "150", "200"], 1),
         ("Which planet is closest to the sun?", ["Venus", "Earth", "Mercury", "Mars"], 2),
         ("How many legs does a spider have?", ["six", "four", "ten", "eight"], 3),
         ("Which gas do plants take in for photosynthesis?", ["carbon dioxide", "helium", "neon", "argon"], 0),
         ("What is two plus two?", ["three", "four", "five", "six"], 1),
         ("Which ocean is the largest?", ["Atlantic", "Indian", "Pacific", "Arctic"], 2),
         ("What colour is a clear daytime sky?", ["green", "red", "yellow", "blue"], 3)]


def tiny_benchmark(folder: Path) -> Path:
    path = folder / "facts.jsonl"
    path.write_text("".join(json.dumps({"question": q, "choices": c, "answer": a}) + "\n" for q, c, a in FACTS))
    return path


def tiny_spec(teacher: Path, **extra) -> dict:
    spec = {
        "name": "tiny",
        "teacher": str(teacher),
        "task": {"source": "synthetic:n=140,seed=0,granularity=coarse", "test_size": 40, "calibration_size": 8},
        "knowledge": {"benchmarks": [f"jsonl:{tiny_benchmark(teacher.parent)}"], "limit": 8},
        "axes": {"dataset_sizes": [12, 24], "keep_fractions": [0.7, 0.45], "supervision": ["label"],
                 "method": ["logit"], "seeds": [0]},
        "prune": {"axes": "width"},
        "training": {"max_steps": 2, "batch_size": 4, "max_length": 448, "lr": 0.001},
        "evaluation": {"test_limit": 16, "batch_size": 8, "cost": False},
        "report": False,
    }
    spec.update(extra)
    return spec


def metrics(folder: Path) -> dict:
    db = sqlite3.connect(folder / STORE_NAME)
    rows = db.execute("SELECT eval_key, metric, value, correct, n FROM metrics").fetchall()
    db.close()
    return {(k, m): (v, c, n) for k, m, v, c, n in rows}


def step_rows(folder: Path) -> dict:
    db = sqlite3.connect(folder / STORE_NAME)
    db.row_factory = sqlite3.Row
    rows = {r["key"]: dict(r) for r in db.execute("SELECT * FROM steps")}
    db.close()
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run of the tiny study (in process)."""
    root = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TASKDISTILL_HOME", str(root / "home"))
        spec = tiny_spec(tiny_teacher(root), report=True)  # ends with the laws and the report
        (root / "spec.yaml").write_text(yaml.safe_dump(spec))
        events = []
        summary = run_study(parse_spec(spec), root / "ref",
                            on_event=lambda what, row: events.append((what, row["kind"])))
        build_report(root / "ref")  # what `study run` does next when the spec asks for the report
    return root, spec, summary, events


def test_uninterrupted_run(reference):
    root, spec, summary, events = reference
    folder = root / "ref"
    rows = step_rows(folder)
    assert summary == {"done": len(rows)}
    assert all(r["attempts"] == 1 for r in rows.values())
    assert events[-1] == ("done", "evaluate")
    results = json.loads((folder / "results.json").read_text())
    assert (folder / "report.html").is_file() and (folder / "report.md").is_file() and results
    for r in rows.values():  # every finished step but the teacher's has its artifact
        assert r["kind"] == "teacher" or Path(r["artifact"]).is_dir()
    store = Store(folder / STORE_NAME)
    obs = store.observations()
    runs = store.runs()
    store.close()
    # 4 students, each also evaluated right after its prune (before recovery), + the teacher; each with
    # accuracy, macro-F1, the facts benchmark and the aggregate
    assert len(runs) == 9 and len(obs) == 9 * 4
    assert sorted(r["stage"] for r in runs) == ["pruned"] * 4 + ["recovered"] * 4 + ["teacher"]
    assert {r["metric"] for r in obs} == {"task_accuracy", "task_macro_f1", "gk_facts", "gk_aggregate"}
    for r in obs:
        assert r["n"] == (16 if r["metric"].startswith("task_") else 8)
        if r["correct"] is not None:
            assert r["value"] == pytest.approx(r["correct"] / r["n"])
        assert r["reference"] is not None
    # GK after every prune → recover step: each iterative student has its own probe result
    probe = [r for r in obs if r["metric"] == "gk_facts" and r["stage"] == "recovered"]
    assert sorted((r["dataset_size"], r["keep_fraction"]) for r in probe) == [(12, 0.45), (12, 0.7), (24, 0.45),
                                                                              (24, 0.7)]
    assert all(r["effective_dataset_size"] == r["dataset_size"] for r in probe)  # label runs use every example
    pruned = [r for r in obs if r["metric"] == "gk_facts" and r["stage"] == "pruned"]
    assert sorted(r["keep_fraction"] for r in pruned) == [0.45, 0.45, 0.7, 0.7]
    assert all(r["dataset_size"] == 0 == r["effective_dataset_size"] for r in pruned)
    assert len({r["branch"] for r in probe}) == 2  # one chain per dataset size
    student = next(r for r in runs if r["keep_fraction"] == 0.45 and r["dataset_size"] == 24)
    parent = next(r for r in runs if r["keep_fraction"] == 0.7 and r["dataset_size"] == 24)
    assert student["parent_key"] == parent["model_key"] and student["step_index"] == 2
    assert student["params"] < parent["params"] < next(r for r in runs if r["is_teacher"])["params"]
    # running it again does nothing: every step is cached
    again = run_study(parse_spec(spec), folder)
    assert again == summary and all(r["attempts"] == 1 for r in step_rows(folder).values())


def test_resume_needs_a_study_folder(tmp_path):
    with pytest.raises(TaskDistillError, match="not a study folder"):
        resume_study(tmp_path)


def test_early_stop_skips_the_rest_of_a_branch(tmp_path):
    from test_study_spec import spec_with

    from taskdistill.study.plan import plan
    from taskdistill.study.executor import ready

    spec = parse_spec(spec_with(axes__supervision=["label"], axes__dataset_sizes=[20],
                                axes__keep_fractions=[0.8, 0.6, 0.4], early_stop={"min_gk_retention": 0.5}))
    p = plan(spec)
    store = Store(tmp_path / STORE_NAME)
    store.register(p, spec.model_dump(mode="json"), {})
    art = tmp_path / "a"
    art.mkdir()
    gk = {p.teacher_eval: 0.65}  # teacher: q = 1 by definition
    evals = [r.eval_key for r in sorted(p.runs, key=lambda r: r.keep_fraction, reverse=True) if r.stage == "recovered"]
    gk[evals[0]] = 0.55  # κ=0.8: q = (0.55 − 0.25)/(0.65 − 0.25) = 0.75 ≥ 0.5 → continue
    gk[evals[1]] = 0.40  # κ=0.6: q = 0.375 < 0.5 → the κ=0.4 prune and everything after it is skipped
    events = []
    while True:
        todo = ready(p, spec, store, store.steps(p.study), lambda what, row: events.append((what, row["key"])))
        if not todo:
            break
        step = todo[0]
        assert store.claim(p.study, step.key)
        rows = [{"metric": "gk_aggregate", "value": gk.get(step.key, 0.3), "correct": None, "n": 100,
                 "chance": 0.25}] if step.kind == "evaluate" else []  # pruned models: no gate
        store.finish(p.study, step.key, str(art), {}, rows)
    rows = store.steps(p.study)
    skipped = {k for k, r in rows.items() if r["status"] == "skipped"}
    last = next(s for s in p.steps.values() if s.kind == "prune" and s.inputs["keep_fraction"] == 0.4)
    assert skipped == {last.key} | p.descendants(last.key) and len(skipped) == 4  # + its pre-recovery evaluation
    assert "early stop: GK retention 0.375 < 0.5" in rows[last.key]["error"]
    assert {k for what, k in events if what == "skip"} == skipped
    assert all(r["status"] == "done" for k, r in rows.items() if k not in skipped)
    store.close()


def test_cli_bad_inputs_exit_2_and_leave_the_store_alone(reference, tmp_path):
    root, spec, _, _ = reference
    bad = tmp_path / "bad.yaml"
    fresh = tmp_path / "fresh"
    cases = [
        (dict(spec, axes=dict(spec["axes"], supervision=["lable"])), fresh, "unknown supervision 'lable'"),
        (dict(spec, axes=dict(spec["axes"], dataset_sizes=[12, 5000])), fresh,
         "dataset size 5000 (axes.dataset_sizes / correction.dataset_size) is larger than the training pool"),
        (dict(spec, training=dict(spec["training"], lr=0.5)), root / "ref",
         "belongs to study 'tiny' with a different spec"),
    ]
    store = root / "ref" / STORE_NAME
    before = store.read_bytes()
    for data, folder, message in cases:
        bad.write_text(yaml.safe_dump(data))
        proc = subprocess.run([*TASKDISTILL, "study", "run", str(bad), "--dir", str(folder)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert store.read_bytes() == before
    assert not (fresh / STORE_NAME).exists()  # refused before any store was written


def test_export_formats(reference, tmp_path):
    import pandas as pd

    root = reference[0]
    proc = subprocess.run([*TASKDISTILL, "study", "export", str(root / "ref"), "--format", "json", "--out",
                           str(tmp_path / "j")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "j" / "observations.json").read_text())
    store = Store(root / "ref" / STORE_NAME)
    assert rows == json.loads(json.dumps(store.observations()))
    from taskdistill.study.views import export

    for fmt in ("csv", "parquet"):
        export(store, tmp_path / fmt, fmt)
        frame = pd.read_csv(tmp_path / fmt / "observations.csv") if fmt == "csv" else \
            pd.read_parquet(tmp_path / fmt / "observations.parquet")
        assert len(frame) == len(rows) and list(frame.columns) == list(rows[0])
        assert sorted(frame["value"]) == pytest.approx(sorted(r["value"] for r in rows))
    store.close()


def test_correction_cot_lora_with_data_rationales(tmp_path, monkeypatch):
    """Teacher correction, CoT traces taken from the data's cot column, a LoRA student, one-shot = iterative."""
    from taskdistill.data.files import write_jsonl
    from taskdistill.data.load import load_task_data
    from taskdistill.data.schema import Example

    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home"))
    data = load_task_data("synthetic:n=80,seed=1,granularity=coarse")
    data = data.subset([Example(e.text, e.label, e.id, f"The headline reports {e.label.lower()} news.")
                        for e in data.examples])
    write_jsonl(tmp_path / "headlines.jsonl", data)
    spec = tiny_spec(tiny_teacher(tmp_path), task={"source": str(tmp_path / "headlines.jsonl"), "test_size": 26,
                                                   "calibration_size": 8})
    spec["axes"] = {"dataset_sizes": [8], "keep_fractions": [0.6], "schedules": ["iterative", "oneshot"],
                    "supervision": ["cot"], "method": ["lora"], "seeds": [3]}
    spec["correction"] = {"enabled": True, "dataset_size": 8, "training": {"max_steps": 1, "batch_size": 4,
                                                                          "max_length": 448}}
    spec["training"] = dict(spec["training"], lora_rank=2, max_steps=1)
    spec["evaluation"] = dict(spec["evaluation"], test_limit=8)
    summary = run_study(parse_spec(spec), tmp_path / "s")
    rows = step_rows(tmp_path / "s")
    # the teacher in both views, the pruned model before recovery and the student in the CoT view
    assert summary == {"done": 10} and sorted(r["kind"] for r in rows.values()) == sorted(
        ["data", "teacher", "correct", "traces", "prune", "recover"] + ["evaluate"] * 4)
    by_kind = {r["kind"]: r for r in rows.values()}
    assert json.loads(by_kind["traces"]["result"]) == {"traces": 8, "source": "data"}
    assert json.loads(by_kind["prune"]["deps"])["parent"] == by_kind["correct"]["key"]  # the corrected teacher
    assert json.loads(by_kind["traces"]["deps"])["writer"] == by_kind["correct"]["key"]  # writes the traces too
    store = Store(tmp_path / "s" / STORE_NAME)
    runs = store.runs()
    assert len(runs) == 6 and {r["schedule"] for r in runs} == {None, "iterative", "oneshot"}
    assert {r["view"] for r in runs if not r["is_teacher"]} == {"cot"}
    students = [r for r in runs if r["stage"] == "recovered"]
    assert students[0]["eval_key"] == students[1]["eval_key"]  # one student serves both schedules
    assert students[0]["train"]["steps"] == 1
    store.close()
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(by_kind["recover"]["artifact"])  # a plain HF folder
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_status_plan_and_help(reference):
    root = reference[0]
    env = dict(os.environ, COLUMNS="200")
    status = subprocess.run([*TASKDISTILL, "study", "status", str(root / "ref")], capture_output=True, text=True,
                            check=False, env=env)
    assert status.returncode == 0, status.stderr
    assert "17/17 steps finished" in status.stdout and "│ recover  │       0 │       0 │    4 │" in \
        status.stdout
    plan = subprocess.run([*TASKDISTILL, "study", "plan", str(root / "spec.yaml"), "--dir", str(root / "ref"),
                           "--all"], capture_output=True, text=True, check=False, env=env)
    assert plan.returncode == 0, plan.stderr
    assert "│ recover  │     4 │      4 │" in plan.stdout  # all 4 recoveries are cached
    assert plan.stdout.count("│ done  │") == 17
    for verb in ("run", "plan", "resume", "status", "export"):
        helped = subprocess.run([*TASKDISTILL, "study", verb, "--help"], capture_output=True, text=True, check=False,
                                env=env)
        assert helped.returncode == 0 and "Usage" in helped.stdout
