"""A model's config without its weights, offline: what planning (parameter counts, memory) reads.

Order: a built-in or local folder's ``config.json``; a hub id's config in the local Hugging Face cache;
the shape table below for the presets' hub teachers (architecture numbers from their published
configs), so ``study plan configs/paper.yaml`` works on a machine that never saw the hub. None when none
of these has it (the caller says what to download).
"""

from __future__ import annotations

KNOWN = {
    "Qwen/Qwen3-32B": {"model_type": "qwen3", "hidden_size": 5120, "intermediate_size": 25600,
                       "num_hidden_layers": 64, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128,
                       "vocab_size": 151936, "tie_word_embeddings": False, "max_position_embeddings": 40960},
    "Qwen/Qwen3-1.7B": {"model_type": "qwen3", "hidden_size": 2048, "intermediate_size": 6144,
                        "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                        "vocab_size": 151936, "tie_word_embeddings": True, "max_position_embeddings": 40960},
}


def offline_config(ref: str):
    """The transformers config of ``ref`` (see the module docstring), or None."""
    from transformers import AutoConfig

    from taskdistill.models import builtin
    from taskdistill.models.load import resolve

    if ref in builtin.BUILTINS:  # never pulled just to plan
        path, kwargs = (str(builtin.folder(ref)), {}) if builtin.is_pulled(ref) else (None, {})
    else:
        path, kwargs = resolve(ref)
    try:
        if path is not None:
            return AutoConfig.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass
    if ref in KNOWN:
        fields = dict(KNOWN[ref])
        return AutoConfig.for_model(fields.pop("model_type"), **fields)
    return None
