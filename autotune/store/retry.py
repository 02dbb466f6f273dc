"""Transient database errors are waited out with backoff instead of killing a worker.

A PostgreSQL restart, a dropped connection, a deadlock or SQLite's "database is locked" say
nothing about the work itself: the same transaction succeeds a few seconds later. Everything
else (a missing table, a constraint violation, a bad URL) is not retried.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

from autotune.errors import one_line

P = ParamSpec("P")
R = TypeVar("R")

RETRY_SECONDS_ENV = "AUTOTUNE_DB_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 300.0
log = logging.getLogger("autotune.store")

# Lower-case fragments of the messages PostgreSQL, psycopg and SQLite give for conditions that
# pass on their own. Matching text is the only portable way: drivers wrap these differently.
TRANSIENT_MARKERS = (
    "database is locked",
    "database table is locked",
    "deadlock detected",
    "could not serialize access",
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "connection reset",
    "connection is closed",
    "connection timed out",
    "connection to server",
    "could not connect",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "ssl connection has been closed",
    "consuming input failed",
    "sending query failed",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry of the same transaction can get past."""
    for error in _chain(exc):
        if getattr(error, "transient", False):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        text = str(error).lower()
        if any(marker in text for marker in TRANSIENT_MARKERS):
            return True
    return False


def root_cause(exc: BaseException) -> str:
    """The driver's own words (Optuna and SQLAlchemy wrap them in generic messages)."""
    *_, innermost = _chain(exc)
    return one_line(innermost, first_line_only=True, limit=200)


def retry_seconds() -> float:
    """How long to keep retrying one operation: ``$AUTOTUNE_DB_RETRY_SECONDS`` or 300 s."""
    try:
        return float(os.environ.get(RETRY_SECONDS_ENV, DEFAULT_RETRY_SECONDS))
    except ValueError:
        return DEFAULT_RETRY_SECONDS


def backoff_delays(budget: float) -> Iterator[float]:
    """0.5, 1, 2, 4 ... capped at 15 s, with jitter so workers do not retry in lockstep."""
    deadline = time.monotonic() + budget
    delay = 0.5
    while (left := deadline - time.monotonic()) > 0:
        yield min(delay * random.uniform(0.8, 1.2), left)
        delay = min(delay * 2, 15.0)


def call_with_retry(what: str, func: Callable[[], R], budget: float | None = None) -> R:
    """Run ``func``; on a transient database error wait and run it again until ``budget``."""
    delays = backoff_delays(retry_seconds() if budget is None else budget)
    attempt = 0
    while True:
        try:
            return func()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            attempt += 1
            first = root_cause(exc)
            log.warning(
                "%s: database unavailable (%s); retry %d in %.1fs", what, first, attempt, delay
            )
            time.sleep(delay)


def retrying(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of :func:`call_with_retry` for functions that are one transaction."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return call_with_retry(func.__qualname__, lambda: func(*args, **kwargs))

    return wrapper
