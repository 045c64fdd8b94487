"""In-domain classification metrics from class log-probabilities: accuracy, macro-F1, NLL, Brier.

Conventions (docs/evaluation.md):
- ``log_probs`` (n, C) are re-normalised over the C classes (log-softmax), so raw scores also work.
- Predictions are the argmax class unless ``predicted`` is given (generate / cot modes); there an index
  of -1 means "unparseable": it is wrong for accuracy, a false negative for the gold class, and it is
  not a column of the confusion matrix (so a gold row sums to that class's count minus its unparseables).
- Macro-F1 averages per-class F1 over the classes present in gold ∪ predicted (unparseable excluded),
  with F1 = 0 where precision + recall = 0 — exactly sklearn's
  ``f1_score(gold, pred, labels=present, average="macro", zero_division=0)``.
- NLL is the mean of −log p(gold); Brier is the mean over examples of Σ_c (p_c − y_c)².
- Chance levels: accuracy 1/C; macro-F1 the prior-based floor (a uniform random guesser's expected
  macro-F1 on this test set, :func:`macro_f1_floor`). Standard errors: binomial for accuracy, a
  bootstrap over test items for macro-F1 (it is not a count).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import log_softmax

MODES = ("score", "generate", "cot")


@dataclass
class TaskMetrics:
    """In-domain quality of one model on one test set.

    ``accuracy``/``macro_f1``/``per_class_f1``/``confusion`` come from the predicted labels (argmax of
    the class probabilities in ``score`` mode, the parsed ``[[Label]]`` in ``generate``/``cot`` modes);
    ``nll``/``brier``/``scored_accuracy`` always come from the class probabilities.
    """

    accuracy: float
    macro_f1: float
    nll: float
    brier: float
    per_class_f1: dict[str, float]
    support: dict[str, int]
    confusion: list[list[int]]
    n: int
    correct: int
    unparseable: int
    labels: list[str]
    mode: str = "score"
    scored_accuracy: float = float("nan")
    chance: float = float("nan")
    macro_f1_chance: float = float("nan")
    accuracy_stderr: float = float("nan")
    macro_f1_stderr: float = float("nan")
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of every field."""
        return asdict(self)


def classification_metrics(
    log_probs, gold_idx, labels: list[str], *, predicted=None, mode: str = "score"
) -> TaskMetrics:
    """Metrics of class log-probabilities ``log_probs`` (n, C) against gold class indices ``gold_idx`` (n,).

    ``predicted`` (n,) overrides the argmax predictions; -1 marks an unparseable answer.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    gold = np.asarray(gold_idx, dtype=np.int64)
    n_classes = len(labels)
    if lp.ndim != 2 or lp.shape[1] != n_classes:
        raise ValueError(f"log_probs must have shape (n, {n_classes}), got {lp.shape}")
    if gold.shape != (lp.shape[0],):
        raise ValueError(f"gold_idx must have shape ({lp.shape[0]},), got {gold.shape}")
    if lp.shape[0] == 0:
        raise ValueError("no examples to evaluate")
    if gold.min() < 0 or gold.max() >= n_classes:
        raise ValueError("gold_idx out of range")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    lp = log_softmax(lp, axis=1)
    probs = np.exp(lp)
    n = lp.shape[0]
    scored = lp.argmax(axis=1)
    pred = scored if predicted is None else np.asarray(predicted, dtype=np.int64)
    if pred.shape != (n,) or pred.min() < -1 or pred.max() >= n_classes:
        raise ValueError("predicted must hold n class indices (or -1 for unparseable)")

    parsed = pred >= 0
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (gold[parsed], pred[parsed]), 1)
    per_class, macro = _f1_from_confusion(confusion, gold, pred)

    onehot = np.zeros_like(probs)
    onehot[np.arange(n), gold] = 1.0
    correct = int((pred == gold).sum())
    priors = np.bincount(gold, minlength=n_classes) / n
    return TaskMetrics(
        accuracy=correct / n,
        macro_f1=macro,
        nll=float(-lp[np.arange(n), gold].mean()),
        brier=float(((probs - onehot) ** 2).sum(axis=1).mean()),
        per_class_f1={labels[c]: f for c, f in per_class.items()},
        support={labels[c]: int(k) for c, k in enumerate(np.bincount(gold, minlength=n_classes)) if k},
        confusion=confusion.tolist(),
        n=n,
        correct=correct,
        unparseable=int((~parsed).sum()),
        labels=list(labels),
        mode=mode,
        scored_accuracy=float((scored == gold).mean()),
        chance=1.0 / n_classes,
        macro_f1_chance=macro_f1_floor(priors) if n_classes > 1 else float("nan"),
        accuracy_stderr=float(np.sqrt(correct / n * (1 - correct / n) / n)),
        macro_f1_stderr=macro_f1_stderr(gold, pred, n_classes),
    )


def macro_f1_floor(class_priors) -> float:
    """Expected macro-F1 of a classifier that guesses uniformly at random among C classes.

    Class i with prior π_i gets (in expectation) precision π_i and recall 1/C, so
    F1_i = 2π_i/(Cπ_i + 1); the floor is their mean (over all C classes of the taxonomy). With
    balanced classes it is exactly 1/C, the accuracy chance level.
    """
    pi = np.asarray(class_priors, dtype=np.float64)
    if pi.ndim != 1 or pi.size < 2 or np.any(pi < 0) or not np.isclose(pi.sum(), 1.0):
        raise ValueError("class_priors must be ≥ 2 non-negative shares summing to 1")
    return float(np.mean(2 * pi / (pi.size * pi + 1)))


def macro_f1_stderr(gold, pred, n_classes: int, replicates: int = 200, seed: int = 0) -> float:
    """Standard error of macro-F1 from a bootstrap over test items (same F1 convention as above)."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    n = gold.size
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    draws = np.empty(replicates)
    for b in range(replicates):
        idx = rng.integers(0, n, n)
        g, p = gold[idx], pred[idx]
        confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
        ok = p >= 0
        np.add.at(confusion, (g[ok], p[ok]), 1)
        draws[b] = _f1_from_confusion(confusion, g, p)[1]
    return float(draws.std(ddof=1))


def _f1_from_confusion(confusion: np.ndarray, gold: np.ndarray, pred: np.ndarray) -> tuple[dict[int, float], float]:
    # Hand-written from the confusion counts we need anyway (incl. the unparseable convention);
    # tests check it against sklearn's f1_score with explicit labels.
    present = sorted(set(gold.tolist()) | set(pred[pred >= 0].tolist()))
    tp = np.diag(confusion)
    gold_count = np.bincount(gold, minlength=confusion.shape[0])  # unparseables count as false negatives
    pred_count = confusion.sum(axis=0)
    per_class = {}
    for c in present:
        denom = gold_count[c] + pred_count[c]  # 2·TP + FP + FN
        per_class[c] = float(2 * tp[c] / denom) if denom else 0.0
    return per_class, float(np.mean(list(per_class.values())))
