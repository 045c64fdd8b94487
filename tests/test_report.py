"""The report: law curves, results, the self-contained page, report.md, results.json, the store loader, the CLI."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from test_report_data import LAWS, SUPERVISION_FACTOR, study_rows
from typer.testing import CliRunner

from taskdistill.errors import TaskDistillError
from taskdistill.report import build, fits
from taskdistill.report.cli import parse_count

PLOTS = ("in_domain", "gk", "collapse", "dataset_size", "schedule", "pareto")


def test_law_curves_recover_kappa50_and_gap_from_noise_free_rows():
    rows = study_rows(noise="none", seeds=(0,), schedules=("iterative",), dataset_sizes=(1000,),
                      metrics=("task_macro_f1", "gk_aggregate"))
    curves = fits.fit_curves(rows, ["task_macro_f1", "gk_aggregate"], bootstrap=0)
    assert len(curves) == 4 and all("q" in c for c in curves)
    for c in curves:
        a, alpha = LAWS[c["metric"]][:2]
        a *= SUPERVISION_FACTOR[c["group"]["supervision"]]
        # retention 0.5 ⇔ a·κ^(−α) = ln 2
        assert c["kappa50"] == pytest.approx((a / math.log(2)) ** (1 / alpha), rel=1e-3)
        assert np.allclose(c["q"], np.exp(-a * np.asarray(c["kappa"]) ** -alpha), atol=1e-4)
    gaps = {g["label"]: g for g in fits.collapse_gaps(curves)}
    g = gaps["label · logit · iterative"]
    assert g["gap"] == pytest.approx(g["kappa50_gk"] - g["kappa50_in_domain"]) and g["gap"] > 0.2


def test_law_band_brackets_the_truth_and_refusals_become_notes():
    rows = study_rows(seeds=(0, 1), supervisions=("label",), schedules=("iterative", "oneshot"),
                      dataset_sizes=(1000,), metrics=("gk_aggregate",))
    rows = [r for r in rows if not (r["schedule"] == "oneshot" and r["keep_fraction"] < 0.8)]  # 1 κ level: refused
    curves = {c["group"]["schedule"]: c for c in fits.fit_curves(rows, ["gk_aggregate"], bootstrap=8)}
    c = curves["iterative"]
    assert c["bootstrap"] >= 2 and len(c["q_lo"]) == len(c["kappa"])
    assert all(lo <= q + 1e-9 and q <= hi + 1e-9 for lo, q, hi in zip(c["q_lo"], c["q"], c["q_hi"]))
    lo, hi = c["kappa50_interval"]
    assert lo <= c["kappa50"] <= hi
    assert "q" not in curves["oneshot"] and curves["oneshot"]["note"]


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    rows = study_rows()
    results = build.compute_results(rows, [], {"study": "synthetic", "teacher": {"ref": "tiny"}}, bootstrap=3)
    out = tmp_path_factory.mktemp("report") / "report.html"
    return results, build.write_outputs(results, out)


def test_every_plot_is_drawn_inline_and_nothing_is_fetched(full_report):
    _, paths = full_report
    page = paths["html"].read_text()
    for name in PLOTS:
        assert re.search(rf'<figure class="plot" data-plot="{name}"><svg', page), name
    assert "no-data" not in page.split("<main>", 1)[1].split('id="runs"')[0]  # every plot had data
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\((?!#)", page)  # nothing to fetch, no JS
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "Recommended (observed)" in page and "From the fitted laws" in page


def test_results_json_is_strict_and_matches_the_tables(full_report):
    results, paths = full_report
    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"{c} in results.json"))
    assert data["counts"]["students"] == 2 * 2 * 2 * 8  # supervision × schedule × D × κ
    assert len(data["pareto"]) == len(results["pareto"]) >= 1
    choice = data["recommendation"]["choice"]
    assert choice["task_macro_f1"] >= data["recommendation"]["constraints"]["min_macro_f1"]
    assert choice["gk_retention"] >= 0.7
    assert data["recommendation"]["constraints"]["min_macro_f1"] == pytest.approx(0.9 * 0.9)  # 90 % of the teacher
    cheaper = [s for s in data["students"] if not s["teacher"] and s["params"] < choice["params"]]
    assert all(s["task_macro_f1"] < 0.81 or s["gk_retention"] < 0.7 for s in cheaper)


def test_markdown_summary(full_report):
    results, paths = full_report
    md = paths["markdown"].read_text()
    assert md.startswith("# taskdistill report — synthetic")
    assert "## Recommendation" in md and "## Collapse points" in md and "## Students" in md
    k50 = next(c for c in results["curves"] if c["metric"] == "task_macro_f1" and "q" in c)
    assert k50["label"] in md


def test_missing_plots_are_explained_not_dropped(tmp_path):
    rows = study_rows(supervisions=("label",), schedules=("iterative",), dataset_sizes=(500,), seeds=(0,),
                      metrics=("task_macro_f1",))
    for r in rows:
        r["params"] = r["latency_ms"] = None
    results = build.compute_results(rows, [], {"study": "s"}, bootstrap=0)
    page = build.write_outputs(results, tmp_path / "r.html")["html"].read_text()
    for name, why in (("gk", "no general-knowledge"), ("collapse", "needs the retention of both"), ("dataset_size", "single dataset"),
                      ("schedule", "single schedule"), ("pareto", "no student has both a cost")):
        assert re.search(rf'class="no-data" data-plot="{name}"><b>No plot:</b>[^<]*{why}', page), name
    assert 'data-plot="in_domain"><svg' in page
    assert "No cost measurements" in page


def test_no_observations_is_a_user_error():
    with pytest.raises(TaskDistillError, match="no observations"):
        build.compute_results([], [], {})


def test_parse_count():
    assert parse_count("60M") == 6e7 and parse_count("1.5b") == 1.5e9 and parse_count("2e6") == 2e6
    assert parse_count(None) is None
    with pytest.raises(TaskDistillError, match="60M"):
        parse_count("sixty")


# -- a real store ---------------------------------------------------------------------------------

def make_store(folder, rows):
    """A study store holding ``rows`` (observations) through the store's own write API."""
    from taskdistill.study.plan import Plan, Run, Step
    from taskdistill.study.store import STORE_NAME, Store

    plan = Plan(study="syn", spec_hash="h0", teacher_eval="teach")
    keys = sorted({(r["supervision"], r["method"], r["schedule"], r["keep_fraction"], r["dataset_size"], r["seed"])
                   for r in rows}, key=str)
    for i, k in enumerate(keys):
        teacher = k[0] is None
        ev = "teach" if teacher else f"ev{i}"
        plan.steps[f"m{i}"] = Step(f"m{i}", "distill", {}, (), f"model {i}")
        plan.steps[ev] = Step(ev, "evaluate", {}, (f"m{i}",), f"eval {i}")
        plan.runs.append(Run(f"r{i}", ev, f"m{i}", None, k[0], k[1], k[2], k[3], k[4], k[5], 0, teacher))
    store = Store(folder / STORE_NAME)
    store.register(plan, {"name": "syn"}, {"machine": {"cpu_count": 2}, "packages": {"torch": "x"}})
    for i, k in enumerate(keys):
        run = plan.runs[i]
        art = folder / f"m{i}"
        art.mkdir()
        store.claim("syn", f"m{i}")
        store.finish("syn", f"m{i}", str(art), {"path": str(art)}, [])
        mine = [r for r in rows if (r["supervision"], r["method"], r["schedule"], r["keep_fraction"],
                                    r["dataset_size"], r["seed"]) == k]
        store.claim("syn", run.eval_key)
        cost = {"params_total": int(mine[0]["params"]), "flops_per_token": 2e8, "latency_ms_batch1": 30.0,
                "prefill_tokens_per_s": {"1": 900.0}, "decode_tokens_per_s": {"1": 40.0}, "peak_rss_mb": 800.0}
        store.finish("syn", run.eval_key, None, {"params": mine[0]["params"], "latency_ms": mine[0]["latency_ms"],
                                                 "cost": cost},
                     [{"metric": r["metric"], "value": r["value"], "correct": r["correct"], "n": r["n"],
                       "chance": r["chance"]} for r in mine])
    store.close()


