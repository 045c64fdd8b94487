"""Thinking chat templates (Qwen3 and alike): thinking on where traces are written, off where labels are
scored, evaluated or trained, with the scored / trained continuation starting where the answer starts."""

from __future__ import annotations

import copy

import pytest
from distill_helpers import LABELS, task_data
from tiny import tiny_thinking_tokenizer, tiny_tokenizer

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
