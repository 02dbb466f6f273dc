"""The best trial under constraints: ``best``, ``export`` without ``--trial``, the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from autotune.compression.config import CompressionConfig
from autotune.errors import ConfigError, NoFeasibleConfigError
from autotune.service.reads import artifact_path, open_results, pick_hardware
from autotune.settings import Settings
from autotune.store import measured
from autotune.store.reads import TrialSummary

PREFERENCES = ("accuracy", "latency")


class Choice(TypedDict, total=False):
    """How to choose among a study's trials, as ``best_config`` takes it."""

    max_latency_ms: float | None
    min_accuracy: float | None
    max_size_mb: float | None
    prefer: str
    storage: str | Settings | None
    hardware: str | None
    artifacts: str | Path | None


@dataclass(frozen=True)
class BestConfig:
    """The best trial under constraints: its configuration, metrics and model file."""

    study: str
    trial: TrialSummary
    config: CompressionConfig
    metrics: dict[str, Any]
    artifact_path: Path | None
    hardware_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "trial": self.trial.number,
            "config": self.config.to_dict(),
            "metrics": self.trial.to_json()["metrics"],
            "artifact_path": str(self.artifact_path) if self.artifact_path else None,
            "artifact_sha256": self.trial.artifact_sha256,
            "hardware_id": self.hardware_id,
        }


def best_config(
    study: str,
    max_latency_ms: float | None = None,
    min_accuracy: float | None = None,
    max_size_mb: float | None = None,
    prefer: str = "accuracy",
    storage: str | Settings | None = None,
    hardware: str | None = None,
    artifacts: str | Path | None = None,
) -> BestConfig:
    """The best finished trial meeting the constraints.

    ``prefer="accuracy"`` takes the most accurate (then the fastest); ``"latency"`` the fastest
    (then the most accurate). Raises :class:`NoFeasibleConfigError` naming the closest trials.
    """
    if prefer not in PREFERENCES:
        raise ConfigError(f"prefer={prefer!r}; allowed: 'accuracy', 'latency'")
    settings = open_results(storage, artifacts=artifacts)
    hardware_id = pick_hardware(settings.storage, study, hardware)
    # Trials measured on a busy machine are left out until they are measured again.
    done = measured.trusted(measured.on_machine(settings.storage, study, hardware_id))
    limits = {"latency_ms": max_latency_ms, "accuracy": min_accuracy, "size_mb": max_size_mb}
    feasible = [t for t in done if violation(t, limits) == 0]
    if not feasible:
        raise NoFeasibleConfigError(no_feasible_message(study, done, limits))
    best = max(feasible, key=lambda t: ranking(t, prefer))
    path = artifact_path(settings, best)
    return BestConfig(study, best, best.compression, best.metrics, path, hardware_id)


def ranking(trial: TrialSummary, prefer: str) -> tuple[float, float]:
    """Sort key, larger is better: accuracy then speed, or speed then accuracy."""
    accuracy, latency = trial.measured.accuracy, trial.measured.latency_ms
    return (accuracy, -latency) if prefer == "accuracy" else (-latency, accuracy)


def violation(trial: TrialSummary, limits: dict[str, float | None]) -> float:
    """Sum of relative constraint violations (0 when feasible)."""
    total = 0.0
    for metric, limit in limits.items():
        if limit is None:
            continue
        value = getattr(trial.measured, metric)
        excess = (limit - value) if metric == "accuracy" else (value - limit)
        total += max(0.0, excess) / max(abs(limit), 1e-9)
    return total


def no_feasible_message(study: str, done: list[TrialSummary], limits: dict) -> str:
    asked = ", ".join(
        f"{'min' if k == 'accuracy' else 'max'}_{k}={v:g}"
        for k, v in limits.items()
        if v is not None
    )
    if not done:
        return f"study '{study}' has no finished trials on this machine yet"
    closest = sorted(done, key=lambda t: violation(t, limits))[:3]
    shown = "; ".join(
        f"trial {t.number}: accuracy {t.measured.accuracy:.4f}, "
        f"latency {t.measured.latency_ms:.2f} ms, size {t.measured.size_mb:.1f} MB"
        for t in closest
    )
    return f"no trial of '{study}' meets {asked or 'the constraints'}; closest: {shown}"
