"""``autotune db upgrade``: the only command that migrates a database."""

from __future__ import annotations

import typer

from autotune.cli.options import Storage
from autotune.cli.output import console
from autotune.store import db

app = typer.Typer(help="Manage the result database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(storage: Storage = None) -> None:
    """Upgrade Optuna's schema, then autotune's, to this version's revisions."""
    url = db.storage_url(storage)
    before = db.current_revision(url)
    after = db.upgrade(url)
    console.print(f"{db.redact(url)}: autotune schema {before or 'none'} -> {after}")


@app.command("current")
def current(storage: Storage = None) -> None:
    """Show the database's autotune schema revision and this version's head."""
    url = db.storage_url(storage)
    console.print(
        f"{db.redact(url)}: {db.current_revision(url) or 'none'} (head {db.head_revision()})"
    )
