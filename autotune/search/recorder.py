"""Mirror finished Optuna trials into autotune's tables, and keep the front snapshots current.

Several workers may finish trials at the same moment. Each snapshot is computed while holding
a row lock on the study (PostgreSQL), after re-reading the trials, so the latest snapshot
always covers every trial finished before it; on SQLite, where writers are serialised anyway,
each worker recomputes the front once more when it stops.
"""

from __future__ import annotations

import random
import time

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select
from sqlalchemy.orm import Session

from autotune.compression.config import LatencyResult
from autotune.errors import StorageError
from autotune.search.objective import trial_reason, trial_status
from autotune.spec import StudySpec
from autotune.store import fronts
from autotune.store.db import session_scope
from autotune.store.models import (
    BaselineRecord,
    LatencyProbeRecord,
    StudyRecord,
    TrialRecord,
    TrialStatus,
)
from autotune.store.retry import retrying

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class SqlProbeCache:
    """Latency probes stored per hardware fingerprint (shared by every worker and study)."""

    def __init__(self, url: str, hardware_id: str) -> None:
        self.url = url
        self.hardware_id = hardware_id

    @retrying
    def get(self, key: str) -> LatencyResult | None:
        with session_scope(self.url) as session:
            row = LatencyProbeRecord.find(session, self.hardware_id, key)
            if row is None:
                return None
            return LatencyResult(
                row.median_ms,
                row.median_ms,
                0.0,
                row.reference_ms,
                row.reference_ms / row.median_ms,
            )

    @retrying
    def put(self, key: str, result: LatencyResult) -> None:
        try:
            with session_scope(self.url) as session:
                if LatencyProbeRecord.find(session, self.hardware_id, key) is None:
                    session.add(
                        LatencyProbeRecord(
                            hardware_id=self.hardware_id,
                            key=key,
                            median_ms=result.median_ms,
                            reference_ms=result.reference_median_ms,
                        )
                    )
        except StorageError as exc:
            if exc.transient:
                raise
            # otherwise another worker stored the same probe first


class TrialRecorder:
    """Optuna callback: mirror a finished trial into autotune's tables and update the front."""

    def __init__(self, url: str, spec: StudySpec) -> None:
        self.url = url
        self.spec = spec

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.record(trial)
        if trial.state == TrialState.COMPLETE:
            self.update_front(study, trial.user_attrs["hardware_id"])

    @retrying
    def record(self, trial: FrozenTrial) -> None:
        if trial.user_attrs.get("hardware_id") is None:
            return  # never reached the objective: nothing measured, nothing to mirror
        try:
            with session_scope(self.url) as session:
                if TrialRecord.find(session, self.spec.name, trial.number) is None:
                    session.add(self._row(trial))
        except StorageError as exc:
            if exc.transient or not self._recorded(trial.number):
                raise
            # otherwise another worker mirrored the same trial first

    def _row(self, trial: FrozenTrial) -> TrialRecord:
        artifact = trial.user_attrs.get("artifact", {})
        return TrialRecord(
            study_name=self.spec.name,
            trial_number=trial.number,
            status=TrialStatus(trial_status(trial)),
            config=trial.user_attrs.get("config", {}),
            metrics=trial.user_attrs.get("metrics", {}),
            reason=trial_reason(trial),
            artifact_id=artifact.get("id"),
            artifact_sha256=artifact.get("sha256"),
            hardware_id=trial.user_attrs["hardware_id"],
            seconds=trial.duration.total_seconds() if trial.duration else 0.0,
        )

    def _recorded(self, number: int) -> bool:
        with session_scope(self.url) as session:
            return TrialRecord.find(session, self.spec.name, number) is not None

    def update_front(self, study: optuna.Study, hardware_id: str) -> None:
        for attempt in range(10):
            try:
                return self._snapshot(study, hardware_id)
            except StorageError as exc:
                if exc.transient or attempt == 9:
                    raise
                time.sleep(random.uniform(0.05, 0.3))  # a concurrent worker took our version

    @retrying
    def _snapshot(self, study: optuna.Study, hardware_id: str) -> None:
        with session_scope(self.url) as session:
            self._lock_study(session)
            values = next(
                b.values
                for b in BaselineRecord.for_study(session, self.spec.name)
                if b.hardware_id == hardware_id
            )
            reference = fronts.reference_point(
                self.spec.objectives,
                values,
                self.spec.constraints.min_accuracy,
                values["num_labels"],
            )
            # Read after taking the lock: whoever writes last has seen every finished trial.
            trials = study.get_trials(deepcopy=False, states=FINISHED)
            front = fronts.compute_front(trials, self.spec.objectives, hardware_id, reference)
            fronts.record_snapshot(session, self.spec.name, hardware_id, front, len(trials))

    def _lock_study(self, session: Session) -> None:
        query = select(StudyRecord.id).where(StudyRecord.study_name == self.spec.name)
        session.execute(query.with_for_update())  # a no-op on SQLite, which locks the file

    @retrying
    def sync(self, study: optuna.Study) -> None:
        """Mirror finished trials that have no autotune row yet (a crash, Ctrl-C, a dead worker)."""
        with session_scope(self.url) as session:
            query = select(TrialRecord.trial_number).where(TrialRecord.study_name == self.spec.name)
            recorded = set(session.scalars(query))
        for trial in study.get_trials(deepcopy=False, states=FINISHED):
            if trial.number not in recorded:
                self.record(trial)

    def hardware_ids(self, study: optuna.Study) -> set[str]:
        return {
            t.user_attrs["hardware_id"]
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "hardware_id" in t.user_attrs
        }
