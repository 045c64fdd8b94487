"""In-domain evaluation: constrained label scoring, generate-then-parse and generate-then-score (CoT).

- ``score``: every label's ``[[Label]]`` is scored after the answer prompt → class probabilities.
- ``generate``: greedy answer, the final ``[[Label]]`` parsed (unparseable = wrong, counted); NLL and
  Brier still come from the constrained class probabilities of ``score``.
- ``cot``: the model's own greedy reasoning with the CoT prompt, stopped at its first ``[[``; every
  label's ``[[Label]]`` is then scored at that answer slot (generate-then-score) → class
  probabilities, NLL, Brier, and the prediction is their argmax, as in ``score`` mode. This is how a
  chain-of-thought student is evaluated: in the format it was trained in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from taskdistill.data.schema import TaskData
from taskdistill.errors import TaskDistillError
from taskdistill.evaluate.metrics import MODES, TaskMetrics, classification_metrics
from taskdistill.evaluate.scoring import score_continuations
from taskdistill.models import prompts
from taskdistill.models.generate import generate_texts
from taskdistill.models.prompts import PromptFormat, cut_rationale

DEFAULT_MAX_NEW_TOKENS = {"generate": 32, "cot": 160}

Progress = Callable[[str, int, int], None]


def label_continuations(tokenizer, labels: list[str], prefix: str = "") -> list[list[int]]:
    """Token ids of ``prefix + [[Label]]`` for every label, encoded on their own (same after any prompt)."""
    return [prompts.encode(tokenizer, "", prefix + prompts.answer(label))[1] for label in labels]


def score_labels(
    model,
    tokenizer,
    texts: list[str],
    labels: list[str],
    fmt: PromptFormat | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Class log-probabilities (n, C): each label's ``[[Label]]`` log-likelihood after the answer prompt,
    log-softmax-normalised over the C labels. Each prompt is encoded once; all labels share it."""
    contexts = [prompts.encode(tokenizer, prompts.build_prompt(tokenizer, t, labels, fmt))[0] for t in texts]
    summed = score_continuations(model, contexts, label_continuations(tokenizer, labels), batch_size, progress)
    return _normalise(summed)


def score_labels_after_rationale(
    model,
    tokenizer,
    texts: list[str],
    rationales: list[str],
    labels: list[str],
    fmt: PromptFormat | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Class log-probabilities (n, C) at the answer slot of a CoT completion: each label's
    ``" [[Label]]"`` scored after ``CoT prompt + rationale`` — the layout of ``prompts.cot_answer``."""
    contexts = [
        prompts.encode(tokenizer, prompts.build_prompt(tokenizer, t, labels, fmt, cot=True) + r.strip())[0]
        for t, r in zip(texts, rationales, strict=True)
    ]
    conts = label_continuations(tokenizer, labels, prefix=" ")
    return _normalise(score_continuations(model, contexts, conts, batch_size, progress))


def evaluate_task(
    model,
    tokenizer,
    data: TaskData,
    mode: str = "score",
    fmt: PromptFormat | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    progress: Progress | None = None,
) -> TaskMetrics:
    """Accuracy, macro-F1, gold NLL, Brier, per-class F1 and confusion of ``model`` on ``data``.

    ``mode``: ``score`` (constrained scoring), ``generate`` (greedy answer, parsed; NLL/Brier from the
    constrained scores of the same prompt) or ``cot`` (greedy reasoning, then generate-then-score at
    the answer slot). ``max_new_tokens`` defaults to 32 (generate) / 160 (cot).
    ``progress(phase, done, total)`` reports each batch.
    """
    if mode not in MODES:
        raise TaskDistillError(f"unknown evaluation mode {mode!r}; use one of {', '.join(MODES)}")
    if len(data) == 0:
        raise TaskDistillError(f"test set {data.name!r} is empty; give it at least one example")
    labels = list(data.labels)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({e.label for e in data.examples} - index.keys())
    if unknown:
        raise TaskDistillError(f"labels {unknown} of {data.name!r} are not in its taxonomy; add them to data.labels")
    texts = [e.text for e in data.examples]
    gold = np.array([index[e.label] for e in data.examples])

    def phase(name: str):
        return None if progress is None else (lambda done, total: progress(name, done, total))

    if mode == "score":
        log_probs = score_labels(model, tokenizer, texts, labels, fmt, batch_size, phase("score"))
        return classification_metrics(log_probs, gold, labels, mode=mode)

    steps = max_new_tokens or DEFAULT_MAX_NEW_TOKENS[mode]
    cot = mode == "cot"
    prompt_ids = [prompts.encode(tokenizer, prompts.build_prompt(tokenizer, t, labels, fmt, cot=cot))[0] for t in texts]
    generations = generate_texts(model, tokenizer, prompt_ids, steps, batch_size, phase("generate"),
                                 stop=["[["] if cot else None)
    if cot:
        rationales = [cut_rationale(g) for g in generations]
        log_probs = score_labels_after_rationale(
            model, tokenizer, texts, rationales, labels, fmt, batch_size, phase("score")
        )
        metrics = classification_metrics(log_probs, gold, labels, mode=mode)
        metrics.extra.update(max_new_tokens=steps, rationale_chars=float(np.mean([len(r) for r in rationales])),
                             empty_rationales=sum(not r.strip() for r in rationales))
        return metrics
    log_probs = score_labels(model, tokenizer, texts, labels, fmt, batch_size, phase("score"))
    parsed = [prompts.parse_label(g, labels) for g in generations]
    predicted = np.array([-1 if p is None else index[p] for p in parsed])
    metrics = classification_metrics(log_probs, gold, labels, predicted=predicted, mode=mode)
    metrics.extra["max_new_tokens"] = steps
    return metrics


def _normalise(summed: np.ndarray) -> np.ndarray:
    from scipy.special import log_softmax

    return log_softmax(summed, axis=1)
