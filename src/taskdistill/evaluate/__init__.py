"""evaluate stage: in-domain quality (constrained label scoring, CoT generate-then-score), general
knowledge through lm-eval, and cost (docs/evaluation.md)."""

from taskdistill.lazy import exports

_NAMES = {
    "evaluate_task": "task",
    "score_labels": "task",
    "TaskMetrics": "metrics",
    "classification_metrics": "metrics",
    "evaluate_knowledge": "knowledge",
    "measure_cost": "cost",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
