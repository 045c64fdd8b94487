"""Teacher correction: trained on hard targets through the distillation loop, cached by its inputs."""

from __future__ import annotations

import pytest
import torch
from distill_helpers import task_data

from taskdistill import settings
from taskdistill.distill.config import DistillConfig
from taskdistill.distill.correct import correct_teacher
from taskdistill.errors import TaskDistillError
from taskdistill.evaluate.task import evaluate_task


def test_correct_teacher_trains_reports_and_caches(tiny):
    model, tok = tiny
    config = DistillConfig(max_steps=3, batch_size=4, lr=2e-2, warmup_ratio=0.0)
    data = task_data(False)
    before = evaluate_task(model(seed=0), tok(), data).nll
    corrected, report = correct_teacher(model(seed=0), tok(), data, config, progress=False)
    assert report["cached"] is False and report["eval_mode"] == "score"
    assert evaluate_task(corrected, tok(), data).nll < before  # fitted to its own training pool
    again, report2 = correct_teacher(model(seed=0), tok(), data, config, progress=False)
    assert report2["cached"] is True and report2["train"] == report["train"]
    for (name, a), b in zip(corrected.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(list(settings.cache_dir("teachers").iterdir())) == 1
    with pytest.raises(TaskDistillError, match="hard targets"):
        correct_teacher(model(seed=0), tok(), data, DistillConfig(supervision="kl"))

