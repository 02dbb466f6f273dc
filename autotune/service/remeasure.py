"""``autotune remeasure``: a study's exported models measured on this machine, no training.

The best compressed model depends on the CPU (dynamic INT8 halves latency on one machine and
buys nothing on another), and people search on one machine but deploy on another. Here the
models a study already exported are taken from the artifact store, scored again on the
validation split (INT8 kernels differ between instruction sets) and timed interleaved with
this machine's teacher reference. The results are stored under this machine's fingerprint,
linked to their source trials, and this machine gets its own front in minutes.

The same command also re-times this machine's own trials whose latency was marked unreliable
(``scope="unreliable"``). Runs on several machines, or several at once on one, share the
work: each trial is claimed before it is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from autotune import hardware
from autotune.compression.evaluate import evaluate_onnx
from autotune.compression.latency import measure_interleaved, measure_profile, profile_feeds
from autotune.context import Bench, prepare_bench
from autotune.errors import AmbiguousHardwareError, ConfigError, HardwareNotFoundError
from autotune.progress import Progress
from autotune.search.objective import failure_reason, worker_id
from autotune.search.recorder import update_front
from autotune.service.export import checked_model
from autotune.service.reads import open_results
from autotune.settings import Settings
from autotune.store import measured, remeasures, studies
from autotune.store import reads as stored
from autotune.store.reads import TrialSummary

Scope = Literal["front", "all", "unreliable"]
SCOPES = ("front", "all", "unreliable")


@dataclass
class RemeasureReport:
    study: str
    hardware_id: str  # this machine
    source_hardware_id: str
    measured: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # measured here already, or by another
    failed: dict[int, str] = field(default_factory=dict)
    unreliable: list[int] = field(default_factory=list)  # measured, but the machine was busy
    seconds: float = 0.0
    front: list[int] = field(default_factory=list)  # this machine's front afterwards

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "hardware_id": self.hardware_id,
            "source_hardware_id": self.source_hardware_id,
            "measured": self.measured,
            "skipped": self.skipped,
            "failed": {str(k): v for k, v in self.failed.items()},
            "unreliable": self.unreliable,
            "seconds": self.seconds,
            "front": self.front,
        }


def remeasure(
    study: str,
    source: str | None = None,
    scope: Scope = "front",
    storage: str | Settings | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    on_trial: Callable[[int, str], None] | None = None,
    **where: Any,
) -> RemeasureReport:
    """Measure ``study``'s models from machine ``source`` on this one (``scope``: the
    source's front, or all its complete trials), or re-time this machine's trials marked
    unreliable (``scope="unreliable"``). ``threads`` overrides the spec's latency threads
    (another thread count is another fingerprint). ``where``: ``artifacts``, ``data_dir``,
    ``models_dir``. ``on_trial(number, outcome)`` hears of each trial."""
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r}; allowed: {', '.join(SCOPES)}")
    started = time.perf_counter()
    settings = open_results(storage, **where)
    url = settings.storage
    spec = studies.find_spec(url, study)
    # Everything that can be refused is, before the teacher loads or anything is written.
    here = hardware.fingerprint(threads or spec.latency.threads)["id"]
    origin = here if scope == "unreliable" else _source(url, study, source, here)
    chosen = _candidates(url, study, origin, here, scope)
    report = RemeasureReport(study, here, origin)
    if not chosen:
        report.front = _front_numbers(url, study, here)
        return report
    bench = prepare_bench(spec, settings.data_dir, settings.models_dir, progress, threads=threads)
    studies.record_baselines(url, study, bench.hardware, _baseline_values(bench))
    for trial in chosen:
        claimed = remeasures.claim(
            url, study, trial.number, (here, origin), worker_id(), scope == "unreliable"
        )
        if not claimed:
            report.skipped.append(trial.number)
            _tell(on_trial, trial.number, "skipped")
            continue
        metrics, reason, seconds = _measure_one(settings, bench, trial)
        remeasures.finish(url, study, trial.number, here, metrics, reason, seconds)
        if metrics is None:
            report.failed[trial.number] = reason or "failed"
        else:
            report.measured.append(trial.number)
            if not metrics["latency_reliable"]:
                report.unreliable.append(trial.number)
        _tell(on_trial, trial.number, reason or "measured")
    update_front(url, spec, here)
    report.front = _front_numbers(url, study, here)
    report.seconds = time.perf_counter() - started
    return report


def _front_numbers(url: str, study: str, hardware_id: str) -> list[int]:
    return [m.number for m in stored.front(url, study, hardware_id).members]


def _tell(on_trial: Callable[[int, str], None] | None, number: int, outcome: str) -> None:
    if on_trial is not None:
        on_trial(number, outcome)


def _baseline_values(bench: Bench) -> dict[str, Any]:
    return bench.baselines.stored(bench.reference, bench.splits.num_labels)


def _source(url: str, study: str, requested: str | None, here: str) -> str:
    """The machine whose trials are measured here: the one asked for, else the only other
    machine that ran trials of the study."""
    ran = sorted({t.hardware_id for t in stored.trials(url, study) if t.status == "complete"})
    if requested is not None:
        if requested not in ran:
            raise HardwareNotFoundError(
                f"study '{study}' has no complete trials from hardware '{requested}' "
                f"(it has: {', '.join(ran) or 'none'})"
            )
        return requested
    others = [h for h in ran if h != here]
    if len(others) == 1:
        return others[0]
    if not others:
        raise HardwareNotFoundError(
            f"study '{study}' has no complete trials from another machine than this one "
            f"({here}); to re-time this machine's busy measurements use --unreliable"
        )
    raise AmbiguousHardwareError(
        f"study '{study}' has trials from several machines ({', '.join(others)}); "
        "choose one with --from"
    )


def _candidates(url: str, study: str, origin: str, here: str, scope: Scope) -> list[TrialSummary]:
    """The trials to measure: the source machine's front or all its complete trials, or
    this machine's results whose latency is marked unreliable."""
    results = measured.on_machine(url, study, origin)
    complete = [t for t in results if t.status == "complete" and t.artifact_id]
    if scope == "unreliable":
        return [t for t in complete if not t.metrics.get("latency_reliable", True)]
    if scope == "all":
        return [t for t in complete if t.remeasured_from is None]
    members = set(_front_numbers(url, study, origin))
    return [t for t in complete if t.number in members]


