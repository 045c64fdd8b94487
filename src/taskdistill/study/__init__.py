"""study stage: a spec → a DAG of content-keyed steps → a crash-safe store, run locally or on Ray (docs/studies.md)."""

from taskdistill.lazy import exports

_NAMES = {
    "run_study": "run",
    "resume_study": "run",
    "load_spec": "spec",
    "parse_spec": "spec",
    "StudySpec": "spec",
    "plan": "plan",
    "Store": "store",
    "open_store": "store",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
