"""Study spec validation and the planner's content-hashed DAG."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from taskdistill.errors import TaskDistillError
from taskdistill.study.plan import plan
from taskdistill.study.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "name": "t",
    "teacher": "smollm2-135m-instruct",
    "task": {"source": "synthetic:n=300,seed=0", "test_size": 50},
    "axes": {"dataset_sizes": [20, 40], "keep_fractions": [0.8, 0.6, 0.4], "supervision": ["label", "cot"]},
    "training": {"max_steps": 2, "batch_size": 2},
}


def spec_with(**changes):
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(last)
        else:
            node[last] = value
    return data


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"axis": {}}, "spec: axis: unknown key. Did you mean 'axes'"),
        ({"axes__keep_fraction": [0.5]}, "axes.keep_fraction: unknown key. Did you mean 'keep_fractions'"),
        ({"axes__supervision": ["label", "cott"]}, "axes.supervision: unknown supervision 'cott'. Did you mean 'cot'"),
        ({"axes__method": ["lora", "logits"]}, "axes.method: unknown method 'logits'. Did you mean 'logit'"),
        ({"axes__schedules": ["iterativ"]}, "unknown schedule 'iterativ'. Did you mean 'iterative'"),
        ({"axes__dataset_sizes": []}, "axes.dataset_sizes: the dataset_sizes axis is empty"),
        ({"axes__supervision": []}, "axes.supervision: the supervision axis is empty"),
        ({"axes__seeds": []}, "axes.seeds: the seeds axis is empty"),
        ({"axes__keep_fractions": [0.5, 1.2]}, "keep fraction 1.2 is outside (0, 1)"),
        ({"training__lrr": 0.1}, "training.lrr: unknown distillation setting. Did you mean 'lr'"),
        ({"training__seed": 3}, "training.seed is set by the study axes; remove it from training"),
        ({"training__batch_size": 0}, "training.batch_size: Input should be greater than or equal to 1"),
        ({"knowledge__benchmarks": []}, "knowledge.benchmarks: give a list of benchmarks"),
        ({"knowledge__benchmarks": ["mmlu_pr"]}, "unknown benchmark 'mmlu_pr'. Did you mean 'mmlu_pro'"),
        ({"evaluation__views": "trainde"}, "unknown evaluation views 'trainde'. Did you mean 'trained'"),
        ({"teacher": ...}, "teacher: required field missing"),
    ],
)
def test_bad_specs_name_the_field_and_the_fix(changes, expected):
    with pytest.raises(TaskDistillError) as info:
        parse_spec(spec_with(**changes), origin="spec")
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_named_schedule_and_sorting():
    spec = parse_spec(spec_with(axes__keep_fractions="paper", axes__dataset_sizes=[40, 20]))
    assert spec.axes.keep_fractions == [0.79, 0.58, 0.37, 0.16]
    assert spec.axes.dataset_sizes == [20, 40]


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(TaskDistillError, match="not valid YAML at line"):
        load_spec(bad)
    with pytest.raises(TaskDistillError, match="no such study spec"):
        load_spec(tmp_path / "missing.yaml")
    bad.write_text("- a\n- b\n")
    with pytest.raises(TaskDistillError, match="must be a YAML mapping"):
        load_spec(bad)


def test_plan_shares_identical_work():
    spec = parse_spec(spec_with(axes__schedules=["iterative", "oneshot"]))
    p = plan(spec)
    branches = 2 * 2  # dataset sizes × supervision (1 method, 1 seed)
    counts = p.counts()
    # iterative: the teacher → κ=0.8 prune is shared by every branch; later prunes start from each
    # branch's own recovered student. One-shot κ=0.8 *is* iterative κ=0.8; one-shot κ=0.6 / 0.4
    # prune the teacher once each, shared by every branch.
    assert counts["prune"] == 1 + branches * 2 + 2
    assert counts["recover"] == branches * 3 + branches * 2
    # every student in the view it was trained in (label: answer, cot: its own rationale); every pruned
    # model too, before recovery, in the view of its branch: the shared teacher → κ=0.8 prune and the two
    # one-shot teacher prunes in both views, each branch's own prunes in one; the teacher in both views
    assert counts["evaluate"] == 2 + counts["recover"] + (2 + branches * 2 + 2 * 2)
    assert counts["traces"] == 1 and counts["data"] == 1 and counts["teacher"] == 1
    recovered = [r for r in p.runs if r.stage == "recovered"]
    assert len(recovered) == 2 * branches * 3 and len(p.runs) == 2 + 2 * len(recovered)
    assert {(r.supervision, r.view) for r in p.runs if not r.is_teacher} == {("label", "answer"), ("cot", "cot")}
    assert all(r.dataset_size == 0 for r in p.runs if r.stage == "pruned")
    by_coords = {(r.schedule, r.dataset_size, r.supervision, r.keep_fraction): r for r in recovered}
    assert by_coords[("oneshot", 20, "label", 0.8)].eval_key == by_coords[("iterative", 20, "label", 0.8)].eval_key
    assert by_coords[("oneshot", 20, "label", 0.6)].eval_key != by_coords[("iterative", 20, "label", 0.6)].eval_key
    # an iterative student is pruned from the branch's previous student
    it = by_coords[("iterative", 40, "cot", 0.4)]
    assert it.parent_key == by_coords[("iterative", 40, "cot", 0.6)].model_key and it.step_index == 3
    # topological order: every dependency comes before its step
    seen = set()
    for step in p.steps.values():
        assert set(step.deps.values()) <= seen
        seen.add(step.key)
    # only CoT recoveries read the traces
    traces = next(k for k, s in p.steps.items() if s.kind == "traces")
    for step in p.steps.values():
        if step.kind == "recover":
            assert (traces in step.deps.values()) == (step.inputs["training"]["supervision"] == "cot")


def test_keys_are_content_hashes():
    a, b = plan(parse_spec(spec_with())), plan(parse_spec(spec_with()))
    assert list(a.steps) == list(b.steps)
    changed = plan(parse_spec(spec_with(training__lr=0.5)))
    first_prune = lambda p: next(s.key for s in p.steps.values() if s.kind == "prune")
    assert first_prune(a) == first_prune(changed)  # pruning the teacher does not depend on training
    recovers = lambda p: {k for k, s in p.steps.items() if s.kind == "recover"}
    assert not recovers(a) & recovers(changed)
    gated = plan(parse_spec(spec_with(early_stop={"min_gk_retention": 0.3})))
    assert list(gated.steps) == list(a.steps)  # the early-stop rule orders steps, it does not change them
    assert any(s.gate for s in gated.steps.values()) and not any(s.gate for s in a.steps.values())


@pytest.mark.parametrize("preset", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_every_shipped_preset_validates_and_plans(preset):
    spec = load_spec(REPO / "configs" / preset)
    p = plan(spec)
    assert p.steps and p.runs
    for kappa in spec.axes.keep_fractions:
        assert 0 < kappa < 1


def test_study_plan_validates_the_paper_preset(tmp_path):
    import os
    import re
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from taskdistill.cli import main; main()", "study", "plan",
                           str(REPO / "configs" / "paper.yaml"), "--dir", str(tmp_path / "paper")],
                          capture_output=True, text=True, check=False, env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    # 4 sizes × 3 formats × 2 methods × 3 seeds = 72 branches × 4 κ = 288 students; the teacher → 79 %
    # pruning is shared: 1 + 72 × 3 prunes. Evaluations: the teacher in 2 views, every student, and every
    # pruned model before recovery (the shared first prune in both views): 2 + 288 + 2 + 216
    assert "1016 steps for 288 students" in proc.stdout
    for kind, n in (("prune", 217), ("recover", 288), ("evaluate", 508), ("traces", 1)):
        assert re.search(rf"│ {kind}\s+│\s+{n} │\s+0 │", proc.stdout), kind  # n steps, none cached
    assert not (tmp_path / "paper").exists()  # planning writes nothing
