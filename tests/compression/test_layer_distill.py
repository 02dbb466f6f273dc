"""Intermediate-layer distillation on the tiny teacher: layer map, losses, training, device."""

import numpy as np
import pytest
import torch

from autotune.compression.batching import TokenizedSplit, pad
from autotune.compression.config import TrainingSettings
from autotune.compression.distill import distill, resolve_device, stages
from autotune.compression.layer_distill import (
    captured,
    hidden_state_loss,
    relation_heads,
    relation_loss,
    teacher_targets,
)
from autotune.compression.student import StudentPlan, build_student
from autotune.errors import ConfigError
from autotune.teacher import load_teacher

ALL_FFN = tuple(range(64))


@pytest.fixture()
def teacher(tiny_teacher):
    """The tiny random teacher with sharper attention: at init (std 0.02) its Q/K/V are so small
    that every relation is nearly uniform and relation losses would be ~0 whatever happens."""
    model = load_teacher(str(tiny_teacher)).model
    with torch.no_grad():
        for layer in model.base_model.encoder.layer:
            for name in ("query", "key", "value"):
                getattr(layer.attention.self, name).weight.mul_(20.0)
    return model


def _split(n: int = 64, seed: int = 0) -> TokenizedSplit:
    rng = np.random.default_rng(seed)
    rows = [
        np.concatenate([[101], rng.integers(1000, 5000, rng.integers(3, 9)), [102]])
        for _ in range(n)
    ]
    return TokenizedSplit.from_rows(rows, rng.integers(0, 2, n))


def _intermediate(student, teacher, layer_map: list[int], split: TokenizedSplit):
    batch = pad(split, np.arange(len(split)))
    ids, mask = torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask)
    student.eval()
    with captured(student, list(range(len(layer_map)))) as capture, torch.no_grad():
        out = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden, teacher_capture = teacher_targets(teacher, layer_map, batch.tensors(), True)
        h = hidden_state_loss(list(out.hidden_states[1:]), hidden, mask).item()
        r = relation_loss(capture, teacher_capture, len(layer_map), mask).item()
    return h, r


def test_losses_are_zero_when_the_student_is_the_teacher(teacher) -> None:
    whole = build_student(teacher, StudentPlan((0, 1, 2, 3), ((0, 1, 2, 3),) * 4, (ALL_FFN,) * 4))
    hidden, relation = _intermediate(whole, teacher, [0, 1, 2, 3], _split())
    assert hidden == pytest.approx(0.0, abs=1e-10)
    assert relation == pytest.approx(0.0, abs=1e-6)


def test_losses_are_positive_for_a_cut_student(teacher) -> None:
    # Student layer 0 is teacher layer 1, but sees the embeddings, not teacher layer 0's output.
    student = build_student(teacher, StudentPlan((1, 3), ((0, 1, 2, 3),) * 2, (ALL_FFN,) * 2))
    hidden, relation = _intermediate(student, teacher, [1, 3], _split())
    assert hidden > 1e-4
    assert relation > 1e-5


def test_relation_heads_fit_any_head_count() -> None:
    assert relation_heads(384, 384) == 12
    assert relation_heads(6 * 32, 384) == 12
    assert relation_heads(5 * 32, 384) == 8  # 160 and 384 share 32: 8 heads of 20 and 48
    assert relation_heads(16, 32) == 8


@pytest.mark.parametrize(("hidden_weight", "attention_weight"), [(1.0, 0.0), (0.0, 1.0)])
def test_intermediate_loss_falls_with_fewer_heads(
    teacher, hidden_weight: float, attention_weight: float
) -> None:
    student = build_student(teacher, StudentPlan((1, 3), ((0, 2),) * 2, ((0, 5, 9),) * 2))
    split = _split(128)
    before = _intermediate(student, teacher, [1, 3], split)
    settings = TrainingSettings(
        epochs=1,
        intermediate_epochs=6,
        hidden_weight=hidden_weight,
        attention_weight=attention_weight,
        batch_size=16,
        learning_rate=5e-4,
        warmup_ratio=0.0,
        device="auto",
    )
    logits = np.zeros((len(split), 2), dtype=np.float32)
    curve = distill(
        student, split, settings, teacher_logits=logits, teacher=teacher, layer_map=[1, 3]
    )
    after = _intermediate(student, teacher, [1, 3], split)
    trained = 0 if hidden_weight else 1  # the loss that was trained falls
    assert after[trained] < before[trained] * 0.7, (before, after)
    assert curve and not student.training
    assert student.base_model.embeddings.word_embeddings.weight.device.type == "cpu"


def test_stages_follow_the_recipe() -> None:
    plain = TrainingSettings(epochs=3)
    assert [s.name for s in stages(plain, layer_distillation=False)] == ["distill"]
    combined = TrainingSettings(epochs=3, hidden_weight=1.0)
    (only,) = stages(combined, layer_distillation=True)
    assert only.logits and only.intermediate and only.epochs == 3
    two = TrainingSettings(epochs=3, hidden_weight=1.0, intermediate_epochs=2)
    first, second = stages(two, layer_distillation=True)
    assert (first.intermediate, first.logits, first.epochs) == (True, False, 2)
    assert (second.intermediate, second.logits, second.epochs) == (False, True, 3)


def test_freezing_embeddings_keeps_them_and_trains_the_rest(teacher) -> None:
    student = build_student(teacher, StudentPlan((1, 3), ((0, 1, 2, 3),) * 2, (ALL_FFN,) * 2))
    embeddings = student.base_model.embeddings.word_embeddings.weight.detach().clone()
    layer = student.base_model.encoder.layer[0].output.dense.weight.detach().clone()
    split = _split()
    settings = TrainingSettings(epochs=1, batch_size=16, learning_rate=1e-2, freeze_embeddings=True)
    distill(student, split, settings, teacher_logits=np.zeros((len(split), 2)), alpha=0.5)
    assert torch.equal(student.base_model.embeddings.word_embeddings.weight, embeddings)
    assert not torch.equal(student.base_model.encoder.layer[0].output.dense.weight, layer)
    assert student.base_model.embeddings.word_embeddings.weight.requires_grad


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
def test_auto_device_is_the_cpu_without_a_gpu() -> None:
    assert resolve_device("auto").type == "cpu"
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        resolve_device("cuda")


def test_recipe_values_are_checked() -> None:
    with pytest.raises(ConfigError, match="hidden_weight=-1 is out of range"):
        TrainingSettings(hidden_weight=-1)
    with pytest.raises(ConfigError, match="device='tpu' is out of range"):
        TrainingSettings(device="tpu")
