"""One function per step kind; each calls the stage APIs and writes its artifact atomically.

``execute(step, deps, study_dir)`` is what the executors call (in process or on a Ray worker): ``deps``
maps each role the step names (``parent``, ``data``, …) to that step's kind, artifact and result; it
returns ``(artifact path or None, result dict, metric rows)``. Every step is a pure function of its
inputs and its dependencies' artifacts (seeds are set inside), so a step redone after a crash produces
the same artifact and the same metrics.

Models read by several consecutive steps (prune → evaluate → recover → evaluate) are kept in a small
in-process cache, so each is loaded from disk once; a step that trains takes its model out of the cache.
Every step runs on ``Context.runtime`` (models/runtime.py), resolved in the process that runs it.

A recovery trains in ``STUDY_DIR/work/recover/<key>`` with evenly spaced checkpoints, so a kill (or a
lost Ray worker) resumes it mid-training; it builds its teacher's top-k cache first (the teacher is not
held while the student trains, and not loaded at all when the cache exists) and, given N GPUs, trains
in N processes (distill/launch.py).
"""

from __future__ import annotations

import copy
import json
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from taskdistill.cache import atomic_dir, atomic_write_text
from taskdistill.data.schema import Example, TaskData
from taskdistill.errors import TaskDistillError
from taskdistill.models.runtime import Runtime

MODEL_CACHE_SIZE = 2  # on the CPU; a GPU runtime keeps only the latest model (device memory binds there)
RECOVERY_CHECKPOINTS = 10  # a checkpoint every tenth of a recovery's steps (unless training.checkpoint_every)
_MODELS: OrderedDict[tuple, tuple] = OrderedDict()


@dataclass
class Context:
    """Where a step runs: the study folder, its key, the resolved runtime and the spec's runtime block."""

    study_dir: Path
    key: str
    runtime: Runtime
    request: dict = field(default_factory=dict)

    def training_processes(self) -> int:
        """Processes a training step runs: one per GPU this process sees (Ray shows a task only its own GPUs;
        capped by runtime.gpus when declared), one on the CPU."""
        gpus = self.runtime.visible_gpus()
        if self.request.get("gpus"):
            gpus = min(gpus, self.request["gpus"])
        return max(1, gpus)


def artifact_dir(study_dir: Path, kind: str, key: str) -> Path:
    return Path(study_dir) / "artifacts" / kind / key


def work_dir(study_dir: Path, kind: str, key: str) -> Path:
    """A step's scratch folder that survives a kill: a recovery's checkpoint (removed when its training ends),
    metrics.jsonl and report.json (kept)."""
    return Path(study_dir) / "work" / kind / key


def _cache_key(path, runtime: Runtime, dtype=None) -> tuple:
    return str(Path(path).resolve()), str(runtime.device), str(dtype or runtime.dtype)


def model_for(path: str | Path, ctx: Context, *, trainable: bool = False, dtype=None):
    """``(model, tokenizer)`` of a model folder on the step's runtime, from the in-process cache when it is there.

    ``trainable=True`` hands the model over: it leaves the cache (training changes weights in place), so no
    copy is made. ``dtype`` overrides the runtime's (float32 master weights for training)."""
    from taskdistill.models.load import load_model

    key = _cache_key(path, ctx.runtime, dtype)
    if key in _MODELS:
        model, tok = _MODELS.pop(key) if trainable else _MODELS[key]
        if not trainable:
            _MODELS.move_to_end(key)
        return model, tok
    if ctx.runtime.is_gpu:
        release_models()
    model, tok = load_model(str(path), runtime=ctx.runtime, dtype=dtype)
    if not trainable:
        _remember(key, model, tok, ctx.runtime)
    return model, tok


def release_models() -> None:
    """Forget every cached model (and give its device memory back)."""
    _MODELS.clear()
    import gc

    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _remember(key: tuple, model, tok, runtime: Runtime) -> None:
    _MODELS[key] = (model, tok)
    _MODELS.move_to_end(key)
    while len(_MODELS) > (1 if runtime.is_gpu else MODEL_CACHE_SIZE):
        _MODELS.popitem(last=False)


def remember_model(path: str | Path, model, tok, ctx: Context) -> None:
    """Keep a model just saved to ``path`` for the next steps that read it, as they would load it (the
    runtime's dtype on its device)."""
    if not getattr(model, "hf_device_map", None):  # one spread over devices by accelerate stays where it is
        model.to(device=ctx.runtime.device, dtype=ctx.runtime.dtype)
    _remember(_cache_key(path, ctx.runtime), model, tok, ctx.runtime)


