"""Chance-normalised retention, the quantity every stage reports and every law models.

q = (value − chance) / (reference − chance): 0 at chance, 1 at the reference (the corrected teacher).
Written once here; evaluation, the study's early stop, the laws and the report all use it.
"""

from __future__ import annotations

import numpy as np


def retention(value, chance, reference):
    """q of a value against its chance level and reference.

    Scalars give a float, or None when it is undefined (a missing input, or a reference not above
    chance: nothing to retain). Arrays are divided elementwise (the laws check the references first).
    """
    if all(np.ndim(x) == 0 for x in (value, chance, reference)):
        if value is None or chance is None or reference is None or float(reference) <= float(chance):
            return None
        return (float(value) - float(chance)) / (float(reference) - float(chance))
    value, chance, reference = (np.asarray(x, dtype=np.float64) for x in (value, chance, reference))
    return (value - chance) / (reference - chance)


def value_from_retention(q, chance, reference):
    """Inverse of :func:`retention`: the metric value p = chance + (reference − chance)·q."""
    q, chance, reference = (np.asarray(x, dtype=np.float64) for x in (q, chance, reference))
    return chance + (reference - chance) * q
