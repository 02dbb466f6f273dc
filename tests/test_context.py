"""What a study prepares once: the teacher, splits, logits, importance and baselines."""

from __future__ import annotations

from pathlib import Path

from autotune.context import latency_settings, prepare_study, training_settings
from autotune.spec import load_spec


def test_context_is_consistent(tiny_context) -> None:
    inputs, baselines = tiny_context.inputs, tiny_context.baselines
    assert inputs.reference_baseline_ms == baselines.ort_fp32_ms > 0
    assert inputs.teacher_pytorch_over_reference == baselines.pytorch_over_reference > 0
    assert (
        len(inputs.teacher_logits) == len(inputs.train) == tiny_context.distillation.original_rows
    )
    assert inputs.data_key == tiny_context.distillation.key
    assert inputs.hardware == tiny_context.hardware and inputs.hardware["id"]
    assert 0.0 <= baselines.accuracy <= 1.0 and baselines.sequence_length == 16


def test_second_preparation_reads_the_caches(tiny_context, tiny_spec: Path) -> None:
    # Measured latencies never repeat to the bit: equal baselines mean they came from disk.
    again = prepare_study(load_spec(tiny_spec))
    assert again.baselines == tiny_context.baselines
    assert again.inputs.data_key == tiny_context.inputs.data_key
    assert (again.inputs.teacher_logits == tiny_context.inputs.teacher_logits).all()


def test_settings_from_the_spec(tiny_spec: Path) -> None:
    spec = load_spec(tiny_spec)
    training = training_settings(spec)
    assert (training.epochs, training.batch_size, training.seed) == (1, 16, spec.seed)
    assert training.hidden_weight == spec.distillation.hidden_weight
    assert latency_settings(spec).sequence_length == 16
    assert latency_settings(spec, sequence_length=32).sequence_length == 32
