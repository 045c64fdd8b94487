"""Every loss against a hand computation (and scipy where it has the same quantity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from taskdistill.distill import losses

P = [0.7, 0.2, 0.1]
Q = [0.4, 0.4, 0.2]


def logt(values):
    return torch.tensor([values], dtype=torch.float64).log()


def test_cross_entropy_hand():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    got = losses.cross_entropy(logits, torch.tensor([2, 1]))
    expected0 = math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3.0
    assert got[0].item() == pytest.approx(expected0, abs=1e-6)
    assert got[1].item() == pytest.approx(math.log(3), abs=1e-6)


def test_forward_and_reverse_kl_hand():
    fwd = 0.7 * math.log(0.7 / 0.4) + 0.2 * math.log(0.2 / 0.4) + 0.1 * math.log(0.1 / 0.2)
    rev = 0.4 * math.log(0.4 / 0.7) + 0.4 * math.log(0.4 / 0.2) + 0.2 * math.log(0.2 / 0.1)
    assert losses.forward_kl(logt(P), logt(Q)).item() == pytest.approx(fwd, abs=1e-12)
    assert losses.reverse_kl(logt(P), logt(Q)).item() == pytest.approx(rev, abs=1e-12)
    assert fwd == pytest.approx(entropy(P, Q))  # scipy agrees with the hand numbers
    assert fwd != pytest.approx(rev)


def test_kl_zero_probability_buckets():
    p = [0.5, 0.5, 0.0]
    q = [0.25, 0.25, 0.5]
    got = losses.forward_kl(logt(p), logt(q)).item()
    assert got == pytest.approx(math.log(2), abs=1e-12)


@pytest.mark.parametrize("beta", [0.5, 0.3, 0.9])
def test_generalized_jsd_hand(beta):
    m = [beta * p + (1 - beta) * q for p, q in zip(P, Q)]
    hand = beta * sum(p * math.log(p / mi) for p, mi in zip(P, m)) + (1 - beta) * sum(
        q * math.log(q / mi) for q, mi in zip(Q, m)
    )
    got = losses.generalized_jsd(logt(P), logt(Q), beta).item()
    assert got == pytest.approx(hand, abs=1e-12)
    if beta == 0.5:
        assert got == pytest.approx(jensenshannon(P, Q) ** 2, abs=1e-12)


def test_temperature_scaling_hand():
    s = np.array([1.0, -1.0, 0.5, 2.0])
    t = np.array([2.0, 0.0, -1.0, 1.0])
    tau = 2.0

    def softmax(x):
        e = np.exp(x - x.max())
        return e / e.sum()

    ps, pt = softmax(s / tau), softmax(t / tau)
    hand = tau**2 * float(np.sum(pt * np.log(pt / ps)))
    t_idx, t_logp = losses.topk_buckets(torch.tensor(t[None]), None, tau)
    got = losses.kd_loss(torch.tensor(s[None]), t_idx, t_logp, "forward", tau).item()
    assert got == pytest.approx(hand, rel=1e-5)


def test_topk_rest_bucket_hand():
    teacher = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    student = torch.zeros(1, 4)  # uniform
    idx, t_logp = losses.topk_buckets(teacher, 2)
    assert idx.tolist() == [[0, 1]]
    assert t_logp.exp().tolist()[0] == pytest.approx([0.5, 0.3, 0.2], abs=1e-6)
    s_logp = losses.student_buckets(student, idx)
    assert s_logp.exp().tolist()[0] == pytest.approx([0.25, 0.25, 0.5], abs=1e-6)
    hand = 0.5 * math.log(0.5 / 0.25) + 0.3 * math.log(0.3 / 0.25) + 0.2 * math.log(0.2 / 0.5)
    got = losses.kd_loss(student, idx, t_logp).item()
    assert got == pytest.approx(hand, abs=1e-6)


@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd"])
def test_full_vocab_buckets_equal_full_divergence_and_finite_grad(kind):
    torch.manual_seed(0)
    t = torch.randn(5, 11, dtype=torch.float64)
    s = torch.randn(5, 11, dtype=torch.float64, requires_grad=True)
    idx, t_logp = losses.topk_buckets(t, None)
    got = losses.kd_loss(s, idx, t_logp, kind, beta=0.5)
    full = losses.divergence(kind, torch.log_softmax(t, -1), torch.log_softmax(s, -1))
    torch.testing.assert_close(got, full.float())
    got.sum().backward()
    assert torch.isfinite(s.grad).all()


def test_kd_gradient_matches_softmax_difference():
    """d KL(t‖s)/d s_logits = softmax(s) − softmax(t) at τ = 1 (full vocabulary)."""
    t = torch.tensor([[0.3, -0.2, 1.5]])
    s = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
    idx, t_logp = losses.topk_buckets(t, None)
    losses.kd_loss(s, idx, t_logp).sum().backward()
    torch.testing.assert_close(s.grad, torch.softmax(s.detach(), -1) - torch.softmax(t, -1))
