"""prune stage: Minitron-style structural pruning into smaller stock Hugging Face checkpoints (docs/pruning.md).

``prune(model, tok, κ, texts)`` is one step (importance → shape plan → surgery); ``iterative_prune``
runs a schedule (``parse_schedule``). The parts: ``compute_importance``, ``plan_shape``,
``prune_model`` and ``count_parameters``. Supported architectures are the records in ``prune.archs``.

The names load their modules on first use, so ``taskdistill.prune.cli`` (imported by the root CLI)
does not pull in torch.
"""

from taskdistill.lazy import exports

_EXPORTS = {
    "prune": "api",
    "PruneReport": "api",
    "iterative_prune": "schedule",
    "parse_schedule": "schedule",
    "compute_importance": "importance",
    "Importance": "importance",
    "plan_shape": "shape",
    "TargetShape": "shape",
    "prune_model": "surgery",
    "count_parameters": "params",
    "SUPPORTED": "archs",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = exports(__name__, _EXPORTS)
