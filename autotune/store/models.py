"""SQLAlchemy 2 models of the ``autotune_*`` tables.

No foreign keys point into Optuna's tables: trials are referred to by study name and trial
number, so either schema can be created or upgraded first. Query helpers live on the models
as classmethods, as in Optuna's ``storages/_rdb``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

NAME = String(512)


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class TrialStatus(enum.Enum):
    complete = "complete"
    failed = "failed"
    stopped = "stopped"  # broke the latency constraint at the probe, before training


class StudyRecord(Base):
    """The spec a study was created with, frozen (resuming with another spec is refused)."""

    __tablename__ = "autotune_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(NAME, unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @classmethod
    def find(cls, session: Session, study_name: str) -> StudyRecord | None:
        return session.scalar(select(cls).where(cls.study_name == study_name))

    @classmethod
    def all(cls, session: Session) -> list[StudyRecord]:
        return list(session.scalars(select(cls).order_by(cls.created_at)))


class HardwareRecord(Base):
    __tablename__ = "autotune_hardware"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # fingerprint id
    info: Mapped[dict[str, Any]] = mapped_column(JSON)

    @classmethod
    def some(cls, session: Session, ids: list[str]) -> list[HardwareRecord]:
        return list(session.scalars(select(cls).where(cls.id.in_(ids)))) if ids else []

    @classmethod
    def ensure(cls, session: Session, info: dict[str, Any]) -> HardwareRecord:
        record = session.get(cls, info["id"])
        if record is None:
            record = cls(id=info["id"], info=info)
            session.add(record)
        return record


class BaselineRecord(Base):
    """Teacher baselines of a study on one machine."""

    __tablename__ = "autotune_baselines"
    __table_args__ = (UniqueConstraint("study_name", "hardware_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(NAME, index=True)
    hardware_id: Mapped[str] = mapped_column(ForeignKey("autotune_hardware.id"))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)

    @classmethod
    def for_study(cls, session: Session, study_name: str) -> list[BaselineRecord]:
        return list(session.scalars(select(cls).where(cls.study_name == study_name)))


class TrialRecord(Base):
    """What autotune measured for one Optuna trial, with the artifact it produced."""

    __tablename__ = "autotune_trials"
    __table_args__ = (UniqueConstraint("study_name", "trial_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(NAME, index=True)
    trial_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[TrialStatus] = mapped_column(Enum(TrialStatus, name="autotune_trial_status"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    artifact_id: Mapped[str | None] = mapped_column(String(128))
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    hardware_id: Mapped[str] = mapped_column(ForeignKey("autotune_hardware.id"))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    hardware: Mapped[HardwareRecord] = relationship(lazy="joined")

    @classmethod
    def for_study(cls, session: Session, study_name: str) -> list[TrialRecord]:
        query = select(cls).where(cls.study_name == study_name).order_by(cls.trial_number)
        return list(session.scalars(query))

    @classmethod
    def numbered(cls, session: Session, study_name: str, numbers: list[int]) -> list[TrialRecord]:
        if not numbers:
            return []
        query = select(cls).where(cls.study_name == study_name, cls.trial_number.in_(numbers))
        return list(session.scalars(query))

    @classmethod
    def find(cls, session: Session, study_name: str, number: int) -> TrialRecord | None:
        query = select(cls).where(cls.study_name == study_name, cls.trial_number == number)
        return session.scalar(query)


class LatencyProbeRecord(Base):
    """Latency of an architecture + bit width on one machine (decision 4)."""

    __tablename__ = "autotune_latency_probes"
    __table_args__ = (UniqueConstraint("hardware_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hardware_id: Mapped[str] = mapped_column(ForeignKey("autotune_hardware.id"))
    key: Mapped[str] = mapped_column(String(64))  # hash of teacher, architecture, settings
    median_ms: Mapped[float] = mapped_column(Float)
    reference_ms: Mapped[float] = mapped_column(Float)

    @classmethod
    def find(cls, session: Session, hardware_id: str, key: str) -> LatencyProbeRecord | None:
        return session.scalar(select(cls).where(cls.hardware_id == hardware_id, cls.key == key))


class FrontSnapshot(Base):
    """One version of a study's feasible Pareto front on one machine."""

    __tablename__ = "autotune_front_snapshots"
    __table_args__ = (UniqueConstraint("study_name", "hardware_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(NAME, index=True)
    hardware_id: Mapped[str] = mapped_column(ForeignKey("autotune_hardware.id"))
    version: Mapped[int] = mapped_column(Integer)
    trials_seen: Mapped[int] = mapped_column(Integer)  # finished trials when it was taken
    members: Mapped[list[int]] = mapped_column(JSON)  # trial numbers
    hypervolume: Mapped[float] = mapped_column(Float)
    reference_point: Mapped[list[float]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @classmethod
    def history(cls, session: Session, study_name: str, hardware_id: str | None = None):
        query = select(cls).where(cls.study_name == study_name)
        if hardware_id is not None:
            query = query.where(cls.hardware_id == hardware_id)
        return list(session.scalars(query.order_by(cls.hardware_id, cls.version)))

    @classmethod
    def latest(cls, session: Session, study_name: str, hardware_id: str) -> FrontSnapshot | None:
        query = (
            select(cls)
            .where(cls.study_name == study_name, cls.hardware_id == hardware_id)
            .order_by(cls.version.desc())
            .limit(1)
        )
        return session.scalar(query)

    @classmethod
    def next_version(cls, session: Session, study_name: str, hardware_id: str) -> int:
        query = select(func.max(cls.version)).where(
            cls.study_name == study_name, cls.hardware_id == hardware_id
        )
        return (session.scalar(query) or 0) + 1


class RemeasureStatus(enum.Enum):
    running = "running"  # claimed by a worker: nobody else measures it
    complete = "complete"
    failed = "failed"


class RemeasureRecord(Base):
    """A trial's exported model measured again on one machine, without training: accuracy
    and latency there. One row per trial and machine, so nothing is measured twice."""

    __tablename__ = "autotune_remeasurements"
    __table_args__ = (UniqueConstraint("study_name", "trial_number", "hardware_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(NAME, index=True)
    trial_number: Mapped[int] = mapped_column(Integer)
    hardware_id: Mapped[str] = mapped_column(ForeignKey("autotune_hardware.id"))
    source_hardware_id: Mapped[str] = mapped_column(String(32))  # where the trial trained
    status: Mapped[RemeasureStatus] = mapped_column(
        Enum(RemeasureStatus, name="autotune_remeasure_status")
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(String(256))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @classmethod
    def on(cls, session: Session, study_name: str, hardware_id: str) -> list[RemeasureRecord]:
        query = select(cls).where(cls.study_name == study_name, cls.hardware_id == hardware_id)
        return list(session.scalars(query.order_by(cls.trial_number)))

    @classmethod
    def find(
        cls, session: Session, study_name: str, number: int, hardware_id: str
    ) -> RemeasureRecord | None:
        query = select(cls).where(
            cls.study_name == study_name,
            cls.trial_number == number,
            cls.hardware_id == hardware_id,
        )
        return session.scalar(query)


class PromotionRecord(Base):
    """A configuration promoted to a rung of a multi-fidelity study. The unique key makes the
    claim: of two workers promoting the same configuration at once, one insert fails, so no
    configuration is trained twice at a rung. ``claimed_at`` lets a claim whose worker died
    before enqueueing the trial be taken over (compare-and-set on it)."""

    __tablename__ = "autotune_promotions"
    __table_args__ = (UniqueConstraint("study_name", "config_id", "rung"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(NAME, index=True)
    config_id: Mapped[str] = mapped_column(String(64))
    rung: Mapped[int] = mapped_column(Integer)
    source_trial: Mapped[int] = mapped_column(Integer)  # the lower-rung trial it resumes
    worker: Mapped[str] = mapped_column(String(256))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @classmethod
    def for_study(cls, session: Session, study_name: str) -> list[PromotionRecord]:
        query = select(cls).where(cls.study_name == study_name).order_by(cls.id)
        return list(session.scalars(query))
