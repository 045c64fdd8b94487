"""Supervision formats: one record each, read by the spec, the planner, the training loop, the CLI and the report.

A record says what a format needs (CoT traces, teacher log-probs), how its loss combines the loop's
four logged terms, and in which *view* its students are evaluated (``answer``: every label scored
right after the answer prompt; ``cot``: the student's own rationale, then every label scored in the
answer slot — the format it was trained in). Adding a format is one ``register(Supervision(...))``.

The loop logs four token-mean terms per micro-batch (``Terms``): ``ce_label`` / ``ce_trace`` (cross
entropy on the ``[[Label]]`` tokens / on the rationale tokens) and ``kl_label`` / ``kl_trace``
(τ²-scaled divergence to the teacher on the same tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from taskdistill.errors import did_you_mean

VIEWS = ("answer", "cot")


@dataclass(frozen=True)
class Terms:
    """Summed loss terms of one micro-batch and the token counts they were summed over."""

    sums: dict  # ce_label, ce_trace, kl_label, kl_trace → summed tensor
    n_label: int
    n_trace: int

    def mean(self, name: str):
        """Token mean of one term (label terms over label tokens, trace terms over trace tokens)."""
        return self.sums[name] / max(self.n_label if name.endswith("_label") else self.n_trace, 1)

    def mean_all(self, kind: str):
        """Token mean of ``ce`` or ``kl`` over every supervised token (label and trace)."""
        return (self.sums[f"{kind}_label"] + self.sums[f"{kind}_trace"]) / max(self.n_label + self.n_trace, 1)


@dataclass(frozen=True)
class Supervision:
    name: str
    summary: str
    loss: Callable  # (Terms, DistillConfig) -> loss tensor
    traces: bool = False  # trains on chain-of-thought completions (needs traces)
    teacher: Callable | bool = False  # needs teacher log-probs (a bool, or a predicate of the DistillConfig)
    answer_too: bool = False  # with traces: every example also trains the direct-answer format
    shown: tuple[str, ...] = ("ce_label",)  # terms shown next to the loss on the progress bar

    @property
    def view(self) -> str:
        """How its students are evaluated: the format they were trained in."""
        return "cot" if self.traces and not self.answer_too else "answer"

    def needs_teacher(self, config) -> bool:
        return self.teacher(config) if callable(self.teacher) else bool(self.teacher)


SUPERVISIONS: dict[str, Supervision] = {}


def register(record: Supervision) -> Supervision:
    """Add a supervision format (replacing one of the same name)."""
    SUPERVISIONS[record.name] = record
    return record


def get(name: str) -> Supervision:
    if name not in SUPERVISIONS:
        raise did_you_mean(name, SUPERVISIONS, "supervision")
    return SUPERVISIONS[name]


def names() -> tuple[str, ...]:
    return tuple(SUPERVISIONS)


def cot_family() -> tuple[str, ...]:
    """Formats whose students learn from chain-of-thought traces (the paper's CoT supervision)."""
    return tuple(n for n, s in SUPERVISIONS.items() if s.traces)


register(Supervision("label", "cross entropy on the gold [[Label]] tokens after the answer prompt",
                     lambda t, c: t.mean("ce_label")))
register(Supervision("kl", "KL to the teacher on the [[Label]] tokens", lambda t, c: t.mean("kl_label"),
                     teacher=True, shown=("kl_label",)))
register(Supervision("cot", "cross entropy on the teacher's rationale and the [[Label]] after the CoT prompt",
                     lambda t, c: t.mean_all("ce"), traces=True, shown=("ce_label", "ce_trace")))
register(Supervision("cot_kl", "KL to the teacher over the rationale and the [[Label]] tokens",
                     lambda t, c: t.mean_all("kl"), traces=True, teacher=True, shown=("kl_label", "kl_trace")))
register(Supervision(
    "blended", "λ·KL over the rationale + (1 − λ)·CE on the gold label (+ trace_ce·CE on the rationale)",
    lambda t, c: c.lam * t.mean("kl_trace") + (1 - c.lam) * t.mean("ce_label") + c.trace_ce * t.mean("ce_trace"),
    traces=True, teacher=lambda c: c.lam > 0, shown=("kl_trace", "ce_label", "ce_trace")))
register(Supervision(
    "label_cot", "both formats: the direct answer for every example, plus the rationale and answer where a trace "
    "exists (teacher correction, so that the corrected teacher can still write its own traces)",
    lambda t, c: t.mean_all("ce"), traces=True, answer_too=True, shown=("ce_label", "ce_trace")))
