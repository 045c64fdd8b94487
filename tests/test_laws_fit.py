"""Fitter behaviour: unit invariance, non-identifiable data, bad input, loading observation files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from taskdistill.errors import TaskDistillError
from taskdistill.laws.fit import fit_points
from taskdistill.laws.fitcheck import NotIdentifiable, check_identified
from taskdistill.laws.forms import FORMS, Design
from taskdistill.laws.observations import KEYS, load_rows, points, validate_rows
from taskdistill.laws.synthetic import rows_from_law

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
C1 = {"E": 0.02, "a": 0.01, "alpha": 1.8, "b": 3.0, "beta": 0.45, "m[cot]": 3.0}


def _c1_rows(scale=1.0, rng=0):
    rows = rows_from_law("c1", C1, metric="m", kappas=KAPPAS, dataset_sizes=(500, 2000, 8000), n=800,
                         supervisions=("label", "cot"), rng=rng)
    for r in rows:
        r["dataset_size"] *= scale
    return validate_rows(rows)


@pytest.mark.parametrize("form", ["c1", "b1"])
def test_rescaling_dataset_units_does_not_change_predictions(form):
    if form == "c1":
        base, scaled = _c1_rows(1.0), _c1_rows(1000.0)
        kw = {}
    else:
        law = {"q_inf": 0.85, "q0": 0.1, "D0": 700.0, "beta": 0.6}
        sizes = (0, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000)
        base = validate_rows(rows_from_law("b1", law, metric="m", kappas=(0.5,), dataset_sizes=sizes, n=800, rng=3))
        scaled = [dict(r, dataset_size=r["dataset_size"] * 1000) for r in base]
        kw = {}
    f1, f2 = fit_points(points(base, "m"), form, **kw), fit_points(points(scaled, "m"), form, **kw)
    D = np.array([700.0, 5000.0])
    sup = np.array(["label", "cot"], dtype=object) if form == "c1" else None
    np.testing.assert_allclose(f1.predict_q(0.5, D, sup), f2.predict_q(0.5, D * 1000, sup), rtol=1e-5)
    assert f1.objective == pytest.approx(f2.objective, rel=1e-8)
    if form == "c1":  # b·D^(−β) is unit-free: b scales by 1000^β
        assert f2.params["b"] == pytest.approx(f1.params["b"] * 1000 ** f1.params["beta"], rel=1e-4)


def test_one_keep_fraction_is_not_identifiable():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="m", kappas=(0.5,), seeds=range(8), rng=0))
    with pytest.raises(NotIdentifiable, match="not identifiable: m has 1 distinct keep fractions"):
        fit_points(points(rows, "m"), "a1")


def test_all_at_chance_is_not_identifiable():
    rows = validate_rows(rows_from_law("a1", {"a": 50.0, "alpha": 3.0}, metric="m", kappas=KAPPAS, n=400, rng=1))
    with pytest.raises(NotIdentifiable, match="every point of m is at chance"):
        fit_points(points(rows, "m"), "a1")


def test_identical_values_are_refused():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="m", kappas=KAPPAS, rng=0))
    for r in rows:
        r["correct"], r["value"] = 300.0, 0.6
    with pytest.raises(NotIdentifiable, match="all 8 values of m are identical"):
        fit_points(points(rows, "m"), "a1")


def test_no_decline_is_not_identifiable():
    # q ≈ 1 everywhere (the collapse lies far below the smallest κ): nothing locates it
    rows = validate_rows(rows_from_law("a2", {"kappa_star": 1e-4, "s": 2.0}, metric="m",
                                       kappas=(0.9, 0.8, 0.7, 0.6, 0.5), n=200, rng=2))
    with pytest.raises(NotIdentifiable, match="not identifiable: every point of m is at or above its reference"):
        fit_points(points(rows, "m"), "a2")


def test_after_fit_checks_name_the_parameter():
    form = FORMS["a2"]
    X = Design(np.linspace(0.5, 2, 6), np.ones(6), np.zeros(6, int), np.zeros(6, int))
    bounds = form.bounds(X)
    ok = np.array([0.1, 1.0])
    with pytest.raises(NotIdentifiable, match="log_kappa_star runs to its search bound"):
        check_identified(form, X, np.array([bounds[0][0], 1.0]), [], bounds, "m", lambda u: np.eye(2))
    with pytest.raises(NotIdentifiable, match="equally good starts put log_s at 1 and 1.5"):
        check_identified(form, X, ok, [ok, np.array([0.1, 1.5])], bounds, "m", lambda u: np.eye(2))
    with pytest.raises(NotIdentifiable, match="constrain only a combination of"):
        check_identified(form, X, ok, [ok], bounds, "m", lambda u: np.ones((2, 2)))
    check_identified(form, X, ok, [ok], bounds, "m", lambda u: np.eye(2))  # a well-posed fit passes


def test_joint_law_with_one_dataset_size_is_not_identifiable():
    rows = validate_rows(rows_from_law("c1", C1, metric="m", kappas=KAPPAS * 3, dataset_sizes=(1000,), rng=0))
    with pytest.raises(NotIdentifiable, match="dataset sizes D > 0"):
        fit_points(points(rows, "m"), "c1")


def test_too_few_points_for_the_form():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="m", kappas=(0.9, 0.6, 0.3, 0.2), rng=0))
    with pytest.raises(TaskDistillError, match="a1 has 2 free parameters but m has only 4 points; a fit needs at least 5"):
        fit_points(points(rows, "m"), "a1")


def test_fit_reports_multistart_agreement_and_aicc():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="m", kappas=KAPPAS, n=500, rng=4))
    fit = fit_points(points(rows, "m"), "a1")
    assert fit.starts_polished == 6 and 1 <= fit.starts_reached <= 6 and fit.converged
    k, n = fit.n_params, fit.n_points
    assert fit.aicc == pytest.approx(-2 * fit.log_likelihood + 2 * k + 2 * k * (k + 1) / (n - k - 1))


def _row(**over):
    row = {"metric": "m", "supervision": "label", "method": "logit", "schedule": "iterative", "keep_fraction": 0.5,
           "dataset_size": 100, "seed": 0, "correct": 50, "n": 100, "value": 0.5, "chance": 0.25, "reference": 0.9,
           "params": 6e7, "latency_ms": 10.0}
    row.update(over)
    return row


@pytest.mark.parametrize("over, message", [
    ({"value": 1.3}, "value 1.3 outside \\[0, 1\\]; give accuracies and macro-F1 as fractions"),
    ({"keep_fraction": 1.5}, "keep_fraction 1.5 outside \\(0, 1\\]"),
    ({"correct": 120}, "correct=120 outside \\[0, n=100\\]"),
    ({"chance": 1.0}, "both must be fractions in \\[0, 1\\] \\(chance < 1\\)"),
    ({"n": "many"}, "n='many', which is not a number"),
])
def test_bad_rows_get_one_clear_line(over, message):
    with pytest.raises(TaskDistillError, match=message):
        validate_rows([_row(**over)])


def test_missing_key_and_absent_metric():
    row = _row()
    del row["reference"]
    with pytest.raises(TaskDistillError, match="row 0 lacks reference"):
        validate_rows([row])
    with pytest.raises(TaskDistillError, match="unknown metric .*'macro_f1'.*Did you mean 'macro_f2'"):
        points(validate_rows([_row(metric="macro_f2")]), "macro_f1")


def test_load_csv_and_json_exports(tmp_path):
    rows = rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="m", kappas=KAPPAS, rng=0, count=False)
    path = tmp_path / "obs.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=KEYS)
        w.writeheader()
        w.writerows(rows)
    from_csv = load_rows(path)
    assert from_csv[3]["value"] == pytest.approx(rows[3]["value"]) and from_csv[3]["correct"] is None
    (tmp_path / "obs.json").write_text(json.dumps({"observations": rows}))
    assert load_rows(tmp_path / "obs.json") == validate_rows(rows)
    with pytest.raises(TaskDistillError, match="no study folder or observations file"):
        load_rows(tmp_path / "missing.csv")
    (tmp_path / "obs.txt").write_text("x")
    with pytest.raises(TaskDistillError, match="use a .csv, .json or .jsonl export"):
        load_rows(tmp_path / "obs.txt")


def test_folder_that_holds_no_study_is_a_clear_error(tmp_path):
    with pytest.raises(TaskDistillError, match="holds no study"):
        load_rows(tmp_path)


def test_study_folder_is_read_through_the_store(tmp_path):
    from test_report import make_store  # builds a store through the study stage's own write API

    rows = rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="gk_aggregate", kappas=KAPPAS, n=500, rng=0,
                         reference=0.6)
    rows.append({**rows[0], "supervision": None, "method": None, "schedule": None, "keep_fraction": 1.0,
                 "dataset_size": 0, "seed": None, "correct": 300.0, "value": 0.6, "params": 135e6})
    make_store(tmp_path, rows)
    loaded = load_rows(tmp_path)
    assert len(loaded) == len(KAPPAS)  # the teacher row is the reference, not a student
    assert all(r["reference"] == pytest.approx(0.6) for r in loaded)
    fit = fit_points(points(loaded, "gk_aggregate"), "a1")
    direct = fit_points(points(validate_rows(rows), "gk_aggregate"), "a1")  # the same rows, no store
    assert fit.params == pytest.approx(direct.params, rel=1e-6)  # row order differs: optimiser tolerance


def test_a_teacher_at_chance_is_refused_for_that_metric():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="m", kappas=KAPPAS, rng=0))
    for r in rows:
        r["reference"] = 0.2  # below chance 0.25
    with pytest.raises(TaskDistillError, match="m: the reference \\(teacher, 0.2\\) is not above chance \\(0.25\\)"):
        fit_points(points(rows, "m"), "a1")


def test_students_all_above_the_reference_are_refused_with_the_fix():
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="m", kappas=KAPPAS, rng=0,
                                       reference=0.5, chance=0.1))
    for r in rows:  # every student beats the uncorrected teacher
        r["reference"] = 0.3
    with pytest.raises(NotIdentifiable, match="at or above its reference .*within 2 standard errors.*enable correction"):
        fit_points(points(rows, "m"), "a1")
