"""Fused attention on real exports: ORT's optimizer on the tiny BERT and a pruned student, the
parity check that guards it, and a trial that times both forms and ships the faster."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import pytest
from transformers import AutoModelForSequenceClassification

from autotune.compression.config import CompressionConfig
from autotune.compression.evaluate import evaluate_onnx
from autotune.compression.export import export_onnx
from autotune.compression.fusion import PARITY_TOLERANCE, fuse_attention, max_logit_diff
from autotune.compression.pipeline import MODEL_FILE, run_trial
from autotune.compression.student import StudentPlan, build_student


def ops(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


@pytest.fixture(scope="module")
def teacher(tiny_teacher: Path):
    return AutoModelForSequenceClassification.from_pretrained(
        tiny_teacher, attn_implementation="eager"
    )


def test_full_width_attention_fuses_with_the_same_logits(teacher, tmp_path: Path) -> None:
    raw = export_onnx(teacher, tmp_path / "raw.onnx")
    fused = fuse_attention(raw, tmp_path / "fused.onnx", 4, 32)
    assert fused is not None and fused.attention_ops == 4  # one per layer
    assert ops(fused.path)["Attention"] == 4 and ops(raw)["Attention"] == 0
    assert fused.max_logit_diff <= PARITY_TOLERANCE
    assert max_logit_diff(raw, fused.path) == fused.max_logit_diff


def test_sentence_pair_exports_fuse_too(teacher, tmp_path: Path) -> None:
    names = ("input_ids", "attention_mask", "token_type_ids")
    raw = export_onnx(teacher, tmp_path / "raw.onnx", names)
    fused = fuse_attention(raw, tmp_path / "fused.onnx", 4, 32)
    assert fused is not None and fused.max_logit_diff <= PARITY_TOLERANCE


def test_a_wrong_head_count_is_caught_by_the_parity_check(teacher, tmp_path: Path) -> None:
    # Told 2 heads of 16 instead of 4 of 8, the fusion matches but computes other logits.
    raw = export_onnx(teacher, tmp_path / "raw.onnx")
    assert fuse_attention(raw, tmp_path / "fused.onnx", 2, 32) is None
    assert not (tmp_path / "fused.onnx").exists()


@pytest.mark.parametrize("heads", [(0, 1), (0, 1, 3)])
def test_pruned_heads_stay_unfused(teacher, tmp_path: Path, heads: tuple[int, ...]) -> None:
    # An odd count once made ORT's optimizer raise, failing the trial instead of skipping.
    plan = StudentPlan((0, 3), (heads, heads), (tuple(range(64)),) * 2)
    student = build_student(teacher, plan)
    raw = export_onnx(student, tmp_path / "raw.onnx")
    assert fuse_attention(raw, tmp_path / "fused.onnx", len(heads), 32) is None


def test_an_fp32_trial_times_both_forms_and_ships_the_faster(tiny_context, tmp_path: Path):
    result = run_trial(tiny_context.inputs, CompressionConfig(layers=2, heads=4, bits=32), tmp_path)
    m = result.metrics
    assert m.fused_speedup_vs_teacher_ort and m.unfused_speedup_vs_teacher_ort
    shipped = ops(tmp_path / MODEL_FILE)
    faster = m.fused_speedup_vs_teacher_ort > m.unfused_speedup_vs_teacher_ort
    # Shipped fused only when it timed faster (and both windows were quiet).
    assert not m.attention_fused or faster
    assert (shipped["Attention"] > 0) == m.attention_fused
    if m.attention_fused:
        assert m.speedup_vs_teacher_ort == m.fused_speedup_vs_teacher_ort
    # What was reported is what the shipped file scores.
    assert evaluate_onnx(tmp_path / MODEL_FILE, tiny_context.inputs.validation).accuracy == (
        m.accuracy
    )
