"""One function per step kind; each calls the stage APIs and writes its artifact atomically.

``execute(step, deps, study_dir)`` is what the executors call (in process or on a Ray worker): ``deps``
maps each role the step names (``parent``, ``data``, …) to that step's kind, artifact and result; it
returns ``(artifact path or None, result dict, metric rows)``. Every step is a pure function of its
inputs and its dependencies' artifacts (seeds are set inside), so a step redone after a crash produces
the same artifact and the same metrics.

Models read by several consecutive steps (prune → evaluate → recover → evaluate) are kept in a small
in-process cache, so each is loaded from disk once; a step that trains gets its own copy.
"""

from __future__ import annotations

import copy
import json
import random
from collections import OrderedDict
from pathlib import Path

from taskdistill.cache import atomic_dir, atomic_write_text
from taskdistill.data.schema import Example, TaskData
from taskdistill.errors import TaskDistillError

MODEL_CACHE_SIZE = 2
_MODELS: OrderedDict[str, tuple] = OrderedDict()


def artifact_dir(study_dir: Path, kind: str, key: str) -> Path:
    return Path(study_dir) / "artifacts" / kind / key


def model_for(path: str | Path, *, trainable: bool = False):
    """``(model, tokenizer)`` of a model folder, from the in-process cache when it is there.

    ``trainable=True`` returns a private copy (training changes weights in place)."""
    from taskdistill.models.load import load_model

    key = str(Path(path).resolve())
    if key in _MODELS:
        _MODELS.move_to_end(key)
        model, tok = _MODELS[key]
    else:
        model, tok = load_model(str(path))
        remember_model(path, model, tok)
    return (copy.deepcopy(model), tok) if trainable else (model, tok)


def remember_model(path: str | Path, model, tok) -> None:
    """Keep a model just saved to (or loaded from) ``path`` for the next steps that read it."""
    _MODELS[str(Path(path).resolve())] = (model, tok)
    _MODELS.move_to_end(str(Path(path).resolve()))
    while len(_MODELS) > MODEL_CACHE_SIZE:
        _MODELS.popitem(last=False)


def save_and_remember(model, tok, out: Path) -> None:
    from taskdistill.models.load import save_model

    save_model(model, tok, out)
    remember_model(out, model, tok)


def load_source(task: dict, where: dict) -> TaskData:
    """The study's task data (a classifier's: at least two classes)."""
    from taskdistill.data.load import load_task_data, require_classes

    cols = {k: task.get(k) for k in ("text_col", "label_col", "id_col", "cot_col")}
    switches = {k: bool(task.get(k)) for k in ("no_id_col", "drop_duplicates")}
    return require_classes(load_task_data(where.get("source", task["source"]), **cols, **switches),
                           "give task.source data with at least two labels")


def check_sizes(task: dict, sizes: list[int], data: TaskData) -> int:
    """The training-pool size; a user error when a dataset size or the test size does not fit."""
    pool = len(data) - task["test_size"]
    if pool < 1:
        raise TaskDistillError(f"task.test_size={task['test_size']} leaves no training examples out of "
                               f"{len(data)}; lower task.test_size")
    if max(sizes) > pool:
        raise TaskDistillError(f"dataset size {max(sizes)} (axes.dataset_sizes / correction.dataset_size) is larger "
                               f"than the training pool ({pool} = {len(data)} examples − {task['test_size']} test); "
                               "lower it or use more data")
    return pool


def _subset(data_dep: dict, name: str) -> TaskData:
    return TaskData.load(Path(data_dep["artifact"]) / f"{name}.json")


def model_path(dep: dict) -> str:
    """Where a model-producing dependency's HF folder is."""
    return dep["result"]["path"] if dep["kind"] == "teacher" else dep["artifact"]


# -- steps -------------------------------------------------------------------------------------
def data_step(inputs: dict, deps: dict, out: Path) -> tuple[Path, dict, list]:
    from taskdistill.data.splits import make_split, nested_subsets

    task, sizes = inputs["task"], inputs["dataset_sizes"]
    data = load_source(task, inputs["where"])
    pool_size = check_sizes(task, sizes, data)
    split = make_split(data, task["test_size"], seed=task["split_seed"])
    subsets = nested_subsets(split.train_pool, sizes, seed=task["split_seed"])
    pool = list(split.train_pool.examples)
    calibration = random.Random(task["split_seed"]).sample(pool, min(task["calibration_size"], len(pool)))
    with atomic_dir(out) as tmp:
        split.test.save(tmp / "test.json")
        split.train_pool.subset(calibration, name="calibration").save(tmp / "calibration.json")
        for size, subset in subsets.items():
            subset.save(tmp / f"train-{size}.json")
    result = {"fingerprint": data.fingerprint(), "name": data.name, "n": len(data), "labels": len(data.labels),
              "pool": pool_size, "test": len(split.test), "test_fingerprint": split.test.fingerprint()}
    return out, result, []


