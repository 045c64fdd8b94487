"""Teacher correction: fine-tune the teacher on the task's training pool before pruning.

The teacher is trained with hard targets (``label`` and / or ``cot`` supervision, ``logit`` or
``lora`` method) through the same loop as students, so its later KL targets and traces match the
task format. The corrected teacher is cached as a plain HF folder under
``settings.cache_dir("teachers")/<hash>`` keyed by (teacher weights, training data, config, prompt
format). Evaluating it is the caller's business (the study evaluates every model it makes).
"""

from __future__ import annotations

import json

from taskdistill import settings
from taskdistill.cache import atomic_dir, atomic_write_json, content_hash
from taskdistill.data.schema import TaskData
from taskdistill.distill.config import DistillConfig
from taskdistill.errors import TaskDistillError
from taskdistill.models.prompts import PromptFormat


def correct_teacher(
    teacher,
    tokenizer,
    train: TaskData,
    config: DistillConfig,
    *,
    fmt: PromptFormat | None = None,
    use_cache: bool = True,
    progress: bool | None = None,
    runtime=None,
):
    """Return ``(corrected teacher, report)``; a second call with the same inputs loads the cached one.

    A ``logit`` correction trains ``teacher`` in place (pass a copy to keep the original). ``runtime``: where
    it trains (models/runtime.py; default: where the teacher is).
    """
    from taskdistill.distill.train import distill
    from taskdistill.models.load import load_model, model_fingerprint

    if config.uses_teacher:
        raise TaskDistillError(
            f"teacher correction trains on hard targets; use supervision 'label' or 'cot', not {config.supervision!r}"
        )
    mode = "cot" if config.uses_traces else "score"
    key = content_hash({
        "teacher": model_fingerprint(teacher), "data": train.fingerprint(), "config": config.model_dump(),
        "fmt": (fmt or PromptFormat()).model_dump(),
    })
    final = settings.cache_dir("teachers") / key
    if use_cache and (final / "correction.json").is_file():
        model, _ = load_model(str(final), dtype=next(teacher.parameters()).dtype, runtime=runtime)
        report = json.loads((final / "correction.json").read_text())
        return model, {**report, "cached": True}

    model, train_report = distill(teacher, tokenizer, train, config, fmt=fmt, progress=progress, runtime=runtime)
    report = {
        "key": key, "path": str(final), "supervision": config.supervision, "method": config.method,
        "eval_mode": mode,
        "train": {k: v for k, v in train_report.to_dict().items() if k != "history"},
        "final_loss": train_report.final_loss,
    }
    with atomic_dir(final) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / "correction.json", report)
    return model, {**report, "cached": False}

