"""Transient database errors, produced for real, are told apart and waited out."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from autotune.store.retry import call_with_retry, is_transient, root_cause


def _locked_database(path: Path, seconds: float) -> threading.Thread:
    """Hold SQLite's write lock for ``seconds`` from another connection."""
    ready = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path)
        connection.execute("BEGIN EXCLUSIVE")
        ready.set()
        time.sleep(seconds)
        connection.rollback()
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    return thread


def _writer(path: Path):
    # A short busy timeout, so the lock surfaces as an error instead of a wait.
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    return engine, write


def test_sqlite_lock_is_transient_and_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x INTEGER)").connection.close()
    engine, write = _writer(path)
    holder = _locked_database(path, seconds=1.5)
    with pytest.raises(OperationalError) as raised:
        write()
    assert is_transient(raised.value) and "database is locked" in root_cause(raised.value)
    started = time.monotonic()
    call_with_retry("insert", write, budget=30)
    assert time.monotonic() - started > 0.5  # it waited for the lock holder
    holder.join()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_retry_gives_up_after_its_budget(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x INTEGER)").connection.close()
    _, write = _writer(path)
    holder = _locked_database(path, seconds=3)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        call_with_retry("insert", write, budget=1)
    assert time.monotonic() - started < 2.5
    holder.join()


def test_refused_connection_is_transient_but_bad_sql_is_not(tmp_path: Path) -> None:
    refused = create_engine("postgresql+psycopg://u@127.0.0.1:1/db")
    with pytest.raises(SQLAlchemyError) as raised:
        refused.connect()
    assert is_transient(raised.value)

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SQLAlchemyError) as raised, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table"))
    assert not is_transient(raised.value)
    calls = []

    def failing() -> None:
        calls.append(1)
        raise raised.value

    with pytest.raises(SQLAlchemyError):
        call_with_retry("select", failing, budget=5)
    assert len(calls) == 1  # a permanent error is not retried
