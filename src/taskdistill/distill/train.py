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


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(setting, device: torch.device) -> bool:
    """``auto``: bf16 autocast on a CUDA device with bf16, or on a CPU with native bf16 dot products.

    Measured on this project's 2-core AMD EPYC (AVX512-BF16): our KD step ran 1.68x faster under CPU
    bf16 autocast than in fp32 (benchmarks/RESULTS.md); CPUs without native bf16 emulate it, so stay fp32.
    """
    if setting == "auto":
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return device.type == "cpu" and cpu_has_bf16()
    return bool(setting)


def micro_terms(student, batch, config: DistillConfig, teacher_rows, vocab) -> dict[str, torch.Tensor]:
    """Sums and counts of every loss term for one micro-batch, lm_head applied chunk by chunk."""
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
    n_label = int(is_label.sum())
    n_trace = int(is_label.numel() - n_label)
    return combine(sums, n_label, n_trace, config)


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
):
    """Train ``student`` on ``train`` under ``config``; return (student, TrainReport).

    ``teacher`` gives KL targets (cached top-k unless ``config.online_teacher``); ``signals`` may carry
    traced data and a prepared logit cache. With ``out_dir``: metrics.jsonl, checkpoints (resumed
    automatically when present), report.json and the final plain HF model in ``out_dir/model``
    (LoRA merged). ``on_step(step, record)`` is called after every optimizer step.
    """
    from transformers import get_cosine_schedule_with_warmup

    from taskdistill.distill.lora import apply_lora, merge
    from taskdistill.models.load import forget_fingerprint, model_fingerprint, save_model

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
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    vocab, source = None, None
    if config.uses_teacher:
        if teacher is None and signals.logits is None:
            raise TaskDistillError(f"supervision {config.supervision!r} needs a teacher (--teacher) for its KL targets")
        if teacher is not None:
            vocab = shared_vocab(student, teacher, tokenizer, teacher_tokenizer)
        if signals.logits is not None:
            source = signals.logits
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
    config_hash = f"{config.training_hash()}-{data.fingerprint()}-{model_fingerprint(student)[:16]}"
    forget_fingerprint(student)  # trained in place from here on
    model = apply_lora(student, config) if config.method == "lora" else student
    device = next(model.parameters()).device
    bf16 = use_bf16(config.bf16, device)
    optimizer = _optimizer(model, config)
    lengths = [len(s.input_ids) for s in sequences]
    n_batches = len(length_grouped_batches(lengths, config.batch_size, config.seed, 0))
    steps = total_steps(config, n_batches)
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(config.warmup_ratio * steps), steps)

    out = Path(out_dir) if out_dir is not None else None
    created = out is not None and not out.exists()  # a run that diverges leaves no folder it made
    start_step, resumed_from, skipped, tokens, history = 0, None, 0, 0, []
    if out is not None and ckpt.read_state(out / "checkpoint") is not None:
        state = ckpt.load(out / "checkpoint", model, optimizer, scheduler, config_hash)
        start_step = resumed_from = state["step"]
        skipped, tokens = state["skipped"], state["tokens"]
        history = _read_metrics(out / "metrics.jsonl", start_step)
    metrics_fh = _open_metrics(out, history)

    model.train()
    order_cache: dict[int, list[list[int]]] = {}

    def micro_batch(m: int):
        epoch, within = divmod(m, n_batches)
        if epoch not in order_cache:
            order_cache.clear()
            order_cache[epoch] = length_grouped_batches(lengths, config.batch_size, config.seed, epoch)
        return collate([sequences[i] for i in order_cache[epoch][within]], pad_id)

    t0, run_tokens = time.perf_counter(), 0
    bar = _progress(progress, steps, start_step)
    bad_streak = 0  # bad steps since the last good one: a run must end on a good step
    try:
        for step in range(start_step, steps):
            agg = {k: 0.0 for k in (*TERMS, "loss")}
            step_tokens = step_positions = 0
            for m in range(step * config.grad_accum, (step + 1) * config.grad_accum):
                batch = micro_batch(m)
                batch.input_ids, batch.attention_mask = batch.input_ids.to(device), batch.attention_mask.to(device)
                rows = source.topk(batch) if source is not None else None
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    terms = micro_terms(model, batch, config, rows, vocab)
                (terms["loss"] / config.grad_accum).backward()
                for k in agg:
                    agg[k] += float(terms[k].detach()) / config.grad_accum
                step_tokens += batch.n_tokens
                step_positions += int(batch.targets.numel())
            params = [p for p in model.parameters() if p.requires_grad]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
            lr = scheduler.get_last_lr()[0]
            ok = healthy_step(agg["loss"], grad_norm)
            if ok:
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
            if (out is not None and ok and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0
                    and step + 1 < steps):  # never right after a bad step
                ckpt.save(out / "checkpoint", model, optimizer, scheduler,
                          {"step": step + 1, "skipped": skipped, "tokens": tokens, "config_hash": config_hash})
        if bad_streak:  # the run ends without having recovered: what it would save is the diverged model
            first = history[-bad_streak]
            raise diverged(steps - bad_streak, f"from there to the last step ({steps}) every step had a non-finite "
                           "loss or gradient, or no gradient at all (overflowed activations)",
                           first["loss"], first["grad_norm"], first["lr"])
    except TaskDistillError:
        if metrics_fh is not None:
            metrics_fh.close()
        discard_run(out, created)
        raise
    finally:
        if metrics_fh is not None:
            metrics_fh.close()
        if bar is not None:
            bar[0].stop()

    model.eval()
    student = merge(model) if config.method == "lora" else model
    seconds = time.perf_counter() - t0
    report = TrainReport(
        steps=steps, skipped_steps=skipped, tokens=tokens, seconds=round(seconds, 3),
        tokens_per_s=round(run_tokens / max(seconds, 1e-9), 1),
        final_loss=history[-1]["loss"] if history else None, sequences=counts, resumed_from=resumed_from,
        history=history,
    )
    if out is not None:
        from taskdistill.cache import atomic_write_json

        report.model_dir = str(save_model(student, tokenizer, out / "model"))
        atomic_write_json(out / "report.json", {**report.to_dict(), "config": config.model_dump()})
        import shutil

        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    return student, report


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
