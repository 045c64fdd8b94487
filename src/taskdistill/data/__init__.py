"""data stage: task data from synthetic specs, the hub or local files; fixed splits and nested subsets (docs/data.md)."""

from taskdistill.lazy import exports

_NAMES = {
    "load_task_data": "load",
    "source_fingerprint": "load",
    "TaskData": "schema",
    "Example": "schema",
    "make_split": "splits",
    "nested_subsets": "splits",
    "generate": "synthetic",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
