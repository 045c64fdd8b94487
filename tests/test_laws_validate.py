"""Held-out validation, AICc selection, derived answers and the study-wide analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from taskdistill.errors import TaskDistillError
from taskdistill.laws import derived
from taskdistill.laws.analysis import fit_study
from taskdistill.laws.fit import fit_points
from taskdistill.laws.observations import points, validate_rows
from taskdistill.laws.synthetic import law_q, rows_from_law
from taskdistill.laws.validate import compare_forms, leave_one_level_out, mild_to_severe

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
C1 = {"E": 0.02, "a": 0.01, "alpha": 1.8, "b": 3.0, "beta": 0.45, "m[cot]": 3.0}


def _pts(form, law, noise="none", **kw):
    kw.setdefault("kappas", KAPPAS)
    return points(validate_rows(rows_from_law(form, law, metric="m", noise=noise, n=1000, **kw)), "m")


def test_held_out_errors_vanish_on_exact_data_and_are_in_accuracy_points():
    pts = _pts("a1", {"a": 0.05, "alpha": 1.7})
    loo = leave_one_level_out(pts, "a1", loss="lsq")
    assert len(loo["levels"]) == 8 and loo["mae_points"] < 1e-4
    ms = mild_to_severe(pts, "a1", loss="lsq")
    assert ms["held_out"] == [0.16, 0.26, 0.37] and ms["mae_points"] < 1e-4
    # a wrong law: a2 fitted on a1 data → visible held-out error, in points (×100 the value error)
    bad = mild_to_severe(pts, "a2", loss="lsq")
    fit = fit_points(pts.take(pts.kappa > 0.4), "a2", loss="lsq")
    severe = pts.take(pts.kappa < 0.4)
    assert bad["mae_points"] == pytest.approx(100 * np.mean(np.abs(fit.predict_points(severe) - severe.value)))
    assert bad["mae_points"] > 0.5


def test_held_out_refits_on_small_studies():
    pts = _pts("a1", {"a": 0.05, "alpha": 1.7}, kappas=(0.9, 0.7, 0.5, 0.3))
    loo = leave_one_level_out(pts, "a1")  # 3 points left: under 2 residual degrees of freedom
    assert all("skipped" in lv for lv in loo["levels"]) and loo["mae_points"] is None
    five = _pts("a1", {"a": 0.05, "alpha": 1.7}, kappas=(0.9, 0.7, 0.5, 0.3, 0.2))
    assert leave_one_level_out(five, "a1", loss="lsq")["mae_points"] < 1e-4  # 4 points per refit suffice
    ms = mild_to_severe(five, "a1", loss="lsq")
    assert ms["held_out"] == [0.2] and ms["mae_points"] < 1e-4  # one level held out, 4 left to fit


@pytest.mark.parametrize("true_form, law", [("a1", {"a": 0.05, "alpha": 1.7}), ("a2", {"kappa_star": 0.4, "s": 3.0})])
def test_aicc_prefers_the_true_form(true_form, law):
    kappas = np.geomspace(0.12, 0.95, 12)
    wins = 0
    for seed in range(5):
        pts = _pts(true_form, law, noise="binomial", kappas=kappas, rng=seed, seeds=(0, 1))
        wins += compare_forms(pts, ("a1", "a2"))[0]["form"] == true_form
    assert wins >= 4


def test_kappa50_matches_a_numerical_root():
    fit = fit_points(_pts("a1", {"a": 0.05, "alpha": 1.7}), "a1", loss="lsq")
    root = brentq(lambda k: fit.predict_q(k)[0] - 0.5, 0.01, 1.0, xtol=1e-14)
    assert derived.kappa50(fit) == pytest.approx(root, rel=1e-9)
    fit2 = fit_points(_pts("a2", {"kappa_star": 0.4, "s": 3.0}), "a2", loss="lsq")
    assert derived.kappa50(fit2) == pytest.approx(0.4, rel=1e-6)
    assert derived.kappa50(fit2, q=0.8) == pytest.approx(brentq(lambda k: fit2.predict_q(k)[0] - 0.8, 0.05, 5.0), rel=1e-8)


def test_joint_law_answers_data_needed_kappa50_and_data_equivalence():
    pts = _pts("c1", C1, dataset_sizes=(500, 2000, 8000), supervisions=("label", "cot"))
    fit = fit_points(pts, "c1", loss="lsq")
    D = derived.data_needed(fit, 0.8, kappa=0.5, supervision="label")
    assert fit.predict_q(0.5, D, "label")[0] == pytest.approx(0.8, rel=1e-8)
    assert derived.data_needed(fit, 0.8, kappa=0.5, supervision="cot") == pytest.approx(D / 3.0, rel=1e-4)
    assert math.isinf(derived.data_needed(fit, 0.99, kappa=0.2))  # beyond E + the κ term: unreachable
    k50 = derived.kappa50(fit, dataset_size=2000, supervision="cot")
    assert law_q("c1", C1, k50, 2000, "cot") == pytest.approx(0.5, rel=1e-4)
    assert derived.data_equivalent(fit, "cot") == pytest.approx(3.0, rel=1e-4)
    assert derived.data_equivalent(fit, "label") == 1.0
    with pytest.raises(TaskDistillError, match="not in the fitted data"):
        derived.data_equivalent(fit, "blended")


def test_b1_data_needed_closed_form():
    law = {"q_inf": 0.85, "q0": 0.1, "D0": 700.0, "beta": 0.6}
    pts = _pts("b1", law, kappas=(0.5,), dataset_sizes=(0, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000))
    fit = fit_points(pts, "b1", loss="lsq")
    D = derived.data_needed(fit, 0.6)
    assert law_q("b1", law, 0.5, D) == pytest.approx(0.6, rel=1e-5)
    assert derived.data_needed(fit, 0.05) == 0.0 and math.isinf(derived.data_needed(fit, 0.9))


def test_fit_study_reports_gap_intervals_and_skips():
    rows = rows_from_law("a1", {"a": 0.01, "alpha": 1.6}, metric="macro_f1", kappas=KAPPAS, n=2000, rng=0)
    rows += rows_from_law("a1", {"a": 0.1, "alpha": 2.0}, metric="mmlu", kappas=KAPPAS, n=2000, rng=1, chance=0.25)
    rows += rows_from_law("a1", {"a": 0.1, "alpha": 2.0}, metric="mmlu", kappas=(0.5,), n=2000, rng=1,
                          dataset_sizes=(99,), seeds=range(6))  # one κ level: skipped with the plain statement
    result = fit_study(validate_rows(rows), families=("a1",), B=30)
    ok = [g for g in result["groups"] if g["status"] == "ok"]
    skipped = [g for g in result["groups"] if g["status"] == "skipped"]
    assert len(ok) == 2 and len(skipped) == 1 and skipped[0]["reason"].startswith("not identifiable")
    gk = next(g for g in ok if g["metric"] == "mmlu")
    gap = gk["derived"]["collapse_gap_vs_macro_f1"]
    true_gap = (0.1 / math.log(2)) ** (1 / 2.0) - (0.01 / math.log(2)) ** (1 / 1.6)
    assert gap["lo"] <= gap["value"] <= gap["hi"] and gap["lo"] - 0.03 < true_gap < gap["hi"] + 0.03
    assert gk["bootstrap"]["replicates"] == 30 and gk["bootstrap"]["kind"] == "parametric"
    k50 = gk["derived"]["kappa50"]
    assert k50["lo"] < k50["value"] < k50["hi"] and not k50["extrapolated"]
    with pytest.raises(TaskDistillError, match="unknown metric"):
        fit_study(validate_rows(rows), metrics=["mmlu_pro"])


def test_fit_study_without_bootstrap_gives_point_answers():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.7}, metric="gk_mmlu", kappas=KAPPAS, rng=0))
    g = fit_study(rows, families=("a1",), B=0, validate=False)["groups"][0]
    k50 = g["derived"]["kappa50"]
    assert k50["value"] == pytest.approx(derived.kappa50(fit_points(points(rows, "gk_mmlu"), "a1")))
    assert math.isnan(k50["lo"]) and g["bootstrap"]["replicates"] == 0