def save_and_remember(model, tok, out: Path, ctx: Context) -> None:
    from taskdistill.models.load import save_model

    save_model(model, tok, out)
    remember_model(out, model, tok, ctx)


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
def data_step(inputs: dict, deps: dict, out: Path, ctx: Context) -> tuple[Path, dict, list]:
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


def teacher_step(inputs: dict, deps: dict, out: Path, ctx: Context) -> tuple[None, dict, list]:
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


def traces_step(inputs: dict, deps: dict, out: Path, ctx: Context) -> tuple[Path, dict, list]:
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
    model, tok = model_for(model_path(deps["writer"]), ctx)
    traced = build_traces(model, tok, train, explain_gold=inputs["explain_gold"],
                          max_new_tokens=inputs["max_new_tokens"], batch_size=inputs["batch_size"],
                          fmt=PromptFormat(**inputs["prompt"]))
    with atomic_dir(out) as tmp:
        traced.save(tmp / "traces.json")
    return out, {"traces": len(traced), "source": "teacher", "report": _as_dict(traced.meta.get("traces"))}, []


def correct_step(inputs: dict, deps: dict, out: Path, ctx: Context) -> tuple[Path, dict, list]:
    from taskdistill.distill.config import make_config
    from taskdistill.distill.correct import correct_teacher
    from taskdistill.distill.train import training_dtype
    from taskdistill.models.prompts import PromptFormat

    config = make_config(**inputs["training"])
    model, tok = model_for(model_path(deps["teacher"]), ctx, trainable=True, dtype=training_dtype(config, ctx.runtime))
    train = _subset(deps["data"], f"train-{config.dataset_size}")
    if "rationales" in deps:  # the rationalised examples also train the CoT format
        traced = {e.id: e.cot for e in TaskData.load(Path(deps["rationales"]["artifact"]) / "traces.json").examples}
        train = train.subset([Example(e.text, e.label, e.id, cot=traced.get(e.id)) for e in train.examples])
    corrected, report = correct_teacher(model, tok, train, config.model_copy(update={"dataset_size": None}),
                                        fmt=PromptFormat(**inputs["prompt"]), runtime=ctx.runtime)
    save_and_remember(corrected, tok, out, ctx)
    return out, {"train": _as_dict(report)}, []


def prune_step(inputs: dict, deps: dict, out: Path, ctx: Context) -> tuple[Path, dict, list]:
    from taskdistill.prune.api import prune

    model, tok = model_for(model_path(deps["parent"]), ctx)
    calib = [e.text for e in _subset(deps["data"], "calibration").examples]
    teacher = deps["reference"]["result"]
    reference = (teacher["reference_params"], teacher["reference_non_embedding"])
    pruned, report = prune(model, tok, inputs["keep_fraction"], calib, axes=inputs["axes"],
                           reference_params=reference)
    if pruned is model:  # nothing to remove: a copy, so the parent in the cache stays the parent
        pruned = copy.deepcopy(model)
    save_and_remember(pruned, tok, out, ctx)
    return out, {"prune": report.as_dict()}, []


def recover_step(inputs: dict, deps: dict, out: Path, ctx: Context) -> tuple[Path, dict, list]:
    import torch

    from taskdistill.distill.config import make_config
    from taskdistill.models.prompts import PromptFormat

    config = make_config(**inputs["training"])
    torch.manual_seed(config.seed)
    train = _subset(deps["data"], f"train-{config.dataset_size}")
    if config.uses_traces:  # the traced examples of this subset (the trace filter may have dropped some)
        traced = TaskData.load(Path(deps["traces"]["artifact"]) / "traces.json")
        wanted = {e.id for e in train.examples}
        train = traced.subset([e for e in traced.examples if e.id in wanted])
    config = config.model_copy(update={"dataset_size": None})  # the subset is already the run's examples
    fmt = PromptFormat(**inputs["prompt"])
    work = work_dir(ctx.study_dir, "recover", ctx.key)
    student = None
    if not ((work / "report.json").is_file() and ((work / "model").is_dir() or out.is_dir())):
        # (else it finished training before a kill that came before the step was recorded)
        (work / "report.json").unlink(missing_ok=True)
        student, tok = _train_recovery(deps, train, config, fmt, work, ctx)
    report = json.loads((work / "report.json").read_text())
    if (work / "model").is_dir():
        _adopt(work / "model", out)
    if student is not None:
        remember_model(out, student, tok, ctx)
    if not out.is_dir():
        raise RuntimeError(f"recovery {ctx.key} finished but its model is neither in {work} nor in {out}")
    train_report = {k: v for k, v in report.items() if k not in ("config", "model_dir")} | {"model_dir": str(out)}
    return out, {"train": train_report, "effective_dataset_size": report["sequences"]["used"]}, []


