"""The distillation loop, one for full (``logit``) and ``lora`` students.

AdamW, linear warm-up + cosine decay, gradient accumulation, length-grouped dynamic padding,
optional bf16 autocast, chunked loss on supervised positions only, gradient clipping, a divergence
guard (a non-finite loss, gradient or weight, or a vanished gradient; a run must end on a good step),
per-step JSONL metrics, a rich progress bar, and checkpoints with exact resume (weights, optimizer,
scheduler, RNG; the data order is a pure function of (seed, epoch) and is recomputed).

Loss terms (each a token mean over the micro-batch, logged separately):
``ce_label`` / ``ce_trace`` (CE on label / trace tokens), ``kl_label`` / ``kl_trace`` (τ²-scaled
divergence to the teacher). Each supervision format's record (``supervision.py``) combines them.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from taskdistill.data.schema import TaskData
from taskdistill.distill import checkpoint as ckpt
from taskdistill.distill import losses
from taskdistill.distill.batches import build_sequences, collate, length_grouped_batches
from taskdistill.distill.config import DistillConfig
from taskdistill.distill.supervision import Terms
from taskdistill.distill.heads import split_model, supervised_hidden, vocab_size
from taskdistill.errors import TaskDistillError

TERMS = ("ce_label", "ce_trace", "kl_label", "kl_trace")


@dataclass
class Signals:
    """Teacher signals prepared ahead of training: traced data and / or a top-k logit cache."""

    traces: TaskData | None = None
    logits: object | None = None  # teacher_cache.TeacherLogits


@dataclass
class TrainReport:
    steps: int
    skipped_steps: int
    tokens: int
    seconds: float
    tokens_per_s: float
    final_loss: float | None
    sequences: dict
    resumed_from: int | None = None
    model_dir: str | None = None
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def shared_vocab(student, teacher, tokenizer, teacher_tokenizer=None) -> int | None:
    """Columns of the logits both models share; vocabularies may differ only by padding rows."""
    if teacher_tokenizer is not None and teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise TaskDistillError(
            f"teacher tokenizer {getattr(teacher_tokenizer, 'name_or_path', '?')!r} differs from the student's "
            f"{getattr(tokenizer, 'name_or_path', '?')!r}; logit distillation needs one shared vocabulary"
        )
    vs, vt, n = vocab_size(student), vocab_size(teacher), len(tokenizer)
    if min(vs, vt) < n:
        raise TaskDistillError(
            f"teacher {getattr(teacher.config, '_name_or_path', '') or type(teacher).__name__} has {vt} output rows and "
            f"student {getattr(student.config, '_name_or_path', '') or type(student).__name__} has {vs}, but the "
            f"tokenizer has {n} tokens; they must share one vocabulary (padding rows beyond it are allowed)"
        )
    return None if vs == vt else min(vs, vt)


def use_bf16(setting, device: torch.device) -> bool:
    """Whether a run on ``device`` with ``DistillConfig.bf16 = setting`` trains under bf16 autocast (the
    runtime's policy, models/runtime.py: on a CUDA GPU with bf16, or a CPU with native bf16 dot products)."""
    from taskdistill.models.runtime import Runtime

    return Runtime(device, torch.float32).training_precision(setting) == "bf16"


def micro_sums(student, batch, config: DistillConfig, teacher_rows, vocab) -> torch.Tensor:
    """Summed ``TERMS`` (4,) of one micro-batch, lm_head applied chunk by chunk."""
    hidden = supervised_hidden(student, batch)
    _, head = split_model(student)
    t_idx, t_logp = teacher_rows if teacher_rows is not None else (None, None)
    is_label = batch.is_label.to(hidden.device)
    sums = torch.zeros(4, device=hidden.device)

    def chunk_sums(h, targets, lab, idx, logp):
        logits = head(h)
        logits = logits if vocab is None else logits[:, :vocab]
        ce = losses.cross_entropy(logits, targets)
        out = [(ce * lab).sum(), (ce * ~lab).sum()]
        if idx is not None:
            kd = losses.kd_loss(logits, idx, logp, config.kl, config.temperature, config.jsd_beta)
            out += [(kd * lab).sum(), (kd * ~lab).sum()]
        else:
            out += [torch.zeros((), device=h.device)] * 2
        return torch.stack(out)

    step = config.logit_chunk
    for start in range(0, hidden.shape[0], step):
        sl = slice(start, start + step)
        args = (hidden[sl], batch.targets[sl].to(hidden.device), is_label[sl])
        args += (t_idx[sl].to(hidden.device), t_logp[sl].to(hidden.device)) if t_idx is not None else (None, None)
        # Recomputed in backward: only one chunk's logits are ever alive.
        sums = sums + (grad_checkpoint(chunk_sums, *args, use_reentrant=False) if torch.is_grad_enabled() else chunk_sums(*args))
    return sums


def micro_terms(student, batch, config: DistillConfig, teacher_rows, vocab) -> dict[str, torch.Tensor]:
    """Token means of every loss term for one micro-batch and its loss."""
    sums = micro_sums(student, batch, config, teacher_rows, vocab)
    n_label = int(batch.is_label.sum())
    return combine(sums, n_label, int(batch.is_label.numel() - n_label), config)


class Objective(torch.nn.Module):
    """The student and the loss sums of one micro-batch as one module, so DDP / FSDP2 can wrap the forward."""

    def __init__(self, model, config: DistillConfig, vocab):
        super().__init__()
        self.model, self.config, self.vocab = model, config, vocab

    def forward(self, batch, teacher_rows):
        return micro_sums(self.model, batch, self.config, teacher_rows, self.vocab)


def combine(sums: torch.Tensor, n_label: int, n_trace: int, config: DistillConfig) -> dict[str, torch.Tensor]:
    """Token means of each term and the supervision format's loss (its record combines them)."""
    terms = Terms(dict(zip(TERMS, sums, strict=True)), n_label, n_trace)
    out = {name: terms.mean(name) for name in TERMS}
    out["loss"] = config.format.loss(terms, config)
    return out


def _optimizer(model, config: DistillConfig):
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def total_steps(config: DistillConfig, n_batches: int) -> int:
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil(config.epochs * n_batches / config.grad_accum))


