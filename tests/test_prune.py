"""Structural pruning on tiny random models of every supported architecture."""

from __future__ import annotations

import pytest
import torch
from tiny import ARCHS, CORPUS, SHORT_WINDOW, tiny_config, tiny_model, tiny_tokenizer

from taskdistill.errors import TaskDistillError
from taskdistill.prune.api import prune
from taskdistill.prune.importance import Importance
from taskdistill.prune.params import count_parameters
from taskdistill.prune.shape import TargetShape, plan_shape
from taskdistill.prune.surgery import prune_model

IDS = tiny_tokenizer()(CORPUS[:3], padding=True, return_tensors="pt")


def logits(model):
    with torch.no_grad():
        return model(**IDS).logits


def scores(model, seed=1, **zeros):
    """Random positive importance with the listed units set to zero (so they are pruned first)."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    L, H = cfg.num_hidden_layers, cfg.num_attention_heads
    imp = Importance(
        neurons=1 + torch.rand(L, cfg.intermediate_size, generator=g), heads=1 + torch.rand(L, H, generator=g),
        hidden=1 + torch.rand(cfg.hidden_size, generator=g), layers=1 + torch.rand(L, generator=g),
        num_key_value_heads=cfg.num_key_value_heads)
    for name, index in zeros.items():
        getattr(imp, name)[index] = 0
    return imp


@pytest.mark.parametrize("arch", ARCHS)
def test_keep_everything_is_identical(arch):
    model = tiny_model(arch)
    pruned = prune_model(model, scores(model), TargetShape.of(model.config))
    assert torch.allclose(logits(pruned), logits(model), atol=1e-5)
    same, report = prune(model, tiny_tokenizer(), 1.0, CORPUS)
    assert same is model and report.fraction_total == 1.0


@pytest.mark.parametrize("arch", ARCHS)
def test_zeroed_neurons_pruned_exactly(arch):
    model = tiny_model(arch)
    dead = torch.arange(0, 128, 4)  # 32 of 128 neurons
    for layer in model.model.layers:
        layer.mlp.down_proj.weight.data[:, dead] = 0
    target = TargetShape(4, 64, 96, 4, 2, 16)
    pruned = prune_model(model, scores(model, neurons=(slice(None), dead)), target)
    assert pruned.config.intermediate_size == 96
    assert torch.allclose(logits(pruned), logits(model), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_zeroed_query_heads_pruned_within_groups(arch):
    model = tiny_model(arch)  # 4 query heads in 2 KV groups: drop head 1 (group 0) and head 2 (group 1)
    d = 16
    for layer in model.model.layers:
        for h in (1, 2):
            layer.self_attn.o_proj.weight.data[:, h * d:(h + 1) * d] = 0
    pruned = prune_model(model, scores(model, heads=(slice(None), [1, 2])), TargetShape(4, 64, 128, 2, 2, 16))
    assert (pruned.config.num_attention_heads, pruned.config.num_key_value_heads) == (2, 2)
    assert torch.allclose(logits(pruned), logits(model), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_zeroed_kv_group_pruned_exactly(arch):
    model = tiny_model(arch)
    for layer in model.model.layers:
        layer.self_attn.o_proj.weight.data[:, 32:64] = 0  # query heads 2, 3 = KV group 1
    pruned = prune_model(model, scores(model, heads=(slice(None), [2, 3])), TargetShape(4, 64, 128, 2, 1, 16))
    assert torch.allclose(logits(pruned), logits(model), atol=1e-5)


@pytest.mark.parametrize("arch, overrides", [*((a, {}) for a in ARCHS), ("gemma3", SHORT_WINDOW)],
                         ids=[*ARCHS, "gemma3-window4"])
def test_identity_layer_pruned_exactly(arch, overrides):
    """With a 4-token window the sliding and full layers differ: the kept layers must keep their types."""
    model = tiny_model(arch, **overrides)
    for l in (0, 2):  # layers whose attention and MLP write nothing are the identity
        model.model.layers[l].self_attn.o_proj.weight.data.zero_()
        model.model.layers[l].mlp.down_proj.weight.data.zero_()
        if model.model.layers[l].self_attn.o_proj.bias is not None:
            model.model.layers[l].self_attn.o_proj.bias.data.zero_()
    pruned = prune_model(model, scores(model, layers=[0, 2]), TargetShape(2, 64, 128, 4, 2, 16))
    assert pruned.config.num_hidden_layers == 2
    assert torch.allclose(logits(pruned), logits(model), atol=1e-5)


@pytest.mark.parametrize("arch, overrides", [*((a, {}) for a in ARCHS), ("gemma3", {"tie_word_embeddings": False})],
                         ids=[*ARCHS, "gemma3-untied"])
def test_zeroed_hidden_channels_pruned_exactly(arch, overrides):
    """A residual channel nobody writes is zero; RMSNorm then averages over h' instead of h channels,
    which the surgery's sqrt(h/h') norm scaling undoes exactly when eps → 0 (hence eps = 1e-12 here).
    Norm gains are random, so Gemma's (1 + w) rescale is exercised with w ≠ 0. Gemma scales embeddings
    by sqrt(hidden) inside the model: the surgery must keep the kept channels' values, and when the
    embedding is also the LM head (tied) the final norm must undo that rescale."""
    model = tiny_model(arch, rms_norm_eps=1e-12, **overrides)
    g = torch.Generator().manual_seed(5)
    for name, param in model.named_parameters():
        if "norm" in name:  # gains around 1 (Gemma: w around 0, gain 1 + w)
            param.data.uniform_(-0.5, 0.5, generator=g).add_(0 if arch == "gemma3" else 1)
    dead = torch.tensor([3, 10, 11, 40, 41, 42, 60, 63])
    model.model.embed_tokens.weight.data[:, dead] = 0
    for layer in model.model.layers:  # the only writers into the residual stream (Gemma's post-norms
        layer.self_attn.o_proj.weight.data[dead] = 0  # after them map a zero channel to zero)
        layer.mlp.down_proj.weight.data[dead] = 0
    pruned = prune_model(model, scores(model, hidden=dead), TargetShape(4, 56, 128, 4, 2, 16))
    assert pruned.config.hidden_size == 56
    assert torch.allclose(logits(pruned), logits(model), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("axes", ["width", "depth", "mixed"])
def test_pruned_size_hits_keep_fraction(arch, axes):
    model = tiny_model(arch, num_hidden_layers=8, vocab_size=64)
    total = count_parameters(model)[0]
    kappas = (0.79, 0.58, 0.37)
    if axes == "depth":  # whole layers only: κ must sit on (near) a layer boundary
        kappas = tuple(count_parameters(tiny_config(arch, num_hidden_layers=n, vocab_size=64))[0] / total * 1.005
                       for n in (6, 4, 2))
    for kappa in kappas:
        target = plan_shape(model.config, kappa, axes)
        pruned = prune_model(model, scores(model), target)
        assert count_parameters(pruned)[0] == pytest.approx(kappa * total, rel=0.01)
        assert count_parameters(pruned) == count_parameters(pruned.config)
        assert pruned.config.num_attention_heads % pruned.config.num_key_value_heads == 0


@pytest.mark.parametrize("arch, overrides", [*((a, {}) for a in ARCHS), ("gemma3", SHORT_WINDOW)],
                         ids=[*ARCHS, "gemma3-window4"])
def test_save_and_reload_with_stock_transformers(arch, overrides, tmp_path):
    from transformers import AutoModelForCausalLM

    from taskdistill.models.load import save_model

    model = tiny_model(arch, num_hidden_layers=6, **overrides)
    pruned, report = prune(model, tiny_tokenizer(), 0.6, CORPUS, axes="mixed")
    save_model(pruned, tiny_tokenizer(), tmp_path / "out")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert torch.allclose(logits(again), logits(pruned), atol=1e-6)
    assert TargetShape.of(again.config).as_dict() == report.after
    assert again.config.tie_word_embeddings == model.config.tie_word_embeddings
    if getattr(model.config, "layer_types", None) is not None:  # Qwen, Gemma 3: the kept layers' types
        assert len(again.config.layer_types) == again.config.num_hidden_layers
        assert set(again.config.layer_types) <= set(model.config.layer_types)


def test_dtype_is_kept():
    model = tiny_model("llama").to(torch.bfloat16)
    pruned = prune_model(model, scores(model), TargetShape(3, 48, 64, 2, 2, 16))
    assert pruned.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in pruned.parameters())


def test_new_model_owns_its_tensors_and_fresh_buffers():
    """Nothing of the pruned model aliases the original (not even tensors kept whole), and its
    non-persistent buffers (Gemma: embedding scale, local and global rotary frequencies) are the ones a
    model built for its config has."""
    from transformers import AutoModelForCausalLM

    model = tiny_model("gemma3")
    for target in (TargetShape.of(model.config), TargetShape(3, 56, 96, 2, 2, 16)):
        pruned = prune_model(model, scores(model), target)
        old = {t.untyped_storage().data_ptr() for t in model.state_dict().values()}
        assert not old & {t.untyped_storage().data_ptr() for t in pruned.state_dict().values()}
        fresh = dict(AutoModelForCausalLM.from_config(pruned.config).named_buffers())
        buffers = dict(pruned.named_buffers())
        assert buffers.keys() == fresh.keys() and any("sliding" in k for k in buffers)
        for name, buffer in buffers.items():
            assert not buffer.is_meta and torch.equal(buffer, fresh[name]), name
        assert float(pruned.model.embed_tokens.embed_scale) == pytest.approx(target.hidden_size ** 0.5)


def test_surgery_peak_memory_is_the_kept_slices():
    """prune_model builds the new model with empty weights and assigns the slices: the resident set rises
    by the kept bytes plus a small margin (allocator slack, buffers and Python objects; measured about
    1 % of the model here), not by a randomly initialised copy on top (that was about 2κ)."""
    import gc

    from transformers import AutoModelForCausalLM, LlamaConfig

    from taskdistill.evaluate.cost import PeakRSS

    margin = 0.05  # of the model's bytes
    config = LlamaConfig(vocab_size=4096, hidden_size=1024, intermediate_size=4096, num_hidden_layers=4,
                         num_attention_heads=16, num_key_value_heads=4, head_dim=64, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()  # 265 MiB in float32
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    target, importance = plan_shape(config, 0.5, "mixed"), scores(model)
    gc.collect()
    with PeakRSS() as memory:
        pruned = prune_model(model, importance, target)
    if memory.delta_mb is None:
        pytest.skip("needs Linux /proc/self/clear_refs to reset the resident-set high-water mark")
    kept = sum(p.numel() * p.element_size() for p in pruned.parameters())
    rise = memory.delta_mb * 2**20
    assert kept == pytest.approx(0.5 * model_bytes, rel=0.02)
    assert rise <= kept + margin * model_bytes, (rise / model_bytes, kept / model_bytes)


def test_prune_report_fractions():
    model = tiny_model("qwen2")
    pruned, report = prune(model, tiny_tokenizer(), 0.5, CORPUS, axes="width")
    total, non_embedding = count_parameters(model)
    assert report.params_before == total and report.non_embedding_before == non_embedding
    assert report.params_after == count_parameters(pruned)[0]
    assert report.fraction_total == pytest.approx(0.5, rel=0.01)
    assert report.fraction_non_embedding == count_parameters(pruned)[1] / non_embedding
    assert report.as_dict()["after"]["hidden_size"] == pruned.config.hidden_size


def test_unsupported_architecture():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=400))
    with pytest.raises(TaskDistillError, match=r"unsupported architecture 'gpt2'.*supported: llama"):
        prune(gpt2, tiny_tokenizer(), 0.5, CORPUS)
    with pytest.raises(TaskDistillError, match="unsupported architecture"):
        count_parameters(gpt2.config)


@pytest.mark.parametrize("kappa", [0, -0.1, 1.01, 2])
def test_keep_fraction_out_of_range(kappa):
    with pytest.raises(TaskDistillError, match=r"outside \(0, 1\]"):
        prune(tiny_model("llama"), tiny_tokenizer(), kappa, CORPUS)


def test_bad_calibration_sets():
    model = tiny_model("llama")
    with pytest.raises(TaskDistillError, match="calibration set is empty"):
        prune(model, tiny_tokenizer(), 0.5, ["", "  "])

    class Silent:  # a tokenizer that produces no tokens at all
        pad_token_id = 0

        def __call__(self, text, **kwargs):
            return {"input_ids": []}

    with pytest.raises(TaskDistillError, match="tokenizes to nothing"):
        prune(model, Silent(), 0.5, ["some text"])


def test_infeasible_keep_fraction():
    config = tiny_config("llama")
    with pytest.raises(TaskDistillError, match="infeasible with axes=depth"):
        plan_shape(config, 0.05, "depth")
    with pytest.raises(TaskDistillError, match="unknown pruning axes"):
        plan_shape(config, 0.5, "diagonal")
    with pytest.raises(TaskDistillError, match="must decrease"):
        plan_shape(config, 0.9, "width", reference_params=2 * count_parameters(config)[0])


def smollm2_config():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, head_dim=64, tie_word_embeddings=True)


@pytest.mark.parametrize("axes", ["width", "mixed"])
def test_smollm2_shapes_are_valid_and_on_budget(axes):
    from taskdistill.prune.surgery import target_config

    config = smollm2_config()
    total = count_parameters(config)[0]
    assert total == 134_515_008  # the real teacher's count (checked against its weights in the slow test)
    for kappa in [k / 100 for k in range(16, 100, 3)]:
        target = plan_shape(config, kappa, axes)
        assert target.parameters(config)[0] == pytest.approx(kappa * total, rel=0.01)
        assert target.num_attention_heads % target.num_key_value_heads == 0
        assert target.hidden_size % target.num_attention_heads == 0 and target.hidden_size % 8 == 0
        assert target.head_dim == 64
        built = target_config(config, target, list(range(target.num_hidden_layers)))  # transformers validates
        assert count_parameters(built) == target.parameters(config)


def gemma3_270m_config():
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
                            num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512)


@pytest.mark.parametrize("axes", ["width", "mixed"])
def test_gemma3_270m_shapes_are_valid_and_on_budget(axes):
    """62 % of Gemma 3 270M is its 262k-token embedding: the planner must still land on κ × the total."""
    from taskdistill.prune.surgery import target_config

    config = gemma3_270m_config()
    total, non_embedding = count_parameters(config)
    assert (total, non_embedding) == (268_098_176, 100_326_016)  # the real model's (checked in the slow test)
    for kappa in [k / 100 for k in range(16, 100, 3)]:
        target = plan_shape(config, kappa, axes)
        assert target.parameters(config)[0] == pytest.approx(kappa * total, rel=0.01)
        assert target.hidden_size % target.num_attention_heads == 0 and target.head_dim == 256
        layers = list(range(0, 18, 18 // target.num_hidden_layers))[:target.num_hidden_layers]
        built = target_config(config, target, layers)  # transformers validates
        assert built.layer_types == [config.layer_types[l] for l in layers]
        assert count_parameters(built) == target.parameters(config)


def test_depth_plan_on_smollm2():
    config = smollm2_config()
    assert plan_shape(config, 0.58, "depth").num_hidden_layers == 14
    with pytest.raises(TaskDistillError, match="infeasible with axes=depth"):
        plan_shape(config, 0.16, "depth")  # the tied embedding alone is 21 % of the model


def test_public_face():
    import subprocess
    import sys

    import taskdistill.prune as stage
    from taskdistill.prune import api, schedule

    assert stage.prune is api.prune and stage.iterative_prune is schedule.iterative_prune
    assert all(getattr(stage, name) is not None for name in stage.__all__)
    with pytest.raises(AttributeError):
        stage.no_such_name  # noqa: B018
    # the root CLI imports prune.cli: that must not load torch
    code = "import sys, taskdistill.prune, taskdistill.prune.cli; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
