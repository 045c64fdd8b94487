"""Weight surgery: slice a model into a new, smaller model of the target shape (a stock HF class).

Hand-written: transformers has no structural slicing for these architectures. Units kept per axis are
the most important ones (``Importance``); kept layers stay in their original order. Query heads are
chosen inside the kept KV groups, so GQA stays valid. When hidden channels are dropped, the RMSNorm
weights are scaled by sqrt(h / h'): a channel carrying no energy then changes nothing (exact as the
norm's eps → 0), because the mean square is taken over h' instead of h channels.
"""

from __future__ import annotations

import copy
import math

import torch

from taskdistill.errors import TaskDistillError
from taskdistill.prune.importance import Importance
from taskdistill.prune.params import check_supported
from taskdistill.prune.shape import TargetShape


def top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores, in ascending index order (ties: lower index first)."""
    order = torch.argsort(-scores.double(), stable=True)[:k]
    return torch.sort(order).values


def select(importance: Importance, target: TargetShape, config, layer_metric: str = "cosine") -> dict:
    """Which layers, hidden channels, neurons and heads to keep (indices into the current model)."""
    nq, nkv = config.num_attention_heads, config.num_key_value_heads
    if (target.num_hidden_layers > config.num_hidden_layers or target.hidden_size > config.hidden_size
            or target.intermediate_size > config.intermediate_size or target.num_attention_heads > nq
            or target.num_key_value_heads > nkv or target.head_dim != _head_dim(config)):
        raise TaskDistillError(f"target shape {target.as_dict()} is not a sub-shape of the model")
    if target.num_attention_heads % target.num_key_value_heads:
        raise TaskDistillError("target query heads must be divisible by its KV heads")
    per_group = target.num_attention_heads // target.num_key_value_heads
    if per_group > nq // nkv:
        raise TaskDistillError(f"target needs {per_group} query heads per KV group, the model has {nq // nkv}")
    layers = top(importance.layer_scores(layer_metric), target.num_hidden_layers)
    heads, neurons = [], []
    for l in layers.tolist():
        groups = top(importance.kv_groups()[l], target.num_key_value_heads)
        q = []
        for g in groups.tolist():
            inside = importance.heads[l, g * (nq // nkv):(g + 1) * (nq // nkv)]
            q.extend((g * (nq // nkv) + top(inside, per_group)).tolist())
        heads.append((torch.tensor(q), groups))
        neurons.append(top(importance.neurons[l], target.intermediate_size))
    return {"layers": layers, "hidden": top(importance.hidden, target.hidden_size), "heads": heads, "neurons": neurons}


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _rows(heads: torch.Tensor, d: int) -> torch.Tensor:
    return (heads[:, None] * d + torch.arange(d)[None, :]).reshape(-1)


def target_config(config, target: TargetShape, layers: list[int]):
    values = config.to_dict()
    values.update(target.as_dict())
    if isinstance(getattr(config, "layer_types", None), list) and "layer_types" in values:
        values["layer_types"] = [config.layer_types[l] for l in layers]
    if getattr(config, "max_window_layers", None) is not None:
        values["max_window_layers"] = min(config.max_window_layers, target.num_hidden_layers)
    return type(config).from_dict(values)


# per-layer tensor → (rows kept, columns kept, scaled by sqrt(h/h')); "hid" = hidden channels
SLICES = {
    "input_layernorm.weight": ("hid", None, True),
    "post_attention_layernorm.weight": ("hid", None, True),
    "self_attn.q_proj.weight": ("q", "hid", False),
    "self_attn.q_proj.bias": ("q", None, False),
    "self_attn.k_proj.weight": ("kv", "hid", False),
    "self_attn.k_proj.bias": ("kv", None, False),
    "self_attn.v_proj.weight": ("kv", "hid", False),
    "self_attn.v_proj.bias": ("kv", None, False),
    "self_attn.o_proj.weight": ("hid", "q", False),
    "self_attn.o_proj.bias": ("hid", None, False),
    "self_attn.q_norm.weight": (None, None, False),
    "self_attn.k_norm.weight": (None, None, False),
    "mlp.gate_proj.weight": ("mlp", "hid", False),
    "mlp.gate_proj.bias": ("mlp", None, False),
    "mlp.up_proj.weight": ("mlp", "hid", False),
    "mlp.up_proj.bias": ("mlp", None, False),
    "mlp.down_proj.weight": ("hid", "mlp", False),
    "mlp.down_proj.bias": ("hid", None, False),
}


def sliced_state(model, keep: dict) -> dict[str, torch.Tensor]:
    """The pruned state dict, keyed for the new model (layers renumbered)."""
    cfg = model.config
    d = _head_dim(cfg)
    hid = keep["hidden"]
    scale = math.sqrt(cfg.hidden_size / len(hid))
    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    prefix = "model."
    out[prefix + "embed_tokens.weight"] = state[prefix + "embed_tokens.weight"][:, hid]
    out[prefix + "norm.weight"] = state[prefix + "norm.weight"][hid] * scale
    if "lm_head.weight" in state and not cfg.tie_word_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"][:, hid]
    for new, old in enumerate(keep["layers"].tolist()):
        src, dst = f"{prefix}layers.{old}.", f"{prefix}layers.{new}."
        q_heads, kv_groups = keep["heads"][new]
        q_rows, kv_rows, neurons = _rows(q_heads, d), _rows(kv_groups, d), keep["neurons"][new]
        rows = {"q": q_rows, "kv": kv_rows, "mlp": neurons, "hid": hid, None: None}
        for name, tensor in state.items():
            if name.startswith(src):
                rest = name[len(src):]
                if rest not in SLICES:
                    raise TaskDistillError(f"pruning does not know how to slice {name}; unsupported layout")
                row, col, scaled = SLICES[rest]
                piece = tensor if row is None else tensor[rows[row]]
                piece = piece if col is None else piece[:, rows[col]]
                out[dst + rest] = (piece * scale if scaled else piece).clone()
    return out


def prune_model(model, importance: Importance, target: TargetShape, layer_metric: str = "cosine"):
    """A new model of ``target`` shape holding the most important units of ``model`` (same dtype)."""
    from transformers import AutoModelForCausalLM

    check_supported(model.config)
    keep = select(importance, target, model.config, layer_metric)
    config = target_config(model.config, target, keep["layers"].tolist())
    state = sliced_state(model, keep)
    new = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = new.load_state_dict(state, strict=False)
    allowed = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - allowed or unexpected:
        raise RuntimeError(f"surgery left missing={missing} unexpected={unexpected}")
    if config.tie_word_embeddings:
        new.tie_weights()
    new.generation_config = copy.deepcopy(model.generation_config)
    new.eval()
    return new
