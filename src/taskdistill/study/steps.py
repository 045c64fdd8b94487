"""One function per step kind; each calls the stage APIs and writes its artifact atomically.

``execute(step, deps, study_dir)`` is what the executors call (in process or on a Ray worker):
it returns ``(artifact path or None, result dict, metric rows)``. Every step is a pure function of
its inputs and its dependencies' artifacts (seeds are set inside), so a step redone after a crash
produces the same artifact and the same metrics.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from taskdistill.cache import atomic_dir, atomic_write_text
from taskdistill.data.schema import Example, TaskData
from taskdistill.errors import TaskDistillError


def artifact_dir(study_dir: Path, kind: str, key: str) -> Path:
    return Path(study_dir) / "artifacts" / kind / key


# -- task data on disk (JSON, no pickle) ------------------------------------------------------
def save_task(path: Path, data: TaskData) -> None:
    rows = [[e.id, e.text, e.label, e.cot] for e in data.examples]
    path.write_text(json.dumps({"name": data.name, "labels": data.labels, "meta": data.meta, "examples": rows}))


def load_task(path: Path) -> TaskData:
    obj = json.loads(Path(path).read_text())
    examples = [Example(text=t, label=lab, id=i, cot=c) for i, t, lab, c in obj["examples"]]
    return TaskData(examples, obj["labels"], obj["name"], obj["meta"])


def load_source(task: dict) -> TaskData:
    from taskdistill.data.load import load_task_data

    cols = {k: task.get(k) for k in ("text_col", "label_col", "id_col", "cot_col")}
    return load_task_data(task["source"], **cols)


def check_sizes(task: dict, sizes: list[int], data: TaskData | None = None) -> int:
    """The training-pool size; a user error when a dataset size or the test size does not fit."""
    data = data if data is not None else load_source(task)
    pool = len(data) - task["test_size"]
    if pool < 1:
        raise TaskDistillError(f"task.test_size={task['test_size']} leaves no training examples out of "
                               f"{len(data)}; lower task.test_size")
    if max(sizes) > pool:
        raise TaskDistillError(f"dataset size {max(sizes)} (axes.dataset_sizes / correction.dataset_size) is larger "
                               f"than the training pool ({pool} = {len(data)} examples − {task['test_size']} test); "
                               "lower it or use more data")
    return pool


# -- steps -------------------------------------------------------------------------------------
def data_step(inputs: dict, deps: list[dict], out: Path) -> tuple[Path, dict, list]:
    from taskdistill.data.splits import make_split, nested_subsets

    task, sizes = inputs["task"], inputs["dataset_sizes"]
    data = load_source(task)
    pool_size = check_sizes(task, sizes, data)
    split = make_split(data, task["test_size"], seed=task["split_seed"])
    subsets = nested_subsets(split.train_pool, sizes, seed=task["split_seed"])
    pool = list(split.train_pool.examples)
    calibration = random.Random(task["split_seed"]).sample(pool, min(task["calibration_size"], len(pool)))
    with atomic_dir(out) as tmp:
        save_task(tmp / "test.json", split.test)
        save_task(tmp / "calibration.json", split.train_pool.subset(calibration, name="calibration"))
        for size, subset in subsets.items():
            save_task(tmp / f"train-{size}.json", subset)
    result = {"fingerprint": data.fingerprint(), "name": data.name, "n": len(data), "labels": len(data.labels),
              "pool": pool_size, "test": len(split.test), "test_fingerprint": split.test.fingerprint()}
    return out, result, []


def teacher_step(inputs: dict, deps: list[dict], out: Path) -> tuple[None, dict, list]:
    from transformers import AutoConfig

    from taskdistill.cache import folder_hash
    from taskdistill.models.load import resolve
    from taskdistill.prune.params import count_parameters

    path, kwargs = resolve(inputs["ref"])
    try:
        config = AutoConfig.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise TaskDistillError(f"could not read the config of teacher {inputs['ref']!r}: {exc}") from None
    total, non_embedding = count_parameters(config)  # analytic, from the config
    fingerprint = folder_hash(path) if Path(path).is_dir() else path
    return None, {"ref": inputs["ref"], "path": str(path), "fingerprint": fingerprint, "reference_params": total,
                  "reference_non_embedding": non_embedding, "model_type": config.model_type}, []


def model_path(dep: dict) -> str:
    """Where a model-producing dependency's HF folder is."""
    return dep["result"]["path"] if dep["kind"] == "teacher" else dep["artifact"]


def correct_step(inputs: dict, deps: list[dict], out: Path) -> tuple[Path, dict, list]:
    from taskdistill.distill.config import make_config
    from taskdistill.distill.correct import correct_teacher
    from taskdistill.models.load import load_model, save_model

    teacher, data = deps
    model, tok = load_model(model_path(teacher))
    config = make_config(**inputs["training"])
    train = load_task(Path(data["artifact"]) / f"train-{config.dataset_size}.json")
    corrected, report = correct_teacher(model, tok, train, config.model_copy(update={"dataset_size": None}))
    save_model(corrected, tok, out)
    return out, {"train": _as_dict(report), "reference_params": teacher["result"]["reference_params"],
                 "reference_non_embedding": teacher["result"]["reference_non_embedding"]}, []


