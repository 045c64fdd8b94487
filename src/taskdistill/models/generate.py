"""Batched greedy generation from token-id prompts (left padding): CoT evaluation, traces, generate mode.

Shared by the stages that generate (evaluation and teacher traces), so it sits below them."""

from __future__ import annotations

from collections.abc import Callable


def generate_texts(
    model,
    tokenizer,
    prompts: list[list[int]],
    max_new_tokens: int,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    stop: list[str] | None = None,
) -> list[str]:
    """Greedy continuation of each prompt (token ids), decoded without special tokens.

    Prompts are batched longest first and left-padded; transformers derives position ids from the
    attention mask, so each row generates what it would generate alone. ``stop``: strings at which a
    row stops (transformers' stop-string criterion; the text up to and including the stop string is
    returned, and a batch ends when every row has stopped).
    """
    import torch
    from transformers import GenerationConfig

    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos,
                              stop_strings=list(stop) if stop else None)
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    done = 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i], dtype=torch.long)
                mask[row, width - len(prompts[i]) :] = 1
            generated = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
                tokenizer=tokenizer if stop else None,
            )
            for row, i in enumerate(chunk):
                out[i] = tokenizer.decode(generated[row, width:], skip_special_tokens=True)
            done += len(chunk)
            if progress is not None:
                progress(done, len(prompts))
    return out
