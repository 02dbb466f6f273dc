"""What a multi-fidelity study's rungs held and what stopping early saved.

Examples are exact (every trial stores how many it trained); seconds are estimated for the
training nobody ran, from each configuration's own seconds per example.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from autotune.store.reads import TrialSummary


@dataclass(frozen=True)
class RungCount:
    rung: int
    examples: int  # the budget of a trial at this rung (the top rung: the whole recipe)
    trials: int  # complete trials at this rung
    front: list[int]  # the rung's own Pareto front on the machine shown (trial numbers)


@dataclass(frozen=True)
class FidelitySummary:
    rungs: list[RungCount]
    configurations: int  # distinct configurations trained at the lowest rung or above
    trained_examples: int  # what every trial of the study trained, in all
    full_examples: int  # what training every configuration by the whole recipe would take
    train_seconds: float
    full_seconds: float  # estimated: each configuration's seconds per example x the recipe

    @property
    def saved(self) -> float:
        """The share of training examples the study did not need to train."""
        return 1.0 - self.trained_examples / self.full_examples if self.full_examples else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "saved": self.saved}


def summarize(
    trials: list[TrialSummary], rung_examples: list[int], fronts: dict[int, list[int]]
) -> FidelitySummary:
    """The rungs of ``trials`` (complete ones count) on the schedule ``rung_examples``, with
    each rung's front."""
    top = rung_examples[-1]
    done = [t for t in trials if t.status == "complete" and t.metrics.get("rung") is not None]
    per_config: dict[str, list[float]] = {}
    for trial in done:
        key = json.dumps(trial.config, sort_keys=True)
        seconds, examples = per_config.setdefault(key, [0.0, 0.0])
        trained = trial.metrics.get("trained_examples") or 0
        spent = (trial.metrics.get("stage_seconds") or {}).get("distill", 0.0)
        per_config[key] = [seconds + spent, examples + trained]
    full_seconds = sum(s / e * top for s, e in per_config.values() if e)
    return FidelitySummary(
        rungs=[
            RungCount(k, examples, sum(t.metrics["rung"] == k for t in done), fronts.get(k, []))
            for k, examples in enumerate(rung_examples)
        ],
        configurations=len(per_config),
        trained_examples=int(sum(e for _, e in per_config.values())),
        full_examples=len(per_config) * top,
        train_seconds=sum(s for s, _ in per_config.values()),
        full_seconds=full_seconds,
    )
