"""Fixed subsets, standard errors, chance levels and retention, checked by hand and against scipy."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from scipy import stats

from taskdistill.evaluate.knowledge.retention import (
    BenchmarkResult,
    KnowledgeReport,
    chance_level,
    mean_stderr,
    retention,
    stratified_subset,
    with_reference,
)


def test_balanced_subset_takes_equal_counts_per_subject():
    strata = ["algebra"] * 100 + ["anatomy"] * 50 + ["law"] * 7 + ["history"] * 300
    chosen = stratified_subset(strata, 40, seed=0, balanced=True)
    counts = Counter(strata[i] for i in chosen)
    assert len(chosen) == 40 == len(set(chosen))
    assert counts == {"algebra": 11, "anatomy": 11, "law": 7, "history": 11}  # law gives up its unused 3
    assert chosen == sorted(chosen)


def test_proportional_subset_keeps_label_shares():
    strata = ["0"] * 600 + ["1"] * 300 + ["2"] * 100
    counts = Counter(strata[i] for i in stratified_subset(strata, 100, seed=3))
    assert counts == {"0": 60, "1": 30, "2": 10}
    small = ["a"] * 2 + ["b"]
    counts = Counter(small[i] for i in stratified_subset(small, 2, seed=0))
    assert counts == {"a": 1, "b": 1}  # largest remainders: a 1.33 -> 1, b 0.67 -> 1


def test_subset_is_fixed_by_seed_and_all_when_no_limit():
    strata = [str(i % 7) for i in range(500)]
    assert stratified_subset(strata, 50, seed=1) == stratified_subset(list(strata), 50, seed=1)
    assert stratified_subset(strata, 50, seed=1) != stratified_subset(strata, 50, seed=2)
    assert stratified_subset(strata, None) == list(range(500))
    assert stratified_subset(strata, 500) == list(range(500))


def test_mean_stderr_matches_scipy_sem():
    values = [1.0] * 37 + [0.0] * 63
    assert mean_stderr(values) == pytest.approx(stats.sem(values))
    p, n = 0.37, 100
    assert mean_stderr(values) == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)))
    assert math.isnan(mean_stderr([1.0]))


def test_chance_level_is_mean_inverse_choice_count():
    assert chance_level([4, 4, 2, 5]) == pytest.approx((0.25 + 0.25 + 0.5 + 0.2) / 4)
    assert chance_level([0, 0]) == 0.0  # exact-match items


def test_retention_formula_and_undefined_reference():
    assert retention(0.55, 0.25, 0.65) == pytest.approx(0.75)  # (0.55-0.25)/(0.65-0.25)
    assert retention(0.25, 0.25, 0.65) == 0.0
    assert retention(0.20, 0.25, 0.65) == pytest.approx(-0.125)  # below chance goes negative
    assert retention(0.3, 0.25, 0.25) is None and retention(0.3, 0.25, 0.2) is None


def _result(name, acc, chance):
    return BenchmarkResult(name=name, acc=acc, acc_norm=None, correct=int(acc * 100), n=100, stderr=0.05,
                           chance=chance, formulation="x")


def test_report_aggregate_and_round_trip():
    results = with_reference([_result("arc_easy", 0.5, 0.25), _result("piqa", 0.6, 0.5), _result("mmlu", 0.3, 0.25)],
                             {"arc_easy": 0.75, "piqa": 0.7, "mmlu": 0.24})
    report = KnowledgeReport(results, {"limit": 100})
    assert report["arc_easy"].retention == pytest.approx(0.5)
    assert report["piqa"].retention == pytest.approx(0.5)
    assert report["mmlu"].retention is None  # teacher at chance: no retention to speak of
    assert report.aggregate_retention == pytest.approx(0.5)
    data = report.to_dict()
    assert data["aggregate_retention"] == pytest.approx(0.5) and data["results"][0]["reference"] == 0.75
    assert report.accuracies() == {"arc_easy": 0.5, "piqa": 0.6, "mmlu": 0.3}
    assert KnowledgeReport([_result("a", 0.5, 0.25)]).aggregate_retention is None
