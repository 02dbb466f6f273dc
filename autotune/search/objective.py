"""Where search meets compression: an Optuna trial in, objective values out.

Optuna keeps what the search needs: the parameters, the objective values, the constraints,
and which machine and worker ran the trial (plus the reason a trial stopped or failed, for
optuna-dashboard). What the trial measured, and the model it produced, are stored once, in
autotune's trial row, written here where the measurement happens. The Optuna callback
:class:`autotune.search.recorder.TrialRecorder` then settles the row's status against the
state Optuna stored, and updates the front snapshots.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.cache import hash_file
from autotune.compression.config import EvalResult, TrialMetrics, relative_latency
from autotune.compression.fidelity import RungTraining
from autotune.compression.pipeline import TrialInputs, run_trial
from autotune.context import StudyContext
from autotune.errors import LatencyConstraintError, one_line
from autotune.progress import Progress
from autotune.search import fidelity
from autotune.search.space import suggest_config
from autotune.store import measured, trials
from autotune.store.models import TrialRecord, TrialStatus

INTERRUPTED = "interrupted (Ctrl-C); the trial was discarded"
METRIC_NAMES = {"accuracy": "accuracy", "latency": "latency_ms", "size": "size_mb"}


def worker_id() -> str:
    """Which process ran a trial: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def failure_reason(exc: BaseException) -> str:
    """``Type: message`` on one line, as a failed trial's stored reason."""
    text = one_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class TrialStages(Progress):
    """A trial's stages and training steps, reported as ``trial N: stage``."""

    def __init__(self, progress: Progress, number: int) -> None:
        self.progress, self.number = progress, number

    def stage(self, name: str) -> None:
        self.progress.stage(f"trial {self.number}: {name}")

    def step(self, done: int, total: int) -> None:
        self.progress.step(done, total)


