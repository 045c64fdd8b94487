"""Effective D: the laws read the examples a student was actually trained on; slices stay nominal."""

from __future__ import annotations

import numpy as np
import pytest

from taskdistill.laws import derived
from taskdistill.laws.analysis import fit_study, slices
from taskdistill.laws.fit import fit_points
from taskdistill.laws.observations import points, validate_rows
from taskdistill.laws.recommend import recommend
from taskdistill.laws.synthetic import law_q, rows_from_law

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
SIZES = (500, 2000, 8000)
# m[cot] = 3: one CoT example actually trained on is worth three label-only examples
C1 = {"E": 0.02, "a": 0.01, "alpha": 1.8, "b": 3.0, "beta": 0.45, "m[cot]": 3.0}
KEPT = {"label": 1.0, "cot": 0.5}  # CoT runs drop half their examples (untraced / over-long)


def _rows(noise="none", rng=0):
    return validate_rows(rows_from_law("c1", C1, metric="m", kappas=KAPPAS, dataset_sizes=SIZES, n=2000,
                                       supervisions=("label", "cot"), effective=KEPT, noise=noise, rng=rng))


def test_joint_law_recovers_the_multiplier_per_example_actually_trained_on():
    rows = _rows()
    pts = points(rows, "m")
    np.testing.assert_allclose(pts.D[pts.supervision == "cot"], pts.dataset_size[pts.supervision == "cot"] * 0.5)
    fit = fit_points(pts, "c1", loss="lsq")
    assert fit.params["m[cot]"] == pytest.approx(3.0, rel=1e-4)
    # the same rows read at nominal D mislead: the multiplier comes out halved
    nominal = fit_points(points([{k: v for k, v in r.items() if k != "effective_dataset_size"} for r in rows], "m"),
                         "c1", loss="lsq")
    assert nominal.params["m[cot]"] == pytest.approx(1.5, rel=0.05)
    noisy = fit_points(points(_rows("binomial", 3), "m"), "c1")
    assert noisy.params["m[cot]"] == pytest.approx(3.0, rel=0.25)


def test_slices_and_levels_stay_nominal_and_derived_answers_are_in_effective_d():
    rows = _rows()
    by_d = slices(rows, "a1")
    assert {dict(k)["dataset_size"] for k in by_d} == set(map(float, SIZES))  # not 250, 1000, 4000
    result = fit_study(rows, families=("c1",), B=0, validate=False, target={"m": 0.85}, at_kappa=0.5)
    (g,) = result["groups"]
    k50 = g["derived"]["kappa50"]["cot@D=8000"]
    assert k50["effective_dataset_size"] == pytest.approx(4000.0)
    assert law_q("c1", C1, k50["value"], 4000.0, "cot") == pytest.approx(0.5, rel=1e-4)
    fit = fit_points(points(rows, "m"), "c1", loss="lsq")
    need = derived.data_needed(fit, 0.8, kappa=0.5, supervision="cot")  # effective examples
    assert law_q("c1", C1, 0.5, need, "cot") == pytest.approx(0.8, rel=1e-6)


def test_recommend_candidates_carry_nominal_and_effective_d():
    rows = _rows("binomial", 5)
    rows += validate_rows(rows_from_law("c1", {**C1, "a": 0.1}, metric="gk_aggregate", kappas=KAPPAS,
                                        dataset_sizes=SIZES, n=2000, supervisions=("label", "cot"),
                                        effective=KEPT, chance=0.25, reference=0.6, rng=6))
    out = recommend(rows, min_macro_f1=0.7, min_gk_retention=0.3, in_domain="m", B=5, confidence=0.5)
    best = out["recommended"]
    assert best["effective_dataset_size"] == pytest.approx(best["dataset_size"] * KEPT[best["supervision"]])


def test_recommend_leaves_students_right_after_a_prune_out():
    law = {"a": 0.05, "alpha": 1.7}
    rows = rows_from_law("a1", law, metric="task_macro_f1", kappas=KAPPAS, dataset_sizes=(0, 4000), n=2000,
                         chance=1 / 35, reference=0.88, rng=9)
    for r in rows:
        if r["dataset_size"] == 0:
            r["stage"] = "pruned"
    out = recommend(validate_rows(rows), min_macro_f1=0.5, B=5, confidence=0.5, top=100)
    assert out["ranked"] and all(e["dataset_size"] == 4000 for e in out["ranked"])
