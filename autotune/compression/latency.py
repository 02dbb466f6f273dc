"""Latency in ONNX Runtime, measured interleaved with a reference model (decision 2).

The machine is shared and its speed drifts between processes (15% at 2 threads here), so a
candidate is timed call-by-call alternately with the reference in the same window:
``speedup = median(reference) / median(candidate)`` stays stable even when both drift.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from autotune.compression.config import LatencyResult, LatencySettings

INPUT_SEED = 1234


def latency_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fixed_inputs(settings: LatencySettings, vocab_size: int) -> dict[str, np.ndarray]:
    """Batch x sequence of real-looking token ids, no padding: the worst case a budget covers."""
    rng = np.random.default_rng(INPUT_SEED)
    shape = (settings.batch_size, settings.sequence_length)
    ids = rng.integers(1000, max(1001, vocab_size - 1), size=shape, dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones(shape, dtype=np.int64)}


def measure_interleaved(
    candidate: Path, reference: Path, settings: LatencySettings, vocab_size: int
) -> LatencyResult:
    feed = fixed_inputs(settings, vocab_size)
    cand = latency_session(candidate, settings.threads)
    ref = latency_session(reference, settings.threads)
    for _ in range(settings.warmup):
        cand.run(None, feed)
        ref.run(None, feed)
    cand_times = np.empty(settings.runs)
    ref_times = np.empty(settings.runs)
    for i in range(settings.runs):
        # Alternate the order so neither model always runs with a warmer cache.
        first, second = (cand, ref) if i % 2 == 0 else (ref, cand)
        t0 = time.perf_counter()
        first.run(None, feed)
        t1 = time.perf_counter()
        second.run(None, feed)
        t2 = time.perf_counter()
        cand_times[i], ref_times[i] = (t1 - t0, t2 - t1) if i % 2 == 0 else (t2 - t1, t1 - t0)
    return summarize(cand_times * 1000, ref_times * 1000)


def summarize(cand_ms: np.ndarray, ref_ms: np.ndarray) -> LatencyResult:
    median = float(np.median(cand_ms))
    ref_median = float(np.median(ref_ms))
    return LatencyResult(
        median_ms=median,
        p90_ms=float(np.percentile(cand_ms, 90)),
        cv=float(np.std(cand_ms) / np.mean(cand_ms)),
        reference_median_ms=ref_median,
        speedup_vs_reference=ref_median / median,
    )


def measure_torch_interleaved(
    model: nn.Module, reference: Path, settings: LatencySettings, vocab_size: int
) -> LatencyResult:
    """PyTorch FP32 eager latency of ``model`` (the baseline people quote) vs the reference."""
    feed = fixed_inputs(settings, vocab_size)
    tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
    ref = latency_session(reference, settings.threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    model.eval()
    try:
        with torch.inference_mode():
            for _ in range(settings.warmup):
                model(**tensors)
                ref.run(None, feed)
            cand_ms = np.empty(settings.runs)
            ref_ms = np.empty(settings.runs)
            for i in range(settings.runs):
                cand_ms[i] = _timed(lambda: model(**tensors))
                ref_ms[i] = _timed(lambda: ref.run(None, feed))
    finally:
        torch.set_num_threads(previous)
    return summarize(cand_ms, ref_ms)


def _timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000
