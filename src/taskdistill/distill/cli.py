"""``taskdistill distill`` (train a student from a teacher) and ``taskdistill traces`` (build or import CoT)."""

from __future__ import annotations

from pathlib import Path

import typer


def _data(source: str, cot_col: str | None, limit: int | None):
    from taskdistill.data.load import load_task_data

    data = load_task_data(source, cot_col=cot_col) if cot_col else load_task_data(source)
    return data.subset(data.examples[:limit]) if limit else data


def distill_cmd(
    teacher: str = typer.Option(..., "--teacher", help="Teacher model: built-in name, HF folder, .gguf or hub id."),
    student: str = typer.Option(..., "--student", help="Student model to train (e.g. a pruned checkpoint folder)."),
    data: str = typer.Option(..., "--data", help="Training data: synthetic[:n=…], hf:owner/name, or a csv/jsonl/parquet file."),
    out: Path = typer.Option(..., "--out", help="Output folder: model/, metrics.jsonl, report.json (resumes a checkpoint)."),
    method: str = typer.Option("logit", "--method", help="logit (all weights) | lora (PEFT adapters, merged on save)."),
    supervision: str = typer.Option("label", "--supervision", help="label | kl | cot | cot_kl | blended."),
    dataset_size: int | None = typer.Option(None, "--dataset-size", help="Train on the first N examples."),
    lam: float = typer.Option(0.5, "--lambda", help="λ: weight of KL over trace tokens in 'blended'."),
    temperature: float = typer.Option(1.0, "--temperature", help="τ of the KL terms (scaled by τ²)."),
    kl: str = typer.Option("forward", "--kl", help="forward | reverse | jsd."),
    jsd_beta: float = typer.Option(0.5, "--jsd-beta", help="β of the generalized JSD."),
    trace_ce: float = typer.Option(0.0, "--trace-ce", help="Extra CE weight on trace tokens in 'blended'."),
    top_k: int = typer.Option(64, "--top-k", help="Teacher log-probs kept per position (0: full vocabulary)."),
    online_teacher: bool = typer.Option(False, "--online-teacher", help="Teacher log-probs per batch, no cache."),
    lr: float = typer.Option(1e-4, "--lr", help="Peak AdamW learning rate."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimizer steps (default: --epochs)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Passes over the data (default 1)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Sequences per micro-batch."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimizer step."),
    max_length: int = typer.Option(512, "--max-length", help="Longer sequences are skipped (counted)."),
    lora_rank: int = typer.Option(16, "--lora-rank", help="LoRA rank r."),
    lora_alpha: float = typer.Option(32.0, "--lora-alpha", help="LoRA alpha."),
    lora_targets: str = typer.Option(
        "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "--lora-targets", help="Comma-separated module names."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation noise and data order."),
    checkpoint_every: int | None = typer.Option(None, "--checkpoint-every", help="Checkpoint every N steps."),
    traces: Path | None = typer.Option(None, "--traces", help="CoT traces JSONL {id, cot} for cot/cot_kl/blended."),
    cot_col: str | None = typer.Option(None, "--cot-col", help="Column of --data holding CoT traces."),
    trace_teacher: str | None = typer.Option(
        None, "--trace-teacher", help="Model that writes missing traces (default: --teacher)."),
) -> None:
    """Distill TEACHER into STUDENT on task data; saves a plain HF model in OUT/model."""
    from rich.console import Console

    from taskdistill.distill.config import make_config
    from taskdistill.distill.train import Signals, distill
    from taskdistill.models.load import load_model

    config = make_config(
        method=method, supervision=supervision, dataset_size=dataset_size, lam=lam, temperature=temperature, kl=kl,
        jsd_beta=jsd_beta, trace_ce=trace_ce, top_k=top_k or None, online_teacher=online_teacher, lr=lr,
        max_steps=max_steps, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
        lora_rank=lora_rank, lora_alpha=lora_alpha, lora_targets=tuple(t.strip() for t in lora_targets.split(",") if t.strip()),
        seed=seed, checkpoint_every=checkpoint_every,
    )
    train = _data(data, cot_col, None)
    console = Console(stderr=True)
    signals = Signals()
    if config.uses_traces and not any(e.cot for e in train.examples):
        from taskdistill.distill import traces as tr

        if traces is not None:
            signals.traces = tr.import_traces(train, traces)
        else:
            writer, wtok = load_model(trace_teacher or teacher)
            subset = train.subset(train.examples[: config.dataset_size]) if config.dataset_size else train
            signals.traces = tr.build_traces(writer, wtok, subset)
            r = signals.traces.meta["traces"]
            console.print(f"traces: kept {r['kept']}/{r['n']} (drop rate {r['drop_rate']:.1%})")
            config = config.model_copy(update={"dataset_size": None})
    teacher_model, teacher_tok = load_model(teacher) if config.uses_teacher else (None, None)
    student_model, tok = load_model(student)
    _, report = distill(student_model, tok, train, config, teacher=teacher_model, signals=signals, out_dir=out,
                        teacher_tokenizer=teacher_tok)
    last = report.history[-1] if report.history else {}
    console.print(
        f"[bold]distilled[/] {config.method}/{config.supervision}: {report.steps} steps, final loss "
        f"{report.final_loss:.4f}, {report.tokens_per_s:.0f} tok/s, skipped {report.skipped_steps}; "
        + " ".join(f"{k}={last.get(k, 0):.4f}" for k in ("ce_label", "ce_trace", "kl_label", "kl_trace"))
    )
    typer.echo(str(report.model_dir))


