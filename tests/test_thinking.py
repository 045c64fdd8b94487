"""Thinking chat templates (Qwen3 and alike): thinking on where traces are written, off where labels are
scored, evaluated or trained, with the scored / trained continuation starting where the answer starts."""

from __future__ import annotations

import copy

import pytest
from distill_helpers import LABELS, task_data
from tiny import tiny_model, tiny_thinking_tokenizer, tiny_tokenizer

from taskdistill.distill import traces
from taskdistill.distill.batches import build_sequences
from taskdistill.evaluate import task
from taskdistill.models.prompts import (
    EMPTY_THINK,
    build_prompt,
    encode,
    split_thinking,
    thinking_switch,
)

HEADLINE = "Acme beats quarterly earnings estimates"


def forced_open_tokenizer():
    """A template that always opens a thinking block and has no switch (as R1-style distills)."""
    tok = copy.deepcopy(tiny_thinking_tokenizer())
    tok.chat_template = (
        "{%- for m in messages -%}{{- '<|im_start|>' ~ m['role'] ~ '\\n' ~ m['content'] ~ '<|im_end|>\\n' -}}"
        "{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n<think>\\n' -}}{%- endif -%}")
    return tok


def test_switch_reaches_only_templates_that_have_it():
    tok = tiny_thinking_tokenizer()
    assert thinking_switch(tok) and not thinking_switch(tiny_tokenizer())
    off = build_prompt(tok, HEADLINE, LABELS)  # the default: thinking off
    on = build_prompt(tok, HEADLINE, LABELS, thinking=True)
    assert off.endswith("<|im_start|>assistant\n" + EMPTY_THINK) and on.endswith("<|im_start|>assistant\n")
    assert off == on + EMPTY_THINK
    plain = tiny_tokenizer()  # no switch: the prompt is what it always was
    assert build_prompt(plain, HEADLINE, LABELS, thinking=True) == build_prompt(plain, HEADLINE, LABELS)
    assert build_prompt(plain, HEADLINE, LABELS).endswith("<|im_start|>assistant\n")


def test_a_forced_open_block_is_closed_empty_with_thinking_off():
    tok = forced_open_tokenizer()
    assert build_prompt(tok, HEADLINE, LABELS, thinking=True).endswith("assistant\n<think>\n")
    assert build_prompt(tok, HEADLINE, LABELS).endswith("assistant\n" + EMPTY_THINK)


def test_split_thinking():
    assert split_thinking("<think>\nWhy.\n</think>\n\n[[A]]") == ("Why.", "\n\n[[A]]")
    assert split_thinking("  <think>a</think>b") == ("a", "b")
    assert split_thinking("Why.\n</think>[[A]]", opened=True) == ("Why.", "[[A]]")  # the prompt opened it
    assert split_thinking("<think>still going") == ("still going", None)
    assert split_thinking("Plain reasoning. [[A]]") == (None, "Plain reasoning. [[A]]")


@pytest.mark.parametrize("cot", [None, "The headline is about earnings."])
def test_trained_tokens_start_where_the_answer_starts(cot):
    """Training sequences use thinking off: the prompt ends with the empty think block and the first trained
    token is the answer's (the label, or the rationale of a CoT completion)."""
    tok = tiny_thinking_tokenizer()
    data = task_data(with_cot=cot is not None)
    sequences, _ = build_sequences(tok, data, cot=cot is not None, max_length=512)
    first = sequences[0]
    prompt = tok.decode(first.input_ids[: first.target_pos[0]])
    assert prompt.endswith("<|im_start|>assistant\n" + EMPTY_THINK)
    trained = tok.decode([first.input_ids[p] for p in first.target_pos])
    assert trained == ("[[Earnings]]" if cot is None else f"{data.examples[0].cot} [[Earnings]]")


def test_scoring_and_evaluation_prompts_have_thinking_off(monkeypatch):
    tok = tiny_thinking_tokenizer()
    seen = []

    def capture(model, contexts, continuations, batch_size, progress):
        import numpy as np

        seen.extend(contexts)
        return np.zeros((len(contexts), len(continuations)))

    monkeypatch.setattr(task, "score_continuations", capture)
    task.score_labels(None, tok, [HEADLINE], LABELS)
    task.score_labels_after_rationale(None, tok, [HEADLINE], ["Because."], LABELS)
    assert tok.decode(seen[0]).endswith(EMPTY_THINK)
    assert tok.decode(seen[1]).endswith(EMPTY_THINK + "Because.")
    assert seen[0] == encode(tok, build_prompt(tok, HEADLINE, LABELS))[0]


def test_traces_think_and_the_thinking_is_the_rationale(monkeypatch):
    """HF path with canned generations: thinking-on prompts, no ']]' stop, rationale = thinking text (whole
    block, whitespace collapsed), label from the answer after it; thinking on and off are cached apart."""
    tok = tiny_thinking_tokenizer()
    model = tiny_model("qwen3", vocab_size=len(tok))
    data = task_data(False)
    golds = [e.label for e in data.examples]
    outputs = [f"<think>\nIt says {g.lower()}.\n\nThe format wants [[...]].\n</think>\n\n[[{g}]]" for g in golds]
    outputs[0] = f"<think>\nIt says {golds[0].lower()}.\n</think>\n\nNot sure."  # no label after the thinking
    outputs[1] = "<think>\nHmm"  # unfinished
    calls = []

    def fake(model, tokenizer, prompts, max_new_tokens, batch_size, backend, progress=None, stop=None):
        calls.append((list(prompts), stop, backend.name))
        return outputs[: len(prompts)]

    monkeypatch.setattr(traces, "generate", fake)
    out = traces.build_traces(model, tok, data, backend="hf")
    report = out.meta["traces"]
    assert (report["kept"], report["no_label"], report["unfinished_thinking"]) == (6, 1, 1)
    assert out.examples[0].cot == f"It says {golds[2].lower()}. The format wants [[...]]."
    prompts, stop, backend = calls[0]
    assert stop is None and backend == "hf" and all(p.endswith("<|im_start|>assistant\n") for p in prompts)
    # thinking off for the writer: empty think blocks, the "]]" stop, another cache entry
    outputs[:] = [f"Short reason. [[{g}]]" for g in golds]
    off = traces.build_traces(model, tok, data, backend="hf", thinking=False)
    prompts, stop, _ = calls[1]
    assert stop == ["]]"] and all(p.endswith(EMPTY_THINK) for p in prompts)
    assert off.meta["traces"]["thinking"] is False and off.examples[0].cot == "Short reason."
    # a plain template's cache key has no thinking entry (its traces cached before this change stay valid)
    plain = traces.build_traces(tiny_model("llama"), tiny_tokenizer(), data, backend="hf")
    assert "thinking" not in plain.meta["traces"] and calls[2][1] == ["]]"]


def test_a_forced_open_prompt_reads_the_generation_as_thinking(monkeypatch):
    tok = forced_open_tokenizer()
    model = tiny_model("qwen3", vocab_size=len(tok))
    data = task_data(False)
    outputs = [f"Because {e.label.lower()}.\n</think>\n\n[[{e.label}]]" for e in data.examples]
    monkeypatch.setattr(traces, "generate", lambda *a, **k: outputs)
    out = traces.build_traces(model, tok, data, backend="hf")
    assert out.meta["traces"]["kept"] == len(data) and out.examples[0].cot == "Because earnings."
