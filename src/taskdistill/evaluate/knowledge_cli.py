"""``taskdistill eval knowledge MODEL``: general-knowledge benchmarks as a rich table (and JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = (
    "Evaluate MODEL's general knowledge on lm-evaluation-harness benchmarks, through our fast adapter. "
    "MODEL is a built-in name (smollm2-135m-instruct), a local HF folder, a .gguf file or a hub id.\n\n"
    "--benchmarks (comma-separated): probe, arc_easy, arc_challenge, hellaswag, piqa, mmlu (letter choice), "
    "mmlu_cloze (scores the answer text: the formulation a ~100M model can do), mmlu_pro, triviaqa, or "
    'jsonl:PATH for your own file of {"question", "choices", "answer"} lines. Default: the built-in probe '
    "when no benchmark folder is set (TASKDISTILL_BENCHMARKS_DIR or TASKDISTILL_DATA_DIR), else "
    "arc_easy,piqa,hellaswag,mmlu_cloze.\n\n"
    "With a benchmark folder the original release files are read from it; without one the same names run "
    "lm-eval's standard hub tasks. Each benchmark runs 0-shot on a fixed seeded stratified subset of "
    "--limit items (MMLU balanced over subjects).\n\n"
    "--reference (a teacher's saved --json report, or {\"benchmark\": accuracy}) adds retention = "
    "(acc - chance) / (reference - chance). Results are cached by model weights, benchmark, subset and "
    "settings: re-running never re-evaluates."
)


def knowledge_cmd(
    model: str = typer.Argument(..., help="Model: built-in name, HF folder, .gguf file or hub id."),
    benchmarks: str | None = typer.Option(
        None, "--benchmarks", "-b", help="Comma-separated benchmark names (default: see above)."
    ),
    limit: int = typer.Option(300, "--limit", min=1, help="Items per benchmark (a fixed stratified subset)."),
    all_items: bool = typer.Option(False, "--all", help="Use every item of each benchmark (ignores --limit)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsets (keep it fixed across a study)."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Teacher accuracies: a saved --json report or {\"benchmark\": acc}."
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Contexts per forward pass."),
    bf16: bool = typer.Option(False, "--bf16", help="Run under bfloat16 autocast (faster on CPUs with bf16 units)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report to this JSON file."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Evaluate again even when a cached result exists."),
    runtime=None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from taskdistill.cache import atomic_write_json, check_writable
    from taskdistill.errors import TaskDistillError
    from taskdistill.evaluate.knowledge import (
        check_benchmarks,
        evaluate_knowledge,
        load_reference,
        tasks,
    )

    names = [b.strip() for b in benchmarks.split(",") if b.strip()] if benchmarks else tasks.default_benchmarks()
    if not names:
        raise TaskDistillError("--benchmarks is empty; give e.g. --benchmarks arc_easy,piqa")
    if json_out is not None and json_out.is_dir():
        raise TaskDistillError(f"--json {json_out} is a folder; give a file path such as {json_out / 'knowledge.json'}")
    if json_out is not None:
        check_writable(json_out, "--json")
    ref = load_reference(reference) if reference is not None else None
    check_benchmarks(names, None if all_items else limit, seed)  # before the (slow) model load

    from taskdistill.models.load import load_model

    console = Console(stderr=True)
    loaded, tok = load_model(model, runtime=runtime)
    report = evaluate_knowledge(
        loaded, tok, names, limit=None if all_items else limit, seed=seed, reference=ref, batch_size=batch_size,
        precision="bfloat16" if bf16 else "float32",
        use_cache=not no_cache, progress=lambda name, status: console.print(f"{name}: {status}"),
    )
    table = Table("benchmark", "acc ± stderr", "acc_norm", "correct / n", "chance", "retention", "formulation",
                  title=f"general knowledge: {model}")
    for r in report.results:
        table.add_row(
            r.name, f"{r.acc:.3f} ± {r.stderr:.3f}", "—" if r.acc_norm is None else f"{r.acc_norm:.3f}",
            f"{r.correct} / {r.n}", f"{r.chance:.3f}", "—" if r.retention is None else f"{r.retention:.3f}",
            r.formulation,
        )
    Console().print(table)
    if report.aggregate_retention is not None:
        Console().print(f"aggregate retention: {report.aggregate_retention:.3f}")
    if json_out is not None:
        atomic_write_json(json_out, report.to_dict())
        Console().print(f"wrote {json_out}")


def register(eval_app: typer.Typer) -> None:
    """Add ``knowledge`` to ``taskdistill eval``."""
    from taskdistill.models.runtime_cli import with_runtime

    eval_app.command("knowledge", help=HELP)(with_runtime(knowledge_cmd))
