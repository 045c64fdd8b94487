"""Chance-normalised retention q and the transforms the laws are fitted on.

q = (value − chance) / (reference − chance): 0 at chance, 1 at the (corrected) teacher. The laws model
q; the likelihood is on the observed value p = chance + (reference − chance)·q (see docs/laws.md).

Chance levels are fixed by design, never fitted: 1/options for multiple-choice accuracy, 1/C for
C-class accuracy, and for macro-F1 the prior-based floor (what a uniform random guesser scores,
``evaluate.metrics.macro_f1_floor``). The retention formula itself is ``taskdistill.retention``.
"""

from __future__ import annotations

import numpy as np

from taskdistill.evaluate.metrics import macro_f1_floor  # noqa: F401  (re-exported: the floor chance of macro-F1)
from taskdistill.retention import retention, value_from_retention  # noqa: F401  (re-exported)

# Smallest retention the transformed-value (Huber / least-squares) fits see: −log q is capped at
# −log(Q_MIN) ≈ 6.9, so a point at or below chance stays in the fit instead of becoming infinite.
Q_MIN = 1e-3
# Observed values are clipped into (P_EPS, 1 − P_EPS) inside likelihoods so log p stays finite.
P_EPS = 1e-9


def neglog_retention(q):
    """The log-link transform y = −log q, with q clipped below at :data:`Q_MIN`."""
    return -np.log(np.maximum(np.asarray(q, dtype=np.float64), Q_MIN))
