"""Distillation loss, training loop and gradual sparsity on the tiny teacher."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autotune.compression.batching import TokenizedSplit, batches_per_epoch, train_batches
from autotune.compression.config import TrainingSettings
from autotune.compression.distill import distill, kd_loss
from autotune.compression.sparsity import cubic_target, prunable_linears
from autotune.compression.student import StudentPlan, build_student
from autotune.teacher import load_teacher


def test_kd_loss_limits() -> None:
    student = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    labels = torch.tensor([0, 1])
    assert torch.isclose(
        kd_loss(student, student.clone(), labels, 4.0, 0.0), F.cross_entropy(student, labels)
    )
    # Matching the teacher exactly costs nothing on the soft side.
    assert kd_loss(student, student.clone(), labels, 4.0, 1.0).abs() < 1e-6
    # T^2 keeps the soft loss on the cross-entropy scale: it shrinks far slower than 1/T^2.
    teacher = torch.tensor([[-1.0, 2.0], [0.3, 0.5]])
    hot, cold = (
        kd_loss(student, teacher, labels, 8.0, 1.0),
        kd_loss(student, teacher, labels, 1.0, 1.0),
    )
    assert hot > cold / 64 * 4


def test_cubic_schedule() -> None:
    assert cubic_target(0, 300, 0.8) == 0.0
    assert cubic_target(200, 300, 0.8) == pytest.approx(0.8)
    assert cubic_target(300, 300, 0.8) == pytest.approx(0.8)
    assert 0.4 < cubic_target(50, 300, 0.8) < 0.6  # fast early, slow late


def test_length_bucketed_batches_cover_every_row_once() -> None:
    rows = [np.arange(n % 13 + 1) for n in range(1000)]
    split = TokenizedSplit.from_rows(rows, np.zeros(1000, dtype=np.int64))
    batches = list(train_batches(split, 16, np.random.default_rng(0)))
    seen = np.sort(np.concatenate([b.indices for b in batches]))
    np.testing.assert_array_equal(seen, np.arange(1000))
    assert len(batches) <= batches_per_epoch(1000, 16)
    padded = sum(b.input_ids.size for b in batches)
    assert padded < 1.2 * split.lengths.sum()  # sorted buckets: little padding


@pytest.fixture()
def student(tiny_teacher):
    teacher = load_teacher(str(tiny_teacher)).model
    return build_student(teacher, StudentPlan((1, 3), ((0, 1, 2, 3),) * 2, (tuple(range(64)),) * 2))


def _toy_split(n: int = 64) -> TokenizedSplit:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    rows = [np.array([101, 2204 if y else 2919, 2143, 102]) for y in labels]
    return TokenizedSplit.from_rows(rows, labels)


def test_distillation_learns_and_reaches_sparsity(student) -> None:
    split = _toy_split()
    teacher_logits = np.stack(
        [np.where(split.labels == 0, 3.0, -3.0), np.where(split.labels == 1, 3.0, -3.0)], 1
    )
    settings = TrainingSettings(epochs=8, batch_size=16, learning_rate=3e-3, warmup_ratio=0.0)
    curve = distill(
        student,
        split,
        settings,
        teacher_logits=teacher_logits,
        temperature=2.0,
        alpha=0.7,
        sparsity=0.5,
    )
    assert curve[-1][1] < curve[0][1]
    assert weight_sparsity(student) == pytest.approx(0.5, abs=0.01)
    assert not student.training
    assert not any(name.endswith("weight_orig") for name, _ in student.named_parameters())


def test_teacher_logits_must_match_rows(student) -> None:
    with pytest.raises(ValueError, match="3 teacher logits for 64 training rows"):
        distill(student, _toy_split(), TrainingSettings(), teacher_logits=np.zeros((3, 2)))


def weight_sparsity(model) -> float:
    """Share of exact zeros in the weights the sparsity schedule prunes."""
    weights = [m.weight for m in prunable_linears(model)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)
