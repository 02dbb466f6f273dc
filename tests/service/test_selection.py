"""Choosing the best trial: constraint violations and the two preferences."""

from __future__ import annotations

import pytest

from autotune.compression.config import LatencyResult, TrialMetrics
from autotune.service.selection import no_feasible_message, ranking, violation
from autotune.store.reads import TrialSummary


def _trial(number: int, accuracy: float, latency: float, size: float = 10.0) -> TrialSummary:
    metrics = TrialMetrics(
        accuracy=accuracy,
        macro_f1=accuracy,
        latency_ms=latency,
        latency_raw_ms=latency,
        latency_p90_ms=latency,
        latency_cv=0.0,
        speedup_vs_teacher_pytorch=10.0 / latency,
        speedup_vs_teacher_ort=5.0 / latency,
        size_mb=size,
        compressed_size_mb=size,
        sparsity=0.0,
        parameters=1000,
    )
    return TrialSummary(number, "complete", {}, metrics.to_json(), "hw")


def test_violation_is_relative_and_zero_when_feasible() -> None:
    trial = _trial(0, 0.80, 4.0, size=20.0)
    assert violation(trial, {"accuracy": 0.8, "latency_ms": 4.0, "size_mb": None}) == 0.0
    limits = {"accuracy": 0.9, "latency_ms": 2.0, "size_mb": 10.0}
    assert violation(trial, limits) == pytest.approx(0.1 / 0.9 + 2.0 / 2.0 + 10.0 / 10.0)


def test_preferences_break_ties_the_other_way() -> None:
    trials = [_trial(0, 0.90, 3.0), _trial(1, 0.90, 2.0), _trial(2, 0.85, 2.0)]
    assert max(trials, key=lambda t: ranking(t, "accuracy")).number == 1
    assert max(trials, key=lambda t: ranking(t, "latency")).number == 1
    trials.append(_trial(3, 0.80, 1.0))
    assert max(trials, key=lambda t: ranking(t, "latency")).number == 3


def test_no_feasible_message_names_the_closest() -> None:
    done = [_trial(0, 0.70, 1.0), _trial(1, 0.88, 9.0), _trial(2, 0.60, 1.0)]
    limits = {"accuracy": 0.9, "latency_ms": None, "size_mb": None}
    message = no_feasible_message("s", done, limits)
    assert message.startswith("no trial of 's' meets min_accuracy=0.9; closest: trial 1:")
    assert no_feasible_message("s", [], limits).endswith("no finished trials on this machine yet")


def test_drift_correction_uses_the_baseline_and_the_window_speedup() -> None:
    # Timed on a busy machine: both models 2x slow; the ratio to the teacher still holds.
    busy = LatencyResult(
        median_ms=4.0, p90_ms=5.0, cv=0.1, reference_median_ms=20.0, speedup_vs_reference=5.0
    )
    assert busy.corrected_ms(10.0) == pytest.approx(2.0)
    assert busy.corrected_ms(None) == 4.0