def _train_recovery(deps: dict, train: TaskData, config, fmt, work: Path, ctx: Context):
    """Distill the pruned student into ``work`` (resuming its checkpoint), in one process or one per GPU;
    returns ``(student, tokenizer)`` when it trained here, ``(None, None)`` after several processes."""
    from taskdistill.distill.train import Signals, distill, training_dtype

    pruned = deps["pruned"]["artifact"]
    logits = None
    if config.uses_teacher and not config.online_teacher:
        logits = teacher_logits(deps["kl_teacher"], pruned, train, config, fmt, ctx)
    processes = ctx.training_processes()
    if processes > 1:
        from taskdistill.distill.launch import launch

        train.save(work / "train.json")
        launch(_recover_rank, (pruned, str(work), config.model_dump(mode="json"), fmt.model_dump(mode="json"),
                               str(logits.path) if logits is not None else None, ctx.runtime.request(),
                               ctx.request.get("parallel", "auto")), processes=processes, cpu=not ctx.runtime.is_gpu)
        return None, None
    student, tok = model_for(pruned, ctx, trainable=True, dtype=training_dtype(config, ctx.runtime))
    online = config.uses_teacher and config.online_teacher
    teacher = model_for(model_path(deps["kl_teacher"]), ctx)[0] if online else None
    from taskdistill.models.load import reference_fingerprint

    student, _ = distill(student, tok, train, config, teacher=teacher, signals=Signals(logits=logits), out_dir=work,
                         fmt=fmt, progress=False, runtime=ctx.runtime, checkpoints=RECOVERY_CHECKPOINTS,
                         parallel=ctx.request.get("parallel", "auto"), student_fingerprint=reference_fingerprint(pruned))
    return student, tok


def _recover_rank(pruned: str, work: str, config: dict, fmt: dict, logits: str | None, request: dict,
                  parallel: str) -> None:
    """One rank of a recovery trained in several processes (started by distill/launch.py): under DDP each rank
    loads the student straight onto its GPU; under FSDP2 only the first rank reads it (on the host) and the
    others start on empty weights."""
    from transformers import AutoConfig

    from taskdistill.distill import parallel as par
    from taskdistill.distill.config import DistillConfig
    from taskdistill.distill.teacher_cache import TeacherLogits
    from taskdistill.distill.train import Signals, distill, training_dtype
    from taskdistill.models.load import load_model, reference_fingerprint
    from taskdistill.models.prompts import PromptFormat
    from taskdistill.models.runtime import empty_model, resolve_runtime
    from taskdistill.prune.params import count_parameters

    rank, size, local = par.world()
    if _has_cuda():  # every rank its own GPU
        request = dict(request, device=f"cuda:{local}")
    runtime = resolve_runtime(**request)
    cfg = DistillConfig(**config)
    dtype = training_dtype(cfg, runtime)
    strategy = "ddp" if cfg.method == "lora" and parallel == "auto" else parallel
    if runtime.is_gpu:
        import torch

        params = count_parameters(AutoConfig.from_pretrained(pruned))[0]
        strategy = par.choose_strategy(strategy, par.training_state_bytes(params, params if cfg.method == "logit"
                                                                          else 0),
                                       torch.cuda.get_device_properties(local).total_memory, size)
    if strategy == "fsdp2" and rank:
        student, tok = empty_model(AutoConfig.from_pretrained(pruned), dtype), _tokenizer(pruned)
    else:
        student, tok = load_model(pruned, dtype=dtype, runtime=runtime if strategy != "fsdp2" else None)
    train = TaskData.load(Path(work) / "train.json")
    signals = Signals(logits=TeacherLogits(logits) if logits else None)
    distill(student, tok, train, cfg, signals=signals, out_dir=work, fmt=PromptFormat(**fmt), progress=False,
            runtime=runtime, checkpoints=RECOVERY_CHECKPOINTS, parallel=strategy,
            student_fingerprint=reference_fingerprint(pruned))


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    from taskdistill.models.hf import prepare_tokenizer

    tok = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tok)
    return tok


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def teacher_logits(dep: dict, student_path: str, train: TaskData, config, fmt, ctx: Context):
    """The KL teacher's top-k cache for this recovery's sequences; the teacher is loaded only to build it.

    Keyed by the teacher step's key (a content hash of everything that made that model) and the runtime's
    dtype, so an existing cache is found without loading the teacher."""
    from transformers import AutoConfig

    from taskdistill import settings
    from taskdistill.distill.teacher_cache import TeacherLogits, build_cache, cache_key
    from taskdistill.distill.train import pad_token, training_sequences

    tok = _tokenizer(student_path)
    _, sequences, _ = training_sequences(tok, train, config, None, fmt)
    path = model_path(dep)
    rows = {AutoConfig.from_pretrained(p).vocab_size for p in (path, student_path)}
    vocab = None if len(rows) == 1 else min(rows)  # output rows beyond the shared ones are padding
    fingerprint = f"study-step:{dep['key']}:{str(ctx.runtime.dtype).removeprefix('torch.')}"
    final = settings.cache_dir("logits") / cache_key(fingerprint, sequences, config.top_k, config.temperature, vocab)
    if (final / "meta.json").is_file():
        return TeacherLogits(final)
    key = _cache_key(path, ctx.runtime)
    teacher = _MODELS[key][0] if key in _MODELS else model_for(path, ctx)[0]
    logits = build_cache(teacher, sequences, k=config.top_k, temperature=config.temperature, vocab=vocab,
                         pad_id=pad_token(tok), batch_size=config.batch_size, teacher_fp=fingerprint)
    del teacher
    _MODELS.pop(key, None)  # not held while the student trains
    if ctx.runtime.is_gpu:
        release_models()
    return logits


