"""prune stage: Minitron-style structural pruning into smaller stock Hugging Face checkpoints (docs/pruning.md).

``prune(model, tok, κ, texts)`` is one step (importance → shape plan → surgery); ``iterative_prune``
runs a schedule (``parse_schedule``). The parts: ``compute_importance``, ``plan_shape``,
``prune_model`` and ``count_parameters``. Supported architectures are the records in ``prune.archs``.

The names load their modules on first use, so ``taskdistill.prune.cli`` (imported by the root CLI)
does not pull in torch.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
