"""The seam between search and compression: frozen, validated-on-creation dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from autotune.errors import ConfigError

FFN_MULTIPLE = 8  # keep FFN widths a multiple of 8: GEMM kernels prefer aligned shapes


def ffn_width(intermediate_size: int, fraction: float) -> int:
    """The student's FFN width: ``fraction`` of the teacher's, aligned."""
    width = round(intermediate_size * fraction / FFN_MULTIPLE) * FFN_MULTIPLE
    return int(min(intermediate_size, max(FFN_MULTIPLE, width)))


BITS = (32, 8, 4)
# dynamic7: dynamic with 7-bit weights (ORT's reduce_range).
INT8_METHODS = ("dynamic", "dynamic7", "qat")
MAX_SPARSITY = 0.9


@dataclass(frozen=True)
class CompressionConfig:
    """One point of the search space.

    ``heads`` is the number of attention heads kept in every layer, ``ffn_fraction`` the share
    of FFN neurons kept; both are removed physically so the matrices shrink. ``sparsity`` is
    unstructured magnitude sparsity of the remaining linear layers. ``int8_method`` only
    applies when ``bits == 8``.
    """

    layers: int
    heads: int
    ffn_fraction: float = 1.0
    sparsity: float = 0.0
    bits: int = 32
    int8_method: str | None = None
    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.bits == 8 and self.int8_method is None:
            object.__setattr__(self, "int8_method", "dynamic")
        if self.bits != 8 and self.int8_method is not None:
            # Conditional parameter: a method only exists for INT8; drop it rather than store noise.
            object.__setattr__(self, "int8_method", None)
        _check(self.layers >= 1, "layers", self.layers, "an integer >= 1")
        _check(self.heads >= 1, "heads", self.heads, "an integer >= 1")
        _check(0 < self.ffn_fraction <= 1, "ffn_fraction", self.ffn_fraction, "a number in (0, 1]")
        _check(0 <= self.sparsity <= MAX_SPARSITY, "sparsity", self.sparsity, f"0..{MAX_SPARSITY}")
        _check(self.bits in BITS, "bits", self.bits, "one of 32, 8, 4")
        _check(
            self.int8_method in (None, *INT8_METHODS),
            "int8_method",
            self.int8_method,
            "'dynamic', 'dynamic7' or 'qat'",
        )
        _check(self.temperature > 0, "temperature", self.temperature, "a number > 0")
        _check(0 <= self.alpha <= 1, "alpha", self.alpha, "a number in [0, 1]")

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CompressionConfig:
        unknown = sorted(set(values) - set(cls.fields()))
        if unknown:
            raise ConfigError(
                f"unknown configuration key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(cls.fields())}"
            )
        try:
            return cls(**values)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(f"incomplete configuration: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def architecture_key(self) -> tuple[int, int, float, int, str | None]:
        """What decides latency: shape and number format, not weights or training."""
        return (self.layers, self.heads, self.ffn_fraction, self.bits, self.int8_method)

    def label(self) -> str:
        method = f"-{self.int8_method}" if self.bits == 8 else ""
        return (
            f"L{self.layers}-H{self.heads}-F{self.ffn_fraction:g}-S{self.sparsity:g}"
            f"-INT{self.bits}{method}".replace("INT32", "FP32")
        )


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={value!r} is out of range; allowed: {allowed}")


DEVICES = ("auto", "cpu", "cuda")
# `study run --workers N` tells each local worker its share of the cores for training.
TRAIN_THREADS_ENV = "AUTOTUNE_TRAIN_THREADS"


@dataclass(frozen=True)
class TrainingSettings:
    """Distillation recipe and budget of one trial.

    The main stage runs ``epochs`` epochs of logit KD plus ``hidden_weight`` times the
    hidden-state loss and ``attention_weight`` times the self-attention relation loss on the
    layer map (``compression.layer_distill``). With ``intermediate_epochs`` > 0, a first stage
    trains on the intermediate losses alone and the main stage on logits alone (TinyBERT's two
    stages); only the intermediate losses need a teacher forward pass per step.
    """

    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    threads: int | None = None
    seed: int = 0
    hidden_weight: float = 0.0
    attention_weight: float = 0.0
    intermediate_epochs: float = 0.0
    freeze_embeddings: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        _check(self.epochs > 0, "epochs", self.epochs, "a number > 0")
        _check(self.hidden_weight >= 0, "hidden_weight", self.hidden_weight, "a number >= 0")
        _check(
            self.attention_weight >= 0, "attention_weight", self.attention_weight, "a number >= 0"
        )
        _check(
            self.intermediate_epochs >= 0,
            "intermediate_epochs",
            self.intermediate_epochs,
            "a number >= 0",
        )
        _check(self.device in DEVICES, "device", self.device, "'auto', 'cpu' or 'cuda'")

    @property
    def uses_teacher_layers(self) -> bool:
        return self.hidden_weight > 0 or self.attention_weight > 0


@dataclass(frozen=True)
class LatencySettings:
    """ONNX Runtime latency measurement: batch, sequence length, threads, repetitions."""

    threads: int = 1
    batch_size: int = 1
    sequence_length: int = 64
    warmup: int = 20
    # Calls per model: ``runs`` first, then ``runs`` more at a time until the speedup's 95%
    # bootstrap interval is within +-``precision`` of it, or ``max_runs`` were timed (a
    # sub-millisecond student's ratio moved 3% between quiet windows of 100 calls).
    runs: int = 100
    precision: float = 0.015
    max_runs: int = 1000
    # Calls per block: the two models alternate in blocks of this many (1: call by call).
    block: int = 10
    # A window is busy when other processes used more than ``busy_cores`` cores during it,
    # or the reference's own spread (CV) exceeds ``max_reference_cv``; it is then measured
    # again after ``busy_wait_s``, up to ``busy_retries`` times, and else marked unreliable.
    busy_cores: float = 0.5
    max_reference_cv: float = 0.3
    busy_retries: int = 2
    busy_wait_s: float = 5.0
    # The data-length profile: this many validation sentences, batch 1, each at its own
    # length (0: none).
    data_rows: int = 0
    # Try ORT's fused attention on FP32 models; kept only where it times faster.
    fuse_attention: bool = True


@dataclass(frozen=True)
class LatencyResult:
    """Latency of a candidate measured interleaved with the reference in one window."""

    median_ms: float
    p90_ms: float
    cv: float
    reference_median_ms: float
    speedup_vs_reference: float
    reference_cv: float = 0.0
    foreign_cores: float | None = None  # other processes' CPU use during the window
    attempts: int = 1  # windows timed (busy ones are timed again)
    reliable: bool = True  # False: every attempt found the machine busy
    runs: int = 0  # calls timed per model in the window
    # The speedup's 95% paired-bootstrap interval over the window's calls.
    speedup_low: float = 0.0
    speedup_high: float = 0.0

    @property
    def precision(self) -> float:
        """Half the width of the speedup's interval, relative to the speedup."""
        return (self.speedup_high - self.speedup_low) / 2 / self.speedup_vs_reference

    def metrics(
        self, reference_baseline_ms: float | None, pytorch_over_reference: float
    ) -> dict[str, Any]:
        """The :class:`TrialMetrics` fields this window gives (trials and re-measures)."""
        return {
            "latency_ms": self.corrected_ms(reference_baseline_ms),
            "latency_raw_ms": self.median_ms,
            "latency_p90_ms": self.p90_ms,
            "latency_cv": self.cv,
            "speedup_vs_teacher_ort": self.speedup_vs_reference,
            "speedup_vs_teacher_pytorch": pytorch_over_reference * self.speedup_vs_reference,
            "latency_reference_ms": self.reference_median_ms,
            "latency_foreign_cores": self.foreign_cores,
            "latency_reliable": self.reliable,
            "latency_runs": self.runs,
            "latency_precision": self.precision,
        }

    def corrected_ms(self, reference_baseline_ms: float | None) -> float:
        """The latency users see and budgets are judged by, drift-corrected: the teacher's
        ORT FP32 baseline divided by the speedup measured against the teacher in this
        window, so that a trial timed while the machine was busy is ranked fairly. Without
        a baseline, the raw median."""
        if not reference_baseline_ms:
            return self.median_ms
        return reference_baseline_ms / self.speedup_vs_reference


