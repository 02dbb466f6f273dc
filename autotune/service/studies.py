"""Create, run and join studies: ``study run``, ``study create`` and ``worker``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from autotune.errors import ConfigError
from autotune.progress import Progress
from autotune.service.reads import open_results, open_storage
from autotune.service.trials import as_spec
from autotune.settings import Settings, Where
from autotune.spec import StudySpec
from autotune.store import trials as trial_rows

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class StudyState:
    """Where a study stands, across all its workers: what ``run_study`` returns and what its
    ``on_progress`` callback receives after every trial."""

    name: str
    total: int  # trials in storage, in any state
    complete: int
    stopped: int
    failed: int
    running: int
    front_size: int
    best_speedup: float  # vs teacher PyTorch FP32, among trials meeting the accuracy floor
    # Multi-fidelity studies: configurations finished at the lowest rung (what n_trials
    # counts; promotions come on top); None for a study without rungs.
    configurations: int | None = None

    @property
    def finished(self) -> int:
        return self.complete + self.stopped + self.failed

    @property
    def counted(self) -> int:
        """What the study's budget counts: finished trials, or configurations."""
        return self.finished if self.configurations is None else self.configurations


OnProgress = Callable[[StudyState], None]


def study_state(study: optuna.Study, url: str, min_accuracy: float | None = None) -> StudyState:
    """Counts from Optuna (running trials included); the best speedup from autotune's rows."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    count = {state: sum(t.state == state for t in trials) for state in TrialState}
    speedups = [
        m.speedup_vs_teacher_pytorch
        for m in trial_rows.measured(url, study.study_name)
        if m.accuracy >= (min_accuracy or 0.0)
    ]
    return StudyState(
        name=study.study_name,
        total=len(trials),
        complete=count[TrialState.COMPLETE],
        stopped=count[TrialState.PRUNED],
        failed=count[TrialState.FAIL],
        running=count[TrialState.RUNNING],
        front_size=_front_size(study, trials),
        best_speedup=max(speedups, default=0.0),
        configurations=_configurations(study, trials),
    )


def _top_rung(study: optuna.Study) -> int | None:
    plan = study.user_attrs.get("fidelity")
    return len(plan["steps"]) - 1 if plan else None


def _front_size(study: optuna.Study, trials: list[Any]) -> int:
    """Optuna's front; in a multi-fidelity study, among top-rung trials only."""
    from optuna.trial import TrialState

    from autotune.search.fidelity import losses, rung_of
    from autotune.search.pareto import is_feasible, non_dominated

    top = _top_rung(study)
    if top is None:
        return len(study.best_trials) if any(t.state == TrialState.COMPLETE for t in trials) else 0
    done = [
        t for t in trials if t.state == TrialState.COMPLETE and rung_of(t) == top and is_feasible(t)
    ]
    return int(non_dominated(losses(done, study.directions)).sum()) if done else 0


def _configurations(study: optuna.Study, trials: list[Any]) -> int | None:
    from optuna.trial import TrialState

    from autotune.search.fidelity import rung_of

    if _top_rung(study) is None:
        return None
    counted = (TrialState.COMPLETE, TrialState.PRUNED)
    return sum(t.state in counted and rung_of(t) == 0 for t in trials)


def _callbacks(on_progress: OnProgress | None, url: str, min_accuracy: float | None) -> list[Any]:
    if on_progress is None:
        return []
    return [lambda study, trial: on_progress(study_state(study, url, min_accuracy))]


def run_study(
    spec: StudySpec | str | Path,
    storage: str | Settings | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    *,
    progress: Progress | None = None,
    on_progress: OnProgress | None = None,
    workers: int = 1,
    **where: Unpack[Where],
) -> StudyState:
    """Create or resume the spec's study and run it until ``n_trials`` trials have finished.

    ``workers > 1`` sets the study up here, then runs that many ``autotune worker`` processes
    on it (``on_progress`` is then called every second while they run).
    """
    from autotune.search import local_workers

    if workers < 1:
        raise ConfigError(f"workers={workers}; expected 1 or more")
    spec = as_spec(spec)
    settings = Settings.resolve(storage or spec.storage, **where)
    limit = spec.constraints.min_accuracy
    study = _set_up(spec, settings, n_trials, timeout, progress, on_progress, workers > 1)
    if workers > 1:
        local_workers.run_local_workers(
            spec.name,
            settings,
            workers,
            timeout,
            on_poll=(
                (lambda: on_progress(study_state(study, settings.storage, limit)))
                if on_progress
                else None
            ),
        )
    return study_state(study, settings.storage, limit)


def _set_up(
    spec: StudySpec,
    settings: Settings,
    n_trials: int | None,
    timeout: float | None,
    progress: Progress | None,
    on_progress: OnProgress | None,
    prepare_only: bool,
) -> optuna.Study:
    from autotune.search import worker

    place = worker.Place(open_storage(settings), settings.artifact_store(), progress)
    callbacks = _callbacks(on_progress, settings.storage, spec.constraints.min_accuracy)
    return worker.run_study(spec, place, n_trials, timeout, callbacks, prepare_only)


def create_study(
    spec: StudySpec | str | Path,
    storage: str | Settings | None = None,
    n_trials: int | None = None,
    *,
    progress: Progress | None = None,
    **where: Unpack[Where],
) -> StudyState:
    """Set the study up (teacher, data, baselines, tokenizer) without running trials, for
    ``autotune worker`` processes to join."""
    spec = as_spec(spec)
    settings = Settings.resolve(storage or spec.storage, **where)
    study = _set_up(spec, settings, n_trials, None, progress, None, prepare_only=True)
    return study_state(study, settings.storage, spec.constraints.min_accuracy)


def run_worker(
    study: str,
    storage: str | Settings | None = None,
    max_trials: int | None = None,
    timeout: float | None = None,
    *,
    progress: Progress | None = None,
    on_progress: OnProgress | None = None,
    **where: Unpack[Where],
) -> StudyState:
    """Join an existing study (on this or another machine) and run its trials until the
    study has its ``n_trials``, or this worker ran ``max_trials``."""
    from autotune.search import worker

    settings = open_results(storage, **where)
    place = worker.Place(settings, settings.artifact_store(), progress)
    callbacks = _callbacks(on_progress, settings.storage, None)
    joined = worker.join_study(study, place, max_trials, timeout, callbacks)
    return study_state(joined, settings.storage)
