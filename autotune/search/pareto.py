"""Feasible Pareto fronts and their hypervolume (stored by ``store.fronts``).

A front is computed from points: a trial number and its objective values, for trials that are
complete, feasible, and measured on the front's machine (decision 7: a front mixes no
fingerprints). The recorder builds them from autotune's rows of one machine
(:func:`summary_points`), whose milliseconds follow the machine's quiet reference;
:func:`trial_points` builds them from Optuna's trials. Objectives are turned into
minimisation form (accuracy -> -accuracy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna._hypervolume import compute_hypervolume
from optuna.trial import FrozenTrial, TrialState

from autotune.compression.config import LATENCY_FIGURES, relative_latency

SIGN = {"accuracy": -1.0, "latency": 1.0, "size": 1.0}
METRIC_OF = {"accuracy": "accuracy", "latency": "latency_ms", "size": "size_mb"}


@dataclass(frozen=True)
class Point:
    number: int
    values: tuple[float, ...]  # as measured, in the study's objective order


@dataclass(frozen=True)
class Front:
    members: list[int]  # trial numbers, ascending
    hypervolume: float
    reference_point: list[float]


def hardware_of(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get("hardware_id")


def is_feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0.0 for value in trial.constraints.values())


def trial_points(trials: Sequence[FrozenTrial], hardware_id: str) -> list[Point]:
    """Optuna's complete, feasible trials of one machine, with the values Optuna stored."""
    return [
        Point(t.number, tuple(t.values))
        for t in trials
        if t.state == TrialState.COMPLETE and hardware_of(t) == hardware_id and is_feasible(t)
    ]


def summary_points(
    summaries: Sequence[Any],
    objectives: Sequence[str],
    limits: dict[str, float | None],
    latency_scale_ms: float | None = None,
    figure: str = "fixed",
) -> list[Point]:
    """Points of trial summaries (``store.reads.TrialSummary``: complete, trusted, one
    machine's) that meet ``limits`` (``min_accuracy``, ``max_latency_ms``, ``max_size_mb``).

    Limits are judged on the calibrated ``latency_ms``. With ``latency_scale_ms`` (the
    machine's stored baseline) the latency objective is that fixed figure over the trial's
    speedup instead: the same ranking, in a scale that does not move as the quiet reference
    is refined, so that hypervolumes stay comparable over time. ``figure`` is the latency the
    study ranks by (``latency.optimise``: the fixed length, or the data profile's mean or
    p90)."""
    points = []
    for t in summaries:
        m = t.metrics
        if any(
            limit is not None and (m[metric] < limit if metric == "accuracy" else m[metric] > limit)
            for metric, limit in (
                ("accuracy", limits.get("min_accuracy")),
                ("latency_ms", limits.get("max_latency_ms")),
                ("size_mb", limits.get("max_size_mb")),
            )
        ):
            continue
        values = {
            name: float(m[LATENCY_FIGURES[figure] if name == "latency" else METRIC_OF[name]])
            for name in objectives
        }
        if latency_scale_ms and "latency" in values:
            values["latency"] = latency_scale_ms * relative_latency(m, figure)
        points.append(Point(t.number, tuple(values[name] for name in objectives)))
    return points


def loss_matrix(points: Sequence[Point], objectives: Sequence[str]) -> np.ndarray:
    """Objective values in minimisation form, one row per point."""
    signs = np.array([SIGN[name] for name in objectives])
    values = [p.values for p in points]
    return np.array(values, dtype=float).reshape(-1, len(objectives)) * signs


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
    points: Sequence[Point], objectives: Sequence[str], reference: Sequence[float]
) -> Front:
    if not points:
        return Front([], 0.0, list(reference))
    losses = loss_matrix(points, objectives)
    mask = non_dominated(losses)
    members = sorted(p.number for p, keep in zip(points, mask, strict=True) if keep)
    front_losses = losses[mask]
    inside = (front_losses < np.asarray(reference)).all(axis=1)
    volume = (
        float(compute_hypervolume(front_losses[inside], np.asarray(reference, dtype=float)))
        if inside.any()
        else 0.0
    )
    return Front(members, volume, list(reference))
