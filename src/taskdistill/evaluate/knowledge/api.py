"""``evaluate_knowledge``: lm-eval tasks through our in-memory adapter, on fixed subsets, cached."""

from __future__ import annotations

import json
import logging
from importlib.metadata import version
from pathlib import Path

from taskdistill import cache, settings
from taskdistill.errors import TaskDistillError
from taskdistill.evaluate.knowledge import tasks
from taskdistill.evaluate.knowledge.retention import (
    BenchmarkResult,
    KnowledgeReport,
    chance_level,
    mean_stderr,
    stratified_subset,
    with_reference,
)

CACHE_VERSION = 1


def evaluate_knowledge(
    model,
    tokenizer,
    benchmarks: list[str] | None = None,
    limit: int | None = 300,
    seed: int = 0,
    reference: dict[str, float] | None = None,
    batch_size: int = 16,
    precision: str = "float32",
    use_cache: bool = True,
    progress=None,
) -> KnowledgeReport:
    """Evaluate general knowledge on ``benchmarks`` (default: ``default_benchmarks()``).

    Each benchmark runs on a fixed seeded stratified subset of ``limit`` items (all items when
    None); ``reference`` maps benchmark -> the teacher's accuracy, giving retention. Results are
    cached by (model fingerprint, benchmark, data, subset, settings): a re-run never re-evaluates.
    ``precision="bfloat16"`` runs the model under bf16 autocast (faster on CPUs with bf16 units).
    ``progress(name, status)`` is called before each benchmark ("cached" or "running").
    """
    from taskdistill.models.load import model_fingerprint

    names = list(benchmarks) if benchmarks else tasks.default_benchmarks()
    from taskdistill.evaluate.knowledge.adapter import PRECISIONS

    if precision not in PRECISIONS:
        raise TaskDistillError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if limit is not None and limit < 1:
        raise TaskDistillError(f"limit must be a positive number of items, got {limit}")
    resolved = [tasks.resolve(name) for name in names]
    plans = [_plan(item, limit, seed) for item in resolved]  # bad names, files, rows, limits fail before any work
    fingerprint = model_fingerprint(model)
    lm = None
    results = []
    for item, plan in zip(resolved, plans, strict=True):
        key = cache.content_hash({"v": CACHE_VERSION, "model": fingerprint, "lm_eval": version("lm_eval"),
                                   "precision": precision, **plan.key})
        path = settings.cache_dir("knowledge") / f"{key}.json"
        if use_cache and path.is_file():
            if progress:
                progress(item.name, "cached")
            results.append(BenchmarkResult(**json.loads(path.read_text())))
            continue
        if progress:
            progress(item.name, "running")
        if lm is None:
            from taskdistill.evaluate.knowledge.adapter import InMemoryLM

            lm = InMemoryLM(model, tokenizer, batch_size=batch_size, precision=precision)
        result = plan.run(lm)
        cache.atomic_write_json(path, result.to_dict())
        results.append(result)
    settings_used = {"limit": limit, "seed": seed, "benchmarks": names, "precision": precision,
                     "formulations": {r.name: r.formulation for r in resolved}}
    return KnowledgeReport(with_reference(results, reference), settings_used)


def check_benchmarks(names: list[str], limit: int | None = 300, seed: int = 0) -> None:
    """Raise ``TaskDistillError`` for an unknown name, a missing file, a malformed row or a too-large limit."""
    for name in names:
        _plan(tasks.resolve(name), limit, seed)


class _Plan:
    def __init__(self, item: tasks.Resolved, key: dict, run):
        self.item, self.key, self.run = item, key, run


def _plan(item: tasks.Resolved, limit: int | None, seed: int) -> _Plan:
    if item.hub is not None:
        key = {"benchmark": item.name, "hub": item.hub, "limit": limit, "seed": seed}
        return _Plan(item, key, lambda lm: _run_hub(lm, item, limit, seed))
    docs = item.docs()
    if not docs:
        raise TaskDistillError(f"benchmark {item.name!r}: {', '.join(map(str, item.paths))} holds no items")
    if limit is not None and limit > len(docs):
        raise TaskDistillError(f"limit {limit} is larger than benchmark {item.name!r} ({len(docs)} items); "
                               f"use --limit {len(docs)} or less")
    chosen = [docs[i] for i in stratified_subset([d["stratum"] for d in docs], limit, seed, item.balanced)]
    key = {"benchmark": item.name, "files": [cache.cached_file_sha256(p) for p in item.paths], "limit": limit,
           "seed": seed, "formulation": item.formulation, "kind": item.kind}
    return _Plan(item, key, lambda lm: _run_local(lm, item, chosen))


