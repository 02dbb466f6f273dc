"""How often a running trial says it is alive, read without importing Optuna."""

from __future__ import annotations

import os

from autotune.errors import StorageError

HEARTBEAT_ENV = "AUTOTUNE_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 60


def heartbeat_seconds(explicit: int | None = None) -> int:
    """``--heartbeat``, else ``$AUTOTUNE_HEARTBEAT_SECONDS``, else 60 s."""
    if explicit is not None:
        return explicit
    raw = os.environ.get(HEARTBEAT_ENV)
    if raw is None:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise StorageError(f"{HEARTBEAT_ENV}={raw!r}; expected a whole number of seconds >= 1")
    return value


def grace_seconds(heartbeat: int) -> int:
    # A trial is declared dead 1.5 heartbeats after its last one, so that with the stale-trial
    # check running every quarter heartbeat it is FAIL within two heartbeat intervals.
    return max(heartbeat + 1, (3 * heartbeat + 1) // 2)
