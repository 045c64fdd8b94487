"""``taskdistill study run|plan|resume|status|export``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from taskdistill.models.runtime_cli import with_runtime

study_app = typer.Typer(help="Run grids of prune → recover → evaluate runs as one crash-safe, cached study.",
                        no_args_is_help=True)

EXECUTOR_HELP = "local (sequential, default) or ray (independent steps in parallel on a Ray cluster)"


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.add_typer(study_app, name="study")


def _printer(console, power_warnings: list[str] | None = None):
    def on_event(what: str, row: dict) -> None:
        if what == "plan":
            _warn(console, row["warnings"] + (power_warnings or []))
        elif what == "start":
            console.print(f"[cyan]▶[/] {row['label']} [dim]({row['kind']} {row['key'][:8]})[/]")
        elif what == "done":
            console.print(f"[green]✓[/] {row['label']} [dim]{row.get('seconds') or 0:.1f} s[/]")
        elif what == "skip":
            console.print(f"[yellow]–[/] {row['label']} skipped: {row.get('error')}")
        elif what == "fail":
            console.print(f"[red]✗[/] {row['label']}: {row.get('error')}")

    return on_event


def _warn(console, warnings: list[str]) -> None:
    for line in warnings:
        console.print(f"[yellow]warning:[/] {line}")


def power(spec) -> dict:
    """What the spec's grid can detect (laws/power.py), from its test size, GK items, seeds and levels."""
    from taskdistill.evaluate.knowledge.tasks import PROBE_CHANCE
    from taskdistill.laws.power import plan_power
    from taskdistill.study.steps import load_source

    task = spec.task.model_dump()
    try:
        classes = len(load_source(task, {}).labels) if not task["source"].startswith("hf:") else 35
    except Exception:  # the data are checked, with a clear line, when the study runs
        classes = 35
    gk_items = (spec.knowledge.limit or 1000) * len(spec.knowledge.benchmarks)
    limited = spec.evaluation.test_limit is not None and spec.evaluation.test_limit < spec.task.test_size
    return plan_power({"test_size": spec.evaluation.test_limit if limited else spec.task.test_size,
                       "test_knob": "evaluation.test_limit" if limited else "task.test_size", "n_classes": classes,
                       "gk_items": gk_items, "gk_chance": PROBE_CHANCE, "seeds": spec.axes.seeds,
                       "keep_fractions": spec.axes.keep_fractions, "dataset_sizes": spec.axes.dataset_sizes,
                       "supervisions": spec.axes.supervision, "methods": spec.axes.method,
                       "schedules": spec.axes.schedules})


def power_table(result: dict):
    from rich.table import Table

    se, mdd = result["se"], result["mdd"]
    table = Table("quantity", "standard error", "smallest detectable difference (80 % power, 5 %)",
                  title="power of this grid (laws/power.py; assumptions: docs/laws.md)")
    for name in ("task_accuracy", "task_macro_f1", "gk_accuracy", "gk_retention"):
        table.add_row(name.replace("_", " "), f"{se[name]:.3f}", "")
    cot, gap = mdd["cot_vs_label_gk_retention"], mdd["collapse_gap"]
    table.add_row("F3: GK retention, CoT-family − label", f"{cot.get('se_at_zero', float('nan')):.3f}",
                  f"{cot['value']:.3f}")
    table.add_row("F2: κ50 gap, GK − in-domain", f"{gap.get('se', float('nan')):.3f}", f"{gap['value']:.3f}")
    return table


def _finish(console, folder: Path, spec, summary: dict, started: float) -> None:
    """Summary line; when every step is finished and the spec asks for it, the laws and the report."""
    line = ", ".join(f"{n} {s}" for s, n in sorted(summary.items()))
    console.print(f"study folder {folder}: {line} in {time.time() - started:.0f} s")
    if spec.report and sum(summary.values()) == summary.get("done", 0) + summary.get("skipped", 0):
        from taskdistill.report import build_report

        begun = time.time()
        build_report(folder)
        console.print(f"[green]✓[/] laws + report [dim]{time.time() - begun:.1f} s[/] → {folder / 'report.html'}")


GPUS_HELP = "GPUs the study may use (overrides runtime.gpus); each step is sized to fit them"
GPU_MEMORY_HELP = "memory of each GPU, e.g. 80GB (overrides runtime.gpu_memory)"


def _spec(path: Path, runtime: dict, gpus: int | None = None, gpu_memory: str | None = None):
    """The spec at ``path`` with the command line's runtime overrides."""
    from taskdistill.study.spec import load_spec

    return load_spec(path).with_runtime(**runtime, gpus=gpus, gpu_memory=gpu_memory)


@with_runtime(resolve=False)
def run_cmd(
    spec: Path = typer.Argument(..., help="study spec YAML, e.g. configs/quickstart.yaml"),
    dir: Path = typer.Option(None, "--dir", help="study folder (store, artifacts, report); default runs/NAME"),
    executor: str = typer.Option("local", help=EXECUTOR_HELP),
    address: str = typer.Option(None, help="Ray cluster address (default: start a local Ray instance)"),
    num_cpus: int = typer.Option(None, help="CPUs of a local Ray instance (default: all)"),
    gpus: int = typer.Option(None, "--gpus", min=0, help=GPUS_HELP),
    gpu_memory: str = typer.Option(None, "--gpu-memory", help=GPU_MEMORY_HELP),
    runtime=None,
) -> None:
    """Run a study (or continue it: finished steps are never redone)."""
    from rich.console import Console

    from taskdistill.study.run import run_study

    console = Console()
    parsed = _spec(spec, runtime, gpus, gpu_memory)
    folder = dir or Path("runs") / parsed.name
    started = time.time()
    summary = run_study(parsed, folder, executor=executor, address=address, num_cpus=num_cpus,
                        on_event=_printer(console, power(parsed)["warnings"]))
    _finish(console, folder, parsed, summary, started)


