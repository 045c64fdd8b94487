"""Distillation losses on supervised positions: CE, forward / reverse KL, generalized JSD(β), top-k buckets.

Teacher distributions may be truncated to their top-k tokens. The probability mass outside the
top-k is kept explicitly as one extra "rest" bucket on both sides: the teacher's rest is
``1 − Σ top-k``, the student's is its own mass on every token outside the teacher's top-k. The
divergences are then exact divergences between two (k+1)-bucket distributions, which equal the
full-vocabulary divergences when k is the vocabulary size (rest = 0 on both sides). Temperature τ
divides both sides' logits before the softmax; KL terms are multiplied by τ² (Hinton et al.) so
their gradient scale does not depend on τ.

All per-position functions take log-probabilities of shape (N, B) over B buckets and return (N,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position CE −log softmax(logits)[target]; logits (N, V), targets (N,)."""
    return F.cross_entropy(logits.float(), targets, reduction="none")


def _xlogy_diff(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """Σ p (log p − log q) with 0·log 0 = 0 (buckets with p = 0 contribute nothing)."""
    p = p_log.exp()
    diff = torch.where(p > 0, p_log - q_log, torch.zeros_like(p_log))
    return (p * diff).sum(-1)


def forward_kl(teacher_logp: torch.Tensor, student_logp: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ student) = Σ p_t (log p_t − log p_s): mean-seeking."""
    return _xlogy_diff(teacher_logp, student_logp)


def reverse_kl(teacher_logp: torch.Tensor, student_logp: torch.Tensor) -> torch.Tensor:
    """KL(student ‖ teacher) = Σ p_s (log p_s − log p_t): mode-seeking."""
    return _xlogy_diff(student_logp, teacher_logp)


def generalized_jsd(teacher_logp: torch.Tensor, student_logp: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """JSD_β = β·KL(p_t ‖ m) + (1 − β)·KL(p_s ‖ m) with m = β·p_t + (1 − β)·p_s.

    β = 0.5 is the symmetric Jensen–Shannon divergence (natural log); β → 0 / 1 approach
    (scaled) forward / reverse KL in the sense of Agarwal et al. (GKD).
    """
    mix = torch.logsumexp(
        torch.stack([teacher_logp + math.log(beta), student_logp + math.log(1.0 - beta)]), dim=0
    )
    return beta * _xlogy_diff(teacher_logp, mix) + (1.0 - beta) * _xlogy_diff(student_logp, mix)


def divergence(kind: str, teacher_logp: torch.Tensor, student_logp: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """Dispatch ``forward`` / ``reverse`` / ``jsd`` on bucket log-probs."""
    if kind == "forward":
        return forward_kl(teacher_logp, student_logp)
    if kind == "reverse":
        return reverse_kl(teacher_logp, student_logp)
    if kind == "jsd":
        return generalized_jsd(teacher_logp, student_logp, beta)
    raise ValueError(f"unknown divergence {kind!r}")


def topk_buckets(logits: torch.Tensor, k: int | None, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher side: indices (N, k) of the top-k tokens of softmax(logits/τ) and log-probs (N, k+1).

    The last column is the log of the rest mass outside the top-k (−inf when k covers the vocabulary).
    ``k=None`` keeps the full vocabulary.
    """
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    k = logp.shape[-1] if k is None else min(k, logp.shape[-1])
    top, idx = logp.topk(k, dim=-1)
    return idx, torch.cat([top, rest_logp(logp, idx)], dim=-1)


def rest_logp(logp: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """log Σ_{v ∉ idx} p_v for each row, computed by masking (stable, exact; −inf if idx covers all)."""
    if idx.shape[-1] >= logp.shape[-1]:  # nothing outside: a constant −inf (no NaN gradient)
        return torch.full_like(logp[..., :1], float("-inf"))
    masked = logp.scatter(-1, idx, float("-inf"))
    return torch.logsumexp(masked, dim=-1, keepdim=True)


def student_buckets(logits: torch.Tensor, idx: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Student side: log-probs (N, k+1) of softmax(logits/τ) on the teacher's top-k indices plus the rest."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return torch.cat([logp.gather(-1, idx), rest_logp(logp, idx)], dim=-1)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_idx: torch.Tensor,
    teacher_logp: torch.Tensor,
    kind: str = "forward",
    temperature: float = 1.0,
    beta: float = 0.5,
) -> torch.Tensor:
    """Per-position τ²-scaled divergence between teacher buckets and the student's full logits."""
    student_logp = student_buckets(student_logits, teacher_idx, temperature)
    return temperature**2 * divergence(kind, teacher_logp, student_logp, beta)
