"""CLI verb of this evaluation (filled in by its issue)."""

from __future__ import annotations

import typer


def register(eval_app: typer.Typer) -> None:
    """Add this verb to ``taskdistill eval``."""
