"""Run trials of a study until it has enough, alone or beside other workers.

Any number of processes on any number of machines may run :func:`work` on the same study:
Optuna's RDB storage hands each its own trials. What this module adds is the study-wide
budget (``n_trials`` counts trials finished by *all* workers) and a watcher that fails trials
whose worker stopped sending heartbeats, so that Optuna's retry callback re-runs them.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from autotune.compression.config import CompressionConfig
from autotune.context import StudyContext
from autotune.errors import StudyInterrupted
from autotune.progress import Progress
from autotune.search.fidelity import PLAN_ATTR, Promoter, release_all_checkpoints, rung_of
from autotune.search.heartbeat import heartbeat_seconds
from autotune.search.objective import Objective, worker_id
from autotune.search.recorder import TrialRecorder
from autotune.search.space import config_params
from autotune.search.study import (
    COUNTED,
    make_sampler,
    open_study,
    record_context,
    store_tokenizer,
)
from autotune.settings import Settings
from autotune.spec import StudySpec
from autotune.store.probes import SqlProbeCache
from autotune.store.studies import check_resumable, find_spec, register_study

log = logging.getLogger("autotune.worker")
TrialCallback = Callable[[optuna.Study, FrozenTrial], None]
TARGET_ATTR = "target_trials"


def counts(study: optuna.Study) -> tuple[int, int]:
    """(trials that count towards the budget, trials running now) across all workers. In a
    multi-fidelity study the budget counts configurations: trials at the lowest rung."""
    trials = study.get_trials(deepcopy=False, states=(*COUNTED, TrialState.RUNNING))
    trials = [t for t in trials if rung_of(t) == 0]
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return len(trials) - running, running


def unfinished(study: optuna.Study) -> int:
    """Trials enqueued or running, any rung: while there are some, promotions may follow."""
    states = (TrialState.WAITING, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def is_done(study: optuna.Study, spec: StudySpec, target: int) -> bool:
    """Enough trials finished; in a multi-fidelity study also no promotion pending."""
    pending = unfinished(study) if spec.search.fidelity is not None else 0
    return counts(study)[0] >= target and not pending


def waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


class BudgetGuard:
    """Optuna callback: stop this worker once finished + running trials reach the budget, or
    once it has run ``limit`` trials itself (what was missing when it started, or its own
    ``--trials``), so that a study whose every trial fails still ends."""

    def __init__(self, target: int, limit: int, fidelity: bool = False) -> None:
        self.target = target
        self.limit = limit
        self.fidelity = fidelity  # enqueued promotions run beyond the budget
        self.ran = 0

    @property
    def exhausted(self) -> bool:
        return self.ran >= self.limit

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.ran += 1
        done, running = counts(study)
        if self.exhausted or (
            done + running >= self.target and not (self.fidelity and waiting(study))
        ):
            study.stop()


class StaleTrialWatcher:
    """Fails trials whose worker died (no heartbeat for the grace period), every quarter
    heartbeat, so they are FAIL within two heartbeats and their retry is enqueued at once."""

    def __init__(self, study: optuna.Study, heartbeat: int) -> None:
        self.study = study
        self.period = heartbeat / 4
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="stale-trials", daemon=True)

    def __enter__(self) -> StaleTrialWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stop.wait(self.period):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(self.study)
            except Exception as exc:  # the database may be restarting: look again later
                log.warning("stale-trial check failed: %s", exc)


def work(
    study: optuna.Study,
    objective: Objective,
    recorder: TrialRecorder,
    target: int,
    heartbeat: int,
    timeout: float | None = None,
    max_trials: int | None = None,
    callbacks: list[TrialCallback] | None = None,
    promoter: Promoter | None = None,
) -> None:
    """Run trials until ``target`` have finished across all workers, ``max_trials`` ran here,
    or ``timeout`` passed. While the last trials run elsewhere, wait: if their worker dies,
    their retries come back to this one. With a ``promoter`` (multi-fidelity), also until no
    promotion is waiting or can still come from a running trial."""
    deadline = None if timeout is None else time.monotonic() + timeout
    missing = target - counts(study)[0]
    limit = min(missing, max_trials or missing)
    if promoter is not None:
        promoter.promote(study)  # what a worker that died after its trial left undone
        # each configuration runs at most once per rung (plus what is enqueued already)
        limit = max_trials or missing * (promoter.plan.top + 1) + unfinished(study)
    guard = BudgetGuard(target, limit, fidelity=promoter is not None)
    own = [recorder, *([promoter] if promoter else []), guard]
    quiet = finished = False
    with StaleTrialWatcher(study, heartbeat):
        while not guard.exhausted:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            done, running = counts(study)
            pending = unfinished(study) if promoter is not None else 0
            if done >= target and not pending:
                if promoter is None or quiet:
                    finished = True
                    break
                # A stale trial is failed first and its retry enqueued right after: look
                # again before calling a multi-fidelity study finished.
                quiet = True
                time.sleep(min(heartbeat / 4, 1.0))
                continue
            quiet = False
            if done + running >= target and not (promoter and waiting(study)):
                time.sleep(min(heartbeat / 4, 2.0, left or 2.0))
                continue
            try:
                study.optimize(
                    objective,
                    timeout=left,
                    # A failing trial is stored as FAIL with its reason and the study goes
                    # on; KeyboardInterrupt is not an Exception and still stops it.
                    catch=(Exception,),
                    callbacks=[*own, *(callbacks or [])],
                )
            except KeyboardInterrupt:
                # Optuna has stored the running trial as failed; settle its row (Ctrl-C may
                # land after the objective wrote it as complete), as far as time allows.
                with contextlib.suppress(Exception):
                    recorder.sync(study)
                raise StudyInterrupted(objective.interrupted) from None
            except UpdateFinishedTrialError:
                # Our heartbeats were late (the machine stalled) and another worker declared
                # the trial dead; its retry runs the same configuration again.
                log.warning("a trial of this worker was failed as stale; its retry will rerun it")
    # Mirror trials failed by the stale-trial watcher; leave the front covering every trial.
    recorder.sync(study)
    if promoter is not None and finished:
        removed = release_all_checkpoints(study, objective.artifact_store)
        log.info("study finished: %d checkpoints of configurations never promoted removed", removed)
    for hardware_id in recorder.hardware_ids(study):
        recorder.update_front(hardware_id)


def _with_probe_cache(context: StudyContext, url: str) -> StudyContext:
    cached = SqlProbeCache(url, context.hardware["id"])
    return replace(context, inputs=replace(context.inputs, probe_cache=cached))


def _enqueue(study: optuna.Study, spec: StudySpec) -> None:
    for values in spec.search.enqueue:
        config = CompressionConfig.from_dict(values)
        study.enqueue_trial(config_params(config, spec.space), skip_if_exists=True)


def _run(
    study: optuna.Study,
    context: StudyContext,
    place: Place,
    target: int,
    timeout: float | None,
    callbacks: list[TrialCallback] | None,
    max_trials: int | None = None,
) -> None:
    recorder = TrialRecorder(place.url, context.spec)
    context = _with_probe_cache(context, place.url)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    promoter = None
    if context.rungs is not None and context.spec.search.fidelity is not None:
        one_in = context.spec.search.fidelity.promote_one_in
        promoter = Promoter(place.url, context.spec.name, context.rungs, one_in, worker_id())
    with tempfile.TemporaryDirectory(prefix="autotune-study-") as tmp:
        objective = Objective(context, place.artifact_store, Path(tmp), place.url, place.progress)
        work(
            study,
            objective,
            recorder,
            target,
            place.heartbeat,
            timeout,
            max_trials,
            callbacks,
            promoter,
        )


@dataclass(frozen=True)
class Place:
    """Where a worker runs a study: the settings (database, folders, heartbeat), the artifact
    store, and what to report preparation progress to."""

    settings: Settings
    artifact_store: Any
    progress: Progress | None = None

    @property
    def url(self) -> str:
        return self.settings.storage

    @property
    def heartbeat(self) -> int:
        return heartbeat_seconds(self.settings.heartbeat)

    def context(self, spec: StudySpec) -> StudyContext:
        """Teacher, data, logits and this machine's baselines: the expensive part, cached."""
        from autotune.context import prepare_study

        settings = self.settings
        return prepare_study(spec, settings.data_dir, settings.models_dir, self.progress)

    def open(self, spec: StudySpec, create: bool = False) -> optuna.Study:
        return open_study(self.url, spec, create=create, heartbeat=self.heartbeat)


