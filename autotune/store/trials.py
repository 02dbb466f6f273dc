"""Trials in autotune's tables: one row per measured trial, written once by the objective;
only its status may later be settled against Optuna's."""

from __future__ import annotations

from sqlalchemy import select

from autotune.compression.config import TrialMetrics
from autotune.errors import StorageError
from autotune.store.db import session_scope
from autotune.store.models import TrialRecord, TrialStatus
from autotune.store.retry import retrying


@retrying
def insert_once(url: str, row: TrialRecord) -> None:
    """Insert the row unless the trial already has one (another worker may mirror the same
    trial first: that is not an error)."""
    try:
        with session_scope(url) as session:
            if TrialRecord.find(session, row.study_name, row.trial_number) is None:
                session.add(row)
    except StorageError as exc:
        if exc.transient or not _recorded(url, row.study_name, row.trial_number):
            raise


def _recorded(url: str, study: str, number: int) -> bool:
    with session_scope(url) as session:
        return TrialRecord.find(session, study, number) is not None


@retrying
def statuses(url: str, study: str) -> dict[int, TrialStatus]:
    """Trial number -> stored status, for every row of the study."""
    query = select(TrialRecord.trial_number, TrialRecord.status)
    with session_scope(url) as session:
        rows = session.execute(query.where(TrialRecord.study_name == study))
        return {number: status for number, status in rows}


@retrying
def set_status(url: str, study: str, number: int, status: TrialStatus, reason: str | None) -> None:
    """Optuna's word on how a trial ended; the metrics it measured stay as they were."""
    with session_scope(url) as session:
        row = TrialRecord.find(session, study, number)
        if row is not None:
            row.status = status
            row.reason = reason


@retrying
def measured(url: str, study: str) -> list[TrialMetrics]:
    """The metrics of the study's complete trials."""
    query = select(TrialRecord.metrics).where(
        TrialRecord.study_name == study, TrialRecord.status == TrialStatus.complete
    )
    with session_scope(url) as session:
        rows = session.scalars(query).all()
    return [m for m in map(TrialMetrics.from_json, rows) if m is not None]
