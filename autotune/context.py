"""Once per study, cached on disk by content hash (decision 4): tokenized splits, the teacher,
its ONNX reference models, its logits on the training subset, head/neuron importance, and
the teacher baselines (accuracy; latency in PyTorch FP32, ORT FP32 and ORT INT8)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotune import cache, data, distill_data, hardware
from autotune.compression import export, quantize
from autotune.compression.batching import BASE_INPUTS, TokenizedSplit, train_batches
from autotune.compression.config import TRAIN_THREADS_ENV, LatencySettings, TrainingSettings
from autotune.compression.distill import recipe_steps
from autotune.compression.evaluate import evaluate_onnx
from autotune.compression.fidelity import RungPlan, rung_plan
from autotune.compression.latency import measure_interleaved, measure_torch_interleaved
from autotune.compression.pipeline import TrialInputs
from autotune.compression.reuse import StudentStore
from autotune.compression.student import Importance, importance_scores
from autotune.progress import Progress
from autotune.spec import StudySpec
from autotune.teacher import Teacher, check_labels, load_teacher

IMPORTANCE_BATCHES = 16
IMPORTANCE_BATCH_SIZE = 32


@dataclass(frozen=True)
class Baselines:
    """The teacher measured the way every candidate is measured."""

    accuracy: float
    macro_f1: float
    int8_accuracy: float
    pytorch_fp32_ms: float
    ort_fp32_ms: float
    ort_int8_ms: float
    sequence_length: int
    threads: int

    @property
    def pytorch_over_reference(self) -> float:
        return self.pytorch_fp32_ms / self.ort_fp32_ms

    def stored(self, reference: Path, num_labels: int) -> dict[str, Any]:
        """As the database keeps them, with the reference file's size and the class count."""
        return {**asdict(self), "size_mb": reference.stat().st_size / 1e6, "num_labels": num_labels}


@dataclass(frozen=True)
class StudyContext:
    spec: StudySpec
    teacher: Teacher
    inputs: TrialInputs
    baselines: Baselines
    hardware: dict[str, Any]
    num_labels: int
    distillation: distill_data.DistillationSet
    label_names: tuple[str, ...] | None = None  # id -> name, when the data or spec names them
    rungs: RungPlan | None = None  # a multi-fidelity study's rungs (search.fidelity)


def training_settings(spec: StudySpec) -> TrainingSettings:
    t = spec.training
    return TrainingSettings(
        epochs=t.epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        warmup_ratio=t.warmup_ratio,
        weight_decay=t.weight_decay,
        threads=t.threads,
        seed=spec.seed,
        hidden_weight=spec.distillation.hidden_weight,
        attention_weight=spec.distillation.attention_weight,
        intermediate_epochs=spec.distillation.intermediate_epochs,
        freeze_embeddings=t.freeze_embeddings,
        device=t.device,
    )


def latency_settings(
    spec: StudySpec, sequence_length: int | None = None, threads: int | None = None
) -> LatencySettings:
    lat = spec.latency
    return LatencySettings(
        threads=threads or lat.threads,
        batch_size=lat.batch_size,
        sequence_length=sequence_length or spec.latency_sequence_length,
        warmup=lat.warmup,
        runs=lat.runs,
        precision=lat.precision,
        max_runs=lat.max_runs,
        block=lat.block,
        busy_cores=lat.busy_cores,
        max_reference_cv=lat.max_reference_cv,
        busy_retries=lat.busy_retries,
        busy_wait_s=lat.busy_wait_s,
        data_rows=lat.data_rows,
        fuse_attention=lat.fuse_attention,
    )


@dataclass(frozen=True)
class Bench:
    """What measuring models on this machine needs, without any training: the teacher, the
    splits, the teacher's ONNX reference models, the latency settings, this machine's
    fingerprint and the teacher baselines measured on it."""

    spec: StudySpec
    teacher: Teacher
    splits: data.Splits
    reference: Path  # the teacher in ORT FP32: the latency reference
    reference_int8: Path
    settings: LatencySettings
    hardware: dict[str, Any]
    baselines: Baselines


