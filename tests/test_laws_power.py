"""Power before compute: standard errors and detectable differences, checked by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskdistill.errors import TaskDistillError
from taskdistill.laws.derived import kappa50
from taskdistill.laws.fit import fit_points
from taskdistill.laws.observations import points, validate_rows
from taskdistill.laws.power import DETECT, plan_power
from taskdistill.laws.synthetic import rows_from_law

PAPER = {"test_size": 10000, "n_classes": 35, "gk_items": 2000, "gk_chance": 0.25, "seeds": [0, 1, 2],
         "keep_fractions": [0.79, 0.58, 0.37, 0.16], "dataset_sizes": [6000, 25000, 100000, 400000],
         "supervisions": ["label", "cot", "blended"], "expected": {"task_accuracy": 0.9, "gk_accuracy": 0.6}}


def test_standard_errors_by_hand():
    out = plan_power(PAPER)
    se = out["se"]
    assert se["task_accuracy"] == pytest.approx(math.sqrt(0.9 * 0.1 / 10000))
    assert se["gk_accuracy"] == pytest.approx(math.sqrt(0.6 * 0.4 / 2000))
    v = 0.25 + 0.5 * 0.35  # retention ½
    assert se["gk_retention"] == pytest.approx(math.sqrt(v * (1 - v) / 2000 + 0.25 * 0.24 / 2000) / 0.35)
    assert se["gk_retention"] > se["gk_retention_without_teacher_error"]
    assert 0.6 < se["task_macro_f1"] / se["task_accuracy"] < 1.6  # same order as accuracy's
    assert out["warnings"] == []
    assert out["mdd"]["cot_vs_label_gk_retention"]["pairs"] == 4 * 4 * 3 * 2  # κ × D × seeds × CoT-family


def test_macro_f1_se_matches_sklearn_on_simulated_test_sets():
    from sklearn.metrics import f1_score

    n, classes, p = 700, 35, 0.8
    rng = np.random.default_rng(0)
    gold = np.repeat(np.arange(classes), n // classes)
    scores = []
    for _ in range(150):
        wrong = rng.random(gold.size) > p
        guess = np.where(wrong, (gold + rng.integers(1, classes, gold.size)) % classes, gold)
        scores.append(f1_score(gold, guess, average="macro"))
    planned = plan_power({**PAPER, "test_size": n, "expected": {"task_accuracy": p, "gk_accuracy": 0.6}})
    assert planned["se"]["task_macro_f1"] == pytest.approx(np.std(scores, ddof=1), rel=0.2)


def test_cot_vs_label_detectable_difference_holds_up_in_simulation():
    """Simulate the F3 estimator (mean of matched pair differences; a chain effect per chain, binomial
    items, one noisy teacher) at a true difference equal to the planned detectable one: ~80 % of the
    z-tests at the planned standard error reject."""
    design = {**PAPER, "gk_items": 400, "dataset_sizes": [4000], "supervisions": ["label", "cot"],
              "assume": {"seed_sd": 0.02}}
    out = plan_power(design)
    cot = out["mdd"]["cot_vs_label_gk_retention"]
    g, c, m, seeds, kappas = 0.6, 0.25, 400, 3, 4
    rng = np.random.default_rng(1)
    estimates = {0.0: [], cot["value"]: []}
    for d, found in estimates.items():
        for _ in range(3000):
            r_hat = rng.binomial(m, g) / m
            chain = rng.normal(0, 0.02, (2, seeds, 1))
            q_label = 0.5
            v_l = c + (g - c) * q_label + chain[0]
            v_c = c + (g - c) * (q_label + d) + chain[1]
            k_l = rng.binomial(m, np.clip(np.broadcast_to(v_l, (seeds, kappas)), 0, 1)) / m
            k_c = rng.binomial(m, np.clip(np.broadcast_to(v_c, (seeds, kappas)), 0, 1)) / m
            found.append(np.mean(k_c - k_l) / (r_hat - c))
    sd0 = float(np.std(estimates[0.0]))
    assert cot["se_at_zero"] == pytest.approx(sd0, rel=0.1)
    power = np.mean(np.abs(np.array(estimates[cot["value"]])) / cot["se_at_zero"] > 1.96)
    assert 0.72 < power < 0.88, power
    assert cot["value"] == pytest.approx(DETECT * cot["se_at_zero"], rel=0.1)


def test_collapse_gap_standard_error_matches_refits():
    """One slice of each metric (6 κ × 2 seeds), teachers measured on the same items: the spread of
    fitted κ50 gaps over 60 simulated studies matches the planned (delta-method) standard error."""
    kappas = [0.9, 0.75, 0.6, 0.45, 0.33, 0.2]
    assume = {"seed_sd": 0.0, "kappa50_task": 0.3, "kappa50_gk": 0.55, "alpha": 2.0}
    design = {"test_size": 800, "n_classes": 10, "gk_items": 800, "gk_chance": 0.25, "seeds": [0, 1],
              "keep_fractions": kappas, "dataset_sizes": [1000], "supervisions": ["label"],
              "expected": {"task_accuracy": 0.85, "gk_accuracy": 0.6}, "assume": assume}
    planned = plan_power(design)["mdd"]["collapse_gap"]
    rng = np.random.default_rng(2)
    gaps = []
    for _ in range(60):
        k50 = {}
        for metric, (h, c, key) in {"task": (0.85, 0.1, "kappa50_task"), "gk": (0.6, 0.25, "kappa50_gk")}.items():
            law = {"a": math.log(2) * assume[key] ** 2.0, "alpha": 2.0}
            rows = rows_from_law("a1", law, metric=metric, kappas=kappas, seeds=(0, 1), n=800, chance=c,
                                 true_reference=h, reference_n=800, rng=rng)
            k50[metric] = kappa50(fit_points(points(validate_rows(rows), metric), "a1"))
        gaps.append(k50["gk"] - k50["task"])
    assert np.mean(gaps) == pytest.approx(0.25, abs=0.03)
    assert planned["se"] == pytest.approx(np.std(gaps, ddof=1), rel=0.3)


@pytest.mark.parametrize("change, knob", [
    ({"supervisions": ["label"]}, "add cot to axes.supervision"),
    ({"supervisions": ["cot"]}, "add label to axes.supervision"),
    ({"seeds": [0]}, "axes.seeds"),
    ({"keep_fractions": [0.7, 0.4]}, "axes.keep_fractions"),
    ({"keep_fractions": [0.9, 0.85, 0.8, 0.75]}, "axes.keep_fractions"),  # the collapse lies outside
    ({"test_size": 200}, "task.test_size"),
    ({"gk_items": 30}, "knowledge.limit"),
])
def test_each_unanswerable_question_names_its_knob(change, knob):
    warnings = plan_power({**PAPER, **change})["warnings"]
    assert warnings and any(knob in w for w in warnings), warnings


def test_bad_designs_are_refused():
    with pytest.raises(TaskDistillError, match="expected.gk_accuracy must be above gk_chance"):
        plan_power({**PAPER, "expected": {"gk_accuracy": 0.2}})
    with pytest.raises(TaskDistillError, match="test_size must be ≥ 1"):
        plan_power({**PAPER, "test_size": 0})


def test_test_size_warnings_name_the_knob_that_sets_the_size():
    from taskdistill.laws.power import plan_power

    small = {"test_size": 105, "n_classes": 35}
    assert any("raise task.test_size" in w for w in plan_power(small)["warnings"])
    limited = plan_power({**small, "test_knob": "evaluation.test_limit"})["warnings"]
    assert any("raise evaluation.test_limit" in w for w in limited)
    assert not any("task.test_size" in w for w in limited)