@with_runtime(resolve=False)
def resume_cmd(
    dir: Path = typer.Argument(..., help="study folder written by `study run`"),
    executor: str = typer.Option("local", help=EXECUTOR_HELP),
    address: str = typer.Option(None, help="Ray cluster address (default: start a local Ray instance)"),
    num_cpus: int = typer.Option(None, help="CPUs of a local Ray instance (default: all)"),
    gpus: int = typer.Option(None, "--gpus", min=0, help=GPUS_HELP),
    gpu_memory: str = typer.Option(None, "--gpu-memory", help=GPU_MEMORY_HELP),
    runtime=None,
) -> None:
    """Finish an interrupted study from its folder (after a crash, a kill or Ctrl-C); --device may differ from
    the first run's (placement does not change results), a different --dtype is another study."""
    from rich.console import Console

    from taskdistill.study.run import run_study, saved_spec

    console = Console()
    started = time.time()
    spec = saved_spec(dir).with_runtime(**runtime, gpus=gpus, gpu_memory=gpu_memory)
    summary = run_study(spec, dir, executor=executor, address=address, num_cpus=num_cpus, on_event=_printer(console))
    _finish(console, dir, spec, summary, started)


@with_runtime(resolve=False)
def plan_cmd(
    spec: Path = typer.Argument(..., help="study spec YAML"),
    dir: Path = typer.Option(None, "--dir", help="study folder to compare with (default runs/NAME)"),
    all_steps: bool = typer.Option(False, "--all", help="list every step, not only a summary per kind"),
    gpus: int = typer.Option(None, "--gpus", min=0, help=GPUS_HELP),
    gpu_memory: str = typer.Option(None, "--gpu-memory", help=GPU_MEMORY_HELP),
    runtime=None,
) -> None:
    """Validate a spec and print its steps, what is already cached, an estimated cost, and each step's peak memory,
    GPUs and time on the declared hardware (a step that cannot fit is refused, naming it and the knob)."""
    from rich.console import Console

    from taskdistill.study.resources import estimate_plan
    from taskdistill.study.run import prepare
    from taskdistill.study.views import plan_tables, resources_tables

    parsed = _spec(spec, runtime, gpus, gpu_memory)
    folder = dir or Path("runs") / parsed.name
    p = prepare(parsed, folder)
    hardware = _estimates(p, parsed, estimate_plan)  # refused here, before anything is printed
    console = Console()
    for table in plan_tables(p, parsed, folder, all_steps):
        console.print(table)
    if hardware is not None:
        for table in resources_tables(p, parsed, hardware, all_steps):
            console.print(table)
    detect = power(parsed)
    console.print(power_table(detect))
    notes = [] if hardware is not None else [("memory not estimated: the teacher's config is not available offline "
                                              "(declare runtime.gpus to be told what to download)")]
    _warn(console, p.warnings + detect["warnings"] + notes)


def _estimates(p, spec, estimate_plan):
    """Every step's estimate; without declared GPUs a teacher config that cannot be read is a note, not an error."""
    from taskdistill.models.configs import offline_config

    if spec.runtime.gpus:
        return estimate_plan(p, spec)
    config = offline_config(spec.teacher)
    return estimate_plan(p, spec, config) if config is not None else None


study_app.command("run")(run_cmd)
study_app.command("resume")(resume_cmd)
study_app.command("plan")(plan_cmd)


@study_app.command("status")
def status_cmd(
    dir: Path = typer.Argument(..., help="study folder"),
    once: bool = typer.Option(False, "--once", help="print the table once instead of following a running study"),
    interval: float = typer.Option(2.0, help="seconds between refreshes"),
) -> None:
    """Show progress per step kind; follows the study live while a run or resume is going on."""
    from rich.console import Console
    from rich.live import Live

    from taskdistill.study.run import is_locked
    from taskdistill.study.store import open_store
    from taskdistill.study.views import status_table

    store = open_store(dir)
    try:
        if once or not is_locked(dir):
            Console().print(status_table(store, dir))
            return
        with Live(status_table(store, dir), refresh_per_second=4) as live:
            while is_locked(dir):
                time.sleep(interval)
                live.update(status_table(store, dir))
            live.update(status_table(store, dir))
    finally:
        store.close()


@study_app.command("export")
def export_cmd(
    dir: Path = typer.Argument(..., help="study folder"),
    format: str = typer.Option("csv", "--format", help="csv, parquet or json"),
    out: Path = typer.Option(None, help="output folder (default DIR/export)"),
) -> None:
    """Write the observation rows (one per student × metric) and the run rows as CSV, Parquet or JSON."""
    from rich.console import Console

    from taskdistill.cache import check_writable
    from taskdistill.study.store import open_store
    from taskdistill.study.views import export

    check_writable(out or Path(dir) / "export", "--out", folder=True, inside=True)
    store = open_store(dir)
    try:
        paths = export(store, out or Path(dir) / "export", format)
    finally:
        store.close()
    for path in paths:
        Console().print(f"wrote {path}")
