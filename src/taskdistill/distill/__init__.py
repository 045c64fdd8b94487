"""distill stage: logit and LoRA distillation under any supervision format, teacher signals (CoT traces,
top-k logits) and teacher correction (docs/distillation.md)."""

from taskdistill.lazy import exports

_NAMES = {
    "distill": "train",
    "DistillConfig": "config",
    "make_config": "config",
    "Supervision": "supervision",
    "SUPERVISIONS": "supervision",
    "register": "supervision",
    "correct_teacher": "correct",
    "build_traces": "traces",
    "import_traces": "traces",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
