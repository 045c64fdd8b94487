"""What a study measures is what it claims: content-keyed steps, KL targets from the trace writer, CoT
correction seeded with rationales, the effective dataset size, latency on the task's own prompts."""

from __future__ import annotations

import json
import shutil

import pytest
from test_study_spec import spec_with

from taskdistill.study.plan import plan
from taskdistill.study.spec import parse_spec


def _keys(spec, fingerprints):
    return {s.kind: s.key for s in plan(parse_spec(spec), fingerprints).steps.values() if s.kind in ("data", "teacher")}


def test_step_keys_come_from_content_not_places(tmp_path):
    from taskdistill.data.load import source_fingerprint
    from taskdistill.models.load import reference_fingerprint

    rows = "".join(json.dumps({"id": str(i), "text": f"headline {i}", "label": "AB"[i % 2]}) + "\n" for i in range(40))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.jsonl").write_text(rows)
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "config.json").write_text('{"model_type": "llama"}')
    shutil.copytree(tmp_path / "teacher", tmp_path / "elsewhere")
    here = spec_with(task={"source": str(tmp_path / "a" / "data.jsonl"), "test_size": 10}, teacher=str(tmp_path / "teacher"))
    there = spec_with(task={"source": str(tmp_path / "b" / "data.jsonl"), "test_size": 10},
                      teacher=str(tmp_path / "elsewhere"))
    fp = lambda s: {"data": source_fingerprint(s["task"]["source"]), "teacher": reference_fingerprint(s["teacher"])}
    assert _keys(here, fp(here)) == _keys(there, fp(there))  # same bytes in another place: same steps
    (tmp_path / "b" / "data.jsonl").write_text(rows.replace("headline 3", "headline three"))
    (tmp_path / "elsewhere" / "config.json").write_text('{"model_type": "llama", "x": 1}')
    changed = _keys(there, fp(there))
    assert changed["data"] != _keys(here, fp(here))["data"] and changed["teacher"] != _keys(here, fp(here))["teacher"]


def test_kl_targets_come_from_the_model_that_wrote_the_traces():
    spec = spec_with(axes__supervision=["label", "cot_kl", "blended"], correction={"enabled": True, "dataset_size": 20,
                                                                                 "rationales": 8},
                     traces={"writer": "teacher"})
    p = plan(parse_spec(spec))
    teacher = next(s.key for s in p.steps.values() if s.kind == "teacher")
    root = next(s.key for s in p.steps.values() if s.kind == "correct")
    for step in p.steps.values():
        if step.kind == "recover":
            sup = step.inputs["training"]["supervision"]
            assert step.deps.get("kl_teacher") == (None if sup == "label" else teacher), sup
        if step.kind == "traces" and step.inputs["limit"] is None:
            assert step.deps["writer"] == teacher
    p = plan(parse_spec(dict(spec, traces={"writer": "teacher", "kl_targets": "root"})))
    assert {s.deps.get("kl_teacher") for s in p.steps.values() if s.kind == "recover"} == {None, root}


def test_a_rationale_seeded_correction_trains_both_formats():
    spec = spec_with(correction={"enabled": True, "dataset_size": 20, "rationales": 8})
    p = plan(parse_spec(spec))
    correct = next(s for s in p.steps.values() if s.kind == "correct")
    rationales = p.steps[correct.deps["rationales"]]
    assert correct.inputs["training"]["supervision"] == "label_cot"
    assert rationales.inputs["explain_gold"] is True and rationales.inputs["limit"] == 8
    assert rationales.deps["writer"] == next(s.key for s in p.steps.values() if s.kind == "teacher")
    students = next(s for s in p.steps.values() if s.kind == "traces" and s.inputs["limit"] is None)
    assert students.inputs["explain_gold"] is False and students.deps["writer"] == correct.key
    with pytest.raises(Exception, match="rationales"):
        parse_spec(spec_with(correction={"enabled": True, "dataset_size": 5, "rationales": 8}))


def test_a_label_only_corrected_trace_writer_is_warned_about():
    p = plan(parse_spec(spec_with(correction={"enabled": True, "dataset_size": 20})))
    assert any("correction.rationales" in w for w in p.warnings)


def test_cot_training_records_the_examples_it_actually_used(tiny):
    from distill_helpers import task_data

    from taskdistill.data.schema import Example
    from taskdistill.distill.batches import build_sequences

    _, tok = tiny
    data = task_data()
    data = data.subset([e if i % 3 else Example(e.text, e.label, e.id) for i, e in enumerate(data.examples)])
    _, counts = build_sequences(tok(), data, cot=True, max_length=512)
    assert counts["used"] == len(data) - 3 and counts["no_trace"] == 3  # what the store records as effective D
    _, both = build_sequences(tok(), data, cot=True, max_length=512, answer_too=True)
    assert both["used"] == len(data)  # label_cot: every example trains the answer, traced ones the rationale too


def test_latency_is_measured_on_the_tasks_own_prompts(tmp_path, monkeypatch, tiny):
    from taskdistill.data.schema import Example, TaskData
    from taskdistill.evaluate import cost
    from taskdistill.models.load import save_model
    from taskdistill.study import steps

    make_model, make_tok = tiny
    model_dir = save_model(make_model("llama"), make_tok(), tmp_path / "m")
    data = tmp_path / "data"
    data.mkdir()
    test = TaskData([Example(f"Acme headline number {i}", "AB"[i % 2], str(i)) for i in range(10)], ["A", "B"])
    test.save(data / "test.json")
    seen = {}

    def fake(model, tok, prompts=None, **kwargs):
        seen["prompts"], seen["kwargs"] = prompts, kwargs
        return type("C", (), {"to_dict": lambda self: {"latency_ms_batch1": 1.0}})()

    monkeypatch.setattr(cost, "measure_cost", fake)
    inputs = {"evaluation": {"test_limit": None, "batch_size": 4, "cot_max_new_tokens": 4, "cost_batch_sizes": [1],
                             "cost_repeats": 1, "precision": "float32"},
              "knowledge": {"benchmarks": ["probe"], "limit": 4, "seed": 0}, "prompt": {}, "view": "answer",
              "cost": True}
    deps = {"model": {"kind": "recover", "artifact": str(model_dir), "result": {}},
            "data": {"kind": "data", "artifact": str(data), "result": {}}}
    from taskdistill.models.runtime import resolve_runtime

    ctx = steps.Context(tmp_path, "k", resolve_runtime("cpu", "float32"))
    _, result, _ = steps.evaluate_step(inputs, deps, tmp_path / "out", ctx)
    assert result["latency_ms"] == 1.0
    assert all(f"Acme headline number {i}" in p for i, p in enumerate(seen["prompts"]))  # not a generic set
