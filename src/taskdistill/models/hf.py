"""Small fixes applied to every transformers model and tokenizer the toolkit loads or converts."""

from __future__ import annotations


def drop_quantization(model) -> None:
    """Forget a GGUF quantization record: transformers dequantises GGUF weights to float on load."""
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if getattr(model, "is_quantized", False):
        model.is_quantized = False


def prepare_tokenizer(tokenizer) -> None:
    """Give the tokenizer a pad token (its EOS) when it has none."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
