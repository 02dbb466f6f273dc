"""Create or resume a multi-objective Optuna study and run trials into it."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from autotune import cache
from autotune.compression.config import CompressionConfig, LatencyResult
from autotune.context import StudyContext
from autotune.errors import SpecError, StorageError
from autotune.search.objective import METRIC_NAMES, Objective, trial_reason, trial_status
from autotune.search.space import config_params
from autotune.spec import StudySpec
from autotune.store import fronts
from autotune.store.db import ensure_current, redact, session_scope
from autotune.store.models import (
    BaselineRecord,
    HardwareRecord,
    LatencyProbeRecord,
    StudyRecord,
    TrialRecord,
    TrialStatus,
)

HEARTBEAT_SECONDS = 60
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# What counts towards n_trials: trials that produced a measurement (stopped ones did: their
# latency). Failed trials do not, so resuming a study retries them.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def optuna_storage(url: str) -> RDBStorage:
    """Optuna's RDB storage with heartbeats, and one retry of trials whose worker died."""
    engine_kwargs = (
        {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeat is marked experimental
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=2 * HEARTBEAT_SECONDS,
                failed_trial_callback=RetryFailedTrialCallback(max_retry=1),
            )
    except (SQLAlchemyError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise StorageError(f"cannot open Optuna storage '{redact(url)}': {reason}") from None


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    seed = spec.seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.search.sampler == "tpe":
            # multivariate + group: joint model of the axes, conditional int8_method handled.
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=8
            )
        if spec.search.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        if spec.search.sampler == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)


def directions(spec: StudySpec) -> list[str]:
    return ["maximize" if o == "accuracy" else "minimize" for o in spec.objectives]


def spec_hash(spec: StudySpec) -> str:
    """What must not change when a study is resumed (the trial budget may)."""
    data = spec.model_dump(mode="json")
    data["search"].pop("n_trials", None)
    data.pop("storage", None)
    return cache.hash_json(data)


def register_study(url: str, spec: StudySpec) -> bool:
    """Snapshot the spec; refuse to resume a study under a different spec. True if new."""
    with session_scope(url) as session:
        record = StudyRecord.find(session, spec.name)
        if record is None:
            session.add(
                StudyRecord(
                    study_name=spec.name,
                    spec=spec.model_dump(mode="json"),
                    spec_hash=spec_hash(spec),
                )
            )
            return True
        if record.spec_hash != spec_hash(spec):
            raise SpecError(
                f"study '{spec.name}' already exists in this storage with a different spec; "
                "resume it with the same spec or give the new spec another name"
            )
        return False


def record_context(url: str, context: StudyContext) -> None:
    with session_scope(url) as session:
        HardwareRecord.ensure(session, context.hardware)
        session.flush()
        study = context.spec.name
        found = [
            b
            for b in BaselineRecord.for_study(session, study)
            if b.hardware_id == context.hardware["id"]
        ]
        values = asdict(context.baselines)
        values["size_mb"] = context.inputs.reference_onnx.stat().st_size / 1e6
        values["num_labels"] = context.num_labels
        if found:
            found[0].values = values
        else:
            session.add(
                BaselineRecord(study_name=study, hardware_id=context.hardware["id"], values=values)
            )


class SqlProbeCache:
    """Latency probes stored per hardware fingerprint (shared by every worker and study)."""

    def __init__(self, url: str, hardware_id: str) -> None:
        self.url = url
        self.hardware_id = hardware_id

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
        except StorageError:
            pass  # another worker stored the same probe first


class TrialRecorder:
    """Optuna callback: mirror a finished trial into autotune's tables and update the front."""

    def __init__(self, url: str, spec: StudySpec) -> None:
        self.url = url
        self.spec = spec

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.record(trial)
        if trial.state == TrialState.COMPLETE:
            self.update_front(study, trial.user_attrs["hardware_id"])

    def record(self, trial: FrozenTrial) -> None:
        with session_scope(self.url) as session:
            if TrialRecord.find(session, self.spec.name, trial.number) is not None:
                return
            hardware = trial.user_attrs.get("hardware_id")
            if hardware is None:
                return  # never reached the objective: nothing measured, nothing to mirror
            artifact = trial.user_attrs.get("artifact", {})
            session.add(
                TrialRecord(
                    study_name=self.spec.name,
                    trial_number=trial.number,
                    status=TrialStatus(trial_status(trial)),
                    config=trial.user_attrs.get("config", {}),
                    metrics=trial.user_attrs.get("metrics", {}),
                    reason=trial_reason(trial),
                    artifact_id=artifact.get("id"),
                    artifact_sha256=artifact.get("sha256"),
                    hardware_id=hardware,
                    seconds=trial.duration.total_seconds() if trial.duration else 0.0,
                )
            )

    def update_front(self, study: optuna.Study, hardware_id: str) -> None:
        trials = study.get_trials(deepcopy=False, states=FINISHED)
        for attempt in range(3):  # a concurrent worker may take our version number first
            try:
                with session_scope(self.url) as session:
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
                    front = fronts.compute_front(
                        trials, self.spec.objectives, hardware_id, reference
                    )
                    fronts.record_snapshot(session, self.spec.name, hardware_id, front, len(trials))
                return
            except StorageError:
                if attempt == 2:
                    raise
                trials = study.get_trials(deepcopy=False, states=FINISHED)

    def sync(self, study: optuna.Study) -> None:
        """Mirror finished trials a crash or Ctrl-C left without an autotune row."""
        for trial in study.get_trials(deepcopy=False, states=FINISHED):
            self.record(trial)


def open_study(url: str, spec: StudySpec, create: bool) -> optuna.Study:
    storage = optuna_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        study = optuna.create_study(
            study_name=spec.name,
            storage=storage,
            sampler=make_sampler(spec),
            directions=directions(spec),
            load_if_exists=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC_NAMES[o] for o in spec.objectives])
        study.set_user_attr("autotune", {"objectives": spec.objectives})
        return study
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec))


def run_study(
    spec: StudySpec,
    url: str,
    context_factory: Callable[[], StudyContext],
    artifact_store: Any,
    n_trials: int | None = None,
    timeout: float | None = None,
    callbacks: list[TrialCallback] | None = None,
) -> optuna.Study:
    """Run trials until ``n_trials`` (default: the spec's) have completed or been stopped."""
    ensure_current(url)
    created = register_study(url, spec)
    study = open_study(url, spec, create=True)
    recorder = TrialRecorder(url, spec)
    recorder.sync(study)
    target = n_trials or spec.search.n_trials
    done = len(study.get_trials(deepcopy=False, states=COUNTED))
    if done >= target:
        return study
    context = context_factory()
    record_context(url, context)
    context = _with_probe_cache(context, url)
    if created:
        for values in spec.search.enqueue:
            config = CompressionConfig.from_dict(values)
            study.enqueue_trial(config_params(config, spec.space), skip_if_exists=True)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="autotune-study-") as work:
        objective = Objective(context, artifact_store, Path(work))
        study.optimize(
            objective,
            n_trials=target - done,
            timeout=timeout,
            # A failing trial is stored as FAIL with its reason and the study goes on;
            # KeyboardInterrupt is not an Exception and still stops it.
            catch=(Exception,),
            callbacks=[recorder, *(callbacks or [])],
        )
    return study


def _with_probe_cache(context: StudyContext, url: str) -> StudyContext:
    from dataclasses import replace

    cached = SqlProbeCache(url, context.hardware["id"])
    return replace(context, inputs=replace(context.inputs, probe_cache=cached))
