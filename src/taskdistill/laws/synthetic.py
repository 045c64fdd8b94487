"""Synthetic observation rows from known laws, for tests and demos.

The laws here are written from the natural parameters directly (independently of forms.py), so
recovering them checks the fitter end to end.
"""

from __future__ import annotations

from itertools import product

import numpy as np

LN2 = float(np.log(2.0))


def law_q(form: str, p: dict, kappa, D=0.0, supervision="label", schedule="iterative"):
    """Retention q of the named form at natural parameters ``p`` (see forms.py for the formulas)."""
    kappa, D = np.asarray(kappa, dtype=np.float64), np.asarray(D, dtype=np.float64)
    if form == "a1":
        return np.exp(-p["a"] * kappa ** -p["alpha"])
    if form == "a2":
        return 1.0 / (1.0 + (p["kappa_star"] / kappa) ** p["s"])
    if form == "b1":
        return p["q_inf"] - (p["q_inf"] - p["q0"]) * (1 + D / p["D0"]) ** -p["beta"]
    if form == "c1":
        m = p.get(f"m[{supervision}]", 1.0)
        e = p.get(f"e[{schedule}]", 1.0)
        with np.errstate(divide="ignore"):
            return np.exp(-(p["E"] + p["a"] * (e * kappa) ** -p["alpha"] + p["b"] * (m * D) ** -p["beta"]))
    raise ValueError(f"unknown form {form!r}")


def rows_from_law(form: str, p: dict, *, metric: str, kappas, dataset_sizes=(0,), supervisions=("label",),
                  methods=("logit",), schedules=("iterative",), seeds=(0,), n: int = 500, chance: float = 0.25,
                  reference: float = 0.9, noise: str = "binomial", rho: float = 0.0, rng=None,
                  teacher_params: float = 135e6, latency=(2.0, 20.0), count: bool = True) -> list[dict]:
    """One row per (κ, D, supervision, method, schedule, seed); value = chance + (reference − chance)·q.

    ``noise``: ``none`` (exact expected counts), ``binomial``, or ``betabinomial`` with correlation ρ.
    ``count=False`` leaves ``correct`` empty (a macro-F1-like metric; value carries the noise).
    """
    rng = np.random.default_rng(rng)
    rows = []
    for kappa, D, sup, method, sched, seed in product(kappas, dataset_sizes, supervisions, methods, schedules, seeds):
        q = float(law_q(form, p, kappa, D, sup, sched))
        prob = float(np.clip(chance + (reference - chance) * q, 0.0, 1.0))
        if noise == "none":
            k = prob * n
        elif noise == "binomial":
            k = float(rng.binomial(n, prob))
        elif noise == "betabinomial":
            phi = 1 / rho - 1
            k = float(rng.binomial(n, rng.beta(max(prob * phi, 1e-9), max((1 - prob) * phi, 1e-9))))
        else:
            raise ValueError(f"unknown noise {noise!r}")
        rows.append({
            "metric": metric, "supervision": sup, "method": method, "schedule": sched,
            "keep_fraction": float(kappa), "dataset_size": float(D), "seed": float(seed),
            "correct": k if count else None, "n": float(n), "value": k / n, "chance": chance,
            "reference": reference, "params": teacher_params * kappa, "latency_ms": latency[0] + latency[1] * kappa,
        })
    return rows


# A demo study: in-domain macro-F1 degrades late, general knowledge collapses early; CoT supervision
# is worth 3× the label-only data in-domain and recovers general knowledge (larger multiplier there).
DEMO_LAWS = {
    "task_macro_f1": ({"E": 0.02, "a": 0.004, "alpha": 2.2, "b": 3.0, "beta": 0.45, "m[cot]": 3.0}, 1 / 13, 0.92),
    "gk_aggregate": ({"E": 0.03, "a": 0.12, "alpha": 2.0, "b": 1.5, "beta": 0.35, "m[cot]": 8.0}, 0.25, 0.55),
}


def demo_rows(seed: int = 0, *, kappas=(0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16),
              dataset_sizes=(500, 2000, 8000, 32000), supervisions=("label", "cot"), seeds=(0, 1), n: int = 1000):
    """Rows of a demo study (two metrics, 8 κ × 4 D × 2 supervisions × 2 seeds)."""
    rng = np.random.default_rng(seed)
    rows = []
    for metric, (p, chance, ref) in DEMO_LAWS.items():
        rows += rows_from_law("c1", p, metric=metric, kappas=kappas, dataset_sizes=dataset_sizes,
                              supervisions=supervisions, seeds=seeds, n=n, chance=chance, reference=ref,
                              rng=rng, count=metric != "task_macro_f1")
    return rows
