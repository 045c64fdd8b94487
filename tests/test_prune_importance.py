"""Importance scores: hand-checked values, padding invariance, constructed rankings, the cache."""

from __future__ import annotations

import pytest
import torch
from tiny import ARCHS, CORPUS, tiny_model, tiny_tokenizer

from taskdistill import settings
from taskdistill.prune import importance as imp_mod
from taskdistill.prune.archs import architecture
from taskdistill.prune.importance import compute_importance, tokenize_calibration


def test_neuron_scores_match_a_hand_computation():
    model, tok = tiny_model("llama"), tiny_tokenizer()
    seen = []  # the MLP's input, captured independently, to recompute act(gate x) * (up x)
    handles = [layer.mlp.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
               for layer in model.model.layers]
    texts = CORPUS[:2]
    with torch.no_grad():
        for t in texts:
            model(**tok(t, return_tensors="pt"))
    for h in handles:
        h.remove()
    mlp = model.model.layers[1].mlp
    xs = [seen[1], seen[5]]  # layer 1 for text 0 and text 1
    act = torch.cat([(torch.nn.functional.silu(x @ mlp.gate_proj.weight.T) * (x @ mlp.up_proj.weight.T))[0] for x in xs])
    imp = compute_importance(model, tok, texts)
    assert torch.allclose(imp.neurons[1], act.pow(2).sum(0).sqrt(), rtol=1e-4)
    assert imp.tokens == sum(len(tok(t)["input_ids"]) for t in texts)


def test_layer_score_is_mean_cosine_distance():
    model, tok = tiny_model("qwen2", num_hidden_layers=2), tiny_tokenizer()
    ins, outs = [], []
    layer = model.model.layers[0]

    def record(module, args, kwargs, output):
        ins.append(args[0] if args else kwargs["hidden_states"])
        outs.append(output)

    h1 = layer.register_forward_hook(record, with_kwargs=True)
    with torch.no_grad():
        model(**tok(CORPUS[0], return_tensors="pt"))
    h1.remove()
    expected = (1 - torch.nn.functional.cosine_similarity(ins[0], outs[0], dim=-1)).mean()
    assert compute_importance(model, tok, [CORPUS[0]]).layers[0] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("arch", ["mistral", "gemma3", "phi3"])
def test_padding_does_not_change_scores(arch):
    model, tok = tiny_model(arch), tiny_tokenizer()
    one = imp_mod._measure(model, tokenize_calibration(tok, CORPUS, 128, 1), False)
    many = imp_mod._measure(model, tokenize_calibration(tok, CORPUS, 128, 4), False)
    for name in ("neurons", "heads", "hidden", "layers"):
        assert torch.allclose(getattr(one, name), getattr(many, name), rtol=1e-4), name


def up_rows(layer):
    """The up projection's weight rows (Phi-3 fuses gate and up: the up rows come second)."""
    if hasattr(layer.mlp, "up_proj"):
        return layer.mlp.up_proj.weight
    fused = layer.mlp.gate_up_proj.weight
    return fused[fused.shape[0] // 2:]


def value_rows(layer):
    """The value projection's weight rows (Phi-3 fuses q, k, v: the 2 KV heads' value rows come last)."""
    if hasattr(layer.self_attn, "v_proj"):
        return layer.self_attn.v_proj.weight
    fused = layer.self_attn.qkv_proj.weight
    return fused[fused.shape[0] - 2 * 16:]


@pytest.mark.parametrize("arch", ARCHS)
def test_ranking_on_a_constructed_model(arch):
    model, tok = tiny_model(arch), tiny_tokenizer()
    layers, arch = model.model.layers, architecture(model.config)
    with torch.no_grad():
        for layer in layers:
            up_rows(layer)[7] *= 100  # neuron 7 is loud everywhere
            up_rows(layer)[9] = 0  # neuron 9 is silent
            value_rows(layer)[:16] = 0  # KV group 0 (query heads 0, 1) outputs nothing
            value_rows(layer)[16:] *= 10
            for norm in arch.hidden_norms:  # hidden channel 5 dominates every norm: gain 5 (Gemma: 1 + w = 5)
                layer.get_submodule(norm).weight[5] = 5 - arch.norm_offset
        layers[2].self_attn.o_proj.weight.zero_()  # layer 2 is the identity
        layers[2].mlp.down_proj.weight.zero_()
    imp = compute_importance(model, tok, CORPUS, layer_loss=True)
    assert (imp.neurons.argmax(1) == 7).all() and (imp.neurons[:, 9] == 0).all()
    assert (imp.heads[:, :2] == 0).all() and (imp.heads[:, 2:] > 0).all()
    assert (imp.kv_groups().argmax(1) == 1).all()
    assert imp.hidden.argmax() == 5
    assert imp.layers.argmin() == 2 and imp.layers[2] < 1e-6
    assert abs(float(imp.layer_loss[2])) < 1e-5  # skipping the identity costs nothing


def test_layer_loss_matches_a_model_without_the_layer():
    import copy

    model, tok = tiny_model("qwen2", num_hidden_layers=3), tiny_tokenizer()
    batch = tok(CORPUS[1], return_tensors="pt")
    skipped = copy.deepcopy(model)
    del skipped.model.layers[1]  # the same model with layer 1 removed
    skipped.config.num_hidden_layers = 2
    skipped.config.layer_types = skipped.config.layer_types[:2]
    with torch.no_grad():
        base = model(**batch, labels=batch["input_ids"]).loss
        without = skipped(**batch, labels=batch["input_ids"], use_cache=False).loss
    imp = compute_importance(model, tok, [CORPUS[1]], layer_loss=True)
    assert float(imp.layer_loss[1]) == pytest.approx(float(without - base), abs=1e-5)


def test_cache_reuses_and_separates(monkeypatch):
    model, tok = tiny_model("llama"), tiny_tokenizer()
    first = compute_importance(model, tok, CORPUS)
    assert len(list(settings.cache_dir("importance").glob("*.safetensors"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("importance recomputed although cached")

    monkeypatch.setattr(imp_mod, "_measure", boom)
    again = compute_importance(model, tok, CORPUS)
    assert torch.equal(again.neurons, first.neurons) and torch.equal(again.layers, first.layers)
    assert again.tokens == first.tokens
    with pytest.raises(AssertionError, match="recomputed"):
        compute_importance(model, tok, CORPUS[:-1])  # other calibration texts: a new key
    with torch.no_grad():
        model.model.norm.weight.add_(1.0)
    with pytest.raises(AssertionError, match="recomputed"):
        compute_importance(model, tok, CORPUS)  # other weights: a new key


def test_bf16_model_scores_on_its_device():
    """A bf16 model: batches, masks and float64 accumulators follow the model; scores come back float32 on
    the CPU and agree with the float32 model's up to bf16 rounding."""
    tok = tiny_tokenizer()
    model = tiny_model("gemma3")
    batches = tokenize_calibration(tok, CORPUS, 128, 4)
    full = imp_mod._measure(model, batches, layer_loss=True)
    half = imp_mod._measure(model.to(torch.bfloat16), batches, layer_loss=True)
    for name in ("neurons", "heads", "hidden", "layers", "layer_loss"):
        got = getattr(half, name)
        assert got.shape == getattr(full, name).shape and got.dtype == torch.float32 and got.device.type == "cpu", name
        assert torch.isfinite(got).all(), name
    for name in ("neurons", "heads", "hidden"):
        assert torch.allclose(getattr(half, name), getattr(full, name), rtol=0.05, atol=1e-3), name
    assert half.tokens == full.tokens
