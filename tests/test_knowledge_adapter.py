"""The lm-eval adapter scores exactly what a straightforward per-item computation scores."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance

from taskdistill.evaluate.knowledge.adapter import InMemoryLM

CONTEXTS = {
    "The capital of France is": [" Paris", " Berlin and more words here", " a"],
    "Acme Corp beats": [" quarterly earnings estimates", " nothing"],
    "Hooli to acquire Pied Piper in": [" $1.2 billion deal", " cash", " stock swap today", " x"],
    "Question: Is water wet?\nAnswer:": [" yes", " no"],
    "": ["Globex cuts full-year guidance"],  # empty context: lm-eval conditions on the prefix token
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _requests():
    return [
        Instance("loglikelihood", {}, (ctx, cont), i)
        for i, (ctx, cont) in enumerate((c, x) for c, conts in CONTEXTS.items() for x in conts)
    ]


def _reference(model, context_ids, continuation_ids):
    """One full forward over context + continuation; sum of the continuation's log-probabilities."""
    ids = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    positions = torch.arange(len(context_ids) - 1, len(context_ids) + len(continuation_ids) - 1)
    target = torch.tensor(continuation_ids)
    return float(logp[positions, target].sum()), bool((logp[positions].argmax(-1) == target).all())


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "mistral"])
def test_loglikelihood_equals_per_item_forward(tiny, arch):
    make_model, make_tok = tiny
    model, tok = make_model(arch, seed=3), make_tok()
    # small batches force several batches, uneven contexts and a repeated-cache step
    lm = InMemoryLM(model, tok, batch_size=2, max_rows=4)
    requests = _requests()
    got = lm.loglikelihood(requests, disable_tqdm=True)
    assert len(got) == len(requests)
    for req, (ll, greedy) in zip(requests, got, strict=True):
        context, continuation = req.args
        if context:
            ctx_ids, cont_ids = lm._encode_pair(context, continuation)
        else:
            ctx_ids, cont_ids = [lm.prefix_token_id], tok.encode(continuation, add_special_tokens=False)
        ref_ll, ref_greedy = _reference(model, ctx_ids, cont_ids)
        assert ll == pytest.approx(ref_ll, abs=1e-4), (context, continuation)
        assert greedy == ref_greedy
        assert ll < 0


def test_batch_size_does_not_change_scores(tiny):
    make_model, make_tok = tiny
    model, tok = make_model("llama", seed=1), make_tok()
    one = InMemoryLM(model, tok, batch_size=1, max_rows=1).loglikelihood(_requests(), disable_tqdm=True)
    many = InMemoryLM(model, tok, batch_size=16, max_rows=64).loglikelihood(_requests(), disable_tqdm=True)
    assert [a for a, _ in one] == pytest.approx([b for b, _ in many], abs=1e-4)


def test_greedy_flag_true_for_the_model_own_continuation(tiny):
    make_model, make_tok = tiny
    model, tok = make_model("qwen2", seed=2), make_tok()
    lm = InMemoryLM(model, tok)
    ctx = tok.encode("Acme Corp beats")
    with torch.no_grad():
        out = model.generate(torch.tensor([ctx]), max_new_tokens=4, do_sample=False, pad_token_id=0)
    cont = out[0, len(ctx):].tolist()
    (ll, greedy), = lm._loglikelihood_tokens([(("", ""), ctx, cont)])
    assert greedy is True
    other = [(cont[0] + 1) % len(tok)] + cont[1:]
    (_, greedy_other), = lm._loglikelihood_tokens([(("", ""), ctx, other)])
    assert greedy_other is False


def test_loglikelihood_rolling_is_the_sum_over_the_string(tiny):
    make_model, make_tok = tiny
    model, tok = make_model("llama", seed=0), make_tok()
    lm = InMemoryLM(model, tok)
    text = "Globex cuts full-year guidance on weak demand"
    (got,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    ref, _ = _reference(model, [lm.prefix_token_id], tok.encode(text))
    assert got == pytest.approx(ref, abs=1e-4)
    # a context window shorter than the text: disjoint windows still score every token once
    short = InMemoryLM(model, tok, max_length=5)
    (windowed,) = short.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    assert windowed < 0 and windowed != pytest.approx(got, abs=1e-6)


def test_generate_until_matches_greedy_generation_cut_at_stop(tiny):
    make_model, make_tok = tiny
    model, tok = make_model("mistral", seed=5), make_tok()
    lm = InMemoryLM(model, tok, batch_size=2)
    prompts = ["The capital of France is", "Hooli to acquire", "Globex cuts full-year guidance on weak"]
    kwargs = {"until": ["."], "do_sample": False, "max_gen_toks": 8}
    got = lm.generate_until([Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(prompts)])
    for prompt, text in zip(prompts, got, strict=True):
        ids = torch.tensor([tok.encode(prompt)])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
        expected = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split(".")[0]
        assert text == expected


def test_sampling_requests_are_refused(tiny):
    make_model, make_tok = tiny
    lm = InMemoryLM(make_model("llama"), make_tok())
    with pytest.raises(ValueError, match="greedily"):
        lm.generate_until([Instance("generate_until", {}, ("x", {"until": ["."], "do_sample": True}), 0)])




def test_bfloat16_autocast_stays_close_to_float32(tiny):
    make_model, make_tok = tiny
    model, tok = make_model("llama", seed=6), make_tok()
    full = InMemoryLM(model, tok).loglikelihood(_requests(), disable_tqdm=True)
    half = InMemoryLM(model, tok, precision="bfloat16").loglikelihood(_requests(), disable_tqdm=True)
    diffs = [abs(a - b) for (a, _), (b, _) in zip(full, half, strict=True)]
    assert max(diffs) > 0  # bf16 really ran
    assert max(diffs) < 0.05 * max(abs(a) for a, _ in full)
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is untouched
    with pytest.raises(ValueError, match="precision"):
        InMemoryLM(model, tok, precision="fp8")
