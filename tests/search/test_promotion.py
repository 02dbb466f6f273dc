"""MO-ASHA's promotion rule: non-dominated sorting, then spread inside a cut front."""

import numpy as np
import pytest

from autotune.search.pareto import non_dominated
from autotune.search.promotion import pareto_order, promotable

# (-accuracy, latency ms): three fronts of three, shuffled.
FRONT_1 = [(-0.90, 10.0), (-0.85, 5.0), (-0.80, 2.0)]
FRONT_2 = [(-0.88, 11.0), (-0.83, 6.0), (-0.78, 3.0)]
FRONT_3 = [(-0.86, 12.0), (-0.81, 7.0), (-0.76, 4.0)]


def test_promotes_exactly_the_first_front_when_it_is_the_top_third() -> None:
    rows = FRONT_3 + FRONT_1 + FRONT_2
    order = pareto_order(np.array(rows))
    assert sorted(order) == list(range(9))
    assert [set(order[i : i + 3]) for i in (0, 3, 6)] == [{3, 4, 5}, {6, 7, 8}, {0, 1, 2}]
    assert sorted(promotable(np.array(rows), eta=3)) == [3, 4, 5]


def test_a_cut_front_keeps_its_spread() -> None:
    # One front of six: promoting two keeps the most accurate end, then the farthest point
    # from it (the fastest end), not the two most accurate neighbours.
    front = [(-0.90, 20.0), (-0.89, 18.0), (-0.88, 16.0), (-0.80, 4.0), (-0.70, 2.0), (-0.60, 1.0)]
    assert promotable(np.array(front), eta=3) == [0, 5]
    assert pareto_order(np.array(front))[:3] == [0, 5, 3]


def test_fewer_results_than_eta_promote_nothing() -> None:
    assert promotable(np.array(FRONT_1[:2]), eta=3) == []


@pytest.mark.parametrize("seed", range(5))
def test_no_promoted_result_is_dominated_by_one_left_behind(seed: int) -> None:
    losses = np.random.default_rng(seed).random((40, 2))
    chosen = promotable(losses, eta=3)
    assert len(chosen) == 13
    rest = [j for j in range(40) if j not in chosen]
    assert not any(_dominates(losses[j], losses[i]) for i in chosen for j in rest)
    # and every first-front point outranks every other point
    first = set(np.flatnonzero(non_dominated(losses)).tolist())
    order = pareto_order(losses)
    assert set(order[: len(first)]) == first


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((a <= b).all() and (a < b).any())