def traces_step(inputs: dict, deps: list[dict], out: Path) -> tuple[Path, dict, list]:
    from taskdistill.distill.traces import build_traces
    from taskdistill.models.load import load_model

    root, data = deps
    train = load_task(Path(data["artifact"]) / f"train-{inputs['dataset_size']}.json")
    if all(e.cot for e in train.examples):  # the data brings its own rationales (a cot column): use them
        with atomic_dir(out) as tmp:
            save_task(tmp / "traces.json", train)
        return out, {"traces": len(train), "source": "data"}, []
    model, tok = load_model(model_path(root))
    traced = build_traces(model, tok, train, max_new_tokens=inputs["max_new_tokens"], batch_size=inputs["batch_size"])
    if len(traced) == 0:
        raise TaskDistillError(f"the teacher produced no usable CoT trace for {len(train)} examples; raise "
                               "traces.max_new_tokens or drop the CoT supervision formats")
    with atomic_dir(out) as tmp:
        save_task(tmp / "traces.json", traced)
    return out, {"traces": len(traced), "source": "teacher", "report": _as_dict(traced.meta.get("traces"))}, []


def prune_step(inputs: dict, deps: list[dict], out: Path) -> tuple[Path, dict, list]:
    from taskdistill.models.load import load_model, save_model
    from taskdistill.prune.api import prune

    parent, data = deps
    model, tok = load_model(model_path(parent))
    calib = [e.text for e in load_task(Path(data["artifact"]) / "calibration.json").examples]
    reference = (parent["result"]["reference_params"], parent["result"]["reference_non_embedding"])
    pruned, report = prune(model, tok, inputs["keep_fraction"], calib, axes=inputs["axes"],
                           reference_params=reference)
    save_model(pruned, tok, out)
    return out, {"prune": report.as_dict(), "reference_params": reference[0],
                 "reference_non_embedding": reference[1]}, []


def recover_step(inputs: dict, deps: list[dict], out: Path) -> tuple[Path, dict, list]:
    import torch

    from taskdistill.distill.config import make_config
    from taskdistill.distill.train import distill
    from taskdistill.models.load import load_model, save_model

    pruned, data, root = deps[:3]
    config = make_config(**inputs["training"])
    torch.manual_seed(config.seed)
    student, tok = load_model(pruned["artifact"])
    train = load_task(Path(data["artifact"]) / f"train-{config.dataset_size}.json")
    if config.uses_traces:  # the traced examples of this subset (the trace filter may have dropped some)
        traced = load_task(Path(deps[3]["artifact"]) / "traces.json")
        wanted = {e.id for e in train.examples}
        train = traced.subset([e for e in traced.examples if e.id in wanted])
    teacher = load_model(model_path(root))[0] if config.uses_teacher else None
    # the subset is already the run's dataset_size examples
    student, report = distill(student, tok, train, config.model_copy(update={"dataset_size": None}),
                              teacher=teacher, progress=False)
    save_model(student, tok, out)
    return out, {"train": _as_dict(report), "reference_params": pruned["result"]["reference_params"],
                 "reference_non_embedding": pruned["result"]["reference_non_embedding"]}, []


def evaluate_step(inputs: dict, deps: list[dict], out: Path) -> tuple[Path, dict, list]:
    from taskdistill.evaluate.knowledge import evaluate_knowledge
    from taskdistill.evaluate.task import evaluate_task
    from taskdistill.models.load import load_model
    from taskdistill.models.params import count_parameters

    model_dep, data = deps
    ev, kn = inputs["evaluation"], inputs["knowledge"]
    model, tok = load_model(model_path(model_dep))
    test = load_task(Path(data["artifact"]) / "test.json")
    if ev["test_limit"] and len(test) > ev["test_limit"]:
        test = test.subset(test.examples[: ev["test_limit"]])
    task = evaluate_task(model, tok, test, mode=ev["mode"], batch_size=ev["batch_size"])
    knowledge = evaluate_knowledge(model, tok, kn["benchmarks"], limit=kn["limit"], seed=kn["seed"])
    chance = 1.0 / len(test.labels)  # uniform guessing: accuracy 1/C, and macro-F1 1/C on balanced classes
    rows = [
        {"metric": "task_accuracy", "value": task.accuracy, "correct": task.correct, "n": task.n, "chance": chance},
        {"metric": "task_macro_f1", "value": task.macro_f1, "correct": None, "n": task.n, "chance": chance},
    ]
    rows += knowledge_rows(knowledge)
    result = {"task": task.to_dict(), "knowledge": _as_dict(knowledge), "nll": task.nll, "brier": task.brier,
              "params": count_parameters(model)[0]}
    if ev["cost"]:
        from taskdistill.evaluate.cost import measure_cost

        cost = measure_cost(model, tok, batch_sizes=tuple(ev["cost_batch_sizes"]),
                            repeats=ev["cost_repeats"]).to_dict()
        result.update(cost=cost, latency_ms=cost["latency_ms_batch1"])
    with atomic_dir(out) as tmp:
        atomic_write_text(tmp / "metrics.json", json.dumps({"metrics": rows, "result": result}, default=str))
    return out, json.loads(json.dumps(result, default=str)), rows


def knowledge_rows(report) -> list[dict]:
    """One ``gk_<benchmark>`` row per benchmark and the pooled ``gk_aggregate`` (Σcorrect/Σn, n-weighted chance)."""
    rows = []
    for b in report.results:
        rows.append({"metric": metric_name(b.name), "value": b.acc, "correct": b.correct, "n": b.n,
                     "chance": b.chance})
    n = sum(r["n"] for r in rows)
    correct = sum(r["correct"] for r in rows)
    chance = sum(r["chance"] * r["n"] for r in rows) / n
    rows.append({"metric": "gk_aggregate", "value": correct / n, "correct": correct, "n": n, "chance": chance})
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


def execute(step: dict, deps: list[dict], study_dir: str | Path) -> tuple[str | None, dict, list[dict]]:
    """Run one step (``step``: key, kind, inputs; ``deps``: kind, artifact, result of each input step)."""
    out = artifact_dir(Path(study_dir), step["kind"], step["key"])
    artifact, result, metrics = STEPS[step["kind"]](step["inputs"], deps, out)
    return (str(artifact) if artifact is not None else None), result, metrics
