"""Chance-normalised retention q and the transforms the laws are fitted on.

q = (value − chance) / (reference − chance): 0 at chance, 1 at the (corrected) teacher. The laws model
q; the likelihood is on the observed value p = chance + (reference − chance)·q (see docs/laws.md).

Chance levels are fixed by design, never fitted: 1/options for multiple-choice accuracy, 1/C for
C-class accuracy, and for macro-F1 the floor below (what a uniform random guesser scores).
"""

from __future__ import annotations

import numpy as np

# Smallest retention the transformed-value (Huber / least-squares) fits see: −log q is capped at
# −log(Q_MIN) ≈ 6.9, so a point at or below chance stays in the fit instead of becoming infinite.
Q_MIN = 1e-3
# Observed values are clipped into (P_EPS, 1 − P_EPS) inside likelihoods so log p stays finite.
P_EPS = 1e-9


def retention(value, chance, reference):
    """Chance-normalised retention q = (value − chance)/(reference − chance)."""
    value, chance, reference = (np.asarray(x, dtype=np.float64) for x in (value, chance, reference))
    return (value - chance) / (reference - chance)


def value_from_retention(q, chance, reference):
    """Inverse of :func:`retention`: the metric value p = chance + (reference − chance)·q."""
    q, chance, reference = (np.asarray(x, dtype=np.float64) for x in (q, chance, reference))
    return chance + (reference - chance) * q


def macro_f1_floor(class_priors) -> float:
    """Macro-F1 of a classifier that guesses uniformly at random among C classes.

    Class i with prior π_i gets (in expectation) precision π_i and recall 1/C, so
    F1_i = 2π_i/(Cπ_i + 1); the floor is their mean. With balanced classes it is exactly 1/C,
    the same as the accuracy chance level.
    """
    pi = np.asarray(class_priors, dtype=np.float64)
    if pi.ndim != 1 or pi.size < 2 or np.any(pi < 0) or not np.isclose(pi.sum(), 1.0):
        raise ValueError("class_priors must be ≥ 2 non-negative shares summing to 1")
    c = pi.size
    return float(np.mean(2 * pi / (c * pi + 1)))


def neglog_retention(q):
    """The log-link transform y = −log q, with q clipped below at :data:`Q_MIN`."""
    return -np.log(np.maximum(np.asarray(q, dtype=np.float64), Q_MIN))
