"""``autotune`` console command: one Typer sub-app per command group."""

from __future__ import annotations

import logging
import os
import sys

import typer

from autotune.cli import db, results, study, teacher, trial, worker
from autotune.cli.output import console_err
from autotune.errors import AutotuneError

app = typer.Typer(
    name="autotune",
    help="Find the best compressed transformer classifier for your latency budget on this CPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(trial.app, name="trial")
app.add_typer(teacher.app, name="teacher")
app.add_typer(study.app, name="study")
app.add_typer(db.app, name="db")
app.command("pareto")(results.pareto)
app.command("best")(results.best)
app.command("export")(results.export)
app.command("worker")(worker.worker)


def main() -> None:
    """Run the CLI; an :class:`AutotuneError` becomes one red line and exit status 1."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Retries of a busy or restarting database, and stale trials, are reported as they happen.
    logging.basicConfig(level=logging.WARNING, format="warning (pid %(process)d): %(message)s")
    try:
        app()
    except AutotuneError as exc:
        console_err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console_err.print("[yellow]interrupted[/]")
        sys.exit(130)
