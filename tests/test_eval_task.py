"""Constrained label scoring (vs one full forward per label) and the score / generate / cot modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from tiny import ARCHS, tiny_model, tiny_tokenizer

from taskdistill.data.schema import Example, TaskData
from taskdistill.errors import TaskDistillError
from taskdistill.evaluate import task
from taskdistill.evaluate.scoring import (
    _Block,
    score_continuations,
    shared_prefix_length,
)
from taskdistill.models import prompts
from taskdistill.models.generate import generate_texts

# label continuations of 1–9 tokens, sharing prefixes ("[[", "[[Guidance ") in the prefix tree
LABELS = ["Buyback", "Earnings beat", "Guidance cut", "Guidance raise", "M&A announced", "x"]
TEXTS = [
    "Acme beats",
    "Globex cuts full-year guidance on weak demand as revenue falls 12% and shares slide",
    "Initech announces $2 billion share buyback program",
    "Hooli to acquire Pied Piper",
    "Umbrella raises price target to $45 after strong quarter, analyst says; stock up 3% in early trade",
]


def naive_label_log_probs(model, tok, texts, labels, cot_rationales=None):
    """Reference: every label scored as its own full sequence ``prompt + label``, one forward each."""
    out = np.zeros((len(texts), len(labels)))
    for i, text in enumerate(texts):
        cot = cot_rationales is not None
        prompt = prompts.build_prompt(tok, text, labels, cot=cot) + (cot_rationales[i].strip() if cot else "")
        for c, label in enumerate(labels):
            ctx, cont = prompts.encode(tok, prompt, (" " if cot else "") + prompts.answer(label))
            with torch.no_grad():
                lp = model(torch.tensor([ctx + cont])).logits[0].double().log_softmax(-1)
            out[i, c] = sum(lp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))
    return log_softmax(out, axis=1)


@pytest.mark.parametrize("arch", ARCHS)
def test_scorer_matches_full_sequence_scoring(arch):
    model, tok = tiny_model(arch), tiny_tokenizer()
    fast = task.score_labels(model, tok, TEXTS, LABELS, batch_size=3)  # mixed prompt lengths per batch
    ref = naive_label_log_probs(model, tok, TEXTS, LABELS)
    assert fast.shape == (len(TEXTS), len(LABELS))
    np.testing.assert_allclose(np.exp(fast), np.exp(ref), atol=1e-4)
    np.testing.assert_allclose(fast, ref, atol=1e-3)
    assert not np.allclose(fast, fast[:1])  # different prompts really give different scores


def test_scorer_with_eager_attention_and_batch_size_one():
    model, tok = tiny_model("qwen2", seed=3), tiny_tokenizer()
    model.set_attn_implementation("eager")
    ref = naive_label_log_probs(model, tok, TEXTS[:3], LABELS)
    for batch_size in (1, 2):
        np.testing.assert_allclose(np.exp(task.score_labels(model, tok, TEXTS[:3], LABELS, batch_size=batch_size)),
                                   np.exp(ref), atol=1e-4)


@pytest.mark.parametrize(
    "contexts",
    [
        [[5, 6, 7, 8], [9, 10]],  # nothing shared
        [[5, 6, 7, 8, 20], [5, 6, 7, 9], [5, 6, 7, 8, 20]],  # shared cached prefix; a duplicate context
    ],
)
def test_score_continuations_single_token_labels_and_summed_log_likelihood(contexts):
    model = tiny_model("llama")
    conts = [[11], [12], [13, 14, 15], [13, 14], [13, 16, 15], [13]]  # shared prefixes, a prefix of another
    got = score_continuations(model, contexts, conts, batch_size=2)
    for i, ctx in enumerate(contexts):
        for c, cont in enumerate(conts):
            with torch.no_grad():
                lp = model(torch.tensor([ctx + cont])).logits[0].double().log_softmax(-1)
            want = sum(lp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))
            assert got[i, c] == pytest.approx(want, abs=1e-4)
    assert (got < 0).all()
    assert _Block(conts).size == 3  # fed nodes: (13), (13, 14), (13, 16) — each shared prefix once


def test_shared_prefix_leaves_every_context_a_token():
    assert shared_prefix_length([[1, 2, 3], [1, 2, 4]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2], [1, 2, 3, 4]]) == 1
    assert shared_prefix_length([[7], [7]]) == 0 and shared_prefix_length([[1, 2], [3, 2]]) == 0
    tok = tiny_tokenizer()
    ids = [prompts.encode(tok, prompts.build_prompt(tok, t, LABELS))[0] for t in TEXTS]
    assert shared_prefix_length(ids) > len(ids[0]) // 2  # the instruction and label list are cached once


def test_scorer_rejects_attention_without_custom_masks():
    model = tiny_model("llama")
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(TaskDistillError, match="sdpa"):
        score_continuations(model, [[5, 6]], [[7]])


def test_batched_generation_equals_one_by_one():
    model, tok = tiny_model("mistral", seed=1), tiny_tokenizer()
    ids = [prompts.encode(tok, prompts.build_prompt(tok, t, LABELS))[0] for t in TEXTS]
    batched = generate_texts(model, tok, ids, max_new_tokens=6, batch_size=5)
    single = [generate_texts(model, tok, [p], max_new_tokens=6, batch_size=1)[0] for p in ids]
    assert batched == single
    assert any(batched)


def _data(pairs):
    return TaskData([Example(t, y, str(i)) for i, (t, y) in enumerate(pairs)], sorted({y for _, y in pairs} | {"x"}))


DATA = _data(list(zip(TEXTS, ["Earnings beat", "Guidance cut", "Buyback", "M&A announced", "Earnings beat"])))


def test_score_mode_uses_argmax_of_constrained_scores():
    model, tok = tiny_model("qwen3"), tiny_tokenizer()
    metrics = task.evaluate_task(model, tok, DATA, mode="score", batch_size=2)
    lp = task.score_labels(model, tok, TEXTS, DATA.labels)
    gold = np.array([DATA.labels.index(e.label) for e in DATA.examples])
    assert metrics.correct == int((lp.argmax(1) == gold).sum())
    assert metrics.nll == pytest.approx(-lp[np.arange(5), gold].mean())
    assert metrics.unparseable == 0 and metrics.mode == "score" and metrics.n == 5


def test_generate_mode_parses_last_label_and_counts_unparseable(monkeypatch):
    model, tok = tiny_model("llama"), tiny_tokenizer()
    canned = ["[[Earnings beat]]", "I think [[Buyback]] no, [[guidance cut]]", "no idea", "[[Merger]]", "[[x]] extra"]
    seen = {}

    def fake_generate(model, tokenizer, prompt_ids, max_new_tokens, batch_size, progress=None, stop=None):
        seen["prompts"], seen["steps"] = prompt_ids, max_new_tokens
        return canned

    monkeypatch.setattr(task, "generate_texts", fake_generate)
    metrics = task.evaluate_task(model, tok, DATA, mode="generate")
    # parsed: Earnings beat ✓, Guidance cut ✓ (last, case-insensitive), none, unknown label → none, x ✗
    assert (metrics.correct, metrics.unparseable) == (2, 2)
    assert metrics.accuracy == pytest.approx(2 / 5)
    assert metrics.extra["max_new_tokens"] == task.DEFAULT_MAX_NEW_TOKENS["generate"]
    assert seen["prompts"][0] == prompts.encode(tok, prompts.build_prompt(tok, TEXTS[0], DATA.labels))[0]
    ref = task.evaluate_task(model, tok, DATA, mode="score")
    assert (metrics.nll, metrics.brier, metrics.scored_accuracy) == pytest.approx((ref.nll, ref.brier, ref.accuracy))
    x = DATA.labels.index("x")
    assert metrics.confusion[DATA.labels.index("Earnings beat")][x] == 1


def test_cot_mode_scores_every_label_at_the_answer_slot(monkeypatch):
    model, tok = tiny_model("qwen2"), tiny_tokenizer()
    canned = [
        "Revenue beat estimates. [[Earnings beat]]",
        "Guidance was cut, [[Guidance cut]] and then [[Buyback]]",
        "rambling without an answer",
        "A deal to acquire. [[M&A announced]]",
        "",
    ]
    monkeypatch.setattr(task, "generate_texts", lambda *a, **k: canned)
    metrics = task.evaluate_task(model, tok, DATA, mode="cot", max_new_tokens=40)
    rationales = [task.cut_rationale(g) for g in canned]
    assert rationales[1] == "Guidance was cut," and rationales[2] == canned[2] and rationales[4] == ""
    ref = naive_label_log_probs(model, tok, TEXTS, DATA.labels, cot_rationales=rationales)
    gold = np.array([DATA.labels.index(e.label) for e in DATA.examples])
    assert metrics.nll == pytest.approx(-ref[np.arange(5), gold].mean(), abs=1e-4)
    assert metrics.brier == pytest.approx(((np.exp(ref) - np.eye(len(DATA.labels))[gold]) ** 2).sum(1).mean(), abs=1e-4)
    # the prediction is the argmax at the answer slot, as in score mode (nothing is parsed)
    assert metrics.correct == int((ref.argmax(1) == gold).sum())
    assert (metrics.unparseable, metrics.mode) == (0, "cot")
    assert metrics.extra["max_new_tokens"] == 40 and metrics.extra["empty_rationales"] == 1


def test_cot_mode_end_to_end_on_a_tiny_model():
    model, tok = tiny_model("llama", seed=2), tiny_tokenizer()
    metrics = task.evaluate_task(model, tok, DATA, mode="cot", max_new_tokens=8, batch_size=4)
    assert metrics.n == 5 and metrics.unparseable == 0
    assert np.isfinite(metrics.nll) and 0 <= metrics.brier <= 2
    assert sum(map(sum, metrics.confusion)) == 5


def test_bad_evaluation_input():
    model, tok = tiny_model("llama"), tiny_tokenizer()
    with pytest.raises(TaskDistillError, match="mode"):
        task.evaluate_task(model, tok, DATA, mode="vote")
    with pytest.raises(TaskDistillError, match="empty"):
        task.evaluate_task(model, tok, TaskData([], ["a"]), mode="score")
    with pytest.raises(TaskDistillError, match="taxonomy"):
        task.evaluate_task(model, tok, TaskData([Example("t", "zzz", "0")], ["a", "b"]), mode="score")
