"""Synthetic study rows and a small real study store for the report tests."""

from __future__ import annotations

import numpy as np

from taskdistill.laws.synthetic import rows_from_law

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
# metric: (a, alpha, chance, teacher value, counts?)  for −log q = a·κ^(−α)
LAWS = {
    "task_macro_f1": (0.004, 2.2, 1 / 35, 0.9, False),
    "task_accuracy": (0.004, 2.2, 1 / 35, 0.92, True),
    "gk_arc_easy": (0.12, 2.0, 0.25, 0.55, True),
    "gk_aggregate": (0.1, 2.0, 0.3, 0.6, True),
}
SUPERVISION_FACTOR = {"label": 1.0, "cot": 0.5}  # CoT halves the damage
SCHEDULE_FACTOR = {"iterative": 1.0, "oneshot": 1.5}


def teacher_row(metric, value, chance, n=400, params=135e6, latency=25.0):
    return {"metric": metric, "supervision": None, "method": None, "schedule": None, "keep_fraction": 1.0,
            "dataset_size": 0, "seed": None, "correct": value * n, "n": n, "value": value, "chance": chance,
            "reference": value, "params": params, "latency_ms": latency}


def study_rows(seed=0, supervisions=("label", "cot"), schedules=("iterative", "oneshot"), dataset_sizes=(500, 2000),
               metrics=tuple(LAWS), noise="binomial", seeds=(0, 1), kappas=KAPPAS):
    """Observation rows of a synthetic study that follows a1 laws exactly (up to binomial noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for metric in metrics:
        a, alpha, chance, ref, counts = LAWS[metric]
        for sup in supervisions:
            for sched in schedules:
                for size in dataset_sizes:
                    scale = SUPERVISION_FACTOR[sup] * SCHEDULE_FACTOR[sched] * (1.2 if size < max(dataset_sizes) else 1.0)
                    rows += rows_from_law("a1", {"a": a * scale, "alpha": alpha}, metric=metric, kappas=kappas,
                                          dataset_sizes=(size,), supervisions=(sup,), schedules=(sched,), seeds=seeds,
                                          n=400, chance=chance, reference=ref, rng=rng, count=counts, noise=noise)
        rows.append(teacher_row(metric, ref, chance))
    return rows


# -- tests of the plain-row tables -----------------------------------------------------------------
import math

import pytest

from taskdistill.report import data as D


def row(metric, value, kappa, sup="label", seed=0, chance=0.25, reference=0.75, params=None, D_=100):
    return {"metric": metric, "supervision": sup, "method": "logit", "schedule": "iterative", "keep_fraction": kappa,
            "dataset_size": D_, "seed": seed, "correct": None, "n": 100, "value": value, "chance": chance,
            "reference": reference, "params": params, "latency_ms": None}


def test_settings_table_means_sd_and_retention_by_hand():
    rows = [row("gk_piqa", 0.5, 0.5, seed=0), row("gk_piqa", 0.6, 0.5, seed=1), row("gk_piqa", 0.7, 0.5, seed=2)]
    (s,) = D.settings_table(rows)
    assert s["value"] == pytest.approx(0.6) and s["seeds"] == 3
    assert s["value_sd"] == pytest.approx(0.1)  # sample sd of 0.5, 0.6, 0.7
    assert s["retention"] == pytest.approx((0.6 - 0.25) / (0.75 - 0.25))
    assert s["retentions"] == pytest.approx([0.5, 0.7, 0.9])
    assert D.retention(0.3, 0.3, 0.3) is None and D.retention(0.5, 0.3, 0.2) is None  # teacher not above chance


def test_students_join_metrics_and_average_gk_retention_without_aggregate():
    rows = [row("task_macro_f1", 0.8, 0.5, params=5e6), row("gk_a", 0.5, 0.5, params=5e6),
            row("gk_b", 0.75, 0.5, params=5e6)]
    (s,) = D.students(rows)
    assert s["task_macro_f1"] == 0.8 and s["params"] == 5e6
    assert s["gk_retention"] == pytest.approx((0.5 + 1.0) / 2)  # mean of the two benchmarks' retention
    rows.append(row("gk_aggregate", 0.55, 0.5, params=5e6))
    (s,) = D.students(rows)
    assert s["gk_retention"] == pytest.approx(0.6)  # the aggregate wins when present


def test_pareto_front_known_answer():
    pts = [{"params": 10, "f1": 0.9, "gk": 0.5}, {"params": 20, "f1": 0.9, "gk": 0.5},  # dominated by the first
           {"params": 20, "f1": 0.95, "gk": 0.4}, {"params": 30, "f1": 0.8, "gk": 0.9},
           {"params": 40, "f1": 0.8, "gk": 0.8}, {"params": 5, "f1": 0.5, "gk": 0.1}, {"params": None, "f1": 1, "gk": 1}]
    front = D.pareto_front(pts, "params", ("f1", "gk"))
    assert [p["params"] for p in front] == [10, 20, 30, 5]
    assert front[1]["f1"] == 0.95


def test_pick_observed_cheapest_meeting_and_closest():
    rows = [{"teacher": False, "params": p, "task_macro_f1": f, "gk_retention": g, "latency_ms": 1.0,
             "keep_fraction": p / 100, "dataset_size": 10, "supervision": "label", "method": "logit", "schedule": "x"}
            for p, f, g in ((20, 0.9, 0.8), (10, 0.85, 0.75), (5, 0.6, 0.2), (40, 0.95, 0.9))]
    pick = D.pick_observed(rows, 0.8, 0.7)
    assert pick["choice"]["params"] == 10 and len(pick["meets"]) == 3 and pick["closest"] is None
    pick = D.pick_observed(rows, 0.97, 0.7)
    assert pick["choice"] is None and pick["closest"]["params"] == 40  # shortfall (0.97 − 0.95)/0.97, the least
    pick = D.pick_observed(rows, 0.8, 0.7, max_params=15)
    assert pick["choice"]["params"] == 10
    assert math.isclose(D.retention(0.5, 0.25, 0.75), 0.5)


def test_metrics_of_orders_in_domain_then_gk():
    rows = study_rows(metrics=("gk_arc_easy", "task_accuracy", "gk_aggregate", "task_macro_f1"), seeds=(0,),
                      supervisions=("label",), schedules=("iterative",), dataset_sizes=(100,))
    assert D.metrics_of(rows) == {"in_domain": ["task_macro_f1", "task_accuracy"], "gk": ["gk_arc_easy"],
                                  "gk_aggregate": ["gk_aggregate"]}
    assert D.teacher_values(rows)["gk_aggregate"] == 0.6
