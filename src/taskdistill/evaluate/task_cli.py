"""``taskdistill eval task MODEL --data SOURCE``: in-domain quality as a rich table (and JSON on request)."""

from __future__ import annotations

from pathlib import Path

import typer

from taskdistill.data.cli import DROP_DUPLICATES, NO_ID_COL

HELP = """Evaluate MODEL on a task's test set: accuracy, macro-F1, gold-label NLL, Brier, per-class F1.

MODEL is a built-in name (smollm2-135m-instruct), a local HF folder, a .gguf file or a hub id.
--data is any task source (synthetic[:n=..,seed=..,granularity=fine|coarse], hf:owner/name, or a
csv/jsonl/parquet file). With --test-size N the fixed stratified test split of N examples is taken
from it (the same split studies use); without it every row of --data is the test set.
--limit N then keeps a deterministic random sample of N of those test examples (chosen by a hash
of the example ids, so the same for every model) for quick checks.
Modes: score (constrained scoring of every [[Label]]), generate (greedy answer, parsed; unparseable
counts as wrong), cot (greedy reasoning, then every label scored at the answer slot)."""


def task_cmd(
    model: str = typer.Argument(..., help="Model: built-in name, HF folder, .gguf file or hub id."),
    data: str = typer.Option(..., "--data", help="Task data: synthetic[:...], hf:owner/name, or a csv/jsonl/parquet file."),
    text_col: str | None = typer.Option(None, "--text-col", help="Text column (auto-detected if omitted)."),
    label_col: str | None = typer.Option(None, "--label-col", help="Label column (auto-detected if omitted)."),
    label_names: str | None = typer.Option(
        None, "--label-names", help="Names of integer labels: a JSON file (list or id→name map), a JSON string or 'a,b,c' (a labels.json beside the data file is used automatically)."
    ),
    test_size: int | None = typer.Option(
        None, "--test-size", min=1, help="Take the fixed stratified test split of this size from --data."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the test split (with --test-size)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate a deterministic random sample of this many test examples."),
    mode: str = typer.Option("score", "--mode", help="score | generate | cot."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per forward pass."),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", min=1, help="Generation length for generate/cot (default 32 / 160)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
    no_id_col: bool = NO_ID_COL,
    drop_duplicates: bool = DROP_DUPLICATES,
    runtime=None,
) -> None:
    from rich.console import Console

    from taskdistill.cache import atomic_write_json, check_writable
    from taskdistill.errors import TaskDistillError
    from taskdistill.evaluate.metrics import MODES

    if mode not in MODES:
        raise TaskDistillError(f"unknown --mode {mode!r}; use one of {', '.join(MODES)}")
    if json_out is not None and json_out.is_dir():
        raise TaskDistillError(f"--json {json_out} is a folder; give a file path such as {json_out / 'metrics.json'}")
    if json_out is not None:
        check_writable(json_out, "--json")
    console = Console(stderr=True)
    test = load_test_set(data, text_col, label_col, label_names, test_size, seed, limit, no_id_col, drop_duplicates)
    from taskdistill.evaluate.task import evaluate_task
    from taskdistill.models.load import load_model

    with console.status(f"loading {model}"):
        net, tok = load_model(model, runtime=runtime)
    metrics = run_with_progress(console, lambda progress: evaluate_task(
        net, tok, test, mode=mode, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress
    ))
    Console().print(render(metrics, model, test.name))
    if json_out is not None:
        header = {"model": model, "data": data, "test_name": test.name, "test_fingerprint": test.fingerprint()}
        atomic_write_json(json_out, {**header, **metrics.to_dict()})
        console.print(f"wrote {json_out}")
    from taskdistill.models.prompts import MAX_TEXT_TOKENS, clip_text

    cut = sum(clip_text(tok, e.text) != e.text for e in test.examples)  # as every prompt cuts them
    if cut:
        console.print(f"note: {cut} text(s) longer than {MAX_TEXT_TOKENS} tokens were cut to their first "
                      f"{MAX_TEXT_TOKENS} tokens (docs/evaluation.md)")


def load_test_set(data, text_col, label_col, label_names, test_size, seed, limit, no_id_col=False,
                  drop_duplicates=False):
    """The TaskData to evaluate: --data, its fixed stratified test split, then a --limit sample."""
    from taskdistill.data.cli import report_dropped
    from taskdistill.data.load import load_task_data, require_classes
    from taskdistill.data.splits import make_split

    full = load_task_data(data, text_col=text_col, label_col=label_col, label_names=label_names, no_id_col=no_id_col,
                          drop_duplicates=drop_duplicates)
    report_dropped(full)
    require_classes(full)
    test = make_split(full, test_size, seed=seed).test if test_size is not None else full
    return sample(test, limit, seed) if limit is not None else test


def sample(test, limit: int, seed: int = 0):
    """A deterministic random sample of ``limit`` examples, chosen by a hash of (seed, id), so it does
    not depend on row order and is the same for every model; the examples keep their order."""
    import hashlib

    if limit >= len(test):
        return test
    rank = {e.id: hashlib.sha256(f"{seed}\x1flimit\x1f{e.id}".encode()).hexdigest() for e in test.examples}
    keep = set(sorted(rank, key=rank.get)[:limit])
    return test.subset([e for e in test.examples if e.id in keep], name=f"{test.name}-limit{limit}")


def run_with_progress(console, work):
    """Run ``work(progress)`` under a transient rich progress bar, one task per phase."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        return work(progress)


def render(metrics, model: str, data_name: str):
    """Summary, per-class F1 and the most frequent confusions as rich tables."""
    from rich.console import Group
    from rich.table import Table

    summary = Table(title=f"{model} on {data_name} ({metrics.mode})", show_header=True)
    for col in ("n", "accuracy", "macro-F1", "NLL", "Brier", "scored acc", "unparseable", "chance"):
        summary.add_column(col, justify="right")
    summary.add_row(
        str(metrics.n), f"{metrics.accuracy:.3f}", f"{metrics.macro_f1:.3f}", f"{metrics.nll:.3f}",
        f"{metrics.brier:.3f}", f"{metrics.scored_accuracy:.3f}", str(metrics.unparseable), f"{metrics.chance:.3f}",
    )
    per_class = Table("class", "F1", "gold n", title="per-class F1 (classes in gold ∪ predicted)")
    for name, f1 in sorted(metrics.per_class_f1.items(), key=lambda kv: -kv[1]):
        per_class.add_row(name, f"{f1:.3f}", str(metrics.support.get(name, 0)))
    confusions = sorted(
        ((count, metrics.labels[g], metrics.labels[p]) for g, row in enumerate(metrics.confusion)
         for p, count in enumerate(row) if g != p and count),
        reverse=True,
    )[:5]
    parts = [summary, per_class]
    if confusions:
        top = Table("gold", "predicted", "count", title="most frequent confusions")
        for count, gold, pred in confusions:
            top.add_row(gold, pred, str(count))
        parts.append(top)
    return Group(*parts)


def register(eval_app: typer.Typer) -> None:
    """Add ``task`` to ``taskdistill eval``."""
    from taskdistill.models.runtime_cli import with_runtime

    eval_app.command("task", help=HELP)(with_runtime(task_cmd))