def _quiet_lm_eval():
    for name in ("lm_eval", "lm-eval"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _simple_evaluate(lm, task_list, task_manager, samples=None) -> dict:
    from lm_eval import simple_evaluate

    _quiet_lm_eval()
    return simple_evaluate(
        model=lm, tasks=task_list, task_manager=task_manager, samples=samples, log_samples=True,
        bootstrap_iters=0, random_seed=None, numpy_random_seed=None, torch_random_seed=None,
        fewshot_random_seed=0,
    )


def _run_local(lm, item: tasks.Resolved, docs: list[dict]) -> BenchmarkResult:
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks import TaskManager

    _quiet_lm_eval()
    task = ConfigurableTask(config=tasks.task_config(item, docs))
    out = _simple_evaluate(lm, [task], TaskManager(include_defaults=False))
    return summarise(item, out["samples"][task.task_name])


def _run_hub(lm, item: tasks.Resolved, limit: int | None, seed: int) -> BenchmarkResult:
    """lm-eval's standard task (or group) from the hub, on a stratified subset of its documents."""
    from lm_eval.tasks import TaskManager

    _quiet_lm_eval()
    manager = TaskManager()
    loaded = manager.load([item.hub])
    leaves = loaded["tasks"]
    strata, owners = [], []
    for task_name, task in leaves.items():
        for doc_id, doc in enumerate(task.eval_docs):
            # a group (MMLU) is stratified by its subject tasks, a single task by gold answer
            strata.append(task_name if len(leaves) > 1 else str(task.doc_to_target(doc)))
            owners.append((task_name, doc_id))
    if limit is not None and limit > len(owners):
        raise TaskDistillError(f"limit {limit} is larger than benchmark {item.name!r} ({len(owners)} items)")
    samples: dict[str, list[int]] = {name: [] for name in leaves}
    for index in stratified_subset(strata, limit, seed, balanced=len(leaves) > 1):
        task_name, doc_id = owners[index]
        samples[task_name].append(doc_id)
    samples = {k: v for k, v in samples.items() if v}
    out = _simple_evaluate(lm, [leaves[k] for k in samples], manager, samples=samples)
    return summarise(item, [s for name in samples for s in out["samples"][name]])


def summarise(item: tasks.Resolved, samples: list[dict]) -> BenchmarkResult:
    """Accuracy, acc_norm, counts, stderr and chance from lm-eval's per-sample records."""
    if item.kind == "gen":
        scores = [float(s["exact_match"]) for s in samples]
        norms, choices = None, [0] * len(samples)
    else:
        scores = [float(s["acc"]) for s in samples]
        norms = [float(s["acc_norm"]) for s in samples] if all("acc_norm" in s for s in samples) else None
        choices = [len(s["resps"]) for s in samples]  # one log-likelihood request per choice
    n = len(scores)
    return BenchmarkResult(
        name=item.name, acc=sum(scores) / n, acc_norm=(sum(norms) / n) if norms else None,
        correct=round(sum(scores)), n=n, stderr=mean_stderr(scores),
        chance=item.chance if item.chance is not None else chance_level(choices),
        formulation=item.formulation,
    )


def load_reference(path: str | Path) -> dict[str, float]:
    """A reference from JSON: ``{benchmark: acc}`` or a saved ``KnowledgeReport.to_dict()``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TaskDistillError(f"cannot read reference {path}: {exc}; give a JSON file of "
                               '{"benchmark": accuracy} or a saved knowledge report') from None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = {r["name"]: r["acc"] for r in data["results"]}
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise TaskDistillError(f"reference {path} must map benchmark names to accuracies, "
                               'e.g. {"arc_easy": 0.58}, or be a saved knowledge report')
    return {k: float(v) for k, v in data.items()}
