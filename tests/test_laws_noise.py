"""Honest noise: the bootstrap resamples branches, carries the teacher's sampling error, and fits
macro-F1 with its measured standard error. Each claim is checked by a small simulation.

A percentile interval from B replicates covers an exchangeable truth with probability about
(B − 1)·level/(B + 1) (np.percentile interpolates between order statistics): 0.889 for B = 30 at 95 %.
That, not 0.95, is the nominal rate these simulations compare against.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskdistill.laws.bootstrap import (
    MIN_UNITS_FOR_CASES,
    bootstrap,
    bootstrap_joint,
    choose_kind,
)
from taskdistill.laws.fit import fit_points
from taskdistill.laws.observations import points, validate_rows
from taskdistill.laws.synthetic import rows_from_law

B, LEVEL = 30, 0.95
NOMINAL = (B - 1) * LEVEL / (B + 1)
KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)


def _k50(law):
    return (law["a"] / math.log(2)) ** (1 / law["alpha"])


def _k50_interval(boot):
    return boot.interval(lambda f: _k50(f.params), LEVEL)


def test_auto_resamples_branches_when_there_are_enough_and_whole_chains_come_along():
    rows = validate_rows(rows_from_law("a1", {"a": 0.1, "alpha": 1.5}, metric="m", kappas=(0.9, 0.6, 0.4, 0.25),
                                       seeds=range(MIN_UNITS_FOR_CASES), n=500, branches=True, rng=0))
    pts = points(rows, "m")
    assert len(set(pts.branch)) == MIN_UNITS_FOR_CASES and len(set(pts.runs)) == 4 * MIN_UNITS_FOR_CASES
    boot = bootstrap(pts, fit_points(pts, "a1"), B=5, seed=0)
    assert boot.kind == "branches" and boot.units == MIN_UNITS_FOR_CASES
    assert all(s.n_points % 4 == 0 for s in boot.ok)  # every drawn branch brings its 4 κ levels
    few = points(validate_rows(rows_from_law("a1", {"a": 0.1, "alpha": 1.5}, metric="m", kappas=KAPPAS,
                                             seeds=range(3), n=500, branches=True, rng=1)), "m")
    assert bootstrap(few, fit_points(few, "a1"), B=2).kind == "parametric"  # 3 branches: too few to resample
    assert choose_kind("auto", range(MIN_UNITS_FOR_CASES), "branches") == "branches"


def test_branch_resampling_is_wider_than_run_resampling_and_covers_correlated_chains():
    """20 chains × 5 κ; each chain shares one shift of SD 0.05 (the runs of a chain are dependent)."""
    law, kappas = {"a": 0.1, "alpha": 1.5}, (0.9, 0.7, 0.5, 0.35, 0.25)
    hits, widths = {"branches": 0, "runs": 0}, {"branches": [], "runs": []}
    for i in range(30):
        rows = validate_rows(rows_from_law("a1", law, metric="m", kappas=kappas, seeds=range(20), n=2000,
                                           chance=0.25, reference=0.7, branches=True, branch_sd=0.05, rng=i))
        pts = points(rows, "m")
        fit = fit_points(pts, "a1", loss="binomial")
        for kind in hits:
            lo, hi = _k50_interval(bootstrap(pts, fit, B=B, kind=kind, seed=i))
            hits[kind] += lo <= _k50(law) <= hi
            widths[kind].append(hi - lo)
    coverage = {k: v / 30 for k, v in hits.items()}
    ratio = float(np.median(np.array(widths["branches"]) / np.array(widths["runs"])))
    print(f"coverage {coverage} (nominal {NOMINAL:.3f}); branch/run width ratio {ratio:.2f}")
    assert ratio > 1.25
    assert coverage["branches"] >= NOMINAL - 0.06 and coverage["branches"] > coverage["runs"]


def test_the_teacher_is_redrawn_once_per_metric_per_replicate():
    rows = rows_from_law("a1", {"a": 0.1, "alpha": 1.5}, metric="x", kappas=KAPPAS, n=400, reference_n=200, rng=0)
    rows += rows_from_law("a1", {"a": 0.05, "alpha": 2.0}, metric="y", kappas=KAPPAS, n=400, rng=1)  # exact
    rows = validate_rows(rows)
    problems = {m: (points(rows, m), fit_points(points(rows, m), "a1")) for m in ("x", "y")}
    boots = bootstrap_joint(problems, B=12, seed=2)
    refs = [s.reference for s in boots["x"].ok]
    assert len(set(refs)) > 3 and all(r == pytest.approx(refs[0], abs=0.2) for r in refs)
    assert "binomial at the teacher's 200 items" in boots["x"].reference
    assert {s.reference for s in boots["y"].ok} == {0.9} and boots["y"].reference.startswith("exact")


def test_teacher_sampling_error_widens_kappa50_and_restores_coverage():
    """The teacher (true value 0.7) is measured on 300 items, like each student: treating its value
    as exact under-covers κ50; redrawing it in every replicate restores about nominal coverage."""
    law = {"a": 0.1, "alpha": 1.5}
    hits, widths = {"carried": 0, "exact": 0}, {"carried": [], "exact": []}
    for i in range(30):
        rows = rows_from_law("a1", law, metric="m", kappas=KAPPAS, seeds=(0, 1), n=300, chance=0.25,
                             true_reference=0.7, reference_n=300, rng=i)
        for how in hits:
            kept = [r if how == "carried" else {k: v for k, v in r.items() if k != "reference_n"} for r in rows]
            pts = points(validate_rows(kept), "m")
            lo, hi = _k50_interval(bootstrap(pts, fit_points(pts, "a1"), B=B, seed=i))
            hits[how] += lo <= _k50(law) <= hi
            widths[how].append(hi - lo)
    coverage = {k: v / 30 for k, v in hits.items()}
    ratio = float(np.median(widths["carried"]) / np.median(widths["exact"]))
    print(f"κ50 coverage {coverage} (nominal {NOMINAL:.3f}); width carried/exact {ratio:.2f}")
    assert ratio > 1.4
    assert coverage["carried"] >= NOMINAL - 0.06 and coverage["exact"] <= coverage["carried"] - 0.15


def test_macro_f1_with_its_standard_error_covers_and_pseudo_counts_do_not():
    """A macro-F1-like metric whose item-bootstrap SE is 2.5× the binomial SE at its test size (one
    seed, so no overdispersion can be estimated): the effective-n likelihood built from the row's
    stderr covers κ50 at about the nominal rate; the old pseudo-count value·n under-covers badly."""
    law, kappas = {"a": 0.02, "alpha": 1.8}, tuple(np.round(np.geomspace(0.12, 0.92, 10), 3))
    hits, widths = {"stderr": 0, "pseudo": 0}, {"stderr": [], "pseudo": []}
    for i in range(30):
        rows = rows_from_law("a1", law, metric="task_macro_f1", kappas=kappas, n=1000, chance=1 / 35,
                             reference=0.85, stderr_factor=2.5, rng=i)
        for how in hits:
            kept = [r if how == "stderr" else {k: v for k, v in r.items() if k != "stderr"} for r in rows]
            pts = points(validate_rows(kept), "task_macro_f1")
            assert set(pts.likelihood) == {how}
            lo, hi = _k50_interval(bootstrap(pts, fit_points(pts, "a1"), B=B, seed=i))
            hits[how] += lo <= _k50(law) <= hi
            widths[how].append(hi - lo)
    coverage = {k: v / 30 for k, v in hits.items()}
    print(f"κ50 coverage {coverage} (nominal {NOMINAL:.3f}); median widths "
          f"{ {k: round(float(np.median(v)), 4) for k, v in widths.items()} }")
    assert coverage["stderr"] >= NOMINAL - 0.06
    assert coverage["pseudo"] <= 0.7  # intervals ~2.5× too narrow


def test_effective_n_reproduces_the_measured_standard_error():
    row = {"metric": "task_macro_f1", "supervision": "label", "method": "logit", "schedule": "iterative",
           "keep_fraction": 0.5, "dataset_size": 100, "seed": 0, "correct": None, "n": 1000, "value": 0.7,
           "chance": 0.05, "reference": 0.9, "params": 1.0, "latency_ms": 1.0, "stderr": 0.03}
    pts = points(validate_rows([row]), "task_macro_f1")
    assert math.sqrt(pts.value[0] * (1 - pts.value[0]) / pts.n[0]) == pytest.approx(0.03)
    bare = points(validate_rows([{k: v for k, v in row.items() if k != "stderr"}]), "task_macro_f1")
    assert bare.n[0] == 1000 and bare.likelihood[0] == "pseudo"
    pseudo_rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="f1", kappas=KAPPAS,
                                              count=False, rng=0))
    fit_notes = fit_points(points(pseudo_rows, "f1"), "a1").notes
    assert any("pseudo-counts value·n" in note for note in fit_notes)


def test_teacher_error_reaches_the_collapse_gap_and_recommend():
    from taskdistill.laws.analysis import fit_study
    from taskdistill.laws.recommend import recommend

    def rows(reference_n):
        out = rows_from_law("a1", {"a": 0.01, "alpha": 1.6}, metric="macro_f1", kappas=KAPPAS, n=400, rng=0,
                            reference_n=reference_n)
        out += rows_from_law("a1", {"a": 0.1, "alpha": 2.0}, metric="gk_mmlu", kappas=KAPPAS, n=400, rng=1,
                             chance=0.25, reference=0.6, reference_n=reference_n)
        return validate_rows(out)

    def gap_width(result):
        g = next(g for g in result["groups"] if g["metric"] == "gk_mmlu")
        gap = g["derived"]["collapse_gap_vs_macro_f1"]
        return gap["hi"] - gap["lo"], g["bootstrap"]["reference"]

    noisy, how = gap_width(fit_study(rows(100), families=("a1",), B=B, validate=False))
    exact, exact_how = gap_width(fit_study(rows(None), families=("a1",), B=B, validate=False))
    assert "binomial at the teacher's 100 items" in how and exact_how.startswith("exact")
    assert noisy > 1.2 * exact
    out = recommend(rows(400), min_macro_f1=0.5, min_gk_retention=0.5, gk_metric="gk_mmlu", in_domain="macro_f1",
                    B=10, confidence=0.3)
    assert "binomial" in out["reference"]["gk_mmlu"]