def prepare_bench(
    spec: StudySpec,
    data_root: Path | None = None,
    models_root: Path | None = None,
    progress: Progress | None = None,
    sequence_length: int | None = None,
    threads: int | None = None,
) -> Bench:
    progress = progress or Progress()
    progress.stage("teacher")
    teacher = load_teacher(spec.teacher.checkpoint, models_root)
    progress.stage("data")
    splits = data.load_splits(
        spec.dataset, teacher.tokenizer, teacher.tokenizer_fingerprint, data_root
    )
    check_labels(teacher, splits.num_labels, splits.label_names)
    progress.stage("reference models")
    reference, reference_int8 = _reference_models(teacher, splits.train.input_names)
    settings = latency_settings(spec, sequence_length, threads)
    machine = hardware.fingerprint(settings.threads)
    progress.stage("baselines")
    baselines = _baselines(teacher, reference, reference_int8, splits, settings, machine)
    return Bench(spec, teacher, splits, reference, reference_int8, settings, machine, baselines)


def prepare_study(
    spec: StudySpec,
    data_root: Path | None = None,
    models_root: Path | None = None,
    progress: Progress | None = None,
    sequence_length: int | None = None,
) -> StudyContext:
    progress = progress or Progress()
    bench = prepare_bench(spec, data_root, models_root, progress, sequence_length)
    teacher, splits, reference = bench.teacher, bench.splits, bench.reference
    baselines, settings, machine = bench.baselines, bench.settings, bench.hardware
    train, subset_key = _train_subset(spec, splits.train)
    pad_id = teacher.tokenizer.pad_token_id or 0
    progress.stage("teacher logits")
    distillation = distill_data.build(
        teacher,
        reference,
        train,
        splits.validation,
        spec.augmentation,
        spec.seed,
        cache.hash_json([splits.fingerprint, subset_key]),
        pad_id,
        spec.dataset.max_length,
        pairs=spec.dataset.text_pair_column is not None,
    )
    progress.stage("importance")
    importance = _importance(teacher, splits.train, splits.fingerprint, spec.seed, pad_id)
    inputs = TrialInputs(
        teacher=teacher.model,
        importance=importance,
        train=distillation.train,
        teacher_logits=distillation.logits,
        validation=splits.validation,
        reference_onnx=reference,
        teacher_pytorch_over_reference=baselines.pytorch_over_reference,
        training=training_settings(spec),
        latency=settings,
        max_latency_ms=spec.constraints.max_latency_ms,
        reference_baseline_ms=baselines.ort_fp32_ms,
        pad_id=pad_id,
        hardware=machine,
        teacher_key=_model_key(teacher, splits.train.input_names),
        data_key=distillation.key,
        student_store=StudentStore(cache.cache_root() / "students"),
    )
    rungs = _rungs(spec, inputs.training, len(inputs.train))
    _set_training_threads(spec)
    return StudyContext(
        spec,
        teacher,
        inputs,
        baselines,
        machine,
        splits.num_labels,
        distillation,
        splits.label_names,
        rungs,
    )


def _rungs(spec: StudySpec, training: TrainingSettings, n_rows: int) -> RungPlan | None:
    """The rungs of the whole recipe on this training set (its size, augmented rows included,
    is known only now)."""
    schedule = spec.search.fidelity
    if schedule is None:
        return None
    steps, logits = recipe_steps(n_rows, training)
    return rung_plan(steps, logits, training.batch_size, schedule.min_examples, schedule.eta)


def _set_training_threads(spec: StudySpec) -> None:
    import torch

    # `study run --workers N` gives each local worker its share of the cores.
    share = os.environ.get(TRAIN_THREADS_ENV, "")
    default = int(share) if share.isdigit() and int(share) > 0 else os.cpu_count() or 1
    torch.set_num_threads(spec.training.threads or default)


