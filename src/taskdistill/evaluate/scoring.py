"""Exact shared-prefix scoring of many continuations after each context, in one forward per batch.

Each row of a batch is laid out as ``[left padding | context | label block]`` where the label block
holds the continuations (minus their last tokens) as a prefix tree, shared prefixes fed once. A
custom 4-D attention mask lets context tokens attend causally within the context and lets each
block token attend to the whole context and to its own ancestors in the tree only, with position
ids continuing from the end of the context: every continuation sees exactly what it would see as
its own full sequence ``context + continuation``, but the context is encoded once. On top, the
token prefix shared by all contexts (a task prompt's instruction and label list) is run once and its
KV cache reused by every batch. No library does this tree layout for
us (hand-written here); tests compare it with one full forward per continuation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from taskdistill.errors import TaskDistillError

SUPPORTED_ATTENTION = ("sdpa", "eager")


class _Block:
    """The continuations as a prefix tree, shared by every row of a batch.

    Each node is one fed token (a distinct prefix of some continuation minus its last token) and
    attends to its ancestors, so continuations that share leading tokens (``[[``, ``[[Analyst``) feed
    them once. Scored token j of continuation c is predicted at the node of its prefix c[:j] (the
    last context position for j = 0).
    """

    def __init__(self, continuations: list[list[int]]):
        import torch

        if not continuations or any(len(c) == 0 for c in continuations):
            raise ValueError("every continuation needs at least one token")
        node: dict[tuple[int, ...], int] = {}
        fed, pos, parent = [], [], []
        rows, targets, label = [], [], []  # per scored token: row of the kept logits, target id, continuation
        for c, ids in enumerate(continuations):
            for k in range(len(ids) - 1):
                key = tuple(ids[: k + 1])
                if key not in node:
                    node[key] = len(fed)
                    fed.append(ids[k])
                    pos.append(k)
                    parent.append(node[key[:-1]] if k else -1)
            for j, tok in enumerate(ids):
                rows.append(0 if j == 0 else 1 + node[tuple(ids[:j])])
                targets.append(tok)
                label.append(c)
        self.size = len(fed)
        self.ids = torch.tensor(fed, dtype=torch.long)
        self.pos = torch.tensor(pos, dtype=torch.long)
        self.allowed = torch.eye(self.size, dtype=torch.bool)  # node i sees itself and its ancestors
        for i, p in enumerate(parent):
            if p >= 0:
                self.allowed[i] |= self.allowed[p]
        self.rows = torch.tensor(rows, dtype=torch.long)
        self.targets = torch.tensor(targets, dtype=torch.long)
        self.label = torch.tensor(label, dtype=torch.long)
        self.n = len(continuations)


def _check_attention(model) -> None:
    impl = getattr(model.config, "_attn_implementation", None) or "eager"
    if impl not in SUPPORTED_ATTENTION:
        raise TaskDistillError(
            f"constrained scoring needs a custom attention mask, which attention implementation {impl!r} "
            f"does not take; load the model with attn_implementation='sdpa'"
        )


def check_context(model, contexts: list[list[int]], continuations: list[list[int]]) -> None:
    """Refuse prompts that, with their longest answer, reach past the model's context window."""
    from taskdistill.models.prompts import MAX_TEXT_TOKENS

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    window = getattr(config, "max_position_embeddings", None)
    needed = max(map(len, contexts)) + max(map(len, continuations)) - 1
    if isinstance(window, int) and needed > window:
        raise TaskDistillError(
            f"the longest prompt with its answer takes {needed} tokens, more than the model's context of {window} "
            f"(texts are already cut to {MAX_TEXT_TOKENS} tokens); shorten the longest texts or the prompt, "
            "or use a model with a longer context"
        )


def shared_prefix_length(contexts: list[list[int]]) -> int:
    """Length of the token prefix common to all contexts, leaving each context at least one own token."""
    first, n = contexts[0], min(len(c) for c in contexts) - 1
    for ctx in contexts[1:]:
        n = next((k for k in range(n) if ctx[k] != first[k]), n)
    return max(n, 0)


def _batch_inputs(suffixes: list[list[int]], prefix: int, block: _Block, dtype):
    """input_ids, position_ids and the additive 4-D mask for one batch: ``[pad | suffix | tree]`` rows
    that follow ``prefix`` cached tokens (the shared start of every context)."""
    import torch

    bsz, width = len(suffixes), max(len(c) for c in suffixes)
    total = width + block.size
    ids = torch.zeros(bsz, total, dtype=torch.long)
    lengths = torch.tensor([len(c) for c in suffixes])
    pad = width - lengths
    for b, ctx in enumerate(suffixes):
        ids[b, width - len(ctx) : width] = torch.tensor(ctx, dtype=torch.long)
    ids[:, width:] = block.ids
    arange = torch.arange(width)
    positions = prefix + torch.cat(
        [(arange[None, :] - pad[:, None]).clamp(min=0), lengths[:, None] + block.pos[None, :]], dim=1
    )
    key_real = arange[None, :] >= pad[:, None]  # (B, width)
    allowed = torch.zeros(bsz, total, prefix + total, dtype=torch.bool)
    allowed[:, :, :prefix] = True  # the cached shared prefix is seen by every query
    own = allowed[:, :, prefix:]
    own[:, :width, :width] = torch.tril(torch.ones(width, width, dtype=torch.bool))[None] & key_real[:, None, :]
    own[:, width:, :width] = key_real[:, None, :]
    own[:, width:, width:] = block.allowed[None]
    own |= torch.eye(total, dtype=torch.bool)[None]  # padding queries attend to themselves (no empty rows)
    mask = torch.zeros(bsz, 1, total, prefix + total, dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return ids, positions, mask


def _cache_arg(model) -> str:
    """The forward keyword of the KV cache: ``cache`` in newer transformers, ``past_key_values`` before."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _prefix_cache(model, prefix_ids: list[int], device):
    """KV cache of the shared prefix (batch 1), computed once."""
    import torch

    if not prefix_ids:
        return None
    ids = torch.tensor([prefix_ids], dtype=torch.long, device=device)
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def score_continuations(
    model,
    contexts: list[list[int]],
    continuations: list[list[int]],
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Summed log-likelihood (n, C) of every continuation's token ids after every context's token ids.

    The token prefix shared by all contexts (instruction and label list of a task prompt) is run once
    and its KV cache reused; the rest of each context is batched (longest first, left-padded), one
    forward pass per batch, logits kept only at the last context position and in the label tree.
    ``progress(done, total)`` is called after each batch.
    """
    import copy

    import torch

    _check_attention(model)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not contexts or any(len(c) == 0 for c in contexts):
        raise ValueError("every context needs at least one token")
    block = _Block(continuations)
    check_context(model, contexts, continuations)
    out = np.zeros((len(contexts), block.n), dtype=np.float64)
    order = sorted(range(len(contexts)), key=lambda i: -len(contexts[i]))
    param = next(model.parameters())
    prefix = shared_prefix_length(contexts)
    cache_arg = _cache_arg(model)
    done = 0
    with torch.inference_mode():
        cached = _prefix_cache(model, contexts[0][:prefix], param.device)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, positions, mask = _batch_inputs([contexts[i][prefix:] for i in chunk], prefix, block, param.dtype)
            cache = None
            if cached is not None:
                cache = copy.deepcopy(cached)  # the forward appends to it
                cache.batch_repeat_interleave(len(chunk))
            logits = model(
                input_ids=ids.to(param.device),
                attention_mask=mask.to(param.device),
                position_ids=positions.to(param.device),
                use_cache=cache is not None,
                **{cache_arg: cache},
                logits_to_keep=block.size + 1,
            ).logits.float()
            del cache
            lse = torch.logsumexp(logits, dim=-1)  # (B, block.size + 1)
            rows, targets = block.rows.to(logits.device), block.targets.to(logits.device)
            token_lp = logits[:, rows, targets] - lse[:, rows]  # (B, tokens scored)
            summed = torch.zeros(len(chunk), block.n, dtype=torch.float64, device=logits.device)
            summed.index_add_(1, block.label.to(logits.device), token_lp.double())
            out[chunk] = summed.cpu().numpy()
            done += len(chunk)
            if progress is not None:
                progress(done, len(contexts))
    return out
