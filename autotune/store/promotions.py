"""Promotions of multi-fidelity studies: who promoted which configuration to which rung."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from autotune.errors import StorageError
from autotune.store.db import session_scope
from autotune.store.models import PromotionRecord, _now
from autotune.store.retry import retrying


@dataclass(frozen=True)
class Promotion:
    config_id: str
    rung: int
    source_trial: int
    claimed_at: datetime


@retrying
def claim(url: str, study: str, config_id: str, rung: int, source_trial: int, worker: str) -> bool:
    """Take the promotion of ``config_id`` to ``rung``; False if another worker has it."""
    try:
        with session_scope(url) as session:
            session.add(
                PromotionRecord(
                    study_name=study,
                    config_id=config_id,
                    rung=rung,
                    source_trial=source_trial,
                    worker=worker,
                )
            )
    except StorageError as exc:
        if exc.transient:
            raise
        return False  # the unique key: someone promoted it first
    return True


@retrying
def promotions(url: str, study: str) -> list[Promotion]:
    with session_scope(url) as session:
        return [
            Promotion(r.config_id, r.rung, r.source_trial, r.claimed_at)
            for r in PromotionRecord.for_study(session, study)
        ]


@retrying
def take_over(url: str, study: str, promotion: Promotion, worker: str) -> bool:
    """Take a claim over (its worker died before enqueueing the trial): compare-and-set on
    ``claimed_at``, so of two workers taking it over at once only one succeeds."""
    with session_scope(url) as session:
        done = session.execute(
            update(PromotionRecord)
            .where(
                PromotionRecord.study_name == study,
                PromotionRecord.config_id == promotion.config_id,
                PromotionRecord.rung == promotion.rung,
                PromotionRecord.claimed_at == promotion.claimed_at,
            )
            .values(claimed_at=_now(), worker=worker)
        )
        return done.rowcount == 1


def is_stale(promotion: Promotion, seconds: float) -> bool:
    claimed = promotion.claimed_at
    if claimed.tzinfo is None:  # SQLite returns naive datetimes (stored in UTC)
        claimed = claimed.replace(tzinfo=UTC)
    return _now() - claimed > timedelta(seconds=seconds)
