"""Studies in autotune's tables: the spec snapshot a study was created with, and the teacher
baselines each machine measured for it."""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autotune import cache
from autotune.errors import SpecError, StorageError, StudyNotFoundError
from autotune.spec import StudySpec
from autotune.store.db import session_scope
from autotune.store.models import BaselineRecord, HardwareRecord, StudyRecord
from autotune.store.retry import retrying


def spec_hash(spec: StudySpec) -> str:
    """What must not change when a study is resumed (the trial budget may)."""
    data = spec.model_dump(mode="json")
    data["search"].pop("n_trials", None)
    data.pop("storage", None)
    return cache.hash_json(data)


@retrying
def find_spec(url: str, name: str) -> StudySpec:
    """The spec a study was created with, as stored in the database."""
    with session_scope(url) as session:
        record = StudyRecord.find(session, name)
        if record is None:
            known = ", ".join(r.study_name for r in StudyRecord.all(session)) or "none"
            raise StudyNotFoundError(f"no study named {name!r} in this storage; studies: {known}")
        return StudySpec.model_validate(record.spec)


@retrying
def check_resumable(url: str, spec: StudySpec) -> bool:
    """Refuse a spec that differs from the stored one; True if the study already exists."""
    with session_scope(url) as session:
        record = StudyRecord.find(session, spec.name)
        if record is not None and not _same_spec(record, spec):
            raise SpecError(
                f"study '{spec.name}' already exists in this storage with a different spec; "
                "resume it with the same spec or give the new spec another name"
            )
        return record is not None


def _same_spec(record: StudyRecord, spec: StudySpec) -> bool:
    """The stored spec read with this autotune's defaults for settings added since it was
    stored: a study made by an older autotune resumes with the spec it was made with."""
    if record.spec_hash == spec_hash(spec):
        return True
    try:
        stored = StudySpec.model_validate(record.spec)
    except ValueError:
        return False
    return spec_hash(stored) == spec_hash(spec)


@retrying
def register_study(url: str, spec: StudySpec) -> None:
    """Snapshot the spec (after :func:`check_resumable` accepted it)."""
    with session_scope(url) as session:
        if StudyRecord.find(session, spec.name) is None:
            session.add(
                StudyRecord(
                    study_name=spec.name,
                    spec=spec.model_dump(mode="json"),
                    spec_hash=spec_hash(spec),
                )
            )


@retrying
def record_baselines(url: str, study: str, hardware: dict[str, Any], values: dict) -> None:
    """A machine's fingerprint and its teacher baselines; workers may race to insert them."""
    for attempt in range(3):
        try:
            return _record_baselines(url, study, hardware, values)
        except StorageError:
            if attempt == 2:
                raise
            time.sleep(random.uniform(0.1, 0.5))  # another worker inserted them first


def _record_baselines(url: str, study: str, hardware: dict[str, Any], values: dict) -> None:
    with session_scope(url) as session:
        HardwareRecord.ensure(session, hardware)
        session.flush()
        found = [
            b for b in BaselineRecord.for_study(session, study) if b.hardware_id == hardware["id"]
        ]
        if found:
            found[0].values = values
        else:
            session.add(BaselineRecord(study_name=study, hardware_id=hardware["id"], values=values))


def baselines_of(session: Session, study: str, hardware_id: str) -> dict[str, Any]:
    return next(
        b.values for b in BaselineRecord.for_study(session, study) if b.hardware_id == hardware_id
    )


def lock_study(session: Session, study: str) -> None:
    """Hold the study's row until the session ends (PostgreSQL); SQLite locks the file."""
    query = select(StudyRecord.id).where(StudyRecord.study_name == study)
    session.execute(query.with_for_update())
