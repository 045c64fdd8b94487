"""Parameter counts of a loaded model, from its tensors (shared by pruning, evaluation and studies)."""

from __future__ import annotations


def count_parameters(model) -> tuple[int, int]:
    """``(total, non_embedding)`` parameters of ``model``: every distinct tensor once (tied weights once);
    non-embedding leaves out the input embedding and the output head (``lm_head``, if it is separate)."""
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
