"""The ``taskdistill`` command line: parse, call the library, print. Each stage registers its verbs."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from taskdistill.errors import TaskDistillError

# typer carries its own click; its usage-error base class is public only as an ancestor of BadParameter
# (should that change, usage errors keep click's own multi-line form rather than break the CLI)
_UsageError = next((c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"),
                   type("_NoUsageError", (Exception,), {}))


class _Root(TyperGroup):
    """Root command group: a user error anywhere below becomes one line on stderr and exit code 2,
    and so does a command-line usage error (bad option value, missing option, unknown command)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TaskDistillError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        except _UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group or command: show its help
                raise
            where = getattr(exc.ctx, "command_path", None)
            hint = f" (see `{where} --help`)" if where else ""
            typer.echo(f"error: {exc.format_message().rstrip('.')}{hint}", err=True)
            raise typer.Exit(code=2) from None


app = typer.Typer(
    cls=_Root,
    name="taskdistill",
    help="Compress a teacher LLM for one domain task and measure what it keeps and forgets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Stage CLIs import their heavy back-ends lazily, inside the commands.
    from taskdistill.data import cli as data_cli
    from taskdistill.distill import cli as distill_cli
    from taskdistill.evaluate import cli as evaluate_cli
    from taskdistill.laws import cli as laws_cli
    from taskdistill.models import cli as models_cli
    from taskdistill.prune import cli as prune_cli
    from taskdistill.report import cli as report_cli
    from taskdistill.study import cli as study_cli

    for module in (models_cli, data_cli, evaluate_cli, prune_cli, distill_cli, study_cli, laws_cli, report_cli):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