def test_write_report_from_a_study_folder_and_the_cli(tmp_path):
    rows = study_rows(supervisions=("label", "cot"), schedules=("iterative",), dataset_sizes=(500,), seeds=(0,),
                      metrics=("task_macro_f1", "gk_aggregate"))
    make_store(tmp_path, rows)
    paths = build.write_report(tmp_path, bootstrap=0)
    assert paths["html"] == tmp_path / "report.html" and paths["json"].is_file() and paths["markdown"].is_file()
    data = json.loads(paths["json"].read_text())
    assert data["counts"] == {"students": 16, "runs": 17, "observations": len(rows)}
    page = paths["html"].read_text()
    assert "cpu_count" in page and "800" in page  # provenance and the stored cost table

    from taskdistill.cli import app

    runner = CliRunner()
    out = tmp_path / "elsewhere" / "page.html"
    res = runner.invoke(app, ["report", str(tmp_path), "-o", str(out), "--no-laws", "--max-params", "60M"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and (out.parent / "results.json").is_file() and (out.parent / "report.md").is_file()
    assert json.loads((out.parent / "results.json").read_text())["recommendation"]["constraints"]["max_params"] == 6e7
    res = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not a study folder" in res.output


def test_report_help_lists_the_options():
    from taskdistill.cli import app

    res = CliRunner().invoke(app, ["report", "--help"])
    assert res.exit_code == 0
    for opt in ("--out", "--min-macro-f1", "--min-gk-retention", "--max-params", "--bootstrap"):
        assert opt in res.output
