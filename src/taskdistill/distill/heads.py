"""Hidden states from the decoder and the LM head applied only to supervised positions, in chunks.

``model(...)`` would compute full-vocabulary logits for every position of the batch; here the
decoder runs once and ``lm_head`` is applied to the gathered supervised positions only, ``chunk``
rows at a time, so at most (chunk × vocab) logits exist at once (hand-written: transformers'
``logits_to_keep`` keeps the same positions for every row, not per-row ones).
"""

from __future__ import annotations

import torch


def split_model(model):
    """(decoder, lm_head) of a causal LM, looking through a PEFT wrapper (LoRA layers stay active)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def vocab_size(model) -> int:
    """Rows of the output embedding (may include padding rows beyond the tokenizer)."""
    return split_model(model)[1].weight.shape[0]


def supervised_hidden(model, batch) -> torch.Tensor:
    """Final hidden states (N, H) at the positions that predict the batch's supervised targets."""
    decoder, _ = split_model(model)
    out = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    hidden = out.last_hidden_state  # on the last device of a model spread over several
    return hidden[batch.row.to(hidden.device), batch.pred_pos.to(hidden.device)]


def logits_chunks(model, hidden: torch.Tensor, chunk: int, vocab: int | None = None):
    """Yield (slice, logits) for ``chunk`` rows of ``hidden`` at a time, cut to the first ``vocab`` columns."""
    _, head = split_model(model)
    for start in range(0, hidden.shape[0], chunk):
        logits = head(hidden[start : start + chunk])
        yield slice(start, start + logits.shape[0]), (logits if vocab is None else logits[:, :vocab])
