"""Rungs along one run of the recipe, and resuming a run from a rung's checkpoint."""

import copy

import numpy as np
import pytest
import torch

from autotune.compression.batching import TokenizedSplit
from autotune.compression.config import TrainingSettings
from autotune.compression.distill import distill
from autotune.compression.fidelity import RungTraining, rung_plan
from autotune.compression.student import StudentPlan, build_student
from autotune.errors import ConfigError
from autotune.teacher import load_teacher


def test_rungs_count_down_from_the_whole_recipe() -> None:
    plan = rung_plan([100], [True], batch_size=10, min_examples=100, eta=3)
    assert plan.steps == (11, 33, 100)
    assert plan.examples == (110, 330, 1000)
    assert plan.top == 2


def test_a_single_rung_is_refused() -> None:
    with pytest.raises(ConfigError, match="leaves a single rung.*at most 333"):
        rung_plan([100], [True], batch_size=10, min_examples=400, eta=3)


def test_a_rung_inside_the_intermediate_stage_is_refused() -> None:
    # 50 intermediate steps, then 100 of logits: 150 -> 50 -> 17 steps; 50 trains no classifier.
    with pytest.raises(ConfigError, match="inside the intermediate stage.*> 500"):
        rung_plan([50, 100], [False, True], batch_size=10, min_examples=100, eta=3)
    assert rung_plan([50, 100], [False, True], 10, 600, 2).steps == (75, 150)


def _split(n: int = 64) -> TokenizedSplit:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    rows = [
        np.array([101, 2204 if y else 2919, int(rng.integers(1000, 1100)), 102]) for y in labels
    ]
    return TokenizedSplit.from_rows(rows, labels)


@pytest.fixture()
def models(tiny_teacher):
    teacher = load_teacher(str(tiny_teacher)).model
    plan = StudentPlan((1, 3), ((0, 1, 2, 3),) * 2, (tuple(range(64)),) * 2)
    return teacher, build_student(teacher, plan)


RECIPES = {
    # one stage of logit KD with the sparsity ramp (masks are part of the checkpoint)
    "logits+sparsity": (TrainingSettings(epochs=4, batch_size=16, learning_rate=3e-3), 0.5, 6),
    # TinyBERT's two stages, stopped inside the second
    "two stages": (
        TrainingSettings(
            epochs=3, batch_size=16, learning_rate=3e-3, hidden_weight=1.0, intermediate_epochs=1
        ),
        0.0,
        7,
    ),
}


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_resumed_run_ends_as_an_uninterrupted_one(models, recipe, tmp_path) -> None:
    teacher, student = models
    settings, sparsity, stop = RECIPES[recipe]
    split = _split()
    logits = np.stack(
        [np.where(split.labels == 0, 2.0, -2.0), np.where(split.labels, 2.0, -2.0)], 1
    )

    def train(model, rung=None):
        return distill(
            model,
            split,
            settings,
            teacher_logits=logits,
            temperature=2.0,
            alpha=0.7,
            sparsity=sparsity,
            teacher=teacher,
            layer_map=[1, 3],
            rung=rung,
        )

    whole = copy.deepcopy(student)
    whole_curve = train(whole)
    total = whole_curve[-1][0]

    low = copy.deepcopy(student)
    first = RungTraining(stop_step=stop, save_to=tmp_path / "rung0.pt")
    train(low, first)
    assert first.steps_trained == stop

    resumed = copy.deepcopy(student)  # a fresh student, as a promoted trial builds it
    second = RungTraining(stop_step=total, resume_from=tmp_path / "rung0.pt")
    curve = train(resumed, second)
    assert second.resumed_step == stop
    assert second.steps_trained == total - stop  # fewer steps than from scratch

    assert curve == whole_curve
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_checkpoint_of_another_kind_is_refused(models, tmp_path) -> None:
    _, student = models
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        distill(
            student,
            _split(),
            TrainingSettings(),
            rung=RungTraining(stop_step=4, resume_from=tmp_path / "other.pt"),
        )
