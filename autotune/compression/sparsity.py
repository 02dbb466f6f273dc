"""Gradual unstructured magnitude sparsity (Zhu & Gupta 2017) with torch's pruning utilities.

ONNX Runtime on CPU does not skip zeros, so this buys a smaller compressed file, not speed
(decision 3). The target rises on a cubic schedule over the first two thirds of training so
the network can recover from each step; the last third fine-tunes at the final sparsity.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import prune

RAMP_SHARE = 2 / 3
UPDATES = 50


def prunable_linears(model: nn.Module) -> list[nn.Linear]:
    """Linear layers of the encoder (attention and FFN); embeddings and classifier are kept."""
    encoder = model.base_model.encoder
    return [m for m in encoder.modules() if isinstance(m, nn.Linear)]


def cubic_target(step: int, total_steps: int, final: float) -> float:
    ramp = max(1, int(total_steps * RAMP_SHARE))
    progress = min(1.0, step / ramp)
    return final * (1.0 - (1.0 - progress) ** 3)


class GradualMagnitudeSparsity:
    """Raises the sparsity of every encoder linear layer from 0 to ``final`` during training."""

    def __init__(self, model: nn.Module, final: float, total_steps: int) -> None:
        self.modules = prunable_linears(model) if final > 0 else []
        self.final = final
        self.total_steps = total_steps
        self.every = max(1, int(total_steps * RAMP_SHARE) // UPDATES)
        self.current = 0.0

    def step(self, step: int) -> None:
        """Call after each optimizer step; updates masks on schedule and at the ramp's end."""
        if not self.modules or (step % self.every and step < self.total_steps):
            return
        target = cubic_target(step, self.total_steps, self.final)
        if target <= self.current:
            return
        for module in self.modules:
            if prune.is_pruned(module):
                prune.remove(module, "weight")  # bake zeros in: smallest |w| stay pruned
            prune.l1_unstructured(module, "weight", amount=target)
        self.current = target

    def finish(self) -> None:
        """Reach the final sparsity and make the zeros permanent weights."""
        if not self.modules:
            return
        self.step(self.total_steps)
        for module in self.modules:
            if prune.is_pruned(module):
                prune.remove(module, "weight")
