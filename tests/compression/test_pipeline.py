"""One trial end to end on the tiny teacher, for every bit width and student shape."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from autotune.compression.config import CompressionConfig
from autotune.compression.evaluate import evaluate_onnx, onnx_weight_sparsity
from autotune.compression.pipeline import METRICS_FILE, MODEL_FILE, run_trial
from autotune.errors import LatencyConstraintError
from autotune.progress import Progress

CASES = {
    "fp32-shallow": CompressionConfig(layers=1, heads=4, bits=32),
    "int8-dynamic": CompressionConfig(layers=2, heads=4, bits=8),
    "int8-qat": CompressionConfig(layers=2, heads=4, bits=8, int8_method="qat"),
    "int4-sparse": CompressionConfig(layers=4, heads=4, bits=4, sparsity=0.5),
    "narrow": CompressionConfig(
        layers=2,
        heads=2,
        ffn_fraction=0.25,
        bits=8,
        int8_method="dynamic7",
        temperature=4,
        alpha=0.9,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_trial_writes_a_measured_deployable_model(tiny_context, tmp_path: Path, case: str) -> None:
    config = CASES[case]
    result = run_trial(tiny_context.inputs, config, tmp_path)
    model = tmp_path / MODEL_FILE
    assert result.model_path == str(model)
    # What was reported is what the deployed file scores in a fresh session.
    fresh = evaluate_onnx(model, tiny_context.inputs.validation)
    assert fresh.accuracy == result.metrics.accuracy
    assert result.metrics.sparsity == pytest.approx(onnx_weight_sparsity(model))
    if config.sparsity:
        assert result.metrics.sparsity >= config.sparsity - 0.02
    assert result.latency.median_ms > 0 and result.metrics.speedup_vs_teacher_ort > 0
    assert set(result.metrics.stage_seconds) == {
        "build",
        "latency_probe",
        "distill",
        "export",
        "evaluate",
        "latency",
    }
    # Only FP32 students with all their heads are tried fused (and timed twice).
    tried = config.bits == 32 and config.heads == 4
    assert (result.metrics.fused_speedup_vs_teacher_ort is not None) == tried
    assert result.metrics.attention_fused <= tried
    metrics = json.loads((tmp_path / METRICS_FILE).read_text())
    assert metrics["accuracy"] == result.metrics.accuracy
    assert metrics["config"] == config.to_dict()


def test_narrow_student_has_fewer_parameters(tiny_context, tmp_path: Path) -> None:
    wide = run_trial(tiny_context.inputs, CompressionConfig(layers=2, heads=4), tmp_path / "w")
    narrow = run_trial(
        tiny_context.inputs, CompressionConfig(layers=2, heads=1, ffn_fraction=0.25), tmp_path / "n"
    )
    assert narrow.metrics.parameters < wide.metrics.parameters


class _Stages(Progress):
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.steps = 0

    def stage(self, name: str) -> None:
        self.seen.append(name)

    def step(self, done: int, total: int) -> None:
        self.steps += 1


def test_latency_constraint_stops_before_training(tiny_context, tmp_path: Path) -> None:
    inputs = replace(tiny_context.inputs, max_latency_ms=1e-6)
    stages = _Stages()
    with pytest.raises(
        LatencyConstraintError, match="exceeds max_latency_ms=1e-06; stopped before training"
    ):
        run_trial(inputs, CompressionConfig(layers=1, heads=4), tmp_path, stages)
    assert stages.seen == ["build", "latency_probe"] and stages.steps == 0
    assert not (tmp_path / MODEL_FILE).exists()


def test_bits_only_variant_reuses_the_trained_student(tiny_context, tmp_path: Path) -> None:
    from autotune.compression.reuse import StudentStore

    inputs = replace(tiny_context.inputs, student_store=StudentStore(tmp_path / "students"))
    first, second = _Stages(), _Stages()
    fp32 = run_trial(
        inputs, CompressionConfig(layers=2, heads=2, bits=32, temperature=3), tmp_path / "a", first
    )
    int8 = run_trial(
        inputs, CompressionConfig(layers=2, heads=2, bits=8, temperature=3), tmp_path / "b", second
    )
    assert first.steps > 0 and second.steps == 0  # the second trial did not train
    assert not fp32.reuse["student_reused"] and int8.reuse["student_reused"]
    assert int8.reuse["distill_seconds_saved"] > 0
    assert int8.metrics.train_curve == fp32.metrics.train_curve