def _train_subset(spec: StudySpec, train: TokenizedSplit) -> tuple[TokenizedSplit, str]:
    limit = spec.training.max_train_samples
    if not limit or limit >= len(train):
        return train, "all"
    order = np.random.default_rng(spec.seed).permutation(len(train))[:limit]
    return train.subset(np.sort(order)), cache.hash_json([spec.seed, limit])


def _model_key(teacher: Teacher, input_names: tuple[str, ...]) -> str:
    """The teacher's content hash, marked when its exports take token types: a study of
    sentence pairs neither reuses nor pollutes the single-sentence caches."""
    return teacher.fingerprint if input_names == BASE_INPUTS else f"{teacher.fingerprint}-pairs"


def _reference_models(teacher: Teacher, input_names: tuple[str, ...]) -> tuple[Path, Path]:
    """The teacher in ORT FP32 (the latency reference) and ORT dynamic INT8, taking the same
    inputs as the students (``token_type_ids`` too for sentence pairs)."""
    target = cache.entry_dir("teachers", _model_key(teacher, input_names))
    if not (target / "int8.onnx").exists():
        with cache.atomic_dir(target) as tmp:
            raw = export.export_onnx(teacher.model, tmp / "raw.onnx", input_names)
            export.optimize_for_ort(raw, tmp / "fp32.onnx")
            quantize.quantize_onnx(raw, tmp / "int8_raw.onnx", 8)
            export.optimize_for_ort(tmp / "int8_raw.onnx", tmp / "int8.onnx")
            (tmp / "raw.onnx").unlink()
            (tmp / "int8_raw.onnx").unlink()
    return target / "fp32.onnx", target / "int8.onnx"


def _importance(
    teacher: Teacher, train: TokenizedSplit, data_key: str, seed: int, pad_id: int
) -> Importance:
    key = cache.hash_json([teacher.fingerprint, data_key, seed, IMPORTANCE_BATCHES])
    target = cache.entry_dir("importance", key)
    if not (target / "importance.npz").exists():
        batches = train_batches(train, IMPORTANCE_BATCH_SIZE, np.random.default_rng(seed), pad_id)
        chosen = [b for _, b in zip(range(IMPORTANCE_BATCHES), batches, strict=False)]
        scores = importance_scores(teacher.model, chosen)
        with cache.atomic_dir(target) as tmp:
            np.savez(tmp / "importance.npz", heads=scores.heads, ffn=scores.ffn)
    with np.load(target / "importance.npz") as saved:
        return Importance(heads=saved["heads"], ffn=saved["ffn"])


def _baselines(
    teacher: Teacher,
    reference: Path,
    reference_int8: Path,
    splits: data.Splits,
    settings: LatencySettings,
    machine: dict[str, Any],
) -> Baselines:
    key = cache.hash_json([teacher.fingerprint, splits.fingerprint, asdict(settings), machine])
    target = cache.entry_dir("baselines", key)
    if (target / "baselines.json").exists():
        return Baselines(**json.loads((target / "baselines.json").read_text()))
    vocab = teacher.model.config.vocab_size
    fp32 = evaluate_onnx(reference, splits.validation)
    int8 = evaluate_onnx(reference_int8, splits.validation)
    torch_lat = measure_torch_interleaved(teacher.model, reference, settings, vocab)
    int8_lat = measure_interleaved(reference_int8, reference, settings, vocab)
    # Both runs timed the reference; express every figure relative to one reference window.
    ort_ms = torch_lat.reference_median_ms
    result = Baselines(
        accuracy=fp32.accuracy,
        macro_f1=fp32.macro_f1,
        int8_accuracy=int8.accuracy,
        pytorch_fp32_ms=torch_lat.median_ms,
        ort_fp32_ms=ort_ms,
        ort_int8_ms=ort_ms / int8_lat.speedup_vs_reference,
        sequence_length=settings.sequence_length,
        threads=settings.threads,
    )
    with cache.atomic_dir(target) as tmp:
        (tmp / "baselines.json").write_text(json.dumps(asdict(result), indent=1))
    return result