@dataclass(frozen=True)
class TrialMetrics:
    """What users see of one trial, built once, where it is measured (``run_trial``).

    Stored once, as JSON under these field names, in autotune's trial row: the keys README
    documents, only ever added to. ``latency_ms`` is
    drift-corrected (:meth:`LatencyResult.corrected_ms`); ``latency_raw_ms`` is what the
    clock said.
    """

    accuracy: float
    macro_f1: float
    latency_ms: float
    latency_raw_ms: float
    latency_p90_ms: float
    latency_cv: float
    speedup_vs_teacher_pytorch: float
    speedup_vs_teacher_ort: float
    size_mb: float
    compressed_size_mb: float
    sparsity: float
    parameters: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    probe_cached: bool = False
    student_reused: bool = False
    distill_seconds_saved: float = 0.0
    # The latency window: the teacher reference's median in it (what keeps the machine's
    # quiet baseline current), other processes' cores, and whether it was quiet enough.
    latency_reference_ms: float = 0.0
    latency_foreign_cores: float | None = None
    latency_reliable: bool = True
    # Calls timed per model, and half the width of the speedup's 95% interval (relative).
    latency_runs: int = 0
    latency_precision: float | None = None
    # The data-length profile (``latency.data_rows`` validation sentences, batch 1, each at
    # its own length): the candidate's mean and p90, and the teacher's mean, interleaved.
    latency_data_mean_ms: float | None = None
    latency_data_p90_ms: float | None = None
    latency_data_reference_ms: float | None = None
    # Fused attention (FP32 models): whether the shipped file has it, and the speedups over
    # the teacher of the fused and unfused forms when both were timed on this machine.
    attention_fused: bool = False
    fused_speedup_vs_teacher_ort: float | None = None
    unfused_speedup_vs_teacher_ort: float | None = None
    # Multi-fidelity studies: the rung (0 = lowest), whether it is the top one (the whole
    # recipe: only those answer the study), the examples the student has been trained on in
    # all, and those this trial trained (a promoted trial resumes from its lower rung).
    rung: int | None = None
    top_rung: bool = True
    budget_examples: int | None = None
    trained_examples: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialMetrics | None:
        """The stored form read back; None for a trial that measured nothing (failed,
        stopped). Keys a later autotune added are ignored."""
        if "accuracy" not in data:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class EvalResult:
    """One compressed, exported model and what was measured about it: the metrics users see,
    and the raw pieces they came from (the latency window, the file, the machine)."""

    config: CompressionConfig
    metrics: TrialMetrics
    latency: LatencyResult
    model_path: str
    hardware: dict[str, Any] = field(default_factory=dict)  # where latency was measured
    reuse: dict[str, Any] = field(default_factory=dict)  # what cached work this trial skipped

    def to_dict(self) -> dict[str, Any]:
        """``metrics.json`` and ``trial run --json``: the metrics' keys at the top level (as
        in every release so far), the raw pieces beside them, and ``metrics`` as stored."""
        metrics = self.metrics.to_json()
        return {
            **metrics,
            "config": dataclasses.asdict(self.config),
            "latency": dataclasses.asdict(self.latency),
            "model_path": self.model_path,
            "hardware": self.hardware,
            "reuse": self.reuse,
            "metrics": metrics,
        }


# The latency figure a study ranks by (``latency.optimise``) and the metric holding it.
LATENCY_FIGURES = {
    "fixed": "latency_ms",
    "data_mean": "latency_data_mean_ms",
    "data_p90": "latency_data_p90_ms",
}


def relative_latency(metrics: dict[str, Any], figure: str = "fixed") -> float:
    """A trial's latency figure over the teacher reference's in the same window: the
    drift-free quantity the search and the fronts rank by (times one fixed figure in ms)."""
    if figure == "fixed":
        return 1.0 / metrics["speedup_vs_teacher_ort"]
    reference = metrics.get("latency_data_reference_ms")
    if not reference:
        raise ValueError(f"latency.optimise = {figure!r} needs the data-length profile")
    return metrics[LATENCY_FIGURES[figure]] / reference
