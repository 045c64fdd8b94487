"""Recommendations on synthetic studies with a known right answer, and the CLI verbs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taskdistill.errors import TaskDistillError
from taskdistill.laws.cli import parse_count
from taskdistill.laws.observations import validate_rows
from taskdistill.laws.recommend import recommend
from taskdistill.laws.synthetic import law_q, rows_from_law

KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
LAWS = {  # metric: (c1 parameters, chance, reference)
    "macro_f1": ({"E": 0.02, "a": 0.01, "alpha": 1.8, "b": 3.0, "beta": 0.45, "m[cot]": 3.0}, 1 / 13, 0.92),
    "gk_aggregate": ({"E": 0.03, "a": 0.12, "alpha": 2.0, "b": 1.5, "beta": 0.35, "m[cot]": 8.0}, 0.25, 0.55),
}
SIZES = (500, 2000, 8000)


def _rows(dataset_sizes=SIZES, supervisions=("label", "cot"), n=4000):
    rng = np.random.default_rng(0)
    rows = []
    for metric, (law, chance, ref) in LAWS.items():
        rows += rows_from_law("c1", law, metric=metric, kappas=KAPPAS, dataset_sizes=dataset_sizes, n=n,
                              supervisions=supervisions, chance=chance, reference=ref, rng=rng)
    return validate_rows(rows)


def _meets(kappa, D, sup, min_f1, min_gk):
    law, chance, ref = LAWS["macro_f1"]
    f1 = chance + (ref - chance) * law_q("c1", law, kappa, D, sup)
    return f1 >= min_f1 and law_q("c1", LAWS["gk_aggregate"][0], kappa, D, sup) >= min_gk


def test_recommend_picks_the_smallest_student_that_truly_meets_the_constraints():
    result = recommend(_rows(), min_macro_f1=0.8, min_gk_retention=0.6, B=20)
    best = result["recommended"]
    # the truth: smallest κ (on a fine grid) meeting both constraints for any observed (D, supervision)
    fine = np.linspace(0.16, 0.9, 2000)
    true_min = min(k for k in fine for D in SIZES for s in ("label", "cot") if _meets(k, D, s, 0.8, 0.6))
    assert best["supervision"] == "cot" and best["method"] == "logit" and best["family"] == "c1"
    assert _meets(best["keep_fraction"], best["dataset_size"], best["supervision"], 0.8, 0.6)
    assert true_min <= best["keep_fraction"] <= true_min * 1.16  # within ~2 steps of the κ grid
    assert best["p_meet"] >= 0.8
    assert best["params"] == pytest.approx(135e6 * best["keep_fraction"], rel=1e-9)  # cost model: params ∝ κ
    ranked = result["ranked"]
    assert [e["params"] for e in ranked] == sorted(e["params"] for e in ranked)
    pred = best["predicted"]["gk_aggregate"]
    assert pred["kind"] == "retention" and pred["lo"] <= pred["value"] <= pred["hi"]
    nxt = result["next_run"]
    assert 0.0 <= nxt["variance_share_removed"] <= 1.0 + 1e-9
    assert 0.16 <= nxt["keep_fraction"] <= 0.9 and nxt["dataset_size"] in SIZES


def test_cost_constraints_filter_settings():
    result = recommend(_rows(), min_macro_f1=0.8, min_gk_retention=0.6, max_latency_ms=2.0 + 20 * 0.5, B=10)
    assert all(e["latency_ms"] <= 12.0 + 1e-9 for e in result["ranked"])


def test_no_setting_meets_impossible_constraints_and_the_closest_is_shown():
    result = recommend(_rows(), min_macro_f1=0.8, min_gk_retention=0.6, max_params=25e6, B=10)
    assert result["ranked"] == [] and "recommended" not in result
    closest = result["closest"]
    assert closest and closest[0]["within_budget"] and closest[0]["params"] <= 25e6


def test_falls_back_to_a1_slices_when_the_joint_law_cannot_be_fitted():
    result = recommend(_rows(dataset_sizes=(4000,), supervisions=("cot",)), min_macro_f1=0.8,
                       min_gk_retention=0.6, B=10)
    assert any("joint law c1 not used" in note for note in result["notes"])
    best = result["recommended"]
    assert best["family"] == "a1" and best["dataset_size"] == 4000
    assert _meets(best["keep_fraction"], 4000, "cot", 0.8, 0.6)


def test_recommend_input_errors():
    rows = _rows()
    with pytest.raises(TaskDistillError, match="give at least one quality constraint"):
        recommend(rows)
    with pytest.raises(TaskDistillError, match="unknown in-domain metric 'accuracy'"):
        recommend(rows, min_macro_f1=0.8, in_domain="accuracy")
    assert parse_count("60M") == 60e6 and parse_count("1.5B") == 1.5e9 and parse_count("1000") == 1000
    with pytest.raises(TaskDistillError, match="cannot read 'sixty'"):
        parse_count("sixty")


def test_cli_laws_fit_and_recommend(tmp_path):
    from taskdistill.cli import app

    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps(_rows()))
    out = tmp_path / "laws.json"
    runner = CliRunner()
    res = runner.invoke(app, ["laws", "fit", str(obs), "-f", "c1", "--bootstrap", "5", "--no-validate",
                              "--json", str(out), "--target", "macro_f1=0.85", "--at-kappa", "0.4"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    f1 = next(g for g in data["groups"] if g["metric"] == "macro_f1")
    assert f1["fit"]["params"]["m[cot]"] == pytest.approx(3.0, rel=0.15)
    assert "data_needed" in f1["derived"] and "fitted laws" in res.output
    res = runner.invoke(app, ["recommend", str(obs), "--min-macro-f1", "0.8", "--min-gk-retention", "0.6",
                              "--bootstrap", "5"])
    assert res.exit_code == 0, res.output
    assert "next run to sample" in res.output


def test_cli_exit_code_two_when_nothing_qualifies(tmp_path):
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps(_rows()))
    exe = Path(sys.executable).with_name("taskdistill")
    proc = subprocess.run([str(exe), "recommend", str(obs), "--min-macro-f1", "0.8", "--min-gk-retention", "0.6",
                           "--max-params", "20M", "--bootstrap", "5"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no setting meets every constraint")
    assert "closest" in proc.stdout and not math.isnan(len(proc.stdout))
