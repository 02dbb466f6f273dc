"""``autotune db upgrade``: the only command that migrates a database."""

from __future__ import annotations

import typer

from autotune import api
from autotune.cli.options import Storage
from autotune.cli.output import console

app = typer.Typer(help="Manage the result database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(storage: Storage = None) -> None:
    """Upgrade Optuna's schema, then autotune's, to this version's revisions."""
    before, after = api.upgrade_database(storage)
    console.print(f"{api.storage_label(storage)}: autotune schema {before or 'none'} -> {after}")


@app.command("current")
def current(storage: Storage = None) -> None:
    """Show the database's autotune schema revision and this version's head."""
    current_revision, head = api.database_revision(storage)
    console.print(f"{api.storage_label(storage)}: {current_revision or 'none'} (head {head})")
