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
from autotune.store import fronts, measured, studies, trials
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
            self.update_front(trial.user_attrs["hardware_id"])

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

    def update_front(self, hardware_id: str) -> None:
        """A new front snapshot for ``hardware_id`` if its membership changed."""
        update_front(self.url, self.spec, hardware_id)

    def sync(self, study: optuna.Study) -> None:
        """Settle the rows of every finished trial (after a crash, Ctrl-C, a dead worker)."""
        self.settle(study.get_trials(deepcopy=False, states=FINISHED))

    def hardware_ids(self, study: optuna.Study) -> set[str]:
        return {
            t.user_attrs["hardware_id"]
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "hardware_id" in t.user_attrs
        }


def update_front(url: str, spec: StudySpec, hardware_id: str) -> None:
    """Store a new snapshot of the study's front on one machine if its membership changed;
    a concurrent worker taking the same version number first means: compute again."""
    for attempt in range(10):
        try:
            return _snapshot(url, spec, hardware_id)
        except StorageError as exc:
            if exc.transient or attempt == 9:
                raise
            time.sleep(random.uniform(0.05, 0.3))


@retrying
def _snapshot(url: str, spec: StudySpec, hardware_id: str) -> None:
    with session_scope(url) as session:
        studies.lock_study(session, spec.name)
        # Read after taking the lock: whoever writes last has seen every finished trial.
        view = measured.machine_view(url, spec.name, hardware_id)
        if not view.baselines:
            return  # the machine never measured its teacher baselines: nothing to compare
        limits = spec.constraints
        # Fronts and hypervolumes in the scale of the stored baseline (see summary_points).
        stored = view.stored_baselines
        reference = pareto.reference_point(
            spec.objectives, stored, limits.min_accuracy, stored["num_labels"]
        )
        points = pareto.summary_points(
            measured.trusted(view.trials),
            spec.objectives,
            {
                "min_accuracy": limits.min_accuracy,
                "max_latency_ms": limits.max_latency_ms,
                "max_size_mb": limits.max_size_mb,
            },
            stored["ort_fp32_ms"],
            spec.latency.optimise,
        )
        front = pareto.compute_front(points, spec.objectives, reference)
        fronts.record_snapshot(
            session,
            spec.name,
            hardware_id,
            front.members,
            front.hypervolume,
            front.reference_point,
            len(view.trials),
        )
