"""Which results of a rung go on to the next: MO-ASHA's rule (Schmucker et al. 2021).

A rung holding n results may promote its best ``n // eta``. "Best" is a multi-objective
ranking, not a weighted sum: non-dominated sorting on the losses (for example -accuracy at
that rung and latency), front after front; inside a front, an epsilon-net order (greedy
farthest-first on the losses scaled to [0, 1] over the rung) so that, where a front is cut,
the part kept is spread along it rather than bunched at one end. The first point of each
front is its best on the first objective.

Written here rather than taken from Syne Tune or NePS: both are whole schedulers with their own
trial loops; Optuna runs ours.
"""

from __future__ import annotations

import numpy as np

from autotune.search.pareto import non_dominated


def pareto_order(losses: np.ndarray) -> list[int]:
    """Row indices of ``losses`` (minimised, one column per objective), best first."""
    losses = np.asarray(losses, dtype=float).reshape(len(losses), -1)
    scaled = _unit_scale(losses)
    remaining = np.arange(len(losses))
    order: list[int] = []
    while remaining.size:
        mask = non_dominated(losses[remaining])
        front = remaining[mask]
        order += [int(front[i]) for i in spread_order(scaled[front])]
        remaining = remaining[~mask]
    return order


def promotable(losses: np.ndarray, eta: int) -> list[int]:
    """The rows a rung of these results may promote: its best ``len(losses) // eta``."""
    return pareto_order(losses)[: len(losses) // eta]


def spread_order(points: np.ndarray) -> list[int]:
    """Greedy epsilon-net: the best point on the first column (ties: the lower index), then
    again and again the point farthest from every point already taken."""
    if len(points) == 0:
        return []
    first = int(np.lexsort(points.T[::-1])[0])
    order = [first]
    nearest = np.linalg.norm(points - points[first], axis=1)
    nearest[first] = -1.0
    while len(order) < len(points):
        chosen = int(np.argmax(nearest))  # argmax: the lower index among equals
        order.append(chosen)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[chosen], axis=1))
        nearest[order] = -1.0
    return order


def _unit_scale(losses: np.ndarray) -> np.ndarray:
    """Each column to [0, 1] over these rows (a constant column to 0): accuracy and
    milliseconds weigh alike in the distances."""
    low, high = losses.min(axis=0), losses.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (losses - low) / span
