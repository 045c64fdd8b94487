"""``taskdistill distill`` (train a student from a teacher) and ``taskdistill traces`` (build or import CoT)."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer

from taskdistill.data.cli import DROP_DUPLICATES, NO_ID_COL

RUN_FILES = ("metrics.jsonl", "checkpoint", "report.json", "model")  # what a distillation writes into --out


def _data(source: str, cot_col: str | None, limit: int | None, no_id_col: bool = False,
          drop_duplicates: bool = False):
    from taskdistill.data.cli import report_dropped
    from taskdistill.data.load import load_task_data

    data = load_task_data(source, cot_col=cot_col, no_id_col=no_id_col, drop_duplicates=drop_duplicates)
    report_dropped(data)
    return data.subset(data.examples[:limit]) if limit else data


def check_run_folder(out: Path) -> None:
    """--out must be new, empty, or an unfinished run (its checkpoint is resumed; its config is checked
    then): never a folder of other files, nor a finished run that would be overwritten."""
    from taskdistill.cache import check_writable
    from taskdistill.errors import TaskDistillError

    check_writable(out, "--out", folder=True, inside=True)
    if not out.is_dir():
        return
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}  # dot names: our temporary files
    foreign = sorted(names - set(RUN_FILES))
    if foreign:
        raise TaskDistillError(f"--out {out} holds other files ({', '.join(foreign[:3])}); choose a new or empty "
                               "folder (or the folder of an interrupted run to resume it)")
    if names & {"model", "report.json"} and "checkpoint" not in names:
        raise TaskDistillError(f"--out {out} already holds a finished distillation (model/, report.json); choose "
                               "a new folder, or remove it to train again")


def _config_parameters() -> list[inspect.Parameter]:
    """One ``--option`` per DistillConfig field, named, typed, defaulted and explained by the field itself."""
    from taskdistill.distill.config import DistillConfig

    out = []
    for name, field in DistillConfig.model_fields.items():
        extra = field.json_schema_extra or {}
        flag = extra.get("cli", "--" + name.replace("_", "-"))
        default = field.default
        if isinstance(default, tuple):  # lora_targets: comma-separated
            kind, default = str, ",".join(default)
        elif name == "bf16":
            kind, default = str, str(default)
        elif "cli_none" in extra:
            kind = int
        elif default is None:
            kind = int | None if "int" in str(field.annotation) else float | None
        else:
            kind = type(default)
        option = typer.Option(default, flag, help=(field.description or "").rstrip(".") + ".")
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind))
    return out


def _config_values(values: dict) -> dict:
    """Command-line values → DistillConfig fields (comma lists, 0 meaning None, bf16 words)."""
    from taskdistill.distill.config import DistillConfig
    from taskdistill.errors import TaskDistillError

    out = dict(values)
    for name, field in DistillConfig.model_fields.items():
        extra = field.json_schema_extra or {}
        if "cli_none" in extra and out[name] == extra["cli_none"]:
            out[name] = None
    out["lora_targets"] = tuple(t.strip() for t in out["lora_targets"].split(",") if t.strip())
    words = {"auto": "auto", "true": True, "false": False}
    if str(out["bf16"]).lower() not in words:
        raise TaskDistillError(f"--bf16 {out['bf16']!r}: use auto, true or false")
    out["bf16"] = words[str(out["bf16"]).lower()]
    return out


def distill_cmd(
    teacher: str = typer.Option(..., "--teacher", help="Teacher model: built-in name, HF folder, .gguf or hub id."),
    student: str = typer.Option(..., "--student", help="Student model to train (e.g. a pruned checkpoint folder)."),
    data: str = typer.Option(..., "--data", help="Training data: synthetic[:n=…], hf:owner/name, or a csv/jsonl/parquet file."),
    out: Path = typer.Option(..., "--out", help="Output folder: model/, metrics.jsonl, report.json (resumes a checkpoint)."),
    traces: Path | None = typer.Option(None, "--traces", help="CoT traces JSONL {id, cot} for the CoT formats."),
    cot_col: str | None = typer.Option(None, "--cot-col", help="Column of --data holding CoT traces."),
    trace_teacher: str | None = typer.Option(
        None, "--trace-teacher", help="Model that writes missing traces (default: --teacher)."),
    no_id_col: bool = NO_ID_COL,
    drop_duplicates: bool = DROP_DUPLICATES,
    runtime=None,
    **settings,
) -> None:
    """Distill TEACHER into STUDENT on task data; saves a plain HF model in OUT/model.

    Every distillation setting (docs/distillation.md) is an option; they are the fields of DistillConfig."""
    from rich.console import Console

    from taskdistill.data.load import require_classes
    from taskdistill.distill.config import make_config
    from taskdistill.distill.train import Signals, distill, training_dtype
    from taskdistill.models.load import check_model, load_model

    config = make_config(**_config_values(settings))
    check_run_folder(out)
    for ref in dict.fromkeys([student, teacher, *([trace_teacher] if trace_teacher else [])]):
        check_model(ref)  # every model, before the first one is loaded
    train = require_classes(_data(data, cot_col, None, no_id_col, drop_duplicates))
    console = Console(stderr=True)
    signals = Signals()
    if config.uses_traces and not any(e.cot for e in train.examples):
        from taskdistill.distill import traces as tr

        if traces is not None:
            signals.traces = tr.import_traces(train, traces)
        else:
            writer, wtok = load_model(trace_teacher or teacher, runtime=runtime)
            subset = train.subset(train.examples[: config.dataset_size]) if config.dataset_size else train
            signals.traces = tr.build_traces(writer, wtok, subset)
            r = signals.traces.meta["traces"]
            console.print(f"traces: kept {r['kept']}/{r['n']} (drop rate {r['drop_rate']:.1%})")
            config = config.model_copy(update={"dataset_size": None})
    teacher_model, teacher_tok = load_model(teacher, runtime=runtime) if config.uses_teacher else (None, None)
    student_model, tok = load_model(student, runtime=runtime, dtype=training_dtype(config, runtime))
    _, report = distill(student_model, tok, train, config, teacher=teacher_model, signals=signals, out_dir=out,
                        teacher_tokenizer=teacher_tok, runtime=runtime)
    last = report.history[-1] if report.history else {}
    console.print(
        f"[bold]distilled[/] {config.method}/{config.supervision}: {report.steps} steps, final loss "
        f"{report.final_loss:.4f}, {report.tokens_per_s:.0f} tok/s, skipped {report.skipped_steps}; "
        + " ".join(f"{k}={last.get(k, 0):.4f}" for k in ("ce_label", "ce_trace", "kl_label", "kl_trace"))
    )
    typer.echo(str(report.model_dir))


def _with_config_options(command):
    """Give ``command`` a signature typer can read: its own options, then one per DistillConfig field."""
    own = [p for p in inspect.signature(command).parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = inspect.Signature(own + _config_parameters())
    return command


def traces_cmd(
    teacher: str | None = typer.Option(None, "--teacher", help="Model that writes the traces (not needed with --import)."),
    data: str = typer.Option(..., "--data", help="Task data: synthetic[:n=…], hf:owner/name, or a csv/jsonl/parquet file."),
    out: Path = typer.Option(..., "--out", help="Output JSONL of {id, label, cot} (written atomically)."),
    import_file: Path | None = typer.Option(None, "--import", help="Accept traces from this JSONL {id, cot} as-is."),
    explain_gold: bool = typer.Option(
        False, "--explain-gold", help="Tell the teacher the gold label and ask it to explain it (default: the teacher "
        "writes its own reasoning and answer, kept where the answer is right)."),
    max_new_tokens: int = typer.Option(80, "--max-new-tokens", help="Length limit of each trace."),
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per generation batch."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N examples."),
    backend: str = typer.Option("auto", "--backend", help="auto (vLLM if it imports and a CUDA device is visible, "
                                "else HF) | hf | vllm."),
    tensor_parallel_size: int | None = typer.Option(
        None, "--tensor-parallel-size", help="GPUs vLLM splits the teacher over (default: the visible GPUs that "
        "split it evenly)."),
    thinking: bool = typer.Option(True, "--thinking/--no-thinking", help="With a thinking chat template (Qwen3): "
                                  "write the traces with thinking on; the thinking text is the rationale."),
    runtime=None,
) -> None:
    """Build CoT traces with a teacher (gold-label filtered) or import them; write them as JSONL."""
    from rich.console import Console

    from taskdistill.cache import check_writable
    from taskdistill.distill import traces as tr
    from taskdistill.errors import TaskDistillError

    check_writable(out, "--out")
    dataset = _data(data, None, limit)
    if import_file is not None:
        result = tr.import_traces(dataset, import_file)
    else:
        if teacher is None:
            raise TaskDistillError("pass --teacher to generate traces, or --import FILE to accept existing ones")
        from taskdistill.models.load import load_model

        model, tok = load_model(teacher, runtime=runtime)
        result = tr.build_traces(model, tok, dataset, explain_gold=explain_gold, max_new_tokens=max_new_tokens,
                                 batch_size=batch_size, backend=backend, thinking=thinking,
                                 tensor_parallel_size=tensor_parallel_size)
    tr.write_traces(result, out)
    r = result.meta["traces"]
    Console(stderr=True).print(
        f"traces: kept {r['kept']}/{r['n']}" + (f" (drop rate {r['drop_rate']:.1%})" if "drop_rate" in r else "")
        + (f", generated by {r['backend']['name']}" if "backend" in r else "")
    )
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    """Add ``distill`` and ``traces`` to the root app."""
    from taskdistill.models.runtime_cli import with_runtime

    app.command("distill", help="Distill a teacher into a student (logit or LoRA; any supervision format).")(
        with_runtime(_with_config_options(distill_cmd))
    )
    app.command("traces", help="Build chain-of-thought traces with a teacher, or import them; write JSONL.")(
        with_runtime(traces_cmd))
