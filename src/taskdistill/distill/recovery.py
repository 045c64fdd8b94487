"""The recovery callback of the iterative pruning driver: prune → distill → prune … in one call.

``make_recovery`` fixes the teacher, the training data (with traces for CoT formats) and the config;
``iterative_prune(..., recover=make_recovery(...))`` then distills the student after every pruning
step. The teacher's top-k logits are cached once (same sequences every step) and reused.
"""

from __future__ import annotations

from pathlib import Path

from taskdistill.data.schema import TaskData
from taskdistill.distill.config import DistillConfig
from taskdistill.errors import TaskDistillError


class Recovery:
    """Callable ``(model, tokenizer, step_info) -> model``; ``reports`` collects one entry per step."""

    def __init__(self, teacher, tokenizer, train: TaskData, config: DistillConfig, *, traces: TaskData | None = None,
                 out_root: str | Path | None = None, fmt=None, progress: bool | None = None, after=None):
        if config.uses_traces and traces is None and not any(e.cot for e in train.examples):
            raise TaskDistillError(
                f"supervision {config.supervision!r} needs CoT traces: pass traces= (distill.traces.build_traces) "
                "or training data with a cot column"
            )
        if config.uses_teacher and teacher is None:
            raise TaskDistillError(f"supervision {config.supervision!r} needs a teacher for its KL targets")
        self.teacher, self.tokenizer, self.train, self.config = teacher, tokenizer, train, config
        self.traces, self.fmt, self.progress, self.after = traces, fmt, progress, after
        self.out_root = Path(out_root) if out_root is not None else None
        self.reports: list[dict] = []

    def __call__(self, model, tokenizer, step_info):
        from taskdistill.distill.train import Signals, distill

        kappa = getattr(step_info, "keep_fraction", None)
        step = getattr(step_info, "step", len(self.reports) + 1)
        out = self.out_root / f"step{step}-k{kappa:.2f}" if self.out_root is not None and kappa is not None else None
        teacher = self.teacher if self.config.uses_teacher else None
        student, report = distill(model, tokenizer, self.train, self.config, teacher=teacher,
                                  signals=Signals(traces=self.traces), out_dir=out, fmt=self.fmt,
                                  progress=self.progress)
        entry = {"step": step, "keep_fraction": kappa, "train": {k: v for k, v in report.to_dict().items()
                                                                 if k != "history"}}
        if self.after is not None:
            entry.update(self.after(student, tokenizer, step_info) or {})
        self.reports.append(entry)
        return student


def make_recovery(teacher, tokenizer, train: TaskData, config: DistillConfig, **kwargs) -> Recovery:
    """The callback ``iterative_prune`` calls between pruning steps (see ``Recovery`` for options)."""
    return Recovery(teacher, tokenizer, train, config, **kwargs)