def run_study(
    spec: StudySpec,
    place: Place,
    n_trials: int | None = None,
    timeout: float | None = None,
    callbacks: list[TrialCallback] | None = None,
    prepare_only: bool = False,
) -> optuna.Study:
    """Create or resume the spec's study and run it until ``n_trials`` (default: the spec's)
    trials have completed or been stopped, counting every worker's.

    Nothing is written before the teacher and data have loaded: a bad dataset or teacher
    leaves no half-made study behind. ``prepare_only`` sets the study up for workers (its
    preparation also fills the caches that they then read instead of each computing them).
    """
    target = n_trials or spec.search.n_trials
    exists = check_resumable(place.url, spec)
    if exists:
        study = place.open(spec)
        TrialRecorder(place.url, spec).sync(study)
        if is_done(study, spec, target):
            return study
    context = place.context(spec)
    if not exists:
        register_study(place.url, spec)
        study = place.open(spec, create=True)
        _enqueue(study, spec)
    # A resumed session must not replay the draws of the first one.
    study.sampler = make_sampler(spec, len(study.trials))
    study.set_user_attr(TARGET_ATTR, target)
    store_tokenizer(study, context, place.artifact_store)
    record_context(place.url, context)
    if context.rungs is not None:
        study.set_user_attr(PLAN_ATTR, context.rungs.to_json())
    if not prepare_only:
        _run(study, context, place, target, timeout, callbacks)
    return study


def join_study(
    name: str,
    place: Place,
    max_trials: int | None = None,
    timeout: float | None = None,
    callbacks: list[TrialCallback] | None = None,
) -> optuna.Study:
    """Work on an existing study with the spec it was created with, beside other workers."""
    spec = find_spec(place.url, name)
    study = place.open(spec)
    # Workers started together must not draw the same configurations.
    study.sampler = make_sampler(spec, [len(study.trials), worker_id()])
    target = int(study.user_attrs.get(TARGET_ATTR, spec.search.n_trials))
    if is_done(study, spec, target):
        return study
    context = place.context(spec)
    record_context(place.url, context)  # this machine's fingerprint and baselines
    _run(study, context, place, target, timeout, callbacks, max_trials)
    return study
