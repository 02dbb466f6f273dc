"""Where search meets compression: an Optuna trial in, objective values out.

Everything a trial measured goes into Optuna's own trial attributes (so plain Optuna and
optuna-dashboard see it); the Optuna callback :class:`autotune.search.recorder.TrialRecorder`,
which runs after Optuna has stored the trial's final state, mirrors it into autotune's tables
and the front snapshots.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.cache import hash_file
from autotune.compression.config import CompressionConfig, EvalResult
from autotune.compression.pipeline import run_trial
from autotune.context import StudyContext
from autotune.errors import CompressionError, LatencyConstraintError, one_line
from autotune.search.space import suggest_config

METRIC_NAMES = {"accuracy": "accuracy", "latency": "latency_ms", "size": "size_mb"}


def worker_id() -> str:
    """Which process ran a trial: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def failure_reason(exc: BaseException) -> str:
    """``Type: message`` on one line, as a failed trial's stored reason."""
    text = one_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Objective:
    def __init__(self, context: StudyContext, artifact_store: Any, work_dir: Path) -> None:
        self.context = context
        self.spec = context.spec
        self.artifact_store = artifact_store
        self.work_dir = work_dir

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        # First, so that even a trial failing in `suggest` is recorded against this machine.
        trial.set_user_attr("hardware_id", self.context.hardware["id"])
        trial.set_user_attr("worker", worker_id())
        started = time.perf_counter()
        out = self.work_dir / f"trial-{trial.number}"
        try:
            teacher = self.context.teacher.model.config
            config = suggest_config(
                trial, self.spec.space, teacher.num_hidden_layers, teacher.num_attention_heads
            )
            trial.set_user_attr("config", config.to_dict())
            result = run_trial(self.context.inputs, config, out)
            self._store(trial, config, result)
        except LatencyConstraintError as exc:
            trial.set_user_attr("stopped", str(exc))
            trial.set_constraint("max_latency_ms", exc.latency_ms - exc.max_latency_ms)
            raise optuna.TrialPruned(str(exc)) from None
        except Exception as exc:
            trial.set_user_attr("failure", failure_reason(exc))
            raise
        finally:
            shutil.rmtree(out, ignore_errors=True)
            # The objective's own time: the rest of a trial is the service's overhead.
            trial.set_user_attr("objective_seconds", time.perf_counter() - started)
        return tuple(trial.user_attrs["metrics"][METRIC_NAMES[o]] for o in self.spec.objectives)

    def _store(self, trial: optuna.Trial, config: CompressionConfig, result: EvalResult) -> None:
        model = Path(result.model_path)
        sha256 = hash_file(model)
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=self.artifact_store, file_path=str(model), study_or_trial=trial
        )
        if result.metrics is None:
            raise CompressionError("the pipeline returned no metrics")
        measured = result.metrics
        trial.set_user_attr("metrics", measured.to_json())
        trial.set_user_attr("artifact", {"id": artifact_id, "sha256": sha256})
        limits = self.spec.constraints
        if limits.min_accuracy is not None:
            trial.set_constraint("min_accuracy", limits.min_accuracy - measured.accuracy)
        if limits.max_latency_ms is not None:
            trial.set_constraint("max_latency_ms", measured.latency_ms - limits.max_latency_ms)
        if limits.max_size_mb is not None:
            trial.set_constraint("max_size_mb", measured.size_mb - limits.max_size_mb)


def trial_status(trial: FrozenTrial) -> str:
    if trial.state == TrialState.COMPLETE:
        return "complete"
    if trial.state == TrialState.PRUNED:
        return "stopped"
    return "failed"


def trial_reason(trial: FrozenTrial) -> str | None:
    if trial.state == TrialState.COMPLETE:
        return None
    attrs = trial.user_attrs
    return attrs.get("stopped") or attrs.get("failure") or "interrupted or lost before it finished"
