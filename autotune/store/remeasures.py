"""Re-measurements in autotune's tables: one row per trial and machine, claimed before it is
measured, so that workers on several machines (or several runs of ``remeasure`` on one)
never measure one model twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from autotune.errors import StorageError
from autotune.store.db import session_scope
from autotune.store.models import RemeasureRecord, RemeasureStatus
from autotune.store.retry import retrying

# A claim nobody finished for this long belongs to a worker that died: it may be taken over.
STALE_AFTER = timedelta(minutes=30)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def _claimable(row: RemeasureRecord, again_if_unreliable: bool, now: datetime) -> bool:
    if row.status == RemeasureStatus.failed:
        return True
    if row.status == RemeasureStatus.running:
        return now - _aware(row.updated_at) > STALE_AFTER
    return again_if_unreliable and not row.metrics.get("latency_reliable", True)


@retrying
def claim(
    url: str,
    study: str,
    number: int,
    where: tuple[str, str],
    worker: str,
    again_if_unreliable: bool = False,
) -> bool:
    """Take trial ``number`` for measuring on ``where`` = (this machine, the trial's own
    machine): True when this worker is to measure it. A trial measured here already is not
    taken again, unless it failed, its claim went stale, or (``again_if_unreliable``) its
    latency was marked unreliable."""
    hardware_id, source = where
    now = datetime.now(UTC)
    try:
        with session_scope(url) as session:
            row = RemeasureRecord.find(session, study, number, hardware_id)
            if row is None:
                session.add(
                    RemeasureRecord(
                        study_name=study,
                        trial_number=number,
                        hardware_id=hardware_id,
                        source_hardware_id=source,
                        status=RemeasureStatus.running,
                        metrics={},
                        worker=worker,
                        seconds=0.0,
                        updated_at=now,
                    )
                )
                return True
            if not _claimable(row, again_if_unreliable, now):
                return False
            # Compare and set: of two workers taking over the same row, one wins.
            taken = session.execute(
                update(RemeasureRecord)
                .where(
                    RemeasureRecord.id == row.id,
                    RemeasureRecord.status == row.status,
                    RemeasureRecord.worker == row.worker,
                )
                .values(status=RemeasureStatus.running, worker=worker, updated_at=now)
            )
            return taken.rowcount == 1
    except StorageError as exc:
        if exc.transient:
            raise
        return False  # another worker inserted the same row first


@retrying
def finish(
    url: str,
    study: str,
    number: int,
    hardware_id: str,
    metrics: dict[str, Any] | None,
    reason: str | None,
    seconds: float,
) -> None:
    """Store what a claimed measurement found: its metrics, or why it failed."""
    with session_scope(url) as session:
        row = RemeasureRecord.find(session, study, number, hardware_id)
        if row is None:
            return
        row.status = RemeasureStatus.complete if metrics is not None else RemeasureStatus.failed
        row.metrics = metrics or {}
        row.reason = reason
        row.seconds = seconds
        row.updated_at = datetime.now(UTC)


@retrying
def on(url: str, study: str, hardware_id: str) -> list[RemeasureRecord]:
    with session_scope(url) as session:
        rows = RemeasureRecord.on(session, study, hardware_id)
        session.expunge_all()
        return rows
