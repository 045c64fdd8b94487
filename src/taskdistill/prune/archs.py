"""What a prunable architecture is: one record per Hugging Face ``model_type``, in one registry.

A record lists every tensor of a decoder layer with the prunable unit along each of its dimensions.
That one table gives the analytic parameter count (``params``), the slicing rules (``surgery``) and the
hidden-size norms (rescaled by ``surgery``, scored by ``importance``); the record also names the modules
the importance hooks use, the RMSNorm kind and the embedding scale. Nothing else in the package branches on
``model_type``: adding an architecture is adding a record here (and a tiny config in ``tests/tiny.py``).
Hand-written: transformers does not describe which dimension of which tensor holds which prunable unit.

Units (the size of each at a shape is ``unit_sizes``):
  ``q``    query-head rows (query heads × head_dim)      ``kv``   KV-group rows (KV heads × head_dim)
  ``mlp``  MLP neurons (intermediate size)               ``hid``  hidden (residual) channels
  ``dim``  one head's head_dim (never pruned: per-head q/k norms are shared by all heads, kept whole)
A fused projection lists several row units: its rows are those parts, concatenated in that order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from taskdistill.errors import TaskDistillError

Q, KV, MLP, HID, DIM = "q", "kv", "mlp", "hid", "dim"


@dataclass(frozen=True)
class Tensor:
    """One tensor of a decoder layer, named relative to the layer (``self_attn.q_proj.weight``)."""

    name: str
    rows: tuple[str, ...]  # unit of dim 0; several units = a fused tensor (parts concatenated)
    cols: str | None = None  # unit of dim 1; None for a vector
    when: str | None = None  # config flag the tensor depends on (e.g. "attention_bias"); None: always there
    norm: bool = False  # an RMSNorm gain over the hidden channels (rescaled when hidden channels are dropped)

    def numel(self, sizes: dict[str, int]) -> int:
        return sum(sizes[u] for u in self.rows) * (sizes[self.cols] if self.cols else 1)


@dataclass(frozen=True)
class Architecture:
    model_type: str
    layer: tuple[Tensor, ...]  # every tensor of one decoder layer
    norm_offset: float = 0.0  # RMSNorm multiplies by (offset + w): 0 for the standard w, 1 for Gemma's (1 + w)
    embed_scale: Callable[[int], float] | None = None  # the model's multiplier of embedding outputs, f(hidden)
    scored_norms: tuple[str, ...] | None = None  # norms (relative to a layer) whose outputs score hidden channels;
    #                                              None: every hidden norm of the layer
    mlp_down: str = "mlp.down_proj"  # its input = the MLP neuron activations (relative to a layer)
    attn_out: str = "self_attn.o_proj"  # its input = the query heads' outputs (relative to a layer)
    backbone: str = "model"  # the decoder without the LM head (importance runs it)
    layers: str = "model.layers"
    final_norm: str = "model.norm"
    embedding: str = "model.embed_tokens"
    lm_head: str = "lm_head"

    def tensors(self, config) -> tuple[Tensor, ...]:
        """The layer tensors this config has (flags such as ``attention_bias`` switch biases on)."""
        return tuple(t for t in self.layer if t.when is None or getattr(config, t.when, False))

    @property
    def hidden_norms(self) -> tuple[str, ...]:
        """Module paths (relative to a layer) of the RMSNorms over the hidden channels, in layer order (their
        gains are rescaled by hidden pruning)."""
        return tuple(t.name.removesuffix(".weight") for t in self.layer if t.norm)

    @property
    def importance_norms(self) -> tuple[str, ...]:
        """The layer norms whose outputs score hidden channels (with the final norm)."""
        return self.hidden_norms if self.scored_norms is None else self.scored_norms

    def layer_parameters(self, config, sizes: dict[str, int]) -> int:
        return sum(t.numel(sizes) for t in self.tensors(config))

    def embedding_factor(self, hidden: int, new_hidden: int, dtype) -> float:
        """Factor on the kept embedding columns that keeps their (scaled) values unchanged at ``new_hidden``:
        the model multiplies by ``embed_scale(hidden)`` rounded to the weights' dtype, as the forward does."""
        if self.embed_scale is None or hidden == new_hidden:
            return 1.0
        import torch

        def applied(h: int) -> float:
            return float(torch.tensor(self.embed_scale(h), dtype=torch.float32).to(dtype))

        return applied(hidden) / applied(new_hidden)


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def unit_sizes(*, hidden: int, intermediate: int, heads: int, kv_heads: int, dim: int) -> dict[str, int]:
    return {Q: heads * dim, KV: kv_heads * dim, MLP: intermediate, HID: hidden, DIM: dim}


