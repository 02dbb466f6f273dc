"""Trials in autotune's tables: one row per measured trial, written once."""

from __future__ import annotations

from sqlalchemy import select

from autotune.errors import StorageError
from autotune.store.db import session_scope
from autotune.store.models import TrialRecord
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
def recorded_numbers(url: str, study: str) -> set[int]:
    with session_scope(url) as session:
        query = select(TrialRecord.trial_number).where(TrialRecord.study_name == study)
        return set(session.scalars(query))
