"""What one machine measured for a study, in milliseconds that do not go stale.

A trial's latency is a ratio measured in one window: the candidate against the teacher in ORT
FP32, alternating. Milliseconds come from multiplying by the teacher's latency on that
machine. That figure was once measured a single time, when a study started, and a busy start
inflated every later trial's milliseconds. Now every window's own reference median counts
too, and the machine's quiet figure is a low percentile of all of them (baseline included):
the more trials, the better it gets. Windows marked unreliable (measured while other
processes were busy) never count, and trials marked so stay out of fronts and ``best`` until
they are measured again (``autotune remeasure``).

A machine's results are its own trials plus the trials of other machines it re-measured
(their exported models timed and scored here, without training); a re-measurement wins over
the trial's first figures on the same machine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from autotune.store.db import session_scope
from autotune.store.models import BaselineRecord, RemeasureRecord, RemeasureStatus
from autotune.store.reads import TrialSummary, trials

QUIET_PERCENTILE = 10
DATA_REFERENCE = "latency_data_reference_ms"


def quiet_reference_ms(baseline_ms: float | None, windows: list[float]) -> float | None:
    """The teacher's quiet ORT FP32 latency on a machine: the 10th percentile (an actual
    sample, never interpolated towards a slow one) of every reference median seen there."""
    seen = [w for w in [baseline_ms, *windows] if w and w > 0]
    if not seen:
        return None
    return float(np.percentile(seen, QUIET_PERCENTILE, method="lower"))


@dataclass(frozen=True)
class MachineView:
    """A study's results on one machine, in its quiet reference's milliseconds."""

    trials: list[TrialSummary]
    reference_ms: float | None  # the teacher's quiet ORT FP32 latency there
    baselines: dict[str, Any]  # the teacher baselines, calibrated (empty if never measured)
    stored_baselines: dict[str, Any]  # as measured when the machine joined the study


def machine_view(
    url: str, study: str, hardware_id: str, listed: list[TrialSummary] | None = None
) -> MachineView:
    """``listed``: the study's trial rows when the caller has read them already."""
    raw = _results(url, study, hardware_id, trials(url, study) if listed is None else listed)
    with session_scope(url) as session:
        values = next(
            (
                dict(b.values)
                for b in BaselineRecord.for_study(session, study)
                if b.hardware_id == hardware_id
            ),
            {},
        )
    quiet = quiet_reference_ms(values.get("ort_fp32_ms"), _windows(raw))
    quiet_data = quiet_reference_ms(None, _windows(raw, DATA_REFERENCE))
    calibrated = calibrate(raw, quiet, quiet_data)
    return MachineView(calibrated, quiet, calibrated_baselines(values, quiet), values)


def on_machine(url: str, study: str, hardware_id: str) -> list[TrialSummary]:
    """Every trial with results on ``hardware_id``, with calibrated milliseconds: trials
    that ran there (any status) and complete re-measurements there of trials that ran
    elsewhere, in trial order."""
    return machine_view(url, study, hardware_id).trials


def _results(
    url: str, study: str, hardware_id: str, listed: list[TrialSummary]
) -> list[TrialSummary]:
    everywhere = {t.number: t for t in listed}
    by_number = {n: t for n, t in everywhere.items() if t.hardware_id == hardware_id}
    with session_scope(url) as session:
        again = [
            (r.trial_number, r.source_hardware_id, dict(r.metrics))
            for r in RemeasureRecord.on(session, study, hardware_id)
            if r.status == RemeasureStatus.complete
        ]
    for number, source, metrics in again:
        first = everywhere.get(number)
        if first is None:
            continue
        by_number[number] = replace(
            first,
            status="complete",
            reason=None,
            metrics=metrics,
            hardware_id=hardware_id,
            remeasured_from=source,
        )
    return [by_number[n] for n in sorted(by_number)]


def calibrated_trials(url: str, study: str) -> list[TrialSummary]:
    """Every trial of the study as it ran, each in its own machine's calibrated
    milliseconds (a re-measured trial shows its latest figures from its own machine)."""
    listed = trials(url, study)
    by_machine: dict[str, dict[int, TrialSummary]] = {}
    for hardware_id in sorted({t.hardware_id for t in listed}):
        view = machine_view(url, study, hardware_id, listed)
        by_machine[hardware_id] = {t.number: t for t in view.trials}
    return [by_machine[t.hardware_id].get(t.number, t) for t in listed]


def _windows(summaries: list[TrialSummary], key: str = "latency_reference_ms") -> list[float]:
    """The teacher reference's figures ``key`` of the reliable latency windows among
    ``summaries``: its median at the fixed length, or its mean over the data profile."""
    return [
        float(t.metrics.get(key) or 0.0)
        for t in summaries
        if t.status == "complete" and t.metrics.get("latency_reliable", True)
    ]


def reference_ms(url: str, study: str, hardware_id: str) -> float | None:
    """The machine's quiet reference now: what a trial starting there judges budgets by."""
    return machine_view(url, study, hardware_id).reference_ms


def calibrate(
    summaries: list[TrialSummary], quiet_ms: float | None, quiet_data_ms: float | None = None
) -> list[TrialSummary]:
    """``latency_ms`` of each complete trial recomputed from the quiet reference and the
    speedup measured in its window, and the data-length profile's figures likewise from the
    teacher's quiet profile mean; the figures stored at trial time stay in the database."""
    if quiet_ms is None and quiet_data_ms is None:
        return summaries
    out = []
    for t in summaries:
        speedup = t.metrics.get("speedup_vs_teacher_ort")
        if t.status != "complete" or not speedup:
            out.append(t)
            continue
        metrics = dict(t.metrics)
        if quiet_ms is not None:
            metrics.update(latency_ms=quiet_ms / speedup, latency_baseline_ms=quiet_ms)
        window = metrics.get(DATA_REFERENCE)
        if quiet_data_ms is not None and window:
            scale = quiet_data_ms / window  # the ratios to the teacher stay as measured
            for key in (DATA_REFERENCE, "latency_data_mean_ms", "latency_data_p90_ms"):
                metrics[key] = metrics[key] * scale
        out.append(replace(t, metrics=metrics))
    return out


def trusted(summaries: list[TrialSummary]) -> list[TrialSummary]:
    """Complete trials whose latency was measured on a quiet machine and, in a
    multi-fidelity study, trained by the whole recipe (the top rung): what fronts and
    ``best`` choose from. Lower rungs are context, never the answer."""
    return [t for t in trusted_any_rung(summaries) if t.metrics.get("top_rung", True)]


def trusted_any_rung(summaries: list[TrialSummary]) -> list[TrialSummary]:
    """Complete trials timed on a quiet machine, at whatever rung (a rung's own front)."""
    return [
        t for t in summaries if t.status == "complete" and t.metrics.get("latency_reliable", True)
    ]


def calibrated_baselines(values: dict[str, Any], quiet_ms: float | None) -> dict[str, Any]:
    """A machine's teacher baselines in the quiet reference's milliseconds: every figure was
    measured against the ORT FP32 reference in one window, so all scale together."""
    measured = values.get("ort_fp32_ms")
    if not quiet_ms or not measured:
        return dict(values)
    scale = quiet_ms / measured
    out = dict(values, ort_fp32_ms_at_start=measured)
    for key in ("ort_fp32_ms", "ort_int8_ms", "pytorch_fp32_ms"):
        if key in out:
            out[key] = out[key] * scale
    return out
