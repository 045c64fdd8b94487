"""``taskdistill report STUDY -o report.html``."""

from __future__ import annotations

from pathlib import Path

import typer

from taskdistill.errors import TaskDistillError

SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}


def parse_count(text: str | None) -> float | None:
    """'60M' → 6e7, '1.5e8' → 1.5e8; None stays None."""
    if text is None:
        return None
    t = text.strip().lower()
    try:
        return float(t[:-1]) * SUFFIX[t[-1]] if t and t[-1] in SUFFIX else float(t)
    except ValueError:
        raise TaskDistillError(f"--max-params {text!r} is not a number; write e.g. 60M, 1.2B or 6e7") from None


def register(app: typer.Typer) -> None:
    """Add ``report`` to the root app."""

    @app.command("report")
    def report(
        study: Path = typer.Argument(..., help="Study folder (the --dir of `taskdistill study run`)."),
        out: Path = typer.Option(None, "-o", "--out", help="report.html to write (default: STUDY/report.html); "
                                 "report.md and results.json are written next to it."),
        name: str = typer.Option(None, "--study", help="Study name, when the folder's store holds several."),
        min_macro_f1: float = typer.Option(None, help="Constraint: in-domain macro-F1 at least this "
                                           "(default: 90 % of the teacher's)."),
        min_gk_retention: float = typer.Option(0.7, help="Constraint: general-knowledge retention at least this."),
        max_params: str = typer.Option(None, help="Constraint: at most this many parameters (e.g. 60M)."),
        max_latency_ms: float = typer.Option(None, help="Constraint: at most this latency per headline (ms)."),
        bootstrap: int = typer.Option(100, min=0, help="Bootstrap replicates for the law bands and intervals "
                                      "(0: none; the findings use at least 400)."),
        laws: bool = typer.Option(True, "--laws/--no-laws", help="Fit laws (off: plots of the observations only)."),
    ) -> None:
        """Write one self-contained report.html (offline: inline SVG plots, no CDN), report.md and results.json:
        curves with fitted laws and bands, GK retention, collapse gap, dataset size, schedules, Pareto frontier,
        recommendation, runs, cost and provenance."""
        from rich.console import Console

        from taskdistill.cache import check_writable
        from taskdistill.report.build import write_report

        check_writable(out or study / "report.html", "-o")  # before the laws are fitted
        paths = write_report(study, out, study=name, min_macro_f1=min_macro_f1, min_gk_retention=min_gk_retention,
                             max_params=parse_count(max_params), max_latency_ms=max_latency_ms, bootstrap=bootstrap,
                             fit_laws=laws)
        console = Console()
        for kind, path in paths.items():
            console.print(f"[green]wrote[/green] {kind:8s} {path}")