class Objective:
    def __init__(
        self,
        context: StudyContext,
        artifact_store: Any,
        work_dir: Path,
        url: str,
        progress: Progress | None = None,
    ) -> None:
        self.context = context
        self.spec = context.spec
        self.artifact_store = artifact_store
        self.work_dir = work_dir
        self.url = url
        self.progress = progress or Progress()
        self.interrupted: int | None = None  # the trial Ctrl-C stopped, if any

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        # First, so that even a trial failing in `suggest` is recorded against this machine.
        trial.set_user_attr("hardware_id", self.context.hardware["id"])
        trial.set_user_attr("worker", worker_id())
        started = time.perf_counter()
        out = self.work_dir / f"trial-{trial.number}"
        config: dict[str, Any] = {}
        try:
            teacher = self.context.teacher.model.config
            chosen = suggest_config(
                trial, self.spec.space, teacher.num_hidden_layers, teacher.num_attention_heads
            )
            config = chosen.to_dict()
            trial.set_user_attr("config", config)
            rung = self._rung(trial, chosen, out)
            stages = TrialStages(self.progress, trial.number)
            result = run_trial(self._inputs_now(), chosen, out, stages, rung)
            if rung is not None:
                fidelity.keep_checkpoint(trial, rung, self.artifact_store)
            measured = self._store(trial, result, started)
            if rung is not None:
                fidelity.release_checkpoint(trial, self.artifact_store)
        except LatencyConstraintError as exc:
            trial.set_user_attr("stopped", str(exc))
            trial.set_constraint("max_latency_ms", exc.latency_ms - exc.max_latency_ms)
            self._record(trial, TrialStatus.stopped, config, started, reason=str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except (Exception, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt):
                self.interrupted = trial.number
            reason = INTERRUPTED if isinstance(exc, KeyboardInterrupt) else failure_reason(exc)
            trial.set_user_attr("failure", reason)
            self._record_failure(trial, config, started, reason)
            raise
        finally:
            shutil.rmtree(out, ignore_errors=True)
            # The objective's own time: the rest of a trial is the service's overhead.
            trial.set_user_attr("objective_seconds", time.perf_counter() - started)
        return self._values(measured)

    def _rung(self, trial: optuna.Trial, config, out: Path) -> RungTraining | None:
        """In a multi-fidelity study, the trial's rung and its part of the training run."""
        if self.context.rungs is None:
            return None
        return fidelity.rung_training(
            trial, self.context.rungs, config, out / "rung", self.artifact_store
        )

    def _values(self, metrics: TrialMetrics) -> tuple[float, ...]:
        """What the sampler sees. Latency is in one fixed scale per machine, the baseline
        this worker started with divided by the trial's speedup: the quiet reference that
        ``latency_ms`` follows moves as trials arrive, and the sampler must compare trials
        on one scale (the ranking is the same as the calibrated one)."""
        fixed = self.context.inputs.reference_baseline_ms
        figure = self.spec.latency.optimise  # the fixed length, or the data profile's
        relative = relative_latency(metrics.to_json(), figure)
        values = {
            "accuracy": metrics.accuracy,
            "latency": fixed * relative if fixed else metrics.latency_ms,
            "size": metrics.size_mb,
        }
        return tuple(values[o] for o in self.spec.objectives)

    def _inputs_now(self) -> TrialInputs:
        """The study's trial inputs with the machine's quiet reference as it stands now
        (every finished trial's window refines it), so budgets are judged in milliseconds
        that a busy start cannot have inflated."""
        inputs = self.context.inputs
        quiet = measured.reference_ms(self.url, self.spec.name, self.context.hardware["id"])
        return replace(inputs, reference_baseline_ms=quiet) if quiet else inputs

    def _store(self, trial: optuna.Trial, result: EvalResult, started: float) -> TrialMetrics:
        model = Path(result.model_path)
        sha256 = hash_file(model)
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=self.artifact_store, file_path=str(model), study_or_trial=trial
        )
        metrics = result.metrics
        limits = self.spec.constraints
        if limits.min_accuracy is not None:
            trial.set_constraint("min_accuracy", limits.min_accuracy - metrics.accuracy)
        if limits.max_latency_ms is not None:
            trial.set_constraint("max_latency_ms", metrics.latency_ms - limits.max_latency_ms)
        if limits.max_size_mb is not None:
            trial.set_constraint("max_size_mb", metrics.size_mb - limits.max_size_mb)
        if not metrics.latency_reliable:
            # Timed while other processes were busy: the samplers must not trust it.
            trial.set_constraint("latency_reliable", 1.0)
            trial.set_user_attr("latency_unreliable", unreliable_note(metrics))
        config = result.config.to_dict()
        self._record(trial, TrialStatus.complete, config, started, metrics, (artifact_id, sha256))
        return metrics

    def _record_failure(
        self, trial: optuna.Trial, config: dict[str, Any], started: float, reason: str
    ) -> None:
        # The database itself may be what failed: then the recorder's sync writes the row
        # once Optuna has stored the trial as failed.
        with contextlib.suppress(Exception):
            self._record(trial, TrialStatus.failed, config, started, reason=reason)

    def _record(
        self,
        trial: optuna.Trial,
        status: TrialStatus,
        config: dict[str, Any],
        started: float,
        measured: TrialMetrics | None = None,
        artifact: tuple[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        artifact_id, sha256 = artifact or (None, None)
        row = TrialRecord(
            study_name=self.spec.name,
            trial_number=trial.number,
            status=status,
            config=config,
            metrics=measured.to_json() if measured else {},
            reason=reason,
            artifact_id=artifact_id,
            artifact_sha256=sha256,
            hardware_id=self.context.hardware["id"],
            seconds=time.perf_counter() - started,
        )
        trials.insert_once(self.url, row)


def unreliable_note(metrics: TrialMetrics) -> str:
    """Why a trial's latency is not trusted, in one line."""
    cores = metrics.latency_foreign_cores
    busy = f"{cores:.1f} other cores in use" if cores is not None else "noisy reference"
    return f"latency measured on a busy machine ({busy}); marked unreliable"


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
