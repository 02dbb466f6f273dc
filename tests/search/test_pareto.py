import itertools

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from autotune.search.pareto import (
    compute_front,
    non_dominated,
    reference_point,
    trial_points,
)


def _brute_force(losses: np.ndarray) -> np.ndarray:
    keep = []
    for i, a in enumerate(losses):
        dominated = any((b <= a).all() and (b < a).any() for j, b in enumerate(losses) if j != i)
        keep.append(not dominated)
    return np.array(keep, dtype=bool)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 3)), min_size=1, max_size=40
    )
)
def test_non_dominated_matches_brute_force(points) -> None:
    losses = np.array(points, dtype=float)
    np.testing.assert_array_equal(non_dominated(losses, chunk=7), _brute_force(losses))


def _trial(
    number: int, accuracy: float, latency: float, hardware: str = "hw", **constraints: float
):
    trial = optuna.trial.create_trial(
        values=[accuracy, latency],
        state=TrialState.COMPLETE,
        user_attrs={"hardware_id": hardware},
        system_attrs={f"constraints:{k}": v for k, v in constraints.items()},
    )
    trial.number = number
    return trial


def test_front_is_feasible_same_hardware_and_non_dominated() -> None:
    trials = [
        _trial(0, 0.90, 5.0),
        _trial(1, 0.85, 2.0),
        _trial(2, 0.84, 3.0),  # dominated by 1
        _trial(3, 0.95, 1.0, min_accuracy=0.1),  # would dominate all, but infeasible
        _trial(4, 0.99, 0.5, hardware="other"),  # another machine
    ]
    reference = reference_point(["accuracy", "latency"], {"pytorch_fp32_ms": 10.0}, 0.8, 2)
    front = compute_front(trial_points(trials, "hw"), ["accuracy", "latency"], reference)
    assert front.members == [0, 1]
    # Boxes from the reference (-0.8, 10): (0.10 x 5) + (0.05 x 3) = 0.65.
    assert front.hypervolume == pytest.approx(0.65)


def test_hypervolume_never_shrinks_as_trials_arrive() -> None:
    rng = np.random.default_rng(0)
    trials, volumes = [], []
    reference = [-0.5, 10.0]
    for number in range(30):
        trials.append(_trial(number, float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.5, 12.0))))
        points = trial_points(trials, "hw")
        volumes.append(compute_front(points, ["accuracy", "latency"], reference).hypervolume)
    assert all(b >= a for a, b in itertools.pairwise(volumes))