# --- building blocks of the records -------------------------------------------------------------------

def linear(name: str, rows: str | tuple[str, ...], cols: str, bias: bool | str = False) -> tuple[Tensor, ...]:
    """A linear layer's weight (rows = outputs, cols = inputs) and, if ``bias`` (True or a config flag), its bias."""
    rows = (rows,) if isinstance(rows, str) else rows
    weight = Tensor(f"{name}.weight", rows, cols)
    if not bias:
        return (weight,)
    return weight, Tensor(f"{name}.bias", rows, when=None if bias is True else bias)


def norms(*names: str) -> tuple[Tensor, ...]:
    return tuple(Tensor(f"{n}.weight", (HID,), norm=True) for n in names)


def attention(qkv_bias: bool | str = False, o_bias: bool | str = False, qk_norm: bool = False) -> tuple[Tensor, ...]:
    """Separate q/k/v/o projections (Llama layout), optional biases and per-head q/k RMSNorms over head_dim."""
    per_head = (Tensor("self_attn.q_norm.weight", (DIM,)), Tensor("self_attn.k_norm.weight", (DIM,))) if qk_norm else ()
    return (*linear("self_attn.q_proj", Q, HID, qkv_bias), *linear("self_attn.k_proj", KV, HID, qkv_bias),
            *linear("self_attn.v_proj", KV, HID, qkv_bias), *linear("self_attn.o_proj", HID, Q, o_bias), *per_head)


def gated_mlp(bias: bool | str = False) -> tuple[Tensor, ...]:
    return (*linear("mlp.gate_proj", MLP, HID, bias), *linear("mlp.up_proj", MLP, HID, bias),
            *linear("mlp.down_proj", HID, MLP, bias))


PRE_NORMS = norms("input_layernorm", "post_attention_layernorm")  # before attention, before the MLP

# --- the records ----------------------------------------------------------------------------------------
# (registration order is the order the "supported:" error lists them in)

ARCHITECTURES: dict[str, Architecture] = {a.model_type: a for a in (
    Architecture("llama", (*PRE_NORMS, *attention("attention_bias", "attention_bias"), *gated_mlp("mlp_bias"))),
    Architecture("mistral", (*PRE_NORMS, *attention(), *gated_mlp())),
    Architecture("qwen2", (*PRE_NORMS, *attention(qkv_bias=True), *gated_mlp())),
    Architecture("qwen3", (*PRE_NORMS, *attention("attention_bias", "attention_bias", qk_norm=True), *gated_mlp())),
    # Gemma 3 text: (1 + w) RMSNorms, a norm before and after both attention and MLP, embeddings × sqrt(hidden).
    # Hidden channels are scored by the norms that read the residual stream (as Llama's two): the post-norms
    # give near-zero gain to channels that mainly set their RMS, and scoring by them drops those channels.
    Architecture("gemma3_text", (
        *norms("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
        *attention("attention_bias", "attention_bias", qk_norm=True), *gated_mlp()),
        norm_offset=1.0, embed_scale=math.sqrt, scored_norms=("input_layernorm", "pre_feedforward_layernorm")),
    # Phi-3: fused qkv_proj (query, key, value rows) and gate_up_proj (gate, up rows)
    Architecture("phi3", (
        *PRE_NORMS, *linear("self_attn.qkv_proj", (Q, KV, KV), HID), *linear("self_attn.o_proj", HID, Q),
        *linear("mlp.gate_up_proj", (MLP, MLP), HID), *linear("mlp.down_proj", HID, MLP))),
    # Granite: Llama's layout; its embedding / residual / attention multipliers are constants of the config
    Architecture("granite", (*PRE_NORMS, *attention("attention_bias", "attention_bias"), *gated_mlp("mlp_bias"))),
)}

SUPPORTED = tuple(ARCHITECTURES)  # the built-in records (``supported()`` also lists registered ones)


def register(arch: Architecture) -> Architecture:
    """Add (or replace) the record of one ``model_type``."""
    ARCHITECTURES[arch.model_type] = arch
    return arch


def supported() -> tuple[str, ...]:
    return tuple(ARCHITECTURES)


def architecture(config) -> Architecture:
    """The record for ``config``'s ``model_type``, else a one-line TaskDistillError listing the supported types."""
    kind = getattr(config, "model_type", None)
    if kind not in ARCHITECTURES:
        raise TaskDistillError(
            f"unsupported architecture {kind!r} for structural pruning, supported: {', '.join(supported())}"
        )
    return ARCHITECTURES[kind]


def check_supported(config) -> str:
    """The config's ``model_type`` if pruning supports it, else a TaskDistillError."""
    return architecture(config).model_type
