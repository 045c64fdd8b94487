"""Tiny random models and a tiny byte-level BPE tokenizer, built in process (no network)."""

from __future__ import annotations

import functools

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "Acme Corp beats quarterly earnings estimates as revenue rises 12%",
    "Globex cuts full-year guidance on weak demand",
    "Initech announces $2 billion share buyback program",
    "Analyst upgrades Umbrella to buy, raises price target to $45",
    "Hooli to acquire Pied Piper in $1.2 billion deal",
    "Classify the event in this financial news headline. Event types: Earnings; Guidance; Buyback.",
    "The capital of France is Paris. Water boils at 100 degrees Celsius at sea level.",
    "First explain your reasoning in one or two short sentences, then give the event type [[Label]].",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'\"()[]{}$%&-+=/",
]


# A thinking template in the manner of Qwen3's (written for these tests): after the assistant header,
# ``enable_thinking=False`` writes an empty think block; otherwise the model opens its own.
THINKING_TEMPLATE = (
    "{%- for m in messages -%}{{- '<|im_start|>' ~ m['role'] ~ '\n' ~ m['content'] ~ '<|im_end|>\n' -}}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}"
    "{%- if enable_thinking is defined and not enable_thinking -%}{{- '<think>\n\n</think>\n\n' -}}{%- endif -%}"
    "{%- endif -%}"
)


def _bpe_tokenizer(chat_template: str, added: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    fast.add_tokens(list(added))  # plain added tokens: kept when decoding without special tokens
    fast.chat_template = chat_template
    return fast


@functools.lru_cache(maxsize=1)
def tiny_tokenizer():
    """A 400-token byte-level BPE tokenizer with a ChatML template, as a PreTrainedTokenizerFast."""
    return _bpe_tokenizer(CHAT_TEMPLATE)


@functools.lru_cache(maxsize=1)
def tiny_thinking_tokenizer():
    """The same BPE plus ``<think>`` / ``</think>`` as single tokens and a Qwen3-like thinking template
    (402 tokens: models for it need ``vocab_size=len(tokenizer)``)."""
    return _bpe_tokenizer(THINKING_TEMPLATE, ("<think>", "</think>"))


ARCHS = ("llama", "qwen2", "qwen3", "mistral", "gemma3", "phi3")

# per-architecture extras: Gemma 3 alternates sliding-window and full attention layers. The window (256)
# holds every prompt of the shared tests; tests about layer types pass a short one (SHORT_WINDOW).
EXTRA = {
    "gemma3": {"sliding_window": 256, "sliding_window_pattern": 2, "query_pre_attn_scalar": 16},
}
SHORT_WINDOW = {"sliding_window": 4}


def tiny_config(arch: str = "llama", **overrides):
    from transformers import (
        Gemma3TextConfig,
        LlamaConfig,
        MistralConfig,
        Phi3Config,
        Qwen2Config,
        Qwen3Config,
    )

    cls = {"llama": LlamaConfig, "qwen2": Qwen2Config, "qwen3": Qwen3Config, "mistral": MistralConfig,
           "gemma3": Gemma3TextConfig, "phi3": Phi3Config}[arch]
    vocab = len(tiny_tokenizer())
    kwargs = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=512,
        tie_word_embeddings=arch in ("llama", "qwen3", "gemma3"),
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=2,
        **EXTRA.get(arch, {}),
    )
    kwargs.update(overrides)
    return cls(**kwargs)


def tiny_model(arch: str = "llama", seed: int = 0, **overrides):
    """A random tiny causal LM of the given architecture, in eval mode, float32."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, **overrides))
    model.eval()
    return model
