"""Weight surgery: slice a model into a new, smaller model of the target shape (a stock HF class).

Hand-written: transformers has no structural slicing for these architectures. Units kept per axis are
the most important ones (``Importance``); kept layers stay in their original order. Query heads are
chosen inside the kept KV groups, so GQA stays valid. What each tensor's rows and columns are comes
from the architecture record (``archs``). When hidden channels are dropped, the RMSNorm gains
(w, or Gemma's 1 + w) are scaled by sqrt(h / h'): a channel carrying no energy then changes nothing
(exact as the norm's eps → 0), because the mean square is taken over h' instead of h channels.
"""

from __future__ import annotations

import copy
import math

import torch

from taskdistill.errors import TaskDistillError
from taskdistill.prune.archs import (
    DIM,
    HID,
    KV,
    MLP,
    Architecture,
    Q,
    architecture,
    head_dim,
    unit_sizes,
)
from taskdistill.prune.importance import Importance, model_device
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
            or target.num_key_value_heads > nkv or target.head_dim != head_dim(config)):
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


def take(tensor: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None) -> torch.Tensor:
    """The kept rows and columns of ``tensor`` as one fresh tensor: a single gather, no intermediate copy;
    a tensor kept whole is cloned, so the new model never shares storage with the old one."""
    tensor = tensor.detach()
    if rows is None and cols is None:
        return tensor.clone()
    if cols is None:
        return tensor.index_select(0, rows.to(tensor.device))
    if rows is None:
        return tensor.index_select(1, cols.to(tensor.device))
    return tensor[rows.to(tensor.device)[:, None], cols.to(tensor.device)]


def fused_rows(units: tuple[str, ...], index: dict, full: dict[str, int]) -> torch.Tensor | None:
    """Row indices of a (possibly fused) tensor whose rows are ``units`` concatenated; None keeps all."""
    if len(units) == 1:
        return index[units[0]]
    parts, offset = [], 0
    for unit in units:
        kept = index[unit] if index[unit] is not None else torch.arange(full[unit])
        parts.append(offset + kept)
        offset += full[unit]
    return torch.cat(parts)


def rescale_norm(weight: torch.Tensor, factor: float, offset: float) -> torch.Tensor:
    """RMSNorm gain (offset + w) multiplied by ``factor``: w' = (offset + w)·factor − offset."""
    if factor == 1.0:
        return weight
    return ((weight.float() + offset) * factor - offset).to(weight.dtype)


def sliced_state(model, keep: dict, arch: Architecture | None = None) -> dict[str, torch.Tensor]:
    """The pruned state dict, keyed for the new model (layers renumbered); every tensor a fresh one.

    Hidden pruning h → h': hidden-norm gains (offset + w) × sqrt(h/h'); embeddings the model scales by
    f(h) get × f(h)/f(h') so the kept channels' values stay the same; the final norm is rescaled by
    sqrt(h/h') divided by that factor when the LM head is the (rescaled) tied embedding.
    """
    cfg = model.config
    arch = arch or architecture(cfg)
    d = head_dim(cfg)
    hid = keep["hidden"]
    norm_factor = math.sqrt(cfg.hidden_size / len(hid))
    state = model.state_dict()
    embedding = state[f"{arch.embedding}.weight"]
    emb_factor = arch.embedding_factor(cfg.hidden_size, len(hid), embedding.dtype)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    out: dict[str, torch.Tensor] = {}
    out[f"{arch.embedding}.weight"] = take(embedding, None, hid)
    if emb_factor != 1.0:
        out[f"{arch.embedding}.weight"].mul_(emb_factor)
    out[f"{arch.final_norm}.weight"] = rescale_norm(take(state[f"{arch.final_norm}.weight"], hid, None),
                                                    norm_factor / (emb_factor if tied else 1.0), arch.norm_offset)
    if not tied:
        out[f"{arch.lm_head}.weight"] = take(state[f"{arch.lm_head}.weight"], None, hid)
    full = unit_sizes(hidden=cfg.hidden_size, intermediate=cfg.intermediate_size, heads=cfg.num_attention_heads,
                      kv_heads=cfg.num_key_value_heads, dim=d)
    tensors = {t.name: t for t in arch.tensors(cfg)}
    for new, old in enumerate(keep["layers"].tolist()):
        src, dst = f"{arch.layers}.{old}.", f"{arch.layers}.{new}."
        present = {name[len(src):] for name in state if name.startswith(src)}
        if present - tensors.keys():
            name = src + min(present - tensors.keys())
            raise TaskDistillError(f"pruning does not know how to slice {name}; unsupported layout")
        if tensors.keys() - present:
            raise TaskDistillError(f"{src[:-1]} has no {min(tensors.keys() - present)}; unsupported layout")
        q_heads, kv_groups = keep["heads"][new]
        index = {Q: _rows(q_heads, d), KV: _rows(kv_groups, d), MLP: keep["neurons"][new], HID: hid, DIM: None}
        for name, rule in tensors.items():
            piece = take(state[src + name], fused_rows(rule.rows, index, full), index[rule.cols] if rule.cols else None)
            out[dst + name] = rescale_norm(piece, norm_factor, arch.norm_offset) if rule.norm else piece
    return out


def prune_model(model, importance: Importance, target: TargetShape, layer_metric: str = "cosine"):
    """A new model of ``target`` shape holding the most important units of ``model`` (same dtype, device).

    The new model is built with empty (meta) parameters and the sliced tensors are put straight in, so
    the peak is the model plus the kept slices (no randomly initialised copy); buffers (rotary
    frequencies, Gemma's embedding scale) are computed for the new config at construction.
    """
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    arch = architecture(model.config)
    keep = select(importance, target, model.config, layer_metric)
    config = target_config(model.config, target, keep["layers"].tolist())
    state = sliced_state(model, keep, arch)
    with init_empty_weights(include_buffers=False):
        new = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = new.load_state_dict(state, strict=False, assign=True)
    del state
    allowed = {f"{arch.lm_head}.weight"} if config.tie_word_embeddings else set()
    if set(missing) - allowed or unexpected:
        raise RuntimeError(f"surgery left missing={missing} unexpected={unexpected}")
    if config.tie_word_embeddings:
        new.tie_weights()
    empty = [name for name, t in [*new.named_parameters(), *new.named_buffers()] if t.is_meta]
    if empty:
        raise RuntimeError(f"surgery left tensors without values: {empty}")
    new.to(model_device(model))  # the weights are there already; moves the buffers
    new.generation_config = copy.deepcopy(model.generation_config)
    new.eval()
    return new