def traces_cmd(
    teacher: str | None = typer.Option(None, "--teacher", help="Model that writes the traces (not needed with --import)."),
    data: str = typer.Option(..., "--data", help="Task data: synthetic[:n=…], hf:owner/name, or a csv/jsonl/parquet file."),
    out: Path = typer.Option(..., "--out", help="Output JSONL of {id, label, cot} (written atomically)."),
    import_file: Path | None = typer.Option(None, "--import", help="Accept traces from this JSONL {id, cot} as-is."),
    self_generated: bool = typer.Option(
        False, "--self-generated", help="Do not tell the teacher the gold label (default: explain the gold label)."),
    max_new_tokens: int = typer.Option(80, "--max-new-tokens", help="Length limit of each trace."),
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per generation batch."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N examples."),
    backend: str = typer.Option("auto", "--backend", help="auto (vLLM if installed, else HF) | hf | vllm."),
) -> None:
    """Build CoT traces with a teacher (gold-label filtered) or import them; write them as JSONL."""
    from rich.console import Console

    from taskdistill.distill import traces as tr
    from taskdistill.errors import TaskDistillError

    dataset = _data(data, None, limit)
    if import_file is not None:
        result = tr.import_traces(dataset, import_file)
    else:
        if teacher is None:
            raise TaskDistillError("pass --teacher to generate traces, or --import FILE to accept existing ones")
        from taskdistill.models.load import load_model

        model, tok = load_model(teacher)
        result = tr.build_traces(model, tok, dataset, explain_gold=not self_generated, max_new_tokens=max_new_tokens,
                                 batch_size=batch_size, backend=backend)
    tr.write_traces(result, out)
    r = result.meta["traces"]
    Console(stderr=True).print(
        f"traces: kept {r['kept']}/{r['n']}" + (f" (drop rate {r['drop_rate']:.1%})" if "drop_rate" in r else "")
    )
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    """Add ``distill`` and ``traces`` to the root app."""
    app.command("distill", help="Distill a teacher into a student (logit or LoRA; label/kl/cot/cot_kl/blended).")(
        distill_cmd
    )
    app.command("traces", help="Build chain-of-thought traces with a teacher, or import them; write JSONL.")(traces_cmd)