def training_sequences(tokenizer, train: TaskData, config: DistillConfig, signals: Signals | None = None, fmt=None):
    """``(data, sequences, counts)``: the examples a run trains on (traced data for CoT formats, the first
    ``dataset_size``) and their token sequences — what ``distill`` trains on and its teacher cache is keyed by."""
    signals = signals or Signals()
    data = signals.traces if (config.uses_traces and signals.traces is not None) else train
    if config.dataset_size is not None:
        if config.dataset_size > len(data):
            raise TaskDistillError(
                f"dataset_size={config.dataset_size} exceeds the {len(data)} training examples available; lower it"
            )
        data = data.subset(data.examples[: config.dataset_size])
    sequences, counts = build_sequences(tokenizer, data, cot=config.uses_traces, max_length=config.max_length, fmt=fmt,
                                       answer_too=config.format.answer_too)
    return data, sequences, counts


def training_dtype(config: DistillConfig, runtime=None):
    """The dtype to load a student in for training: float32 master weights (``logit``), or the runtime's dtype
    for a LoRA student's frozen base (its adapters are float32); None (float32) without a runtime."""
    if runtime is None:
        return None
    return torch.float32 if config.method == "logit" else runtime.dtype


def pad_token(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def planned_steps(config: DistillConfig, sequences) -> int:
    """Optimizer steps of a run over ``sequences`` (the same for any number of processes)."""
    lengths = [len(s.input_ids) for s in sequences]
    return total_steps(config, len(length_grouped_batches(lengths, config.batch_size, config.seed, 0)))


def distill(
    student,
    tokenizer,
    train: TaskData,
    config: DistillConfig,
    teacher=None,
    signals: Signals | None = None,
    out_dir: str | Path | None = None,
    *,
    teacher_tokenizer=None,
    fmt=None,
    progress: bool | None = None,
    on_step=None,
    runtime=None,
    checkpoints: int | None = None,
    parallel: str = "auto",
    student_fingerprint: str | None = None,
):
    """Train ``student`` on ``train`` under ``config``; return (student, TrainReport).

    ``teacher`` gives KL targets (cached top-k unless ``config.online_teacher``); ``signals`` may carry
    traced data and a prepared logit cache. With ``out_dir``: metrics.jsonl, checkpoints (resumed
    automatically when present), report.json and the final plain HF model in ``out_dir/model``
    (LoRA merged). ``on_step(step, record)`` is called after every optimizer step.

    ``runtime`` (models/runtime.py): the student trains on its device, with float32 master weights
    (LoRA: frozen base weights in the runtime's dtype) under its mixed precision, the decoder
    checkpointed when it says so; without one the student trains where it is. Under a launcher
    (distill/launch.py) every process runs this function: ``parallel`` picks DDP or FSDP2
    (distill/parallel.py). ``checkpoints``: with ``out_dir`` and no ``config.checkpoint_every``, write
    this many evenly spaced checkpoints. ``student_fingerprint``: the initial student's content fingerprint
    (default: hashed from its weights), which keys its checkpoints — given by ranks that start on empty
    weights (FSDP2 ranks other than the first receive theirs from it).
    """
    from transformers import get_cosine_schedule_with_warmup

    from taskdistill.distill import parallel as par_mod
    from taskdistill.distill.lora import apply_lora, merge
    from taskdistill.models.load import forget_fingerprint, model_fingerprint, save_model
    from taskdistill.models.runtime import Runtime, as_runtime

    signals = signals or Signals()
    data, sequences, counts = training_sequences(tokenizer, train, config, signals, fmt)
    pad_id = pad_token(tokenizer)
    placed = runtime is not None
    first = next(student.parameters())
    rt = as_runtime(runtime) if placed else Runtime(first.device, first.dtype)
    precision = rt.training_precision(config.bf16)

    vocab, source = None, None
    if config.uses_teacher:
        if teacher is None and signals.logits is None:
            raise TaskDistillError(f"supervision {config.supervision!r} needs a teacher (--teacher) for its KL targets")
        if teacher is not None:
            vocab = shared_vocab(student, teacher, tokenizer, teacher_tokenizer)
        if signals.logits is not None:
            source = signals.logits
            if teacher is None:
                vocab = signals.logits.meta.get("vocab")
        elif config.online_teacher:
            from taskdistill.distill.teacher_cache import OnlineTeacher

            source = OnlineTeacher(teacher, config.top_k, config.temperature, vocab, config.logit_chunk)
        else:
            from taskdistill.distill.teacher_cache import build_cache

            source = build_cache(
                teacher, sequences, k=config.top_k, temperature=config.temperature, vocab=vocab, pad_id=pad_id,
                batch_size=config.batch_size,
            )

    torch.manual_seed(config.seed)
    config_hash = f"{config.training_hash()}-{data.fingerprint()}-{(student_fingerprint or model_fingerprint(student))[:16]}"
    forget_fingerprint(student)  # trained in place from here on
    n_params = sum(p.numel() for p in student.parameters())
    n_trainable = n_params if config.method == "logit" else 0  # LoRA adapters: small next to the frozen base
    if config.method == "lora" and parallel == "auto":
        parallel = "ddp"  # a LoRA student's frozen base is replicated; only its adapters train
    par = par_mod.setup(rt, student, precision, parallel, par_mod.training_state_bytes(n_params, n_trainable))
    if (placed or par.size > 1) and par.strategy != "fsdp2":  # (FSDP2 places its shards itself)
        # fp32 masters; a LoRA student's frozen base keeps the runtime's dtype
        student.to(device=par.device, dtype=torch.float32 if config.method == "logit" else rt.dtype)
    if rt.gradient_checkpointing:
        student.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = apply_lora(student, config) if config.method == "lora" else student
    if par.size > 1 and config.batch_size < par.size:
        raise TaskDistillError(f"batch_size={config.batch_size} is smaller than the {par.size} training processes; "
                               f"raise training.batch_size to at least {par.size} or use fewer GPUs")
    if par.strategy == "fsdp2" and config.method == "lora":
        raise TaskDistillError("LoRA students train in one process or under DDP (their frozen weights stay in the "
                               "runtime's dtype); set parallel: ddp")
    device = par.device
    optimizer = _optimizer(model, config)
    lengths = [len(s.input_ids) for s in sequences]
    n_batches = len(length_grouped_batches(lengths, config.batch_size, config.seed, 0))
    steps = planned_steps(config, sequences)
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(config.warmup_ratio * steps), steps)
    every = config.checkpoint_every or (max(1, steps // checkpoints) if checkpoints else None)

    objective = Objective(model, config, vocab)
    if par.strategy == "ddp":
        objective = par.accelerator.prepare(objective)
    elif par.strategy == "fsdp2":
        objective, optimizer = par.accelerator.prepare(objective, optimizer)
    out = Path(out_dir) if out_dir is not None else None
    created = out is not None and not out.exists()  # a run that diverges leaves no folder it made
    start_step, resumed_from, skipped, tokens, history = 0, None, 0, 0, []
    if out is not None and ckpt.read_state(out / "checkpoint") is not None:
        state = _load_checkpoint(out / "checkpoint", par, objective, model, optimizer, scheduler, config_hash)
        start_step = resumed_from = state["step"]
        skipped, tokens = state["skipped"], state["tokens"]
        history = _read_metrics(out / "metrics.jsonl", start_step)
    metrics_fh = _open_metrics(out, history) if par.is_main else None
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    objective.train()
    order_cache: dict[int, list[list[int]]] = {}

    def micro_rows(m: int) -> list[int]:
        epoch, within = divmod(m, n_batches)
        if epoch not in order_cache:
            order_cache.clear()
            order_cache[epoch] = length_grouped_batches(lengths, config.batch_size, config.seed, epoch)
        return order_cache[epoch][within]

    params = [p for p in objective.parameters() if p.requires_grad]
    t0, run_tokens = time.perf_counter(), 0
    bar = _progress(progress, steps, start_step) if par.is_main else None
    bad_streak = 0  # bad steps since the last good one: a run must end on a good step
    try:
        for step in range(start_step, steps):
            agg = {k: 0.0 for k in (*TERMS, "loss")}
            step_tokens = step_positions = 0
            micro = range(step * config.grad_accum, (step + 1) * config.grad_accum)
            for m in micro:
                rows = micro_rows(m)
                whole = [sequences[i] for i in rows]
                n_pos = sum(len(s.target_pos) for s in whole)
                n_label = sum(sum(s.is_label) for s in whole)  # counts of the whole micro-batch, on every rank
                mine, weight = par.shard(rows)
                batch = collate([sequences[i] for i in mine], pad_id).to(device)
                t_rows = source.topk(batch) if source is not None else None
                with par.no_sync(objective, last=m == micro[-1]):
                    with rt.autocast(precision):
                        sums = objective(batch, t_rows) * weight
                    loss = combine(sums, n_label, n_pos - n_label, config)["loss"] * par.size / config.grad_accum
                    (scaler.scale(loss) if scaler is not None else loss).backward()
                terms = combine(par.sum(sums.detach()), n_label, n_pos - n_label, config)
                for k in agg:
                    agg[k] += float(terms[k]) / config.grad_accum
                step_tokens += sum(len(s.input_ids) for s in whole)
                step_positions += n_pos
            if scaler is not None:
                scaler.unscale_(optimizer)
            clip = par.accelerator.clip_grad_norm_ if par.strategy == "fsdp2" else torch.nn.utils.clip_grad_norm_
            grad_norm = float(clip(params, config.max_grad_norm))
            lr = scheduler.get_last_lr()[0]
            # under fp16 an overflowing gradient is the loss scaler's business (it skips the step and backs off)
            ok = healthy_step(agg["loss"], grad_norm) or (
                scaler is not None and math.isfinite(agg["loss"]) and not math.isfinite(grad_norm))
            if ok:
                if scaler is not None:
                    scaler.step(optimizer)
                else:
                    optimizer.step()
                bad_streak = 0
                if not weights_finite(params):
                    raise diverged(step, "the update made weights non-finite (inf/NaN)", agg["loss"], grad_norm, lr)
            else:
                skipped += 1
                bad_streak += 1
                if skipped >= config.max_bad_steps:
                    raise diverged(step, f"{skipped} steps had a non-finite loss or gradient, or no gradient at all "
                                   "(overflowed activations)", agg["loss"], grad_norm, lr)
            if scaler is not None:
                scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            tokens += step_tokens
            run_tokens += step_tokens
            elapsed = time.perf_counter() - t0
            record = {"step": step + 1, **{k: round(v, 6) for k, v in agg.items()}, "lr": lr,
                      "grad_norm": grad_norm, "skipped": not ok, "tokens": tokens, "positions": step_positions,
                      "tokens_per_s": round(run_tokens / max(elapsed, 1e-9), 1)}
            history.append(record)
            if metrics_fh is not None:
                metrics_fh.write(json.dumps(record) + "\n")
                metrics_fh.flush()
            _advance(bar, record, config)
            if on_step is not None:
                on_step(step + 1, record)
            if out is not None and ok and every and (step + 1) % every == 0 and step + 1 < steps:  # never after a bad step
                _save_checkpoint(out / "checkpoint", par, model, optimizer, scheduler,
                                 {"step": step + 1, "skipped": skipped, "tokens": tokens, "config_hash": config_hash})
        if bad_streak:  # the run ends without having recovered: what it would save is the diverged model
            first = history[-bad_streak]
            raise diverged(steps - bad_streak, f"from there to the last step ({steps}) every step had a non-finite "
                           "loss or gradient, or no gradient at all (overflowed activations)",
                           first["loss"], first["grad_norm"], first["lr"])
    except TaskDistillError:
        if metrics_fh is not None:
            metrics_fh.close()
        if par.is_main:
            discard_run(out, created)
        raise
    finally:
        if metrics_fh is not None:
            metrics_fh.close()
        if bar is not None:
            bar[0].stop()

    objective.eval()
    if rt.gradient_checkpointing:
        student.gradient_checkpointing_disable()
    student = _full_model(par, objective, model) if par.strategy == "fsdp2" else model
    if student is not None:
        student.eval()
        student = merge(student) if config.method == "lora" else student
    seconds = time.perf_counter() - t0
    report = TrainReport(
        steps=steps, skipped_steps=skipped, tokens=tokens, seconds=round(seconds, 3),
        tokens_per_s=round(run_tokens / max(seconds, 1e-9), 1),
        final_loss=history[-1]["loss"] if history else None, sequences=counts, resumed_from=resumed_from,
        history=history,
    )
    if out is not None and par.is_main:
        from taskdistill.cache import atomic_write_json

        report.model_dir = str(save_model(student, tokenizer, out / "model"))
        atomic_write_json(out / "report.json", {**report.to_dict(), "config": config.model_dump(),
                                                "processes": par.size, "strategy": par.strategy,
                                                "precision": precision})
        import shutil

        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    par.barrier()
    return student, report


def _save_checkpoint(path: Path, par, model, optimizer, scheduler, state: dict) -> None:
    """One checkpoint for every strategy: the main process writes it (DDP ranks hold equal copies); under FSDP2
    accelerate writes each rank's shards (torch.distributed.checkpoint) beside our state.json."""
    if par.strategy == "fsdp2":
        par.accelerator.save_state(str(path.with_name(path.name + ".sharded")))
        if par.is_main:
            ckpt.save_state_only(path, scheduler, state)
    elif par.is_main:
        ckpt.save(path, model, optimizer, scheduler, state)
    par.barrier()


def _load_checkpoint(path: Path, par, objective, model, optimizer, scheduler, config_hash: str) -> dict:
    if par.strategy == "fsdp2":
        state = ckpt.load_state_only(path, scheduler, config_hash)
        par.accelerator.load_state(str(path.with_name(path.name + ".sharded")))
        return state
    return ckpt.load(path, model, optimizer, scheduler, config_hash)


def _full_model(par, objective, model):
    """The trained student gathered from its FSDP2 shards, on the main process (None elsewhere)."""
    from taskdistill.models.runtime import empty_model

    full = par.accelerator.get_state_dict(objective)  # gathered on the main process
    if not par.is_main:
        return None
    state = {k.removeprefix("model."): v for k, v in full.items()}
    rebuilt = empty_model(model.config, torch.float32)
    rebuilt.load_state_dict(state, strict=False, assign=True)
    rebuilt.tie_weights()
    rebuilt.generation_config = model.generation_config
    return rebuilt


def healthy_step(loss: float, grad_norm: float) -> bool:
    """A step may update the weights: finite loss and gradient, and some gradient while the loss is
    positive. An exactly zero gradient under a positive loss means the activations overflowed (after a
    huge update a norm layer's mean square is inf, its output 0, every logit equal), not a minimum."""
    return math.isfinite(loss) and math.isfinite(grad_norm) and not (grad_norm == 0.0 and loss > 0.0)


def weights_finite(params) -> bool:
    return bool(torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()) if params else True


def diverged(step: int, what: str, loss: float, grad_norm: float, lr: float) -> TaskDistillError:
    return TaskDistillError(
        f"training diverged at step {step + 1} (loss {loss:.4g}, gradient norm {grad_norm:.3g}, lr {lr:.3g}): "
        f"{what}; no model was saved. Lower --lr or check the data and the student's weights"
    )


def discard_run(out: Path | None, created: bool) -> None:
    """After a failed run: remove the output folder it created, else its checkpoint (a resume of the
    same config would only repeat the failure; another config cannot resume it)."""
    import shutil

    if out is None:
        return
    shutil.rmtree(out if created else out / "checkpoint", ignore_errors=True)


def _read_metrics(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["step"] <= upto]


def _open_metrics(out: Path | None, history: list[dict]):
    """Metrics file holding exactly the steps before the (re)start, opened for appending."""
    if out is None:
        return None
    from taskdistill.cache import atomic_write_text

    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    return open(out / "metrics.jsonl", "a")


def _progress(enabled: bool | None, steps: int, done: int):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("distill"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[terms]}"), TextColumn("{task.fields[tps]} tok/s"), TimeRemainingColumn(),
        transient=False,
    )
    task = bar.add_task("distill", total=steps, completed=done, terms="", tps="-")
    bar.start()
    return bar, task


def _advance(bar, record: dict, config: DistillConfig) -> None:
    if bar is None:
        return
    terms = " ".join(f"{k}={record[k]:.3f}" for k in ("loss", *config.format.shown))
    bar[0].update(bar[1], advance=1, terms=terms, tps=f"{record['tokens_per_s']:.0f}")
