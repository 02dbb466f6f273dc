"""Feasible Pareto fronts of Optuna trials and their hypervolume (stored by ``store.fronts``).

Objectives are turned into minimisation form (accuracy -> -accuracy) and a trial belongs to a
front only if it is COMPLETE, satisfies every constraint Optuna recorded for it, and ran on
the front's hardware (decision 7: a front mixes no fingerprints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna._hypervolume import compute_hypervolume
from optuna.trial import FrozenTrial, TrialState

SIGN = {"accuracy": -1.0, "latency": 1.0, "size": 1.0}


@dataclass(frozen=True)
class Front:
    members: list[FrozenTrial]
    hypervolume: float
    reference_point: list[float]


def hardware_of(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get("hardware_id")


def is_feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0.0 for value in trial.constraints.values())


def candidates(trials: Sequence[FrozenTrial], hardware_id: str) -> list[FrozenTrial]:
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and hardware_of(t) == hardware_id and is_feasible(t)
    ]


def loss_matrix(trials: Sequence[FrozenTrial], objectives: Sequence[str]) -> np.ndarray:
    """Objective values in minimisation form, one row per trial."""
    signs = np.array([SIGN[name] for name in objectives])
    return np.array([t.values for t in trials], dtype=float).reshape(-1, len(objectives)) * signs


def non_dominated(losses: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Boolean mask of rows no other row dominates (duplicates all kept)."""
    keep = np.ones(len(losses), dtype=bool)
    for start in range(0, len(losses), chunk):
        rows = losses[start : start + chunk, None, :]
        no_worse = (losses[None, :, :] <= rows).all(-1)
        better = (losses[None, :, :] < rows).any(-1)
        keep[start : start + chunk] = ~(no_worse & better).any(-1)
    return keep


def reference_point(
    objectives: Sequence[str],
    baselines: dict[str, Any],
    min_accuracy: float | None,
    num_labels: int,
) -> list[float]:
    """Fixed per study so that hypervolumes are comparable over time.

    Accuracy counts from the accuracy constraint (or chance); latency from the teacher in
    PyTorch FP32, the baseline people quote; size from the teacher's FP32 ONNX file.
    """
    point = {
        "accuracy": -(min_accuracy if min_accuracy is not None else 1.0 / num_labels),
        "latency": float(baselines["pytorch_fp32_ms"]),
        "size": float(baselines.get("size_mb", 1e9)),
    }
    return [point[name] for name in objectives]


def compute_front(
    trials: Sequence[FrozenTrial],
    objectives: Sequence[str],
    hardware_id: str,
    reference: Sequence[float],
) -> Front:
    pool = candidates(trials, hardware_id)
    if not pool:
        return Front([], 0.0, list(reference))
    losses = loss_matrix(pool, objectives)
    mask = non_dominated(losses)
    members = sorted(
        (t for t, keep in zip(pool, mask, strict=True) if keep), key=lambda t: t.number
    )
    front_losses = losses[mask]
    inside = (front_losses < np.asarray(reference)).all(axis=1)
    volume = (
        float(compute_hypervolume(front_losses[inside], np.asarray(reference, dtype=float)))
        if inside.any()
        else 0.0
    )
    return Front(members, volume, list(reference))
