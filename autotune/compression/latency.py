"""Latency in ONNX Runtime, measured interleaved with a reference model (decision 2).

The machine is shared and its speed drifts between processes (15% at 2 threads here), so a
candidate is timed alternately with the reference, in short blocks, in the same window:
``speedup = median(reference) / median(candidate)`` stays stable even when both drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autotune.compression import contention
from autotune.compression.batching import TokenizedSplit, pad
from autotune.compression.config import LatencyResult, LatencySettings
from autotune.errors import CompressionError

INPUT_SEED = 1234


def latency_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Two sessions are timed in turn: an idle one's spinning pool would steal the other's
    # cores (2 threads on 2 cores: the teacher read 22.8 ms spinning, 11.3 not, 13.1 alone).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fixed_inputs(settings: LatencySettings, vocab_size: int) -> dict[str, np.ndarray]:
    """Batch x sequence of real-looking token ids, no padding: the worst case a budget covers.
    Token types (all zeros) are there for models of sentence pairs; see :func:`feed_for`."""
    rng = np.random.default_rng(INPUT_SEED)
    shape = (settings.batch_size, settings.sequence_length)
    ids = rng.integers(1000, max(1001, vocab_size - 1), size=shape, dtype=np.int64)
    ones = np.ones(shape, dtype=np.int64)
    return {"input_ids": ids, "attention_mask": ones, "token_type_ids": np.zeros_like(ones)}


def feed_for(session: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs ``session``'s graph takes (``token_type_ids`` only for sentence pairs)."""
    return {i.name: inputs[i.name] for i in session.get_inputs()}


def measure_interleaved(
    candidate: Path, reference: Path, settings: LatencySettings, vocab_size: int
) -> LatencyResult:
    inputs = fixed_inputs(settings, vocab_size)
    cand = latency_session(candidate, settings.threads)
    ref = latency_session(reference, settings.threads)
    feed = feed_for(cand, inputs)
    if set(feed) != set(feed_for(ref, inputs)):
        raise CompressionError(f"{candidate.name} and {reference.name} take different inputs")
    return measured_quietly(
        lambda: _interleaved(lambda: cand.run(None, feed), lambda: ref.run(None, feed), settings),
        settings,
    )


def measure_torch_interleaved(
    model: nn.Module, reference: Path, settings: LatencySettings, vocab_size: int
) -> LatencyResult:
    """PyTorch FP32 eager latency of ``model`` (the baseline people quote) vs the reference."""
    ref = latency_session(reference, settings.threads)
    feed = feed_for(ref, fixed_inputs(settings, vocab_size))
    tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    model.eval()
    try:
        with torch.inference_mode():
            return measured_quietly(
                lambda: _interleaved(
                    lambda: model(**tensors), lambda: ref.run(None, feed), settings
                ),
                settings,
            )
    finally:
        torch.set_num_threads(previous)


def measured_quietly(
    window: Callable[[], LatencyResult], settings: LatencySettings
) -> LatencyResult:
    """Time ``window`` while autotune's other processes wait; time it again, after a pause,
    while the rest of the machine is busy, and mark the last window unreliable if it never
    was quiet. The lock is held through the pauses, so local workers stay paused."""
    with contention.timing_alone():
        for attempt in range(1, settings.busy_retries + 2):
            with contention.watched() as watch:
                result = window()
            busy = is_busy(result, watch.foreign_cores, settings)
            result = replace(
                result, foreign_cores=watch.foreign_cores, attempts=attempt, reliable=not busy
            )
            if not busy or attempt > settings.busy_retries:
                return result
            time.sleep(settings.busy_wait_s)
    raise AssertionError("unreachable")


def is_busy(result: LatencyResult, foreign_cores: float | None, settings: LatencySettings) -> bool:
    crowded = foreign_cores is not None and foreign_cores > settings.busy_cores
    return crowded or result.reference_cv > settings.max_reference_cv


# Untimed calls at the start of each block (blocks of more than one call): they bring the
# model's weights back into cache after the other model's block.
WARM_PER_BLOCK = 2


