"""Rungs: checkpoints along one run of the distillation recipe (multi-fidelity search).

A study with a fidelity schedule trains every configuration a little first and the promising
ones further. The budget is counted in training examples seen (optimizer steps times the
batch size), over the whole recipe, so that "the top rung" *is* the recipe: its last step.
Lower rungs are the top budget divided by ``eta`` again and again, down to ``min_examples``.

A rung is a checkpoint, not a shorter recipe: the learning-rate schedules and the sparsity
ramp are laid out over the top budget, and a rung stops the run at its step. A promoted
configuration resumes from its checkpoint (weights, optimizer and scheduler, batch order,
random state) and trains only the steps between the two rungs; a resumed run ends with the
weights an uninterrupted one would have. Low-rung accuracy is therefore that of a student
mid-schedule: lower than it will end, but comparable between configurations, which is all a
promotion needs.

Rungs must lie where the classifier trains: a checkpoint inside TinyBERT's intermediate
stage (hidden states only) has an untrained classifier and says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autotune.errors import ConfigError


@dataclass(frozen=True)
class RungPlan:
    """The optimizer steps at which each rung ends, lowest first; the last is the recipe's
    total. ``first_logit_step``: steps before the classifier trains (intermediate stage)."""

    steps: tuple[int, ...]
    batch_size: int
    first_logit_step: int = 0

    @property
    def examples(self) -> tuple[int, ...]:
        return tuple(s * self.batch_size for s in self.steps)

    @property
    def top(self) -> int:
        return len(self.steps) - 1

    def to_json(self) -> dict[str, object]:
        return {
            "steps": list(self.steps),
            "examples": list(self.examples),
            "batch_size": self.batch_size,
        }


@dataclass
class RungTraining:
    """One trial's part of the run: train up to ``stop_step`` (from the checkpoint
    ``resume_from`` when given), then write a checkpoint to ``save_to`` when given.
    ``resumed_step`` is filled in by the training loop: where this trial started."""

    stop_step: int
    resume_from: Path | None = None
    save_to: Path | None = None
    index: int = 0  # the rung, counted from the lowest
    top: bool = True
    resumed_step: int = 0

    @property
    def steps_trained(self) -> int:
        return self.stop_step - self.resumed_step


def rung_plan(
    stage_steps: list[int], logit_stages: list[bool], batch_size: int, min_examples: int, eta: int
) -> RungPlan:
    """Rungs counted down from the whole recipe (``stage_steps``, in order, and whether each
    stage trains the classifier) by ``eta`` while a rung keeps ``min_examples``."""
    total = sum(stage_steps)
    untrained = 0
    for steps, logits in zip(stage_steps, logit_stages, strict=True):
        if logits:
            break
        untrained += steps
    full = total * batch_size
    if min_examples * eta > full:
        raise ConfigError(
            f"search.fidelity.min_examples = {min_examples} leaves a single rung: the whole "
            f"recipe trains {full} examples; allowed: at most {full // eta} (with eta = {eta})"
        )
    rungs = [total]
    while round(rungs[0] / eta) * batch_size >= min_examples:
        rungs.insert(0, round(rungs[0] / eta))
    if rungs[0] <= untrained:
        raise ConfigError(
            f"search.fidelity.min_examples = {min_examples} puts the lowest rung at "
            f"{rungs[0] * batch_size} examples, inside the intermediate stage (its first "
            f"{untrained * batch_size} examples train no classifier); allowed: min_examples "
            f"> {untrained * batch_size}"
        )
    return RungPlan(tuple(rungs), batch_size, untrained)
