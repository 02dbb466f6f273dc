"""Settle autotune's trial rows against the states Optuna stored, and keep the front
snapshots current.

The objective writes a trial's row (its metrics, its model) where it measures. Optuna has the
last word on how the trial ended, though: a worker killed between the row and Optuna's final
write, or values Optuna refuses, end a trial FAIL whose row says complete; and a trial killed
before the objective could write anything has no row. Both are settled here, from Optuna's
state, without touching the metrics.

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

from autotune.errors import StorageError
from autotune.search import pareto
from autotune.search.objective import trial_reason, trial_status
from autotune.spec import StudySpec
from autotune.store import fronts, studies, trials
from autotune.store.db import session_scope
from autotune.store.models import (
    TrialRecord,
    TrialStatus,
)
from autotune.store.retry import retrying

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class TrialRecorder:
    """Optuna callback: settle a finished trial's row and update the front."""

    def __init__(self, url: str, spec: StudySpec) -> None:
        self.url = url
        self.spec = spec

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.COMPLETE:
            self.settle([trial])
        else:
            self.update_front(study, trial.user_attrs["hardware_id"])

    def settle(self, finished: list[FrozenTrial]) -> None:
        """Give every measured finished trial a row whose status is Optuna's."""
        measured = [t for t in finished if t.user_attrs.get("hardware_id") is not None]
        if not measured:
            return  # none reached the objective: nothing measured, nothing to mirror
        stored = trials.statuses(self.url, self.spec.name)
        for trial in measured:
            status = TrialStatus(trial_status(trial))
            if trial.number not in stored:
                trials.insert_once(self.url, self._row(trial, status))
            elif stored[trial.number] != status:
                trials.set_status(
                    self.url, self.spec.name, trial.number, status, trial_reason(trial)
                )

    def _row(self, trial: FrozenTrial, status: TrialStatus) -> TrialRecord:
        """The row of a trial whose objective never wrote one: it measured nothing."""
        return TrialRecord(
            study_name=self.spec.name,
            trial_number=trial.number,
            status=status,
            config=trial.user_attrs.get("config", {}),
            metrics={},
            reason=trial_reason(trial),
            hardware_id=trial.user_attrs["hardware_id"],
            seconds=trial.duration.total_seconds() if trial.duration else 0.0,
        )

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
            studies.lock_study(session, self.spec.name)
            values = studies.baselines_of(session, self.spec.name, hardware_id)
            reference = pareto.reference_point(
                self.spec.objectives,
                values,
                self.spec.constraints.min_accuracy,
                values["num_labels"],
            )
            # Read after taking the lock: whoever writes last has seen every finished trial.
            finished = study.get_trials(deepcopy=False, states=FINISHED)
            front = pareto.compute_front(finished, self.spec.objectives, hardware_id, reference)
            fronts.record_snapshot(
                session,
                self.spec.name,
                hardware_id,
                [t.number for t in front.members],
                front.hypervolume,
                front.reference_point,
                len(finished),
            )

    def sync(self, study: optuna.Study) -> None:
        """Settle the rows of every finished trial (after a crash, Ctrl-C, a dead worker)."""
        self.settle(study.get_trials(deepcopy=False, states=FINISHED))

    def hardware_ids(self, study: optuna.Study) -> set[str]:
        return {
            t.user_attrs["hardware_id"]
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "hardware_id" in t.user_attrs
        }