def _measure_one(
    settings: Settings, bench: Bench, trial: TrialSummary
) -> tuple[dict[str, Any] | None, str | None, float]:
    """Score and time one trial's model here: (metrics, None, seconds) or (None, reason,
    seconds). Size, shape and training figures are the trial's own."""
    started = time.perf_counter()
    try:
        model = checked_model(settings, trial)
        evaluate_started = time.perf_counter()
        scores = evaluate_onnx(model, bench.splits.validation)
        latency_started = time.perf_counter()
        vocab = bench.teacher.model.config.vocab_size
        latency = measure_interleaved(model, bench.reference, bench.settings, vocab)
        profile = None
        if bench.settings.data_rows:
            feeds = profile_feeds(bench.splits.validation, bench.settings.data_rows)
            profile = measure_profile(model, bench.reference, feeds, bench.settings.threads)
    except Exception as exc:  # a missing or corrupt model is this trial's failure only
        return None, failure_reason(exc), time.perf_counter() - started
    done = time.perf_counter()
    # The trial's own figures where the machine does not matter (shape, size, training);
    # the read-time calibration is not stored.
    kept = {k: v for k, v in trial.metrics.items() if k != "latency_baseline_ms"}
    metrics = {
        **kept,
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        # Until the machine's quiet reference is known, the baseline measured just now.
        **latency.metrics(bench.baselines.ort_fp32_ms, bench.baselines.pytorch_over_reference),
        "latency_data_mean_ms": profile.mean_ms if profile else None,
        "latency_data_p90_ms": profile.p90_ms if profile else None,
        "latency_data_reference_ms": profile.reference_mean_ms if profile else None,
        # The fused-or-not choice was timed on the source machine; the file ships as chosen
        # there, and those speedups are not this machine's.
        "fused_speedup_vs_teacher_ort": None,
        "unfused_speedup_vs_teacher_ort": None,
        "stage_seconds": {
            "evaluate": latency_started - evaluate_started,
            "latency": done - latency_started,
        },
        "remeasure_seconds": done - started,
    }
    return metrics, None, done - started