def teacher_step(inputs: dict, deps: dict, out: Path) -> tuple[None, dict, list]:
    from transformers import AutoConfig

    from taskdistill.models.load import resolve
    from taskdistill.prune.params import count_parameters

    ref = inputs["where"]["ref"]
    path, kwargs = resolve(ref)
    try:
        config = AutoConfig.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise TaskDistillError(f"could not read the config of teacher {ref!r}: {exc}") from None
    total, non_embedding = count_parameters(config)  # analytic, from the config
    return None, {"ref": ref, "path": str(path), "fingerprint": inputs["fingerprint"], "reference_params": total,
                  "reference_non_embedding": non_embedding, "model_type": config.model_type}, []


def traces_step(inputs: dict, deps: dict, out: Path) -> tuple[Path, dict, list]:
    """CoT traces for the first ``limit`` examples of a training subset, by the ``writer`` model."""
    from taskdistill.distill.traces import build_traces
    from taskdistill.models.prompts import PromptFormat

    train = _subset(deps["data"], f"train-{inputs['dataset_size']}")
    if inputs["limit"]:
        train = train.subset(train.examples[: inputs["limit"]])
    if all(e.cot for e in train.examples):  # the data brings its own rationales (a cot column): use them
        with atomic_dir(out) as tmp:
            train.save(tmp / "traces.json")
        return out, {"traces": len(train), "source": "data"}, []
    model, tok = model_for(model_path(deps["writer"]))
    traced = build_traces(model, tok, train, explain_gold=inputs["explain_gold"],
                          max_new_tokens=inputs["max_new_tokens"], batch_size=inputs["batch_size"],
                          fmt=PromptFormat(**inputs["prompt"]))
    with atomic_dir(out) as tmp:
        traced.save(tmp / "traces.json")
    return out, {"traces": len(traced), "source": "teacher", "report": _as_dict(traced.meta.get("traces"))}, []


def correct_step(inputs: dict, deps: dict, out: Path) -> tuple[Path, dict, list]:
    from taskdistill.distill.config import make_config
    from taskdistill.distill.correct import correct_teacher
    from taskdistill.models.prompts import PromptFormat

    config = make_config(**inputs["training"])
    model, tok = model_for(model_path(deps["teacher"]), trainable=True)
    train = _subset(deps["data"], f"train-{config.dataset_size}")
    if "rationales" in deps:  # the rationalised examples also train the CoT format
        traced = {e.id: e.cot for e in TaskData.load(Path(deps["rationales"]["artifact"]) / "traces.json").examples}
        train = train.subset([Example(e.text, e.label, e.id, cot=traced.get(e.id)) for e in train.examples])
    corrected, report = correct_teacher(model, tok, train, config.model_copy(update={"dataset_size": None}),
                                        fmt=PromptFormat(**inputs["prompt"]))
    save_and_remember(corrected, tok, out)
    return out, {"train": _as_dict(report)}, []


def prune_step(inputs: dict, deps: dict, out: Path) -> tuple[Path, dict, list]:
    from taskdistill.prune.api import prune

    model, tok = model_for(model_path(deps["parent"]))
    calib = [e.text for e in _subset(deps["data"], "calibration").examples]
    teacher = deps["reference"]["result"]
    reference = (teacher["reference_params"], teacher["reference_non_embedding"])
    pruned, report = prune(model, tok, inputs["keep_fraction"], calib, axes=inputs["axes"],
                           reference_params=reference)
    if pruned is model:  # nothing to remove: a copy, so the parent in the cache stays the parent
        pruned = copy.deepcopy(model)
    save_and_remember(pruned, tok, out)
    return out, {"prune": report.as_dict()}, []


def recover_step(inputs: dict, deps: dict, out: Path) -> tuple[Path, dict, list]:
    import torch

    from taskdistill.distill.config import make_config
    from taskdistill.distill.train import distill
    from taskdistill.models.prompts import PromptFormat

    config = make_config(**inputs["training"])
    torch.manual_seed(config.seed)
    student, tok = model_for(deps["pruned"]["artifact"], trainable=True)
    train = _subset(deps["data"], f"train-{config.dataset_size}")
    if config.uses_traces:  # the traced examples of this subset (the trace filter may have dropped some)
        traced = TaskData.load(Path(deps["traces"]["artifact"]) / "traces.json")
        wanted = {e.id for e in train.examples}
        train = traced.subset([e for e in traced.examples if e.id in wanted])
    teacher = model_for(model_path(deps["kl_teacher"]))[0] if "kl_teacher" in deps else None
    # the subset is already the run's dataset_size examples
    student, report = distill(student, tok, train, config.model_copy(update={"dataset_size": None}),
                              teacher=teacher, fmt=PromptFormat(**inputs["prompt"]), progress=False)
    save_and_remember(student, tok, out)
    return out, {"train": _as_dict(report), "effective_dataset_size": report.sequences["used"]}, []


