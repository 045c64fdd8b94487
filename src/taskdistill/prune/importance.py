"""Minitron-style importance from a calibration set, measured with forward hooks.

Scores (all ≥ 0; larger = more important), aggregated over every non-padding token of every example:
  neurons[l, j]  L2 norm of MLP intermediate activation j (the input of ``down_proj``);
  heads[l, h]    L2 norm of query head h's attention output (its slice of the input of ``o_proj``);
  hidden[c]      sum over all hidden-size RMSNorm outputs (each layer's, as its architecture record lists
                 them, and the final norm) of the L2 norm of channel c;
  layers[l]      1 − cos(layer input, layer output), averaged over tokens;
  layer_loss[l]  (optional) increase of the calibration LM loss when layer l is skipped.
KV-group scores are the sums of their query heads' scores (``Importance.kv_groups``).
Cached under ``settings.cache_dir("importance")`` by model fingerprint + calibration hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from taskdistill import settings
from taskdistill.cache import atomic_write_bytes, content_hash
from taskdistill.errors import TaskDistillError
from taskdistill.prune.archs import architecture, check_supported, head_dim

VERSION = 1


@dataclass
class Importance:
    neurons: torch.Tensor  # (layers, intermediate)
    heads: torch.Tensor  # (layers, query heads)
    hidden: torch.Tensor  # (hidden,)
    layers: torch.Tensor  # (layers,)
    num_key_value_heads: int
    layer_loss: torch.Tensor | None = None  # (layers,)
    tokens: int = 0

    def kv_groups(self) -> torch.Tensor:
        """(layers, kv heads): a KV group's score is the sum of its query heads' scores."""
        n_layers, n_heads = self.heads.shape
        return self.heads.reshape(n_layers, self.num_key_value_heads, n_heads // self.num_key_value_heads).sum(-1)

    def layer_scores(self, metric: str = "cosine") -> torch.Tensor:
        if metric == "loss":
            if self.layer_loss is None:
                raise TaskDistillError("layer metric 'loss' needs importance computed with layer_loss=True")
            return self.layer_loss
        if metric != "cosine":
            raise TaskDistillError(f"unknown layer metric {metric!r}; use 'cosine' or 'loss'")
        return self.layers

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"neurons": self.neurons, "heads": self.heads, "hidden": self.hidden, "layers": self.layers}
        if self.layer_loss is not None:
            out["layer_loss"] = self.layer_loss
        return {k: v.contiguous() for k, v in out.items()}


def tokenize_calibration(tokenizer, calib_texts, max_length: int, batch_size: int):
    """Batches of (input_ids, attention_mask), longest first; error if nothing is left to measure."""
    texts = [t for t in calib_texts if t and t.strip()]
    if not texts:
        raise TaskDistillError("the calibration set is empty; pass texts (e.g. --calib synthetic:n=256)")
    ids = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    ids = sorted((x for x in ids if len(x) > 0), key=len, reverse=True)
    if sum(len(x) for x in ids) == 0:
        raise TaskDistillError("the calibration set tokenizes to nothing; pass non-empty texts")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        width = len(chunk[0])
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, x in enumerate(chunk):
            input_ids[row, : len(x)] = torch.tensor(x)
            mask[row, : len(x)] = 1
        batches.append((input_ids, mask))
    return batches


def compute_importance(
    model, tokenizer, calib_texts, max_length: int = 128, batch_size: int = 8, layer_loss: bool = False
) -> Importance:
    """Importance of every prunable unit of ``model`` on ``calib_texts`` (cached)."""
    from safetensors.torch import load, save

    from taskdistill.models.load import model_fingerprint

    check_supported(model.config)
    texts = list(calib_texts)
    batches = tokenize_calibration(tokenizer, texts, max_length, batch_size)
    key = content_hash(
        {"v": VERSION, "model": model_fingerprint(model), "texts": content_hash(texts, 32),
         "tok": content_hash(tokenizer.get_vocab(), 32) if hasattr(tokenizer, "get_vocab") else None,
         "max_length": max_length, "layer_loss": layer_loss}, 32)
    path = settings.cache_dir("importance") / f"{key}.safetensors"
    if path.is_file():
        tensors = load(path.read_bytes())
        return Importance(
            neurons=tensors["neurons"], heads=tensors["heads"], hidden=tensors["hidden"], layers=tensors["layers"],
            num_key_value_heads=model.config.num_key_value_heads, layer_loss=tensors.get("layer_loss"),
            tokens=int(tensors["tokens"].item()),
        )
    imp = _measure(model, batches, layer_loss)
    blob = imp.tensors() | {"tokens": torch.tensor([imp.tokens])}
    atomic_write_bytes(path, save(blob, metadata={"version": str(VERSION)}))
    return imp


def _measure(model, batches, layer_loss: bool) -> Importance:
    arch = architecture(model.config)
    cfg = model.config
    n_layers, n_heads, d = cfg.num_hidden_layers, cfg.num_attention_heads, head_dim(cfg)
    n_norms = len(arch.importance_norms)
    device = model_device(model)
    acc = torch.float64  # accumulators live on the model's device and come back to the CPU at the end
    sq_neurons = torch.zeros(n_layers, cfg.intermediate_size, dtype=acc, device=device)
    sq_heads = torch.zeros(n_layers, n_heads, dtype=acc, device=device)
    sq_hidden = torch.zeros(n_norms * n_layers + 1, cfg.hidden_size, dtype=acc, device=device)
    cos_dist = torch.zeros(n_layers, dtype=acc, device=device)
    state: dict = {}

    def masked_sq(x):  # (B, S, ...) -> sum over valid tokens of x**2, shape x.shape[2:], on the accumulators' device
        m = state["mask"].to(device=x.device, dtype=acc).reshape(*state["mask"].shape, *([1] * (x.dim() - 2)))
        return ((x.detach().to(acc) ** 2) * m).sum(dim=(0, 1)).to(device)  # layers of a device map sit elsewhere

    def on_down(l):
        def hook(module, args):
            sq_neurons[l] += masked_sq(args[0])
        return hook

    def on_o(l):
        def hook(module, args):
            x = args[0]
            sq_heads[l] += masked_sq(x.reshape(*x.shape[:2], n_heads, d)).sum(-1)
        return hook

    def on_norm(slot):
        def hook(module, args, output):
            sq_hidden[slot] += masked_sq(output)
        return hook

    def on_layer(l):
        def hook(module, args, kwargs, output):
            x_in = args[0] if args else kwargs["hidden_states"]
            x_out = output[0] if isinstance(output, tuple) else output
            cos = torch.nn.functional.cosine_similarity(x_in.to(acc), x_out.to(acc), dim=-1)
            cos_dist[l] += ((1 - cos) * state["mask"].to(device=cos.device, dtype=acc)).sum().to(device)
        return hook

    handles = []
    for l, layer in enumerate(model.get_submodule(arch.layers)):
        handles.append(layer.get_submodule(arch.mlp_down).register_forward_pre_hook(on_down(l)))
        handles.append(layer.get_submodule(arch.attn_out).register_forward_pre_hook(on_o(l)))
        for k, norm in enumerate(arch.importance_norms):
            handles.append(layer.get_submodule(norm).register_forward_hook(on_norm(n_norms * l + k)))
        handles.append(layer.register_forward_hook(on_layer(l), with_kwargs=True))
    handles.append(model.get_submodule(arch.final_norm).register_forward_hook(on_norm(n_norms * n_layers)))
    backbone = model.get_submodule(arch.backbone)  # no LM head: the logits are not needed here
    tokens = 0
    try:
        with torch.inference_mode():
            for input_ids, mask in on_device(batches, device):
                state["mask"] = mask
                backbone(input_ids=input_ids, attention_mask=mask, use_cache=False)
                tokens += int(mask.sum())
    finally:
        for h in handles:
            h.remove()
    loss = _layer_loss(model, batches) if layer_loss else None
    return Importance(
        neurons=sq_neurons.sqrt().float().cpu(), heads=sq_heads.sqrt().float().cpu(),
        hidden=sq_hidden.sqrt().sum(0).float().cpu(), layers=(cos_dist / tokens).float().cpu(),
        num_key_value_heads=cfg.num_key_value_heads, layer_loss=loss, tokens=tokens,
    )


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def on_device(batches, device):
    """The calibration batches, moved one at a time to the model's device."""
    for input_ids, mask in batches:
        yield input_ids.to(device), mask.to(device)


def _lm_loss(model, batches) -> float:
    total, count = 0.0, 0
    for input_ids, mask in on_device(batches, model_device(model)):
        logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
        target = input_ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100).to(logits.device)
        total += float(torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="sum"))
        count += int((target != -100).sum())
    return total / max(count, 1)


def _layer_loss(model, batches) -> torch.Tensor:
    """Loss increase when each layer is skipped (its output replaced by its input)."""

    def skip(module, args, kwargs, output):
        x_in = args[0] if args else kwargs["hidden_states"]
        return (x_in, *output[1:]) if isinstance(output, tuple) else x_in

    with torch.inference_mode():
        base_loss = _lm_loss(model, batches)
        out = []
        for layer in model.get_submodule(architecture(model.config).layers):
            handle = layer.register_forward_hook(skip, with_kwargs=True)
            try:
                out.append(_lm_loss(model, batches) - base_loss)
            finally:
                handle.remove()
    return torch.tensor(out, dtype=torch.float32)
