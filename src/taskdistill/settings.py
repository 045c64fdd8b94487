"""Where things live: the cache home, the shared data folder and the benchmark folder.

Environment variables (all optional):
  TASKDISTILL_HOME            cache root (models, importance, traces, logits, eval results)
  TASKDISTILL_DATA_DIR        folder of real public data (benchmarks and more), e.g. ../shared/data
  TASKDISTILL_BENCHMARKS_DIR  folder of general-knowledge benchmark files in their release formats
                              (defaults to TASKDISTILL_DATA_DIR when that is set)
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home() -> Path:
    """The cache root; created on first use."""
    root = Path(os.environ.get("TASKDISTILL_HOME") or platformdirs.user_cache_dir("taskdistill"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(kind: str) -> Path:
    """A sub-folder of the cache for one kind of artifact (``models``, ``importance``, ...)."""
    path = home() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def benchmarks_dir() -> Path | None:
    """The folder of local general-knowledge benchmark files, if configured."""
    value = os.environ.get("TASKDISTILL_BENCHMARKS_DIR") or os.environ.get("TASKDISTILL_DATA_DIR")
    return Path(value) if value else None
