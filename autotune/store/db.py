"""Engines, sessions and schema versions of the result database.

``session_scope`` is the one place that turns SQLAlchemy errors into :class:`StorageError`.
Migrations run only from ``autotune db upgrade``; other commands check the revision and say
what to run. A database with no tables at all is initialised at the current revision, as
Optuna does with its own tables.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from autotune.errors import DatabaseNotFoundError, SchemaOutOfDateError, StorageError, one_line
from autotune.store.retry import is_transient

STORAGE_ENV = "AUTOTUNE_STORAGE"
DEFAULT_STORAGE = "sqlite:///autotune.db"
VERSION_TABLE = "autotune_alembic_version"
# The newest file in alembic/versions; a test keeps the two equal.
HEAD_REVISION = "0004"


def only_autotune_tables(name: str | None, kind: str, parent_names: object) -> bool:
    """Alembic's include_name: autogenerate sees autotune's tables, never Optuna's."""
    return kind != "table" or bool(name and name.startswith("autotune_"))


def _quiet_alembic() -> None:
    # Alembic announces every step at INFO (and Optuna's alembic.ini turns that on again when
    # Optuna migrates); autotune reports the outcome itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)


_quiet_alembic()


def storage_url(explicit: str | None = None) -> str:
    """``--storage``, else ``$AUTOTUNE_STORAGE``, else the SQLite file ``autotune.db``."""
    url = explicit or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if "://" not in url:
        raise StorageError(
            f"storage '{url}' is not a database URL; did you mean 'sqlite:///{url}'? "
            "(PostgreSQL: postgresql://user@host/db)"
        )
    # SQLAlchemy's default PostgreSQL driver is psycopg2; autotune ships psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@cache
def engine_for(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            # Several workers may share one file: wait for locks instead of failing at once.
            return create_engine(url, connect_args={"timeout": 60})
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StorageError(f"invalid storage URL '{redact(url)}': {exc}") from None


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    session = sessionmaker(engine_for(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        with contextlib.suppress(SQLAlchemyError):  # a dropped connection cannot roll back
            session.rollback()
        raise StorageError(
            f"database error on '{redact(url)}': {_first_line(exc)}", transient=is_transient(exc)
        ) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _first_line(exc: BaseException) -> str:
    text = one_line(getattr(exc, "orig", None) or exc, first_line_only=True)
    if "readonly database" in text:
        return f"permission denied ({text}): the file or its folder is not writable"
    if "unable to open database file" in text:
        return f"{text}: check that its folder exists and is writable"
    return text


def check_exists(url: str) -> None:
    """Refuse a SQLite file that is not there: connecting would create it."""
    from autotune.settings import sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseNotFoundError(
            f"no database file '{path}' (--storage '{redact(url)}'); check the name, or start "
            f"a study there: autotune study run SPEC --storage '{redact(url)}'"
        )


def check_reachable(url: str) -> None:
    try:
        with engine_for(url).connect():
            pass
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot reach database '{redact(url)}': {_first_line(exc)}") from None


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrations_dir() -> Path:
    """The alembic/ folder: ``autotune/migrations`` in a wheel, ``alembic/`` in a checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "migrations", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise StorageError("autotune's migrations are missing from this installation")


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    """autotune's schema revision in the database (None before the first upgrade).

    Read with one query rather than through Alembic, whose import alone costs more than
    a whole ``autotune best``."""
    try:
        with engine_for(url).connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot reach database '{redact(url)}': {_first_line(exc)}") from None


def upgrade(url: str, revision: str = "head", optuna_first: bool = True) -> str:
    """Upgrade Optuna's schema, then autotune's; returns autotune's new revision."""
    from alembic import command

    check_reachable(url)
    if optuna_first:
        upgrade_optuna(url)
    try:
        command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"migration of '{redact(url)}' failed: {_first_line(exc)}") from None
    if not optuna_first:
        upgrade_optuna(url)
    return current_revision(url) or "base"


def upgrade_optuna(url: str) -> None:
    import optuna

    try:
        # Optuna's migration configures logging from its alembic.ini, printing each step to
        # the stderr of that moment: give it a buffer.
        with contextlib.redirect_stderr(io.StringIO()):
            storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
            storage.upgrade()
    except SQLAlchemyError as exc:
        raise StorageError(f"Optuna schema upgrade failed: {_first_line(exc)}") from None
    finally:
        _quiet_alembic()


def ensure_current(url: str, create: bool = True) -> None:
    """Raise :class:`SchemaOutOfDateError` unless autotune's tables are at the head revision.

    An empty database is initialised (both schemas) instead: there is nothing to migrate.
    With ``create=False`` (commands that only read) a missing or empty database is refused
    instead, and nothing is written.
    """
    if not create:
        check_exists(url)
    revision = current_revision(url)
    head = HEAD_REVISION
    if revision == head:
        return
    tables = [t for t in inspect(engine_for(url)).get_table_names() if t.startswith("autotune_")]
    if revision is None and not tables:
        if not create:
            raise DatabaseNotFoundError(
                f"database '{redact(url)}' holds no autotune results yet; start a study "
                f"there: autotune study run SPEC --storage '{redact(url)}'"
            )
        upgrade(url)
        return
    raise SchemaOutOfDateError(
        f"database '{redact(url)}' has autotune schema revision {revision or 'none'}, "
        f"this autotune needs {head}; stop all workers and run: "
        f"autotune db upgrade --storage '{redact(url)}'"
    )
