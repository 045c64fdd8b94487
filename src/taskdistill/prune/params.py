"""Parameter counts: analytic from a config (through its architecture record), or of a model's tensors."""

from __future__ import annotations

from taskdistill.models.params import count_parameters as model_parameters
from taskdistill.prune.archs import (
    SUPPORTED,
    architecture,
    check_supported,
    head_dim,
    unit_sizes,
)

__all__ = ["SUPPORTED", "check_supported", "config_parameters", "count_parameters", "head_dim", "layer_parameters"]


def layer_parameters(config, *, hidden=None, intermediate=None, heads=None, kv_heads=None) -> int:
    """Parameters of one decoder layer, optionally for other widths than the config's."""
    arch = architecture(config)
    sizes = unit_sizes(hidden=hidden or config.hidden_size, intermediate=intermediate or config.intermediate_size,
                       heads=heads or config.num_attention_heads, kv_heads=kv_heads or config.num_key_value_heads,
                       dim=head_dim(config))
    return arch.layer_parameters(config, sizes)


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

    A model is counted from its tensors (``taskdistill.models.params``; shared tensors once); a config
    analytically.
    """
    if hasattr(model_or_config, "parameters"):
        return model_parameters(model_or_config)
    return config_parameters(model_or_config)
