import numpy as np
import pytest
import torch

from autotune.compression.batching import TokenizedSplit, eval_batches
from autotune.compression.config import CompressionConfig
from autotune.compression.student import (
    Importance,
    StudentPlan,
    build_student,
    ffn_width,
    importance_scores,
    kept_layers,
    plan_student,
)
from autotune.errors import ConfigError
from autotune.teacher import load_teacher


@pytest.fixture(scope="module")
def teacher(tiny_teacher):
    return load_teacher(str(tiny_teacher)).model


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[101, 2204, 2143, 102, 0, 0], [101, 2919, 2143, 2428, 2307, 102]])
    return ids, (ids != 0).long()


def _logits(model, ids, mask) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


def test_kept_layers_are_evenly_spaced_and_keep_the_top() -> None:
    assert kept_layers(6, 2) == [2, 5]
    assert kept_layers(6, 3) == [1, 3, 5]
    assert kept_layers(6, 6) == [0, 1, 2, 3, 4, 5]
    assert kept_layers(12, 1) == [11]


def test_ffn_width_is_aligned() -> None:
    assert ffn_width(1536, 0.5) == 768
    assert ffn_width(1536, 0.3) % 8 == 0
    assert ffn_width(64, 0.01) == 8


def test_full_plan_reproduces_teacher(teacher) -> None:
    cfg = teacher.config
    plan = StudentPlan(
        tuple(range(cfg.num_hidden_layers)),
        (tuple(range(cfg.num_attention_heads)),) * cfg.num_hidden_layers,
        (tuple(range(cfg.intermediate_size)),) * cfg.num_hidden_layers,
    )
    ids, mask = _inputs()
    torch.testing.assert_close(
        _logits(build_student(teacher, plan), ids, mask), _logits(teacher, ids, mask)
    )


def test_removing_heads_and_neurons_equals_zeroing_them(teacher) -> None:
    """Physically removed heads/neurons compute what zeroed ones would in the full model."""
    keep_heads, keep_ffn = (0, 2), tuple(range(0, 64, 2))
    plan = StudentPlan((1, 3), (keep_heads, keep_heads), (keep_ffn, keep_ffn))
    student = build_student(teacher, plan)
    layer = student.base_model.encoder.layer[0]
    assert layer.attention.self.query.out_features == 2 * 8
    assert layer.intermediate.dense.out_features == 32
    assert layer.output.dense.in_features == 32

    reference = build_student(
        teacher, StudentPlan((1, 3), (tuple(range(4)),) * 2, (tuple(range(64)),) * 2)
    )
    with torch.no_grad():
        for block in reference.base_model.encoder.layer:
            for head in set(range(4)) - set(keep_heads):
                rows = slice(head * 8, (head + 1) * 8)
                block.attention.self.value.weight[rows] = 0  # a head with zero values adds nothing
                block.attention.self.value.bias[rows] = 0
            dropped = sorted(set(range(64)) - set(keep_ffn))
            block.intermediate.dense.weight[dropped] = 0  # GELU(0) = 0
            block.intermediate.dense.bias[dropped] = 0
    ids, mask = _inputs()
    torch.testing.assert_close(
        _logits(student, ids, mask), _logits(reference, ids, mask), atol=1e-5, rtol=1e-4
    )


def test_teacher_is_untouched(teacher) -> None:
    before = teacher.base_model.encoder.layer[0].intermediate.dense.weight.clone()
    build_student(teacher, StudentPlan((3,), ((0,),), ((0, 1),)))
    assert teacher.config.num_hidden_layers == 4
    torch.testing.assert_close(
        teacher.base_model.encoder.layer[0].intermediate.dense.weight, before
    )


def test_plan_takes_the_most_important_units(teacher) -> None:
    heads = np.tile(np.array([0.1, 5.0, 0.2, 3.0]), (4, 1))
    ffn = np.tile(np.arange(64, dtype=float), (4, 1))
    plan = plan_student(
        teacher.config,
        CompressionConfig(layers=2, heads=2, ffn_fraction=0.25),
        Importance(heads, ffn),
    )
    assert plan.layers == (1, 3)
    assert plan.heads == ((1, 3), (1, 3))
    assert plan.ffn[0] == tuple(range(48, 64))


def test_plan_rejects_more_than_the_teacher_has(teacher) -> None:
    scores = Importance(np.ones((4, 4)), np.ones((4, 64)))
    with pytest.raises(ConfigError, match="layers=9 but the teacher has 4; allowed: 1..4"):
        plan_student(teacher.config, CompressionConfig(layers=9, heads=2), scores)
    with pytest.raises(ConfigError, match="heads=5 but the teacher has 4 per layer"):
        plan_student(teacher.config, CompressionConfig(layers=2, heads=5), scores)


def test_importance_scores_shapes_and_signal(teacher) -> None:
    rows = [np.array([101, 2204, 2143, 102]), np.array([101, 2919, 2143, 2428, 102])] * 4
    split = TokenizedSplit.from_rows(rows, np.array([1, 0] * 4))
    scores = importance_scores(teacher, eval_batches(split, 4))
    assert scores.heads.shape == (4, 4) and scores.ffn.shape == (4, 64)
    assert (scores.heads >= 0).all() and scores.heads.sum() > 0
    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())
