"""Teacher correction (cached, evaluated) and the recovery callback inside iterative pruning."""

from __future__ import annotations

import pytest
import torch
from distill_helpers import sharp_teacher, task_data

from taskdistill import settings
from taskdistill.distill.config import DistillConfig
from taskdistill.distill.correct import correct_teacher
from taskdistill.distill.recovery import make_recovery
from taskdistill.errors import TaskDistillError


def test_correct_teacher_trains_reports_and_caches(tiny):
    model, tok = tiny
    config = DistillConfig(max_steps=3, batch_size=4, lr=2e-2, warmup_ratio=0.0)
    data = task_data(False)
    corrected, report = correct_teacher(model(seed=0), tok(), data, config, eval_data=data, progress=False)
    assert report["cached"] is False and report["eval_mode"] == "score"
    assert report["after"]["nll"] < report["before"]["nll"]  # fitted to its own training pool
    again, report2 = correct_teacher(model(seed=0), tok(), data, config, eval_data=data, progress=False)
    assert report2["cached"] is True and report2["after"] == report["after"]
    for (name, a), b in zip(corrected.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(list(settings.cache_dir("teachers").iterdir())) == 1
    with pytest.raises(TaskDistillError, match="hard targets"):
        correct_teacher(model(seed=0), tok(), data, DistillConfig(supervision="kl"))


def test_recovery_runs_between_pruning_steps_and_reuses_teacher_logits(tiny, tmp_path):
    from taskdistill.prune.params import count_parameters
    from taskdistill.prune.schedule import iterative_prune

    model, tok = tiny
    teacher = sharp_teacher(model, seed=3, scale=10.0)
    config = DistillConfig(supervision="blended", lam=0.5, max_steps=2, batch_size=4, lr=1e-2, top_k=16)
    seen = []
    recover = make_recovery(teacher, tok(), task_data(), config, out_root=tmp_path,
                            after=lambda m, t, info: {"params": count_parameters(m)[0]}, progress=False)
    student = model(seed=0)
    total = count_parameters(student)[0]
    calib = [e.text for e in task_data().examples]
    final = iterative_prune(student, tok(), [0.8, 0.6], calib, recover=recover,
                            on_step=lambda info, m: seen.append(info.keep_fraction))
    assert seen == [0.8, 0.6] and [r["step"] for r in recover.reports] == [1, 2]
    assert count_parameters(final)[0] < 0.8 * total
    assert all(r["train"]["steps"] == 2 and r["train"]["final_loss"] > 0 for r in recover.reports)
    assert (tmp_path / "step2-k0.60" / "model" / "config.json").is_file()
    # Both steps train on the same sequences with the same teacher: one logit cache, reused.
    assert len([p for p in settings.cache_dir("logits").iterdir() if not p.name.startswith(".")]) == 1


def test_recovery_checks_its_inputs(tiny):
    _, tok = tiny
    with pytest.raises(TaskDistillError, match="needs CoT traces"):
        make_recovery(None, tok(), task_data(False), DistillConfig(supervision="cot"))
    with pytest.raises(TaskDistillError, match="needs a teacher"):
        make_recovery(None, tok(), task_data(), DistillConfig(supervision="kl"))