def evaluate_step(inputs: dict, deps: dict, out: Path) -> tuple[Path, dict, list]:
    """In-domain metrics in one view, general knowledge, and (for trained views) cost on the task's prompts."""
    from taskdistill.evaluate.knowledge import evaluate_knowledge
    from taskdistill.evaluate.task import evaluate_task
    from taskdistill.models.params import count_parameters
    from taskdistill.models.prompts import PromptFormat

    ev, kn, view = inputs["evaluation"], inputs["knowledge"], inputs["view"]
    fmt = PromptFormat(**inputs["prompt"])
    model, tok = model_for(model_path(deps["model"]))
    test = _subset(deps["data"], "test")
    if ev["test_limit"] and len(test) > ev["test_limit"]:
        test = test.subset(test.examples[: ev["test_limit"]])
    mode = "cot" if view == "cot" else "score"
    task = evaluate_task(model, tok, test, mode=mode, fmt=fmt, batch_size=ev["batch_size"],
                         max_new_tokens=ev["cot_max_new_tokens"] if mode == "cot" else None)
    knowledge = evaluate_knowledge(model, tok, kn["benchmarks"], limit=kn["limit"], seed=kn["seed"])
    rows = [
        {"metric": "task_accuracy", "value": task.accuracy, "correct": task.correct, "n": task.n,
         "chance": task.chance, "stderr": task.accuracy_stderr},
        {"metric": "task_macro_f1", "value": task.macro_f1, "correct": None, "n": task.n,
         "chance": task.macro_f1_chance, "stderr": task.macro_f1_stderr},
    ]
    rows += knowledge_rows(knowledge)
    result = {"view": view, "task": task.to_dict(), "knowledge": _as_dict(knowledge), "nll": task.nll,
              "brier": task.brier, "params": count_parameters(model)[0]}
    if inputs["cost"]:
        from taskdistill.evaluate.cost import measure_cost
        from taskdistill.models.prompts import answer, build_prompt

        prompts = [build_prompt(tok, e.text, test.labels, fmt, cot=view == "cot") for e in test.examples[:8]]
        longest_label = max(len(tok(answer(label), add_special_tokens=False)["input_ids"]) for label in test.labels)
        new_tokens = longest_label + (ev["cot_max_new_tokens"] if view == "cot" else 0)
        cost = measure_cost(model, tok, prompts=prompts, batch_sizes=tuple(ev["cost_batch_sizes"]),
                            new_tokens=new_tokens, repeats=ev["cost_repeats"]).to_dict()
        result.update(cost=cost, latency_ms=cost["latency_ms_batch1"])
    with atomic_dir(out) as tmp:
        atomic_write_text(tmp / "metrics.json", json.dumps({"metrics": rows, "result": result}, default=str))
    return out, json.loads(json.dumps(result, default=str)), rows


def knowledge_rows(report) -> list[dict]:
    """One ``gk_<benchmark>`` row per benchmark and the pooled ``gk_aggregate`` (Σcorrect/Σn, n-weighted chance)."""
    rows = []
    for b in report.results:
        rows.append({"metric": metric_name(b.name), "value": b.acc, "correct": b.correct, "n": b.n,
                     "chance": b.chance, "stderr": b.stderr})
    n = sum(r["n"] for r in rows)
    correct = sum(r["correct"] for r in rows)
    chance = sum(r["chance"] * r["n"] for r in rows) / n
    p = correct / n
    rows.append({"metric": "gk_aggregate", "value": p, "correct": correct, "n": n, "chance": chance,
                 "stderr": (p * (1 - p) / n) ** 0.5})
    return rows


def metric_name(benchmark: str) -> str:
    """``gk_<benchmark>``; a ``jsonl:PATH`` benchmark is named after its file stem."""
    if benchmark.startswith("jsonl:"):
        benchmark = Path(benchmark[len("jsonl:"):]).stem
    return f"gk_{benchmark}"


def _as_dict(obj) -> dict:
    if obj is None:
        return {}
    for attr in ("to_dict", "as_dict"):
        if hasattr(obj, attr):
            return json.loads(json.dumps(getattr(obj, attr)(), default=str))
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return json.loads(json.dumps(asdict(obj), default=str))
    return json.loads(json.dumps(obj, default=str))


STEPS = {"data": data_step, "teacher": teacher_step, "correct": correct_step, "traces": traces_step,
         "prune": prune_step, "recover": recover_step, "evaluate": evaluate_step}


def execute(step: dict, deps: dict[str, dict], study_dir: str | Path) -> tuple[str | None, dict, list[dict]]:
    """Run one step (``step``: key, kind, inputs; ``deps``: role → kind, artifact, result of that step)."""
    out = artifact_dir(Path(study_dir), step["kind"], step["key"])
    artifact, result, metrics = STEPS[step["kind"]](step["inputs"], deps, out)
    return (str(artifact) if artifact is not None else None), result, metrics
