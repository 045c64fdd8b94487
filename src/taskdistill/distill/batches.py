"""Training sequences: prompt + target tokens with label / trace masks; length-grouped dynamic padding.

Label supervision trains the tokens of ``answer(label)`` after ``build_prompt(...)``; chain-of-thought
supervision trains ``cot_answer(rationale, label)`` after ``build_prompt(..., cot=True)``, the same
strings evaluation scores (models/prompts.py). Inside a CoT completion, a token is a *label* token
when it overlaps the ``[[Label]]`` span and a *trace* token otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from taskdistill.data.schema import TaskData
from taskdistill.errors import TaskDistillError
from taskdistill.models.prompts import (
    PromptFormat,
    answer,
    build_prompt,
    cot_answer,
    encode,
)


@dataclass(frozen=True)
class Sequence:
    """One tokenised training example. ``target_pos`` index ``input_ids``; ``is_label`` marks label tokens."""

    index: int  # position of the sequence in the training set (unique; the teacher cache is keyed by it)
    input_ids: tuple[int, ...]
    target_pos: tuple[int, ...]
    is_label: tuple[bool, ...]


@dataclass
class Batch:
    """A padded batch plus the flattened supervised positions (example-major, position order)."""

    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    row: torch.Tensor  # (N,) batch row of each supervised position
    pred_pos: torch.Tensor  # (N,) position of the hidden state that predicts the target (target_pos − 1)
    targets: torch.Tensor  # (N,)
    is_label: torch.Tensor  # (N,) bool
    indices: list[int]  # example indices, one per row
    n_tokens: int  # non-pad tokens

    def to(self, device) -> Batch:
        """The batch with its tensors on ``device`` (the model's)."""
        move = {name: getattr(self, name).to(device) for name in
                ("input_ids", "attention_mask", "row", "pred_pos", "targets", "is_label")}
        return Batch(**move, indices=self.indices, n_tokens=self.n_tokens)


def encode_example(tokenizer, text: str, labels: list[str], label: str, cot: str | None, fmt: PromptFormat | None):
    """Token ids of prompt + completion, and which completion tokens are label tokens."""
    prompt = build_prompt(tokenizer, text, labels, fmt, cot=cot is not None)
    completion = answer(label) if cot is None else cot_answer(cot, label)
    prompt_ids, cont_ids = encode(tokenizer, prompt, completion)
    if cot is None:
        return prompt_ids, cont_ids, [True] * len(cont_ids)
    answer_start = len(completion) - len(answer(label))
    offsets = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    if list(offsets["input_ids"]) != list(cont_ids):
        raise RuntimeError("tokenizer offsets disagree with prompts.encode")
    return prompt_ids, cont_ids, [end > answer_start for _, end in offsets["offset_mapping"]]


def build_sequences(
    tokenizer, data: TaskData, *, cot: bool, max_length: int, fmt: PromptFormat | None = None,
    answer_too: bool = False,
) -> tuple[list[Sequence], dict]:
    """Tokenise every example; with ``cot`` only examples that carry a trace are used, and with
    ``answer_too`` as well every example also gives a direct-answer sequence.

    Returns the sequences and counts: ``used`` (examples that gave at least one sequence: the
    effective dataset size), ``no_trace``, ``too_long`` (sequences over ``max_length``).
    """
    sequences, used, no_trace, too_long = [], set(), 0, 0
    for i, ex in enumerate(data.examples):
        traced = bool(ex.cot and ex.cot.strip())
        wanted = ([None] if answer_too or not cot else []) + ([ex.cot] if cot and traced else [])
        if cot and not traced:
            no_trace += 1
        for rationale in wanted:
            prompt_ids, cont_ids, is_label = encode_example(tokenizer, ex.text, data.labels, ex.label, rationale, fmt)
            ids = prompt_ids + cont_ids
            if len(ids) > max_length:
                too_long += 1
                continue
            start = len(prompt_ids)
            sequences.append(Sequence(len(sequences), tuple(ids), tuple(range(start, len(ids))), tuple(is_label)))
            used.add(i)
    counts = {"used": len(used), "no_trace": no_trace, "too_long": too_long}
    if not sequences:
        why = "no example has a chain-of-thought trace (build them with `taskdistill traces`)" if cot and no_trace else (
            f"every example is longer than max_length={max_length} tokens (raise max_length)"
            if too_long
            else "the training data is empty"
        )
        raise TaskDistillError(f"nothing to train on: {why}")
    return sequences, counts


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group: int = 32) -> list[list[int]]:
    """Shuffle, sort by length inside mega-batches of ``group`` batches, cut, shuffle the batches.

    Deterministic in (seed, epoch), so the data order of a resumed run is recomputed exactly.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    mega = batch_size * group
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega].tolist(), key=lambda i: -lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(sequences: list[Sequence], pad_id: int) -> Batch:
    """Right-pad to the longest sequence of the batch (dynamic padding)."""
    width = max(len(s.input_ids) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    row, pos, is_label = [], [], []
    for r, seq in enumerate(sequences):
        ids[r, : len(seq.input_ids)] = torch.tensor(seq.input_ids)
        mask[r, : len(seq.input_ids)] = 1
        row.extend([r] * len(seq.target_pos))
        pos.extend(seq.target_pos)
        is_label.extend(seq.is_label)
    row_t, pos_t = torch.tensor(row), torch.tensor(pos)
    return Batch(
        input_ids=ids,
        attention_mask=mask,
        row=row_t,
        pred_pos=pos_t - 1,
        targets=ids[row_t, pos_t],
        is_label=torch.tensor(is_label, dtype=torch.bool),
        indices=[s.index for s in sequences],
        n_tokens=int(mask.sum()),
    )
