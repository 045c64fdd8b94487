"""Synthetic observation rows from known laws, for tests and demos.

The four original laws (a1, a2, b1, c1) are written out here from the natural parameters directly,
independently of their records in forms.py, so recovering them checks the fitter end to end (and a
test checks that the records' own ``evaluate`` agrees). Any other registered form — a1h, c1h, or
one a test registers — is generated through its record's ``evaluate``.
"""

from __future__ import annotations

from itertools import product

import numpy as np

LN2 = float(np.log(2.0))


def _c1(p, kappa, D, supervision, schedule):
    m = p.get(f"m[{supervision}]", 1.0)
    e = p.get(f"e[{schedule}]", 1.0)
    with np.errstate(divide="ignore"):
        return np.exp(-(p["E"] + p["a"] * (e * kappa) ** -p["alpha"] + p["b"] * (m * D) ** -p["beta"]))


# Independent re-implementations (not the records): what the recovery tests check the fitter against.
INDEPENDENT = {
    "a1": lambda p, kappa, D, sup, sched: np.exp(-p["a"] * kappa ** -p["alpha"]),
    "a2": lambda p, kappa, D, sup, sched: 1.0 / (1.0 + (p["kappa_star"] / kappa) ** p["s"]),
    "b1": lambda p, kappa, D, sup, sched: p["q_inf"] - (p["q_inf"] - p["q0"]) * (1 + D / p["D0"]) ** -p["beta"],
    "c1": _c1,
}


def law_q(form: str, p: dict, kappa, D=0.0, supervision="label", schedule="iterative"):
    """Retention q of the named form at natural parameters ``p`` (any registered form)."""
    kappa, D = np.asarray(kappa, dtype=np.float64), np.asarray(D, dtype=np.float64)
    if form in INDEPENDENT:
        return INDEPENDENT[form](p, kappa, D, supervision, schedule)
    from taskdistill.laws.forms import FORMS

    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}")
    return FORMS[form].evaluate(p, kappa, D, supervision, schedule)


def rows_from_law(form: str, p: dict, *, metric: str, kappas, dataset_sizes=(0,), supervisions=("label",),
                  methods=("logit",), schedules=("iterative",), seeds=(0,), n: int = 500, chance: float = 0.25,
                  reference: float = 0.9, noise: str = "binomial", rho: float = 0.0, rng=None,
                  teacher_params: float = 135e6, latency=(2.0, 20.0), count: bool = True,
                  effective: dict | float | None = None, stderr_factor: float | None = None,
                  branch_sd: float = 0.0, branches: bool = False, reference_n: int | None = None,
                  true_reference: float | None = None) -> list[dict]:
    """One row per (κ, D, supervision, method, schedule, seed); value = chance + (reference − chance)·q.

    ``noise``: ``none`` (exact expected counts), ``binomial``, or ``betabinomial`` with correlation ρ.
    ``count=False`` leaves ``correct`` empty (a macro-F1-like metric; value carries the noise).
    ``stderr_factor``: a macro-F1-like metric whose evaluation noise is ``stderr_factor`` × the binomial
    standard error at n items (value ~ normal around the law); the row carries that ``stderr``.
    ``effective``: fraction of the nominal D actually trained on (a float, or {supervision: fraction});
    the law reads the effective D and the row carries ``effective_dataset_size``.
    ``branches``: rows carry ``branch`` = one iterative chain (schedule, D, supervision, method, seed);
    ``branch_sd`` adds one normal shift (accuracy units) per chain, shared by all of its κ levels.
    ``reference_n``: the teacher was measured on that many items: with ``true_reference`` the row's
    ``reference`` is a binomial draw around it (else ``reference`` is exact), and rows carry
    ``reference_n``.
    """
    rng = np.random.default_rng(rng)
    if true_reference is not None:
        reference = float(rng.binomial(reference_n, true_reference) / reference_n)
    truth_ref = reference if true_reference is None else true_reference
    shift: dict = {}
    rows = []
    for kappa, D, sup, method, sched, seed in product(kappas, dataset_sizes, supervisions, methods, schedules, seeds):
        frac = effective.get(sup, 1.0) if isinstance(effective, dict) else (1.0 if effective is None else effective)
        d_eff = float(D) * frac
        q = float(law_q(form, p, kappa, d_eff, sup, sched))
        chain = (sched, float(D), sup, method, float(seed))
        if branch_sd and chain not in shift:
            shift[chain] = float(rng.normal(0.0, branch_sd))
        prob = float(np.clip(chance + (truth_ref - chance) * q + shift.get(chain, 0.0), 0.0, 1.0))
        se = None
        if stderr_factor is not None:
            se = stderr_factor * float(np.sqrt(max(prob * (1 - prob), 1e-6) / n))
            k = n * (prob if noise == "none" else float(np.clip(rng.normal(prob, se), 0.0, 1.0)))
        elif noise == "none":
            k = prob * n
        elif noise == "binomial":
            k = float(rng.binomial(n, prob))
        elif noise == "betabinomial":
            phi = 1 / rho - 1
            k = float(rng.binomial(n, rng.beta(max(prob * phi, 1e-9), max((1 - prob) * phi, 1e-9))))
        else:
            raise ValueError(f"unknown noise {noise!r}")
        row = {
            "metric": metric, "supervision": sup, "method": method, "schedule": sched,
            "keep_fraction": float(kappa), "dataset_size": float(D), "seed": float(seed),
            "correct": k if count and se is None else None, "n": float(n), "value": k / n, "chance": chance,
            "reference": reference, "params": teacher_params * kappa, "latency_ms": latency[0] + latency[1] * kappa,
        }
        if se is not None:
            row["stderr"] = se
        if effective is not None:
            row["effective_dataset_size"] = d_eff
        if branches:
            row["branch"] = "/".join(str(x) for x in chain)
        if reference_n is not None:
            row["reference_n"] = float(reference_n)
        rows.append(row)
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
