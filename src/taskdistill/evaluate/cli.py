"""``taskdistill eval task|knowledge``."""

from __future__ import annotations

import typer

eval_app = typer.Typer(help="Evaluate a model: in-domain task quality or general knowledge.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from taskdistill.evaluate import knowledge_cli, task_cli

    task_cli.register(eval_app)
    knowledge_cli.register(eval_app)
    app.add_typer(eval_app, name="eval")
