"""Optuna's RDB storage, made to wait out transient database errors.

Optuna's :class:`RDBStorage` stays the engine (studies, trials, heartbeats, stale-trial
retry); this subclass only re-runs a storage call when it failed for a reason that passes on
its own, so a PostgreSQL restart or a busy SQLite file does not kill a worker.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from sqlalchemy.exc import SQLAlchemyError

from autotune.errors import StorageError, one_line
from autotune.search.heartbeat import grace_seconds, heartbeat_seconds
from autotune.store.db import redact
from autotune.store.retry import call_with_retry

log = logging.getLogger("autotune.store")

# Every call that talks to the database. Private ones are listed because Optuna's own
# _CachedStorage wrapper calls them on the backend.
RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    # What a trial's suggest_* calls through the cache: unretried, one dropped connection
    # while a worker sampled failed the trial and ended the worker (PostgreSQL restart test).
    "_set_trial_param",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "_get_stale_trial_ids",
)


def _retried(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: RDBStorage, *args: Any, **kwargs: Any) -> Any:
        return call_with_retry(f"optuna {name}", lambda: method(self, *args, **kwargs))

    return wrapper


class ResilientRDBStorage(RDBStorage):
    """:class:`RDBStorage` whose calls survive connection drops, restarts, locks, deadlocks."""

    def set_trial_state_values(self, trial_id: int, state: Any, values: Any = None) -> bool:
        attempts = 0

        def tell() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except UpdateFinishedTrialError:
                # The first attempt may have committed before its connection dropped.
                if attempts > 1 and RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise

        return call_with_retry("optuna set_trial_state_values", tell)

    def record_heartbeat(self, trial_id: int) -> None:
        # Runs in Optuna's heartbeat thread, where an exception would end the heartbeats of a
        # live trial: log and let the next beat try again.
        try:
            call_with_retry("heartbeat", lambda: RDBStorage.record_heartbeat(self, trial_id), 0)
        except Exception as exc:
            log.warning("heartbeat of trial id %d not recorded: %s", trial_id, exc)


for _name in RETRIED:
    setattr(ResilientRDBStorage, _name, _retried(_name, getattr(RDBStorage, _name)))


def optuna_storage(url: str, heartbeat: int | None = None) -> ResilientRDBStorage:
    """Optuna's RDB storage with heartbeats, one retry of trials whose worker died, and
    transient database errors retried with backoff."""
    interval = heartbeat_seconds(heartbeat)
    engine_kwargs = (
        {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeat is marked experimental
            return ResilientRDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=grace_seconds(interval),
                failed_trial_callback=RetryFailedTrialCallback(max_retry=1),
            )
    except (SQLAlchemyError, RuntimeError) as exc:
        reason = one_line(exc, limit=300)
        raise StorageError(f"cannot open Optuna storage '{redact(url)}': {reason}") from None
