"""``eval task`` with the real SmolLM2 teacher on synthetic 35-class and real tweet-topic data (slow)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from taskdistill.cli import app

pytestmark = pytest.mark.slow


def run_eval(teacher_path, tmp_path, *args):
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["eval", "task", str(teacher_path), *map(str, args), "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def check(metrics, n, n_classes):
    assert metrics["n"] == n and len(metrics["labels"]) == n_classes, metrics
    assert sum(map(sum, metrics["confusion"])) == n and metrics["unparseable"] == 0
    assert math.isfinite(metrics["nll"]) and 0 <= metrics["brier"] <= 2
    assert metrics["correct"] == sum(metrics["confusion"][i][i] for i in range(n_classes))
    assert metrics["accuracy"] == metrics["scored_accuracy"]


def test_eval_task_on_synthetic_35_classes(teacher_path, tmp_path):
    metrics = run_eval(teacher_path, tmp_path, "--data", "synthetic:n=700,seed=0", "--test-size", "140", "--limit", "10")
    check(metrics, 10, 35)


def test_real_teacher_scores_equal_full_sequence_scores(teacher_path):
    """On SmolLM2 with its chat template: tree-scored label log-likelihoods == one forward per label."""
    from taskdistill.data import synthetic
    from taskdistill.evaluate.scoring import score_continuations
    from taskdistill.evaluate.task import label_continuations
    from taskdistill.models import prompts
    from taskdistill.models.load import load_model

    model, tok = load_model(str(teacher_path))
    data = synthetic.generate(35, seed=1)
    ctx = prompts.encode(tok, prompts.build_prompt(tok, data.examples[0].text, data.labels))[0]
    conts = label_continuations(tok, data.labels)[:4]  # four labels keep the reference cheap
    got = score_continuations(model, [ctx], conts)[0]
    for c, cont in enumerate(conts):
        with torch.inference_mode():
            lp = model(torch.tensor([ctx + cont])).logits[0].double().log_softmax(-1)
        assert got[c] == pytest.approx(sum(lp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)), abs=2e-4)


def test_eval_task_on_real_tweet_topics(teacher_path, data_dir, tmp_path):
    source = data_dir / "twitter_financial_news_topic" / "topic_valid.csv"
    metrics = run_eval(teacher_path, tmp_path, "--data", source, "--limit", "10")
    check(metrics, 10, 20)
    assert "Earnings" in metrics["labels"] and "Fed | Central Banks" in metrics["labels"]  # names from labels.json