def _interleaved(
    candidate: Callable[[], object], reference: Callable[[], object], settings: LatencySettings
) -> LatencyResult:
    """Warm both up, then time them in alternating blocks of ``settings.block`` calls, which
    one goes first alternating too, so that neither always runs with a warmer machine;
    ``settings.runs`` calls at a time until the speedup is precise enough
    (:func:`speedup_interval`) or ``settings.max_runs`` were timed.

    Blocks, not single calls: timed right after a 20 ms teacher call, whose weights had
    pushed its own out of cache, a 1 ms student ran 30% slower than alone (BENCHMARKS.md
    section 8); a block of 10 is still short enough to follow the machine's drift."""
    for _ in range(settings.warmup):
        candidate()
        reference()
    cand_ms: list[float] = []
    ref_ms: list[float] = []
    warm = WARM_PER_BLOCK if settings.block > 1 else 0
    rounds = 0
    while True:
        target = len(cand_ms) + settings.runs
        while len(cand_ms) < target:
            size = min(settings.block, target - len(cand_ms))
            pairs = [(candidate, cand_ms), (reference, ref_ms)]
            for call, times in pairs if rounds % 2 == 0 else pairs[::-1]:
                for _ in range(warm):
                    call()
                times.extend(_timed(call) for _ in range(size))
            rounds += 1
        result = summarize(np.array(cand_ms), np.array(ref_ms))
        if not settings.precision or len(cand_ms) >= settings.max_runs:
            return result
        if result.precision <= settings.precision:
            return result


def summarize(cand_ms: np.ndarray, ref_ms: np.ndarray) -> LatencyResult:
    median = float(np.median(cand_ms))
    ref_median = float(np.median(ref_ms))
    low, high = speedup_interval(cand_ms, ref_ms)
    return LatencyResult(
        median_ms=median,
        p90_ms=float(np.percentile(cand_ms, 90)),
        cv=float(np.std(cand_ms) / np.mean(cand_ms)),
        reference_median_ms=ref_median,
        speedup_vs_reference=ref_median / median,
        reference_cv=float(np.std(ref_ms) / np.mean(ref_ms)),
        runs=len(cand_ms),
        speedup_low=low,
        speedup_high=high,
    )


BOOTSTRAP_RESAMPLES = 1000


def speedup_interval(cand_ms: np.ndarray, ref_ms: np.ndarray) -> tuple[float, float]:
    """95% percentile-bootstrap interval of median(reference) / median(candidate), resampling
    the calls in pairs: the two calls of a pair ran back to back and share the machine's
    state of that moment."""
    from scipy.stats import bootstrap  # only where latency is timed: the CLI starts faster

    result = bootstrap(
        (ref_ms, cand_ms),
        _ratio_of_medians,
        paired=True,
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(INPUT_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _ratio_of_medians(ref: np.ndarray, cand: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(ref, axis=axis) / np.median(cand, axis=axis)


@dataclass(frozen=True)
class ProfileResult:
    """Batch 1 over real sentences, each at its own length: what most traffic looks like
    (shorter than the fixed length a budget is measured at)."""

    mean_ms: float
    p90_ms: float
    reference_mean_ms: float  # the teacher reference, timed sentence by sentence beside it
    rows: int


def profile_feeds(split: TokenizedSplit, rows: int) -> list[dict[str, np.ndarray]]:
    """``rows`` sentences of ``split`` (a fixed draw, all of them if fewer), one feed each,
    unpadded."""
    count = min(rows, len(split))
    chosen = np.random.default_rng(INPUT_SEED).choice(len(split), size=count, replace=False)
    return [pad(split, np.array([index])).inputs() for index in np.sort(chosen)]


def measure_profile(
    candidate: Path, reference: Path, feeds: list[dict[str, np.ndarray]], threads: int
) -> ProfileResult:
    """Time ``candidate`` and the reference on every feed, alternating which goes first, after
    a warm-up pass over the first few; mean and p90 over the sentences."""
    cand = latency_session(candidate, threads)
    ref = latency_session(reference, threads)
    cand_ms = np.empty(len(feeds))
    ref_ms = np.empty(len(feeds))
    with contention.timing_alone():
        for feed in feeds[:10]:
            cand.run(None, feed)
            ref.run(None, feed)
        for i, feed in enumerate(feeds):
            if i % 2 == 0:
                cand_ms[i] = _timed(lambda f=feed: cand.run(None, f))
                ref_ms[i] = _timed(lambda f=feed: ref.run(None, f))
            else:
                ref_ms[i] = _timed(lambda f=feed: ref.run(None, f))
                cand_ms[i] = _timed(lambda f=feed: cand.run(None, f))
    return ProfileResult(
        mean_ms=float(cand_ms.mean()),
        p90_ms=float(np.percentile(cand_ms, 90)),
        reference_mean_ms=float(ref_ms.mean()),
        rows=len(feeds),
    )


def _timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000
