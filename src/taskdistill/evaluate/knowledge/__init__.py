"""General-knowledge evaluation: lm-eval benchmarks through our in-memory adapter, as retention.

``evaluate_knowledge(model, tok, benchmarks, limit=300, seed=0, reference=None)`` -> ``KnowledgeReport``.
Names: probe, arc_easy, arc_challenge, hellaswag, piqa, mmlu, mmlu_cloze, mmlu_pro, triviaqa, jsonl:PATH.
"""

from taskdistill.evaluate.knowledge.api import (
    check_benchmarks,
    evaluate_knowledge,
    load_reference,
)
from taskdistill.evaluate.knowledge.retention import (
    BenchmarkResult,
    KnowledgeReport,
    retention,
)
from taskdistill.evaluate.knowledge.tasks import (
    BENCHMARKS,
    HUB_TASKS,
    default_benchmarks,
    probe_path,
)

__all__ = [
    "BENCHMARKS",
    "HUB_TASKS",
    "BenchmarkResult",
    "KnowledgeReport",
    "check_benchmarks",
    "default_benchmarks",
    "evaluate_knowledge",
    "load_reference",
    "probe_path",
    "retention",
]
