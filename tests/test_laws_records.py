"""One record per law form: a form defined here alone runs through every part of the laws stage."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from taskdistill.errors import TaskDistillError
from taskdistill.laws import derived
from taskdistill.laws.analysis import fit_study
from taskdistill.laws.fit import fit_points
from taskdistill.laws.forms import FORMS, Form, get_form, register, unregister
from taskdistill.laws.observations import points, validate_rows
from taskdistill.laws.synthetic import INDEPENDENT, law_q, rows_from_law

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
TOY = {"a": 2.5, "s": 1.6}  # q = exp(−a·(1 − κ)^s): a law in the share removed, 1 − κ


@pytest.fixture
def toy_form():
    """An exponential law in 1 − κ, defined only here: fit coordinates (log a, log s), raw κ, no
    analytic Jacobian (the record falls back to central differences), a closed-form κ50."""
    form = register(Form(
        name="x1", summary="q = exp(−a·(1 − κ)^s)",
        coords=["log_a", "log_s"], search_bounds=[(-8.0, 8.0), (math.log(0.05), math.log(20.0))],
        retention=lambda u, X: np.exp(-np.exp(u[0]) * (1 - X.kappa) ** np.exp(u[1])),
        natural=lambda u, X, scales, levels: {"a": float(np.exp(u[0])), "s": float(np.exp(u[1]))},
        evaluate=lambda p, kappa, D=0.0, supervision=None, schedule=None: np.exp(-p["a"] * (1 - kappa) ** p["s"]),
        starts=lambda X: [np.array([la, ls]) for la in (-1.0, 0.5, 2.0) for ls in (-1.0, 0.0, 1.0, 2.0)],
        normalise=(),  # the law reads κ itself, not κ over its geometric mean
        kappa50=lambda p, q=0.5, D=None, supervision=None, schedule=None: 1 - (-math.log(q) / p["a"]) ** (1 / p["s"]),
    ))
    yield form
    unregister("x1")


def _true_k50():
    return 1 - (math.log(2) / TOY["a"]) ** (1 / TOY["s"])


def test_a_new_form_runs_through_fit_bootstrap_validation_and_kappa50(toy_form):
    exact = validate_rows(rows_from_law("x1", TOY, metric="m", kappas=KAPPAS, n=1000, noise="none"))
    fit = fit_points(points(exact, "m"), "x1", loss="lsq")
    assert fit.params == pytest.approx(TOY, rel=1e-5)  # exact recovery through the generic fitter
    assert derived.kappa50(fit) == pytest.approx(_true_k50(), rel=1e-5)

    rows = validate_rows(rows_from_law("x1", TOY, metric="m", kappas=KAPPAS, seeds=(0, 1), n=1000, rng=3))
    result = fit_study(rows, families=("x1",), B=30, seed=1)
    (g,) = result["groups"]
    assert g["status"] == "ok" and g["form"] == "x1" and g["fit"]["n_points"] == 16
    assert g["bootstrap"]["replicates"] == 30 and g["bootstrap"]["failed"] == 0
    loo, ms = g["validation"]["leave_one_level_out"], g["validation"]["mild_to_severe"]
    assert len(loo["levels"]) == 8 and loo["mae_points"] < 3.0 and ms["mae_points"] < 5.0
    k50 = g["derived"]["kappa50"]
    assert k50["lo"] < _true_k50() < k50["hi"] and not k50["extrapolated"]
    lo, hi = g["intervals"]["s"]
    assert lo < TOY["s"] < hi


def test_a_new_form_through_the_cli(toy_form, tmp_path):
    from taskdistill.cli import app

    obs, out = tmp_path / "obs.json", tmp_path / "laws.json"
    obs.write_text(json.dumps(rows_from_law("x1", TOY, metric="m", kappas=KAPPAS, seeds=(0, 1), n=1000, rng=4)))
    res = CliRunner().invoke(app, ["laws", "fit", str(obs), "-f", "x1", "--bootstrap", "8", "--json", str(out)])
    assert res.exit_code == 0, res.output
    (g,) = json.loads(out.read_text())["groups"]
    assert g["form"] == "x1" and g["fit"]["params"]["a"] == pytest.approx(TOY["a"], rel=0.2)


def test_unknown_and_duplicate_forms_are_one_line_errors(toy_form):
    with pytest.raises(TaskDistillError, match="unknown law family 'x2'.*Did you mean 'x1'"):
        get_form("x2")
    with pytest.raises(TaskDistillError, match="already registered"):
        register(toy_form)


@pytest.mark.parametrize("name, p, kw", [
    ("a1", {"a": 0.05, "alpha": 1.7}, {}),
    ("a2", {"kappa_star": 0.4, "s": 3.0}, {}),
    ("b1", {"q_inf": 0.9, "q0": 0.2, "D0": 800.0, "beta": 0.7}, {}),
    ("c1", {"E": 0.02, "a": 0.004, "alpha": 2.2, "b": 3.0, "beta": 0.45, "m[cot]": 3.0, "e[oneshot]": 0.8},
     {"supervision": "cot", "schedule": "oneshot"}),
])
def test_records_evaluate_the_same_laws_as_the_independent_implementations(name, p, kw):
    kappa, D = np.array([0.2, 0.5, 0.9]), np.array([100.0, 2000.0, 50000.0])
    sup, sched = kw.get("supervision", "label"), kw.get("schedule", "iterative")
    np.testing.assert_allclose(FORMS[name].evaluate(p, kappa, D, sup, sched),
                               INDEPENDENT[name](p, kappa, D, sup, sched), rtol=1e-12)
    assert law_q(name, p, kappa, D, sup, sched) == pytest.approx(INDEPENDENT[name](p, kappa, D, sup, sched))


def test_every_registered_form_declares_what_the_stage_reads():
    for form in FORMS.values():
        assert form.axis in ("kappa", "D") and form.space in ("neglog", "identity")
        assert set(form.min_levels) <= {"kappa", "D"} and set(form.inputs) <= {"kappa", "D"}
        assert form.linear is not None or form.starts is not None
        assert form.ceiling is None or FORMS[form.ceiling].slice_keys == form.slice_keys
