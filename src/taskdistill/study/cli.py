"""``taskdistill study run|plan|resume|status|export``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

study_app = typer.Typer(help="Run grids of prune → recover → evaluate runs as one crash-safe, cached study.",
                        no_args_is_help=True)

EXECUTOR_HELP = "local (sequential, default) or ray (independent steps in parallel on a Ray cluster)"


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.add_typer(study_app, name="study")


def _printer(console):
    def on_event(what: str, row: dict) -> None:
        if what == "plan":
            _warn(console, row["warnings"])
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


def _finish(console, folder: Path, spec, summary: dict, started: float) -> None:
    """Summary line; when every step is finished and the spec asks for it, the laws and the report."""
    line = ", ".join(f"{n} {s}" for s, n in sorted(summary.items()))
    console.print(f"study folder {folder}: {line} in {time.time() - started:.0f} s")
    if spec.report and sum(summary.values()) == summary.get("done", 0) + summary.get("skipped", 0):
        from taskdistill.report import build_report

        begun = time.time()
        build_report(folder)
        console.print(f"[green]✓[/] laws + report [dim]{time.time() - begun:.1f} s[/] → {folder / 'report.html'}")


@study_app.command("run")
def run_cmd(
    spec: Path = typer.Argument(..., help="study spec YAML, e.g. configs/quickstart.yaml"),
    dir: Path = typer.Option(None, "--dir", help="study folder (store, artifacts, report); default runs/NAME"),
    executor: str = typer.Option("local", help=EXECUTOR_HELP),
    address: str = typer.Option(None, help="Ray cluster address (default: start a local Ray instance)"),
    num_cpus: int = typer.Option(None, help="CPUs of a local Ray instance (default: all)"),
) -> None:
    """Run a study (or continue it: finished steps are never redone)."""
    from rich.console import Console

    from taskdistill.study.run import run_study
    from taskdistill.study.spec import load_spec

    console = Console()
    parsed = load_spec(spec)
    folder = dir or Path("runs") / parsed.name
    started = time.time()
    summary = run_study(parsed, folder, executor=executor, address=address, num_cpus=num_cpus,
                        on_event=_printer(console))
    _finish(console, folder, parsed, summary, started)


@study_app.command("resume")
def resume_cmd(
    dir: Path = typer.Argument(..., help="study folder written by `study run`"),
    executor: str = typer.Option("local", help=EXECUTOR_HELP),
    address: str = typer.Option(None, help="Ray cluster address (default: start a local Ray instance)"),
    num_cpus: int = typer.Option(None, help="CPUs of a local Ray instance (default: all)"),
) -> None:
    """Finish an interrupted study from its folder (after a crash, a kill or Ctrl-C)."""
    from rich.console import Console

    from taskdistill.study.run import resume_study, saved_spec

    console = Console()
    started = time.time()
    summary = resume_study(dir, executor=executor, address=address, num_cpus=num_cpus,
                           on_event=_printer(console))
    _finish(console, dir, saved_spec(dir), summary, started)


@study_app.command("plan")
def plan_cmd(
    spec: Path = typer.Argument(..., help="study spec YAML"),
    dir: Path = typer.Option(None, "--dir", help="study folder to compare with (default runs/NAME)"),
    all_steps: bool = typer.Option(False, "--all", help="list every step, not only a summary per kind"),
) -> None:
    """Validate a spec and print its steps, what is already cached, and an estimated cost."""
    from rich.console import Console

    from taskdistill.study.run import prepare
    from taskdistill.study.spec import load_spec
    from taskdistill.study.views import plan_tables

    parsed = load_spec(spec)
    folder = dir or Path("runs") / parsed.name
    p = prepare(parsed, folder)
    console = Console()
    for table in plan_tables(p, parsed, folder, all_steps):
        console.print(table)
    _warn(console, p.warnings)


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
