"""Losses the fitter sums (never averages): binomial and beta-binomial negative log-likelihoods on
correct counts, and the Huber loss on a transformed value. Each returns (total, d total / d prediction).

Hand-written because scipy.stats gives log-pmfs but not their derivatives in the mean, which
L-BFGS-B needs; tests check the values against scipy.stats.binom / betabinom.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln

from taskdistill.laws.transforms import P_EPS


def binomial_nll(k, n, p):
    """−Σ log Binom(k | n, p) (k may be a real pseudo-count) and its gradient in p."""
    p = np.clip(p, P_EPS, 1 - P_EPS)
    log_choose = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    nll = -np.sum(log_choose + k * np.log(p) + (n - k) * np.log1p(-p))
    return float(nll), -k / p + (n - k) / (1 - p)


def betabinomial_nll(k, n, p, rho):
    """−Σ log BetaBinom(k | n, a = pφ, b = (1 − p)φ), φ = 1/ρ − 1 (ρ: intra-setting correlation across
    seeds; var = np(1 − p)(1 + (n − 1)ρ)); falls back to the binomial when ρ is ~0."""
    if rho < 1e-7:
        return binomial_nll(k, n, p)
    p = np.clip(p, P_EPS, 1 - P_EPS)
    phi = 1.0 / rho - 1.0
    a, b = p * phi, (1 - p) * phi
    log_choose = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    nll = -np.sum(log_choose + betaln(k + a, n - k + b) - betaln(a, b))
    grad = -phi * ((digamma(k + a) - digamma(a)) - (digamma(n - k + b) - digamma(b)))
    return float(nll), grad


def huber(residual, delta):
    """Σ Huber_δ(r) = Σ ½r² (|r| ≤ δ) or δ(|r| − ½δ), and its gradient in r."""
    r = np.asarray(residual, dtype=np.float64)
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    return float(loss.sum()), np.where(small, r, delta * np.sign(r))


def overdispersion(k, n, settings) -> float:
    """Method-of-moments ρ from settings evaluated with several seeds (0 when none is replicated).

    Pools, over replicated settings, the ratio R of the observed between-seed variance of the
    proportions to the binomial variance; R = 1 + (n̄ − 1)ρ gives ρ (clipped at 0).
    """
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    groups: dict = {}
    for i, s in enumerate(settings):
        groups.setdefault(s, []).append(i)
    num = den = 0.0
    sizes = []
    for idx in groups.values():
        if len(idx) < 2:
            continue
        kk, nn = k[idx], n[idx]
        pbar = kk.sum() / nn.sum()
        if pbar <= 0 or pbar >= 1:
            continue
        num += np.sum(nn * (kk / nn - pbar) ** 2)
        den += (len(idx) - 1) * pbar * (1 - pbar)
        sizes.extend(nn)
    if den == 0 or not sizes:
        return 0.0
    nbar = float(np.mean(sizes))
    return float(np.clip((num / den - 1.0) / max(nbar - 1.0, 1.0), 0.0, 0.5))
