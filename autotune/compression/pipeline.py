"""One trial: configuration in, measured, deployable ONNX model out.

1. build the student from the teacher (layers kept, heads and FFN neurons removed)
2. probe its latency now: shape and bit width decide latency, not training, so a
   configuration that breaks the latency budget stops here, in seconds
3. distill from cached teacher logits (original and augmented rows) and, when the recipe
   asks, the teacher's intermediate layers on the free layer map; sparsity schedule
4. quantize and export to ONNX with ORT graph optimisations
5. accuracy of the exported model in ORT, then its final latency
"""

from __future__ import annotations

import copy
import dataclasses
import json
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autotune.compression import export, quantize
from autotune.compression import fusion as fusion_ops
from autotune.compression.batching import TokenizedSplit, train_batches
from autotune.compression.config import (
    CompressionConfig,
    EvalResult,
    LatencyResult,
    LatencySettings,
    TrainingSettings,
    TrialMetrics,
)
from autotune.compression.distill import distill
from autotune.compression.evaluate import (
    compressed_size_mb,
    evaluate_onnx,
    onnx_weight_sparsity,
    size_mb,
)
from autotune.compression.fidelity import RungTraining
from autotune.compression.latency import (
    ProfileResult,
    measure_interleaved,
    measure_profile,
    profile_feeds,
)
from autotune.compression.reuse import (
    ProbeCache,
    StudentStore,
    probe_key,
    reusable,
    training_key,
)
from autotune.compression.student import (
    Importance,
    build_student,
    count_parameters,
    plan_student,
)
from autotune.errors import LatencyConstraintError
from autotune.progress import Progress

MODEL_FILE = "model.onnx"
METRICS_FILE = "metrics.json"
QAT_CALIBRATION_BATCHES = 8


@dataclass(frozen=True)
class TrialInputs:
    """Everything a trial needs, prepared once per study (see ``autotune.context``)."""

    teacher: nn.Module
    importance: Importance
    train: TokenizedSplit
    teacher_logits: np.ndarray
    validation: TokenizedSplit
    reference_onnx: Path  # the teacher in ORT FP32: the latency reference
    teacher_pytorch_over_reference: float  # t(PyTorch FP32) / t(ORT FP32), measured together
    training: TrainingSettings
    latency: LatencySettings
    max_latency_ms: float | None = None
    # The teacher's ORT FP32 latency at baseline time: probes are compared with the budget
    # drift-corrected (baseline / speedup), as the search ranks them.
    reference_baseline_ms: float | None = None
    pad_id: int = 0
    eval_threads: int | None = None
    hardware: dict[str, Any] = field(default_factory=dict)
    teacher_key: str = ""  # content hashes that key the reuse caches
    data_key: str = ""
    probe_cache: ProbeCache | None = None
    student_store: StudentStore | None = None


