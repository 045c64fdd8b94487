"""CoT traces: gold-label filter and drop rate, prompt modes, cache, user traces, errors."""

from __future__ import annotations

import json

import pytest
from distill_helpers import LABELS, task_data

from taskdistill.distill import traces
from taskdistill.errors import TaskDistillError
from taskdistill.models.prompts import PromptFormat


def canned(outputs, calls):
    def fake(model, tokenizer, prompts, max_new_tokens, batch_size, backend, progress=None, stop=None):
        calls.append(list(prompts))
        return outputs[: len(prompts)]

    return fake


def test_filter_keeps_only_gold_label_traces_and_reports_drop_rate(tiny, monkeypatch):
    model, tok = tiny
    data = task_data(with_cot=False)
    golds = [e.label for e in data.examples]
    outputs = [
        f"It reports profit numbers. [[{golds[0]}]]",
        "No label here at all.",
        f"Wrong reasoning. [[{'Earnings' if golds[2] != 'Earnings' else 'Guidance'}]]",
        f"[[{golds[3]}]]",  # empty rationale
        f"Because of the outlook. [[{golds[4].upper()}]] trailing",
        f"Buyback words. [[{golds[5]}]]",
        f"Numbers. [[{golds[6]}]]",
        f"Outlook lowered. [[{golds[7]}]]",
    ]
    outputs[6] = f"The event type is {golds[6].lower()}.\n\nMore text."  # unbracketed but names the gold label
    calls = []
    monkeypatch.setattr(traces, "generate", canned(outputs, calls))
    out = traces.build_traces(model(seed=0), tok(), data, explain_gold=True)
    report = out.meta["traces"]
    assert (report["kept"], report["no_label"], report["wrong_label"], report["empty"]) == (5, 1, 1, 1)
    assert report["unbracketed"] == 1
    assert report["drop_rate"] == pytest.approx(3 / 8)
    assert [e.id for e in out.examples] == ["ex0", "ex4", "ex5", "ex6", "ex7"]
    assert out.examples[0].cot == "It reports profit numbers."
    assert out.examples[1].cot == "Because of the outlook."
    assert out.examples[3].cot == f"The event type is {golds[6].lower()}."
    assert all(f"This headline is about: {e.label}." in p for e, p in zip(data.examples, calls[0]))
    # cached: a second call generates nothing
    again = traces.build_traces(model(seed=0), tok(), data, explain_gold=True)
    assert len(calls) == 1 and [e.cot for e in again.examples] == [e.cot for e in out.examples]
    # another decoding setting is another cache entry
    traces.build_traces(model(seed=0), tok(), data, explain_gold=True, max_new_tokens=40)
    assert len(calls) == 2


def test_default_traces_are_the_teachers_own_answers_filtered_by_gold(tiny, monkeypatch):
    """By default the writer is not told the answer: only its correct reasoning is kept, and an
    unbracketed generation that merely names the gold label is not rescued."""
    model, tok = tiny
    data = task_data(with_cot=False)
    golds = [e.label for e in data.examples]
    outputs = [f"Reason {i}. [[{g}]]" for i, g in enumerate(golds)]
    outputs[1] = f"Reason 1. [[{'Earnings' if golds[1] != 'Earnings' else 'Guidance'}]]"
    outputs[2] = f"The event type is {golds[2].lower()}."
    calls = []
    monkeypatch.setattr(traces, "generate", canned(outputs, calls))
    out = traces.build_traces(model(seed=0), tok(), data)
    report = out.meta["traces"]
    assert report["explain_gold"] is False and not any("This headline is about" in p for p in calls[0])
    assert (report["kept"], report["wrong_label"], report["no_label"], report["unbracketed"]) == (6, 1, 1, 0)
    assert [e.id for e in out.examples] == [e.id for i, e in enumerate(data.examples) if i not in (1, 2)]


def test_self_generated_prompt_hides_the_gold_label(tiny):
    _, tok = tiny
    ex = task_data().examples[0]
    prompt = traces.teacher_prompt(tok(), ex, LABELS, PromptFormat(), explain_gold=False)
    assert "This headline is about" not in prompt and ex.text in prompt


def test_real_generation_path_and_empty_result_error(tiny):
    model, tok = tiny
    # A random tiny model never writes a valid [[Label]]: everything is dropped -> one clear error.
    with pytest.raises(TaskDistillError, match="no trace survived"):
        traces.build_traces(model(seed=0), tok(), task_data(False), max_new_tokens=4, backend="hf")


def test_import_traces_as_is_and_errors(tmp_path):
    data = task_data(with_cot=False)
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": "ex1", "cot": "Guidance was cut."}) + "\n")
    out = traces.import_traces(data, path)
    assert out.examples[1].cot == "Guidance was cut." and out.examples[0].cot is None
    assert out.meta["traces"]["kept"] == 1
    written = traces.write_traces(out, tmp_path / "w.jsonl")
    assert json.loads(written.read_text()) == {"id": "ex1", "label": "Guidance", "cot": "Guidance was cut."}
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": "nope", "cot": "x"}) + "\n")
    with pytest.raises(TaskDistillError, match="not in the data"):
        traces.import_traces(data, tmp_path / "bad.jsonl")
    (tmp_path / "junk.jsonl").write_text("{oops\n")
    with pytest.raises(TaskDistillError, match="junk.jsonl:1"):
        traces.import_traces(data, tmp_path / "junk.jsonl")
    with pytest.raises(TaskDistillError, match="not found"):
        traces.import_traces(data, tmp_path / "missing.jsonl")
