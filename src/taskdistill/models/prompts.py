"""Task prompts, the ``[[Label]]`` answer format and the chain-of-thought format.

Every stage (evaluation, traces, distillation) builds prompts here so they stay identical.
The chat template is used when the tokenizer has one; the answer continuation is scored or
trained as plain tokens appended after the prompt's token ids.

Thinking templates (Qwen3 and alike) are asked for thinking only where a model writes traces
(``thinking=True``); every other prompt (scoring, evaluation, training) has thinking off, so for
Qwen3 it ends in the template's empty ``<think>…</think>`` block and the answer starts right after it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

ANSWER_RE = re.compile(r"\[\[([^\[\]]+)\]\]")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
EMPTY_THINK = f"{THINK_OPEN}\n\n{THINK_CLOSE}\n\n"  # what Qwen3's template writes with thinking off
# A text longer than this many tokens is cut to its first MAX_TEXT_TOKENS tokens in every prompt (the
# instruction, the label list and the answer slot stay whole); headlines are far shorter.
MAX_TEXT_TOKENS = 512


class PromptFormat(BaseModel):
    """Configurable wording of the task prompt (documented in docs/prompts.md)."""

    instruction: str = "Classify the event in this financial news headline."
    list_labels: bool = True
    label_intro: str = "Event types: "
    answer_hint: str = "Answer with the event type in double brackets, like [[Event type]]."
    cot_hint: str = (
        "First explain your reasoning in one or two short sentences, then give the event type "
        "in double brackets, like [[Event type]]."
    )
    system: str | None = None


def user_message(text: str, labels: list[str], fmt: PromptFormat, cot: bool = False) -> str:
    """The user turn: instruction, label list, headline and answer hint, one per line (empty parts left out)."""
    parts = [fmt.instruction]
    if fmt.list_labels:
        parts.append(fmt.label_intro + "; ".join(labels) + ".")
    parts.append(f"Headline: {text}")
    parts.append(fmt.cot_hint if cot else fmt.answer_hint)
    return "\n".join(p for p in parts if p)


def clip_text(tokenizer, text: str, budget: int = MAX_TEXT_TOKENS) -> str:
    """``text`` cut to its first ``budget`` tokens; unchanged when it is no longer than that."""
    if len(text.encode("utf-8")) < budget:  # a token covers at least one byte (plus a leading space marker)
        return text
    window = budget * 64  # enough characters for ``budget`` tokens, so a huge text is not tokenized whole
    ids = tokenizer(text[:window], add_special_tokens=False)["input_ids"]
    if len(ids) <= budget and len(text) > window:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return text
    return tokenizer.decode(ids[:budget]).strip()


def thinking_switch(tokenizer) -> bool:
    """Whether the tokenizer's chat template takes an ``enable_thinking`` switch (Qwen3 and alike)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):  # named templates
        template = " ".join(str(t) for t in template.values())
    return "enable_thinking" in template


def opens_thinking(prompt: str) -> bool:
    """Whether the prompt ends inside an open thinking block (the model's text starts as thinking)."""
    return prompt.rstrip().endswith(THINK_OPEN)


def build_prompt(tokenizer, text: str, labels: list[str], fmt: PromptFormat | None = None, cot: bool = False,
                 thinking: bool = False) -> str:
    """The full prompt string up to where the model's answer starts (the text cut to ``MAX_TEXT_TOKENS``).

    ``thinking`` reaches the chat template as ``enable_thinking`` when the template has that switch.
    With thinking off, a template that always opens a thinking block gets it closed empty, as Qwen3's
    template does, so the answer (and what is scored or trained) starts after ``</think>``.
    """
    fmt = fmt or PromptFormat()
    content = user_message(clip_text(tokenizer, text), labels, fmt, cot)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": fmt.system}] if fmt.system else []
        messages.append({"role": "user", "content": content})
        switch = {"enable_thinking": thinking} if thinking_switch(tokenizer) else {}
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **switch)
        if not thinking and opens_thinking(prompt):
            prompt = prompt[: len(prompt.rstrip()) - len(THINK_OPEN)] + EMPTY_THINK
        return prompt
    return content + "\nAnswer: "


def split_thinking(generated: str, opened: bool = False) -> tuple[str | None, str | None]:
    """``(thinking, answer)`` of a generation: the text inside its thinking block (markers cut out,
    stripped) and the text after ``</think>``. ``opened``: the prompt already opened the block.
    No thinking block → ``(None, generated)``; a block never closed → ``(thinking so far, None)``."""
    text = generated
    if not opened:
        stripped = generated.lstrip()
        if not stripped.startswith(THINK_OPEN):
            return None, generated
        text = stripped[len(THINK_OPEN):]
    if THINK_CLOSE not in text:
        return text.strip(), None
    inside, after = text.split(THINK_CLOSE, 1)
    return inside.strip(), after


def answer(label: str) -> str:
    """The verbalised label, the exact continuation scored for each class."""
    return f"[[{label}]]"


def cot_answer(rationale: str, label: str) -> str:
    """A chain-of-thought completion: short reasoning, then the bracketed label."""
    return f"{rationale.strip()} {answer(label)}"


def cut_rationale(generated: str) -> str:
    """The reasoning before the first ``[[`` (the whole generation if there is none), right-stripped."""
    return generated.split("[[", 1)[0].rstrip()


def parse_label(generated: str, labels: list[str]) -> str | None:
    """The label of the last ``[[...]]`` in a generation, matched case-insensitively; None if none."""
    found = ANSWER_RE.findall(generated)
    if not found:
        return None
    by_lower = {label.lower(): label for label in labels}
    return by_lower.get(found[-1].strip().lower())


def encode(tokenizer, prompt: str, continuation: str = "") -> tuple[list[int], list[int]]:
    """Token ids of the prompt (with the tokenizer's BOS if it adds one) and of the continuation.

    The continuation is encoded on its own, so its ids are the same after every prompt; the
    prompt's ids are a prefix of the model input.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=not getattr(tokenizer, "chat_template", None))["input_ids"]
    cont_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"] if continuation else []
    return list(prompt_ids), list(cont_ids)
