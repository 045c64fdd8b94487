"""recommend's two probabilities, and constraints above the teacher's value."""

from __future__ import annotations

import numpy as np
import pytest

from taskdistill.laws.analysis import fit_study
from taskdistill.laws.observations import validate_rows
from taskdistill.laws.recommend import recommend
from taskdistill.laws.synthetic import law_q, rows_from_law

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
CHANCE, TEACHER = 1 / 35, 0.85


def _at(result, kappa):
    """The candidate at keep fraction ``kappa`` (ranked or closest)."""
    return next(e for e in result["ranked"] + result.get("closest", []) if abs(e["keep_fraction"] - kappa) < 1e-9)


def test_mean_confidence_goes_to_certainty_while_a_new_student_stays_a_coin_flip():
    """Seeds scatter by ~2.6 points around the law (beta-binomial). A bound 0.2 seed-spread below
    (above) the true mean at κ = 0.58: as seeds grow from 3 to 120, the confidence that the mean
    meets it goes to ~1 (~0), while the probability that a newly trained student meets it stays
    near Φ(±0.2) ≈ 0.58 / 0.42 — and exactly on the mean near 0.5 — at every size."""
    law, n, rho, k0 = {"a": 0.05, "alpha": 1.7}, 2000, 0.004, 0.58
    mu = CHANCE + (TEACHER - CHANCE) * float(law_q("a1", law, k0))
    sd = float(np.sqrt(mu * (1 - mu) / n * (1 + (n - 1) * rho)))  # a new student's spread around the mean
    seen = {}
    for seeds in (3, 120):
        rows = validate_rows(rows_from_law("a1", law, metric="task_macro_f1", kappas=KAPPAS, seeds=range(seeds), n=n,
                                           chance=CHANCE, reference=TEACHER, noise="betabinomial", rho=rho,
                                           dataset_sizes=(1000,), rng=seeds))
        for shift in (-0.2, 0.0, 0.2):
            out = recommend(rows, min_macro_f1=mu + shift * sd, B=40, confidence=0.01, top=1000)
            e = _at(out, k0)
            assert e["p_mean_meets"]["task_macro_f1"] == e["p_mean_meets_all"]
            seen[seeds, shift] = (e["p_mean_meets_all"], e["p_new_meets_all"])
        spread = out["spread"]["task_macro_f1"]
        assert spread["source"] == "seeds" and spread["seed_sd"] == pytest.approx(sd, rel=0.25)
    print({k: tuple(round(x, 3) for x in v) for k, v in seen.items()})
    assert seen[120, -0.2][0] >= 0.95 and seen[120, 0.2][0] <= 0.1  # (a) → 1 / 0
    assert seen[3, -0.2][0] < seen[120, -0.2][0]
    for (seeds, shift), (_, p_new) in seen.items():
        assert abs(p_new - (0.5 - 0.08 * np.sign(shift))) < 0.09, (seeds, shift, p_new)


def test_students_above_the_teacher_give_constraints_above_it_a_real_probability():
    """Students beat their teacher at mild κ (ceiling 1.13× the teacher's retention); a bound one
    point above the teacher's macro-F1 is impossible by construction under a1 (q ≤ 1) but gets a
    non-zero probability once the free ceiling is fitted (auto picks it: the data need it)."""
    law = {"E": -0.12, "a": 0.05, "alpha": 1.7}
    rows = validate_rows(rows_from_law("a1h", law, metric="task_macro_f1", kappas=KAPPAS, seeds=range(3), n=2000,
                                       chance=CHANCE, reference=TEACHER, dataset_sizes=(1000,), rng=7))
    assert max(r["value"] for r in rows) > TEACHER + 0.03
    auto = recommend(rows, min_macro_f1=TEACHER + 0.01, B=30, confidence=0.5)
    never = recommend(rows, min_macro_f1=TEACHER + 0.01, B=30, confidence=0.5, ceiling="never")
    best = auto["recommended"]
    assert best["forms"]["task_macro_f1"] == "a1h" and best["p_mean_meets_all"] > 0.5
    assert max(e["p_mean_meets_all"] for e in never["closest"] + never["ranked"]) == 0.0  # capped at the teacher
    g = fit_study(rows, families=("a1",), B=0, validate=False)["groups"][0]
    assert g["form"] == "a1h" and any("free ceiling" in note for note in g["fit"]["notes"])
    assert g["fit"]["params"]["q_ceiling"] == pytest.approx(np.exp(0.12), rel=0.05)


def test_without_a_need_the_ceiling_is_not_used():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.7}, metric="task_macro_f1", kappas=KAPPAS,
                                       seeds=range(3), n=2000, chance=CHANCE, reference=TEACHER, rng=8))
    assert fit_study(rows, families=("a1",), B=0, validate=False)["groups"][0]["form"] == "a1"
    forced = fit_study(rows, families=("a1",), B=0, validate=False, ceiling="always")["groups"][0]
    assert forced["form"] == "a1h" and forced["fit"]["params"]["q_ceiling"] == pytest.approx(1.0, abs=0.03)
