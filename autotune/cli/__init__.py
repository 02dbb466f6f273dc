"""``autotune`` console command: one Typer sub-app per command group."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.markup import escape
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from autotune.cli import dashboard, db, remeasure, results, study, teacher, trial, worker
from autotune.cli.output import console_err
from autotune.errors import AutotuneError, one_line

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
app.command("remeasure")(remeasure.remeasure)
app.command("dashboard")(dashboard.dashboard)


def _report_warnings() -> None:
    """Retries of a busy or restarting database, and stale trials, are reported as they
    happen; other libraries' log records stay out of the user's terminal."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("warning (pid %(process)d): %(message)s"))
    logger = logging.getLogger("autotune")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main() -> None:
    """Run the CLI; an :class:`AutotuneError` becomes one red line and exit status 1."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _report_warnings()
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError:
        sys.exit(2)  # the help was shown
    except UsageError as exc:
        # Click draws a multi-line box; a bad option gets one line like every other error.
        where = exc.ctx.command_path if exc.ctx else "autotune"
        message = one_line(exc.format_message())
        console_err.print(
            f"[bold red]error:[/] {escape(message)} (see: {where} --help)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    except AutotuneError as exc:
        # One line, whatever a user-supplied name or path inside the message holds.
        message = str(exc).replace("\r", "\\r").replace("\n", "\\n")
        console_err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console_err.print("[yellow]interrupted[/]")
        sys.exit(130)
    if code == 130:  # Typer turns Ctrl-C into exit status 130, silently
        console_err.print("[yellow]interrupted[/]")
    if isinstance(code, int) and code:
        sys.exit(code)
