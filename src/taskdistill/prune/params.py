"""Parameter counts of a model or (analytically) of a config; supported architectures."""

from __future__ import annotations

from taskdistill.errors import TaskDistillError

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")


def check_supported(config) -> str:
    """The config's ``model_type`` if pruning supports it, else a TaskDistillError."""
    kind = getattr(config, "model_type", None)
    if kind not in SUPPORTED:
        raise TaskDistillError(
            f"unsupported architecture {kind!r} for structural pruning, supported: {', '.join(SUPPORTED)}"
        )
    return kind


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def layer_parameters(config, *, hidden=None, intermediate=None, heads=None, kv_heads=None) -> int:
    """Parameters of one decoder layer, optionally for other widths than the config's."""
    kind = check_supported(config)
    h = hidden or config.hidden_size
    i = intermediate or config.intermediate_size
    nq = heads or config.num_attention_heads
    nkv = kv_heads or config.num_key_value_heads
    d = head_dim(config)
    attn = h * d * (nq + 2 * nkv) + nq * d * h
    if kind == "qwen2":  # q/k/v always carry a bias, o_proj none
        attn += d * (nq + 2 * nkv)
    elif kind in ("llama", "qwen3") and getattr(config, "attention_bias", False):  # q, k, v and o
        attn += d * (nq + 2 * nkv) + h
    if kind == "qwen3":  # per-head q_norm / k_norm
        attn += 2 * d
    mlp = 3 * h * i + ((2 * i + h) if kind == "llama" and getattr(config, "mlp_bias", False) else 0)
    return attn + mlp + 2 * h  # + input and post-attention RMSNorm


def config_parameters(config, *, layers=None, hidden=None, intermediate=None, heads=None, kv_heads=None):
    """``(total, non_embedding)`` computed from the config's shape; tied embeddings count once."""
    n_layers = config.num_hidden_layers if layers is None else layers
    h = hidden or config.hidden_size
    body = n_layers * layer_parameters(config, hidden=h, intermediate=intermediate, heads=heads, kv_heads=kv_heads)
    non_embedding = body + h  # + final norm
    embedding = config.vocab_size * h * (1 if getattr(config, "tie_word_embeddings", False) else 2)
    return non_embedding + embedding, non_embedding


def count_parameters(model_or_config) -> tuple[int, int]:
    """``(total, non_embedding)`` parameters; non-embedding excludes the input embedding and lm_head.

    A model is counted from its tensors (shared tensors once); a config analytically.
    """
    if not hasattr(model_or_config, "parameters"):
        return config_parameters(model_or_config)
    model = model_or_config
    seen: dict[int, int] = {}
    for param in model.parameters():  # parameters() already yields a tied tensor once
        seen[id(param)] = param.numel()
    total = sum(seen.values())
    embedding_ids = {id(model.get_input_embeddings().weight)}
    out = model.get_output_embeddings()
    if out is not None:
        embedding_ids.add(id(out.weight))
    embedding = sum(seen.get(i, 0) for i in embedding_ids)
    return total, total - embedding