class _Timer:
    def __init__(self, progress: Progress) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.progress.stage(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def run_trial(
    inputs: TrialInputs,
    config: CompressionConfig,
    out_dir: Path,
    progress: Progress | None = None,
    rung: RungTraining | None = None,
) -> EvalResult:
    """Run one configuration end to end and write ``model.onnx`` and ``metrics.json``.

    With ``rung``, train only that rung's part of the run (see ``compression.fidelity``)."""
    timer = _Timer(progress or Progress())
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = inputs.teacher.config.vocab_size
    names = inputs.validation.input_names  # a model of sentence pairs takes token types too
    reuse = {"probe_cached": False, "student_reused": False, "distill_seconds_saved": 0.0}
    with tempfile.TemporaryDirectory(prefix="autotune-trial-") as scratch:
        work = Path(scratch)
        key = probe_key(inputs.teacher_key, config, inputs.latency)
        cached = inputs.probe_cache.get(key) if inputs.probe_cache else None
        if cached is not None:
            reuse["probe_cached"] = True
            _check_latency(inputs, cached)  # stops before even building the student
        with timer.stage("build"):
            student, parameters, layer_map = _student(inputs, config)
        if cached is None:
            with timer.stage("latency_probe"):
                probe = _export_deployable(student, config, names, work / "probe")
                probed = measure_interleaved(probe, inputs.reference_onnx, inputs.latency, vocab)
                if inputs.probe_cache is not None and probed.reliable:
                    inputs.probe_cache.put(key, probed)
            _check_latency(inputs, probed)
        with timer.stage("distill"):
            curve, saved = _train(inputs, config, student, layer_map, timer.progress, rung)
            reuse["student_reused"] = saved is not None
            reuse["distill_seconds_saved"] = saved or 0.0
        with timer.stage("export"):
            deployed = _export_deployable(
                student, config, names, work / "final", out_dir / MODEL_FILE
            )
            export.check_loads(deployed)
        with timer.stage("latency"):
            latency = measure_interleaved(deployed, inputs.reference_onnx, inputs.latency, vocab)
            fusion = _keep_fused_if_faster(inputs, student, config, work / "final", latency)
            if fusion.kept is not None:
                shutil.copyfile(fusion.kept.path, deployed)
                latency = fusion.kept_latency
            profile = _profile(inputs, deployed)
        with timer.stage("evaluate"):
            scores = evaluate_onnx(deployed, inputs.validation, inputs.eval_threads)
            sparsity = onnx_weight_sparsity(deployed)
            compressed = compressed_size_mb(deployed)
    metrics = TrialMetrics(
        accuracy=scores.accuracy,
        macro_f1=scores.macro_f1,
        size_mb=size_mb(deployed),
        compressed_size_mb=compressed,
        sparsity=sparsity,
        parameters=parameters,
        stage_seconds=dict(timer.seconds),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        train_curve=list(curve),
        probe_cached=bool(reuse["probe_cached"]),
        student_reused=bool(reuse["student_reused"]),
        distill_seconds_saved=float(reuse["distill_seconds_saved"]),
        **latency.metrics(inputs.reference_baseline_ms, inputs.teacher_pytorch_over_reference),
        latency_data_mean_ms=profile.mean_ms if profile else None,
        latency_data_p90_ms=profile.p90_ms if profile else None,
        latency_data_reference_ms=profile.reference_mean_ms if profile else None,
        attention_fused=fusion.kept is not None,
        fused_speedup_vs_teacher_ort=fusion.fused_speedup,
        unfused_speedup_vs_teacher_ort=fusion.unfused_speedup,
        **_rung_metrics(rung, inputs.training.batch_size),
    )
    result = EvalResult(config, metrics, latency, str(deployed), inputs.hardware, reuse)
    write_metrics(result, out_dir / METRICS_FILE)
    return result


@dataclass(frozen=True)
class FusionChoice:
    """Fused attention tried on a model: the fused copy kept (None: the unfused model stays)
    and both speedups over the teacher when both were timed."""

    kept: fusion_ops.Fused | None = None
    kept_latency: LatencyResult | None = None
    fused_speedup: float | None = None
    unfused_speedup: float | None = None


def _keep_fused_if_faster(
    inputs: TrialInputs,
    student: nn.Module,
    config: CompressionConfig,
    work: Path,
    unfused: LatencyResult,
) -> FusionChoice:
    """Fuse an FP32 model's attention and keep it only if it is faster on this machine.

    FP32 only: on INT8 graphs the fused form quantizes differently (``QAttention``), so it
    is another model, not a faster run of the same one. Both windows must be quiet; a
    busy one keeps the unfused model.
    """
    if not inputs.latency.fuse_attention or config.bits != 32 or config.int8_method == "qat":
        return FusionChoice()
    if config.heads != inputs.teacher.config.num_attention_heads:
        return FusionChoice()  # pruned heads: ORT's attention pattern never matches them
    fused = fusion_ops.fuse_attention(
        work / "raw.onnx",  # the export before ORT's offline optimisation (which hides the pattern)
        work / "fused-raw.onnx",
        student.config.num_attention_heads,
        student.config.hidden_size,
    )
    if fused is None:
        return FusionChoice()
    optimised = export.optimize_for_ort(fused.path, work / "fused.onnx")
    fused = dataclasses.replace(fused, path=optimised)
    vocab = inputs.teacher.config.vocab_size
    timed = measure_interleaved(optimised, inputs.reference_onnx, inputs.latency, vocab)
    faster = timed.speedup_vs_reference > unfused.speedup_vs_reference
    keep = faster and timed.reliable and unfused.reliable
    return FusionChoice(
        kept=fused if keep else None,
        kept_latency=timed if keep else None,
        fused_speedup=timed.speedup_vs_reference,
        unfused_speedup=unfused.speedup_vs_reference,
    )


def _profile(inputs: TrialInputs, model: Path) -> ProfileResult | None:
    """The data-length profile, when the study asks for one."""
    if not inputs.latency.data_rows:
        return None
    feeds = profile_feeds(inputs.validation, inputs.latency.data_rows)
    return measure_profile(model, inputs.reference_onnx, feeds, inputs.latency.threads)


def _check_latency(inputs: TrialInputs, probed: LatencyResult) -> None:
    # A probe timed on a busy machine reads slow: it stops nothing (the final, re-timed
    # figure is judged instead).
    if inputs.max_latency_ms is None or not probed.reliable:
        return
    latency = probed.corrected_ms(inputs.reference_baseline_ms)
    if latency > inputs.max_latency_ms:
        raise LatencyConstraintError(latency, inputs.max_latency_ms)


def _rung_metrics(rung: RungTraining | None, batch_size: int) -> dict[str, Any]:
    if rung is None:
        return {}
    return {
        "rung": rung.index,
        "top_rung": rung.top,
        "budget_examples": rung.stop_step * batch_size,
        "trained_examples": rung.steps_trained * batch_size,
    }


def _train(
    inputs: TrialInputs,
    config: CompressionConfig,
    student: nn.Module,
    layer_map: list[int],
    progress: Progress,
    rung: RungTraining | None = None,
) -> tuple[list[tuple[int, float]], float | None]:
    """Distill, or load the same student trained by an earlier trial.

    Returns the loss curve and, on reuse, the distillation seconds that were saved. A rung's
    part of a run is never taken from the store: its checkpoint is what carries it on.
    """
    store = inputs.student_store if reusable(config) and rung is None else None
    key = training_key(inputs.teacher_key, inputs.data_key, config, inputs.training)
    if store is not None and (meta := store.load(key, student)) is not None:
        return [tuple(point) for point in meta["curve"]], float(meta["seconds"])
    started = time.perf_counter()
    curve = distill(
        student,
        inputs.train,
        inputs.training,
        teacher_logits=inputs.teacher_logits,
        temperature=config.temperature,
        alpha=config.alpha,
        sparsity=config.sparsity,
        pad_id=inputs.pad_id,
        on_step=progress.step,
        teacher=inputs.teacher,
        layer_map=layer_map,
        rung=rung,
    )
    if store is not None:
        store.save(key, student, {"curve": curve, "seconds": time.perf_counter() - started})
    return curve, None


def _student(inputs: TrialInputs, config: CompressionConfig) -> tuple[nn.Module, int, list[int]]:
    """The student for ``config`` (with NNCF quantizers for QAT), its parameter count, and the
    layer map: the teacher layer each student layer was cut from."""
    plan = plan_student(inputs.teacher.config, config, inputs.importance)
    student = build_student(inputs.teacher, plan)
    parameters = count_parameters(student)
    if config.int8_method == "qat":
        student = quantize.prepare_qat(student, _calibration(inputs))
    return student, parameters, list(plan.layers)


def _export_deployable(
    student: nn.Module,
    config: CompressionConfig,
    input_names: tuple[str, ...],
    work: Path,
    target: Path | None = None,
) -> Path:
    """The student as it ships: exported with ``input_names``, quantized, optimised for ORT,
    written to ``target`` (default: ``work/model.onnx``); intermediate files stay in
    ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    target = target or work / MODEL_FILE
    if config.int8_method == "qat":
        # NNCF's fake-quantizers export as QuantizeLinear/DequantizeLinear: already INT8.
        with torch.no_grad():
            stripped = quantize.strip_qat(copy.deepcopy(student), input_names)
        raw = export.export_onnx(stripped, work / "raw.onnx", input_names)
        return export.optimize_for_ort(raw, target)
    raw = export.export_onnx(student, work / "raw.onnx", input_names)
    seven_bit = config.int8_method == "dynamic7"
    quantized = quantize.quantize_onnx(
        raw, work / "quantized.onnx", config.bits, reduce_range=seven_bit
    )
    return export.optimize_for_ort(quantized, target)


def _calibration(inputs: TrialInputs):
    rng = np.random.default_rng(inputs.training.seed)
    batches = train_batches(inputs.train, inputs.training.batch_size, rng, inputs.pad_id)
    return [b for _, b in zip(range(QAT_CALIBRATION_BATCHES), batches, strict=False)]


def write_metrics(result: EvalResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
