"""``taskdistill prune``: structural pruning of a model to a keep fraction or along a schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

DEFAULT_CALIB = "synthetic:n=256"


def calibration_texts(source: str, size: int | None) -> list[str]:
    """Texts for importance: a .txt file (one text per line) or any ``load_task_data`` source."""
    from taskdistill.errors import TaskDistillError

    if size is not None and size < 1:
        raise TaskDistillError(f"--calib-size must be ≥ 1 (importance needs calibration texts; leave it out to use "
                               f"all of them); got {size}")
    if source.endswith(".txt"):
        from taskdistill.data.files import read_text

        path = Path(source).expanduser()
        if not path.is_file():
            raise TaskDistillError(f"calibration file {source} does not exist")
        blank = not path.read_bytes().strip()  # refused below as an empty calibration set
        texts = [] if blank else [line.strip() for line in read_text(path).splitlines() if line.strip()]
    else:
        from taskdistill.data.load import load_task_data

        if source == DEFAULT_CALIB and size:
            source = f"synthetic:n={size}"
        texts = [e.text for e in load_task_data(source).examples]
    texts = texts[:size] if size else texts
    if not texts:
        raise TaskDistillError(f"the calibration set {source!r} is empty; pass texts with --calib")
    return texts


def check_out(out: Path) -> None:
    from taskdistill.cache import check_writable
    from taskdistill.errors import TaskDistillError

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TaskDistillError(f"output folder {out} exists and is not empty; choose a new --out or empty it")
    check_writable(out, "--out", folder=True)


def prune_cmd(
    model: str = typer.Argument(..., help="Model: built-in name, local HF folder, .gguf file or hub id."),
    out: Path = typer.Option(..., "--out", help="New folder for the pruned model (one sub-folder per step with --schedule)."),
    keep: Optional[float] = typer.Option(None, "--keep", help="Keep fraction κ of the model's parameters, in (0, 1]."),
    schedule: Optional[str] = typer.Option(
        None, "--schedule", help="Iterative: 'paper' (0.79,0.58,0.37,0.16), 'geometric:0.5:4' or '0.8,0.6,0.4'."),
    axes: str = typer.Option("width", "--axes", help="width | depth | mixed (every layer keeps the same width)."),
    depth_share: float = typer.Option(0.5, "--depth-share", help="Mixed only: share of the compression taken by depth."),
    calib: str = typer.Option(DEFAULT_CALIB, "--calib", help="Calibration data: a task-data source or a .txt file."),
    calib_size: Optional[int] = typer.Option(None, "--calib-size", help="Use at most N calibration texts."),
    max_length: int = typer.Option(128, "--max-length", help="Truncate calibration texts to this many tokens."),
    layer_metric: str = typer.Option("cosine", "--layer-metric", help="Rank layers by 'cosine' (1 − cos) or 'loss' increase."),
    runtime=None,
) -> None:
    """Prune MODEL structurally (Minitron importance) and save plain HF checkpoints."""
    from rich.console import Console
    from rich.table import Table

    from taskdistill.cache import atomic_dir, atomic_write_json
    from taskdistill.errors import TaskDistillError
    from taskdistill.models.load import load_model, save_model
    from taskdistill.prune.importance import tokenize_calibration
    from taskdistill.prune.params import check_supported
    from taskdistill.prune.schedule import iterative_prune, parse_schedule
    from taskdistill.prune.shape import AXES, check_keep_fraction

    if (keep is None) == (schedule is None):
        raise TaskDistillError("pass exactly one of --keep (one-shot) or --schedule (iterative)")
    if keep is not None:
        check_keep_fraction(keep)
    fractions = parse_schedule(schedule if schedule is not None else keep)
    if axes not in AXES:
        raise TaskDistillError(f"unknown --axes {axes!r}; use one of {', '.join(AXES)}")
    if max_length < 1:
        raise TaskDistillError(f"--max-length must be ≥ 1 token; got {max_length}")
    check_out(out)
    texts = calibration_texts(calib, calib_size)
    net, tok = load_model(model, runtime=runtime)
    check_supported(net.config)
    tokenize_calibration(tok, texts, max_length, 8)
    rows: list[tuple] = []

    def shape_row(step, kappa, shape, params, total, non_emb):
        return (step, kappa, str(shape["num_hidden_layers"]), str(shape["hidden_size"]), str(shape["intermediate_size"]),
                f"{shape['num_attention_heads']}/{shape['num_key_value_heads']}", f"{params:,}", total, non_emb)

    with atomic_dir(out) as tmp:
        def on_step(info, pruned):
            r = info.report
            if info.step == 1:
                rows.append(shape_row("0", "1.00", r.before, r.params_before, "1.000", "1.000"))
            rows.append(shape_row(str(info.step), f"{info.keep_fraction:.2f}", r.after, r.params_after,
                                  f"{r.fraction_total:.3f}", f"{r.fraction_non_embedding:.3f}"))
            folder = tmp if len(fractions) == 1 else tmp / f"step{info.step}-keep{info.keep_fraction:g}"
            save_model(pruned, tok, folder)
            atomic_write_json(folder / "prune_report.json", r.as_dict())

        iterative_prune(net, tok, fractions, texts, axes=axes, depth_share=depth_share, max_length=max_length,
                        layer_metric=layer_metric, on_step=on_step)
    table = Table("step", "κ", "layers", "hidden", "mlp", "heads/kv", "params", "of teacher", "non-emb share",
                  title=f"{model} pruned ({axes})")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    Console().print(f"[green]saved[/green] {out}")


def register(app: typer.Typer) -> None:
    """Add ``prune`` to the root app."""
    from taskdistill.models.runtime_cli import with_runtime

    app.command("prune", help="Prune a model structurally to --keep κ or along --schedule.")(with_runtime(prune_cmd))
