"""Cost of a student: parameter counts, analytic FLOPs vs torch's FLOP counter, measurement plumbing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch.utils.flop_counter import FlopCounterMode

from taskdistill.errors import TaskDistillError
from taskdistill.evaluate import cost


def counted_flops(model, tokens: int, batch: int = 1) -> int:
    """FLOPs torch counts for one eager forward over ``batch`` × ``tokens`` tokens."""
    model.config._attn_implementation = "eager"  # sdpa's fused kernel is invisible to the counter
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids)
    return counter.get_total_flops()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "mistral"])
def test_flops_per_token_equals_torch_flop_counter(tiny, arch):
    tiny_model, _ = tiny
    model = tiny_model(arch)
    for tokens in (7, 33):
        # a forward over T tokens = T tokens, each attending to T keys (the counter ignores the causal mask)
        assert cost.flops_per_token(model, tokens) * tokens * 2 == counted_flops(model, tokens, batch=2)


def test_parameter_counts_by_hand(tiny):
    tiny_model, tiny_tokenizer = tiny
    vocab = len(tiny_tokenizer())
    d, inter, layers, q, kv, hd = 64, 128, 4, 4, 2, 16
    per_layer = d * q * hd + 2 * d * kv * hd + q * hd * d + 3 * d * inter + 2 * d  # attn + mlp + 2 norms
    non_embedding = layers * per_layer + d  # + final norm
    tied = tiny_model("llama")  # tie_word_embeddings=True
    assert cost.count_parameters(tied) == (non_embedding + vocab * d, non_embedding)
    untied = tiny_model("mistral")  # separate lm_head
    assert cost.count_parameters(untied) == (non_embedding + 2 * vocab * d, non_embedding)
    assert cost.matmul_parameters(tied) == non_embedding - layers * 2 * d - d


def test_parameter_count_matches_safetensors_file(tiny, tmp_path):
    tiny_model, _ = tiny
    for arch in ("llama", "qwen2"):
        model = tiny_model(arch, num_hidden_layers=3)
        model.save_pretrained(tmp_path / arch)
        with safe_open(tmp_path / arch / "model.safetensors", "pt") as fh:
            stored = sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys())
        assert cost.count_parameters(model)[0] == stored


def test_peak_rss_sees_an_allocation():
    with cost.PeakRSS() as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, every page touched
        del block
    if memory.peak_mb is None:
        pytest.skip("no /proc/self/clear_refs on this OS")
    assert memory.delta_mb >= 60
    with cost.PeakRSS() as quiet:  # the mark was reset: the freed block no longer counts
        pass
    assert quiet.delta_mb < 30


def test_measure_cost_two_students(tiny):
    tiny_model, tiny_tokenizer = tiny
    tok = tiny_tokenizer()
    side = tok.padding_side
    small = cost.measure_cost(tiny_model("llama", num_hidden_layers=2), tok, batch_sizes=(1, 4), new_tokens=3, repeats=1)
    big = cost.measure_cost(tiny_model("llama", num_hidden_layers=6), tok, batch_sizes=(1, 4), new_tokens=3, repeats=1)
    assert tok.padding_side == side  # restored
    assert big.params_non_embedding == 3 * small.params_non_embedding - 2 * 64  # 3× the layers, one final norm
    assert big.flops_per_token > small.flops_per_token
    prompts = cost.default_prompts(tok, 4)
    mean_len = np.mean([len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts])
    assert small.context_length == pytest.approx(mean_len)
    for c in (small, big):
        assert set(c.latency_ms) == set(c.prefill_tokens_per_s) == set(c.decode_tokens_per_s) == {1, 4}
        assert all(v > 0 and math.isfinite(v) for d in (c.latency_ms, c.prefill_tokens_per_s, c.decode_tokens_per_s) for v in d.values())
        assert c.weights_mb == pytest.approx(c.params_total * 4 / 2**20, rel=0.01)  # float32, few buffers
        assert c.torch_threads == torch.get_num_threads()
        row = json.loads(json.dumps(c.to_dict()))
        assert row["latency_ms_batch1"] == c.latency_ms[1] and row["latency_ms_batched"] == c.latency_ms[4]
        assert row["batch_size_batched"] == 4 and row["machine"]["torch"] == torch.__version__


def test_decode_follows_greedy_generation(tiny):
    """The hand decode loop (cache, positions, mask) produces what generate produces."""
    tiny_model, tiny_tokenizer = tiny
    model, tok = tiny_model("qwen2"), tiny_tokenizer()
    tok.padding_side = "left"
    batch = tok(cost.default_prompts(tok, 3)[:3] + ["short"], return_tensors="pt", padding=True)
    seen = []
    original = model.forward

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        if kwargs["input_ids"].shape[1] == 1:
            seen.append(kwargs["input_ids"][:, 0].clone())
        return out

    model.forward = spy
    cost._decode(model, batch, cost._prefill(model, batch), 4)
    model.forward = original
    generated = model.generate(**batch, max_new_tokens=5, min_new_tokens=5, do_sample=False, pad_token_id=0)
    fed = torch.stack(seen, dim=1)  # the tokens the loop fed back: generated tokens 1..4
    assert torch.equal(fed, generated[:, batch["input_ids"].shape[1] : batch["input_ids"].shape[1] + 4])


def test_bad_input(tiny):
    tiny_model, tiny_tokenizer = tiny
    model, tok = tiny_model("llama"), tiny_tokenizer()
    with pytest.raises(TaskDistillError, match="empty prompt"):
        cost.measure_cost(model, tok, prompts=[])
    with pytest.raises(TaskDistillError, match="batch sizes"):
        cost.measure_cost(model, tok, batch_sizes=(0,))


@pytest.mark.slow
def test_smollm2_cost_against_its_files_and_the_flop_counter(teacher_path):
    """The real teacher: 134.5 M parameters as stored on disk; FLOPs as torch counts them."""
    from taskdistill.models.load import load_model

    model, tok = load_model(str(teacher_path))
    stored = 0
    for f in teacher_path.glob("*.safetensors"):
        with safe_open(f, "pt") as fh:
            stored += sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys())
    total, non_embedding = cost.count_parameters(model)
    assert total == stored == 134_515_008
    assert non_embedding == total - 49152 * 576  # tied embeddings: one vocab × hidden matrix
    assert cost.flops_per_token(model, 16) * 16 == counted_flops(model, 16)
    c = cost.measure_cost(model, tok, batch_sizes=(1, 2), new_tokens=2, repeats=1)
    assert c.params_total == total and c.context_length > 100  # the classification prompt lists 13 labels
    assert c.weights_mb == pytest.approx(total * 4 / 2**20, rel=0.01)
    assert c.peak_rss_mb is None or c.peak_rss_mb > c.weights_mb  # the weights are resident
