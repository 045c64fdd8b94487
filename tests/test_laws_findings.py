"""The paper's three findings as tests on synthetic studies where each is true, false or untestable."""

from __future__ import annotations

import pytest

from taskdistill.laws import findings
from taskdistill.laws.synthetic import rows_from_law

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
TASK = ("a1", {"a": 0.02, "alpha": 1.8})  # κ50 ≈ 0.14: the task survives deep pruning
GK_EARLY = ("a1", {"a": 0.15, "alpha": 2.0})  # κ50 ≈ 0.47: general knowledge collapses first
GK_LATE = ("a1", {"a": 0.005, "alpha": 1.8})  # κ50 ≈ 0.065: general knowledge outlasts the task
GK_KEPT = ("a1", {"a": 0.07, "alpha": 2.0})  # what CoT supervision keeps when it helps


def _study(task=TASK, gk=None, supervisions=("label", "cot"), kappas=KAPPAS, seeds=range(3), dataset_sizes=(2000,),
           n=2000, gk_items=2000, rng=0, metrics=("task_macro_f1", "gk_aggregate")):
    """Rows of a study: branches (iterative chains), teachers measured on as many items as a student."""
    gk = gk or {"label": GK_EARLY, "cot": GK_KEPT}
    rows = []
    for i, sup in enumerate(supervisions):
        common = {"kappas": kappas, "seeds": seeds, "dataset_sizes": dataset_sizes, "supervisions": (sup,),
                  "branches": True, "rng": rng * 100 + i}
        if "task_macro_f1" in metrics:
            rows += rows_from_law(task[0], task[1], metric="task_macro_f1", n=n, chance=1 / 35, reference=0.88,
                                  reference_n=n, **common)
        if "gk_aggregate" in metrics:
            law = gk.get(sup, GK_EARLY)
            rows += rows_from_law(law[0], law[1], metric="gk_aggregate", n=gk_items, chance=0.25, reference=0.62,
                                  reference_n=gk_items, **{**common, "rng": rng * 100 + 50 + i})
    return rows


def _by_id(result):
    assert [f["id"] for f in result] == ["F1", "F2", "F3"]
    for f in result:
        assert set(f) == {"id", "claim", "effect", "verdict", "why"} and f["why"]
        assert f["verdict"] in ("reproduced", "contradicted", "inconclusive", "untestable")
        if f["verdict"] != "untestable":
            assert set(f["effect"]) >= {"name", "value", "lo", "hi", "level", "n"}
    return {f["id"]: f for f in result}


def test_all_three_findings_reproduced_when_true():
    out = _by_id(findings.test_findings(_study(), B=60, seed=1))
    f1, f2, f3 = out["F1"], out["F2"], out["F3"]
    assert f1["verdict"] == "reproduced", f1
    assert 0.7 < f1["effect"]["value"] < 1.5 and f1["effect"]["n"]["points"] == 48
    assert f2["verdict"] == "reproduced", f2
    # the mean over slices: label 0.465 − 0.139, CoT 0.318 − 0.139
    assert f2["effect"]["value"] == pytest.approx((0.465 + 0.318) / 2 - 0.139, abs=0.04) and f2["effect"]["lo"] > 0
    assert "binomial" in f2["effect"]["n"]["reference"]["gk_aggregate"]  # the teacher's error is carried
    assert f3["verdict"] == "reproduced", f3
    assert f3["effect"]["n"]["pairs"] == 24 and f3["effect"]["lo"] > 0


def test_findings_contradicted_when_false():
    rows = _study(task=("a2", {"kappa_star": 0.45, "s": 4.0}),  # a logistic cliff a1 cannot follow
                  gk={"label": GK_LATE, "cot": ("a1", {"a": 0.02, "alpha": 1.8})})  # GK outlasts; CoT keeps less
    out = _by_id(findings.test_findings(rows, B=60, seed=2))
    assert out["F1"]["verdict"] == "contradicted", out["F1"]
    assert out["F1"]["effect"]["lo"] > findings.F1_TOLERANCE
    assert out["F3"]["verdict"] == "contradicted", out["F3"]
    rows = _study(gk={"label": GK_LATE, "cot": GK_LATE})
    f2 = _by_id(findings.test_findings(rows, B=60, seed=3))["F2"]
    assert f2["verdict"] == "contradicted" and f2["effect"]["hi"] < 0, f2


def test_inconclusive_when_the_grid_has_too_little_power():
    rows = _study(gk={"label": GK_EARLY, "cot": GK_EARLY}, gk_items=150, seeds=range(2), rng=4)
    f3 = _by_id(findings.test_findings(rows, B=60, seed=4))["F3"]
    assert f3["verdict"] == "inconclusive" and f3["effect"]["lo"] < 0 < f3["effect"]["hi"], f3
    assert "axes.seeds" in f3["why"]


def test_untestable_findings_name_the_knob():
    only_label = _by_id(findings.test_findings(_study(supervisions=("label",)), B=10))
    assert only_label["F3"]["verdict"] == "untestable" and "add cot to axes.supervision" in only_label["F3"]["why"]
    assert only_label["F1"]["verdict"] != "untestable"
    no_gk = _by_id(findings.test_findings(_study(metrics=("task_macro_f1",)), B=10))
    assert no_gk["F2"]["verdict"] == no_gk["F3"]["verdict"] == "untestable"
    assert "knowledge.benchmarks" in no_gk["F2"]["why"]
    no_task = _by_id(findings.test_findings(_study(metrics=("gk_aggregate",)), B=10))
    assert no_task["F1"]["verdict"] == "untestable" and "in-domain" in no_task["F1"]["why"]
    two_levels = _by_id(findings.test_findings(_study(kappas=(0.7, 0.4)), B=10))
    assert two_levels["F1"]["verdict"] == two_levels["F2"]["verdict"] == "untestable"
    assert "axes.keep_fractions" in two_levels["F1"]["why"]


def test_many_branches_are_resampled_as_units():
    rows = _study(seeds=range(20), dataset_sizes=(1000, 4000), rng=5)
    out = _by_id(findings.test_findings(rows, B=30, seed=5))
    assert out["F2"]["effect"]["n"]["bootstrap"] == ["branches"] and out["F2"]["verdict"] == "reproduced"
    assert out["F3"]["effect"]["n"]["bootstrap"] == "pair units" and out["F3"]["verdict"] == "reproduced"
    assert out["F3"]["effect"]["n"]["units"] == 40


def test_only_students_right_after_a_prune_are_untestable():
    rows = _study(dataset_sizes=(0,))
    out = _by_id(findings.test_findings(rows, B=5))
    assert all(f["verdict"] == "untestable" and "axes.dataset_sizes" in f["why"] for f in out.values())