def _adopt(folder: Path, final: Path) -> None:
    """Move a finished folder to ``final`` (same filesystem: a rename), replacing an older copy."""
    import os
    import shutil

    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(folder, final)


def evaluate_step(inputs: dict, deps: dict, out: Path, ctx: Context) -> tuple[Path, dict, list]:
    """In-domain metrics in one view, general knowledge, and (for trained views) cost on the task's prompts."""
    from taskdistill.evaluate.knowledge import evaluate_knowledge
    from taskdistill.evaluate.task import evaluate_task
    from taskdistill.models.params import count_parameters
    from taskdistill.models.prompts import PromptFormat

    ev, kn, view = inputs["evaluation"], inputs["knowledge"], inputs["view"]
    fmt = PromptFormat(**inputs["prompt"])
    model, tok = model_for(model_path(deps["model"]), ctx)
    model = inference_model(model, ev.get("precision", "float32"))
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
              "brier": task.brier, "params": count_parameters(model)[0],
              "precision": str(next(model.parameters()).dtype).removeprefix("torch.")}
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


def inference_model(model, precision: str):
    """The model in the precision evaluations run in (``auto``: bf16 where computed natively)."""
    import torch

    from taskdistill.models.runtime import cpu_has_bf16
    from taskdistill.models.load import cast_copy

    device = next(model.parameters()).device
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else device.type == "cpu" and cpu_has_bf16()
    if precision == "bfloat16" or (precision == "auto" and native):
        return cast_copy(model, torch.bfloat16) if next(model.parameters()).dtype != torch.bfloat16 else model
    return model


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


def execute(step: dict, deps: dict[str, dict], study_dir: str | Path, runtime: dict | None = None,
            ) -> tuple[str | None, dict, list[dict]]:
    """Run one step (``step``: key, kind, inputs; ``deps``: role → kind, artifact, result of that step) on
    ``runtime`` (the spec's runtime block as a dict; resolved here, in the process that runs the step)."""
    from taskdistill.models.runtime import resolve_runtime

    request = dict(runtime or {})
    resolved = resolve_runtime(**{k: request[k] for k in ("device", "dtype", "gradient_checkpointing") if k in request})
    ctx = Context(Path(study_dir), step["key"], resolved, request)
    out = artifact_dir(Path(study_dir), step["kind"], step["key"])
    artifact, result, metrics = STEPS[step["kind"]](step["inputs"], deps, out, ctx)
    return (str(artifact) if artifact is not None else None), result, metrics
