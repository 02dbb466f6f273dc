"""Intermediate-layer distillation: the student copies what the teacher's layers compute.

Every student layer was cut from a known teacher layer (``StudentPlan.layers``), so the layer
map is free: student layer k learns to reproduce the output of teacher layer ``layers[k]``.

* Hidden-state loss (TinyBERT, Jiao et al. 2020): mean squared error between the student's and
  the mapped teacher layer's outputs on real (non-padding) tokens. Hidden size is never pruned,
  so no projection is needed.
* Self-attention relation loss (MiniLMv2, Wang et al. 2021): the query, key and value vectors
  of a layer are split into the same number of relation heads (up to ``RELATION_HEADS``) in
  student and teacher, whatever heads the student lost, and
  the scaled dot-product relations Q·Qᵀ, K·Kᵀ, V·Vᵀ are turned into distributions over the
  keys. KL(teacher || student) compares them. A student that lost heads still has relations of
  the same shape, so the loss works for any head count.

Both losses are zero when the student equals the teacher on the mapped layers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

RELATION_HEADS = 12  # MiniLMv2's default for base-size teachers; divides 384 and every head size
RELATIONS = ("query", "key", "value")


class LayerCapture:
    """Forward hooks that keep the Q, K and V projections of chosen encoder layers."""

    def __init__(self, model: nn.Module, layers: list[int]) -> None:
        self.outputs: dict[tuple[int, str], torch.Tensor] = {}
        self._handles = []
        encoder = model.base_model.encoder.layer
        for position, index in enumerate(layers):
            attention = encoder[index].attention.self
            for name in RELATIONS:
                module = getattr(attention, name)
                self._handles.append(module.register_forward_hook(self._keep(position, name)))

    def _keep(self, position: int, name: str):
        def hook(_module, _args, output):
            self.outputs[(position, name)] = output

        return hook

    def detach_hooks(self) -> None:
        """Stop capturing; what was caught stays readable."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def remove(self) -> None:
        self.detach_hooks()
        self.outputs.clear()


@contextmanager
def captured(model: nn.Module, layers: list[int]) -> Iterator[LayerCapture]:
    capture = LayerCapture(model, layers)
    try:
        yield capture
    finally:
        capture.remove()


def hidden_state_loss(
    student_hidden: list[torch.Tensor], teacher_hidden: list[torch.Tensor], mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared error per real token, averaged over the mapped layers.

    ``*_hidden`` are the mapped layers' outputs, [batch, tokens, hidden] each; ``mask`` is the
    attention mask [batch, tokens].
    """
    weights = mask.unsqueeze(-1).to(student_hidden[0].dtype)
    count = weights.sum() * student_hidden[0].shape[-1]
    losses = [
        (((s - t) ** 2) * weights).sum() / count
        for s, t in zip(student_hidden, teacher_hidden, strict=True)
    ]
    return torch.stack(losses).mean()


def relation_loss(
    student: LayerCapture, teacher: LayerCapture, layers: int, mask: torch.Tensor
) -> torch.Tensor:
    """MiniLMv2 self-attention relation loss over ``layers`` mapped layers and Q, K, V."""
    losses = [
        _relation_kl(student.outputs[(k, name)], teacher.outputs[(k, name)], mask)
        for k in range(layers)
        for name in RELATIONS
    ]
    return torch.stack(losses).mean()


def relation_heads(student_width: int, teacher_width: int) -> int:
    """The most relation heads, up to ``RELATION_HEADS``, that split both widths evenly."""
    common = math.gcd(student_width, teacher_width)
    return max(h for h in range(1, RELATION_HEADS + 1) if common % h == 0)


def _relations(vectors: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    """Log-distributions [batch, heads, tokens, tokens] of scaled dot products, padding masked."""
    batch, tokens, width = vectors.shape
    split = vectors.view(batch, tokens, heads, width // heads).transpose(1, 2)
    scores = split @ split.transpose(-1, -2) / (width // heads) ** 0.5
    keys = mask[:, None, None, :].bool()
    scores = scores.masked_fill(~keys, torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def _relation_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    heads = relation_heads(student.shape[-1], teacher.shape[-1])
    log_s = _relations(student, mask, heads)
    log_t = _relations(teacher.to(student.dtype), mask, heads)
    keys = mask[:, None, None, :].to(log_s.dtype)
    # Padding keys have probability ~0 in both; zero them so 0 * (-inf) never appears.
    kl = (log_t.exp() * (log_t - log_s) * keys).sum(-1)  # [batch, heads, queries]
    queries = mask[:, None, :].to(kl.dtype)
    return (kl * queries).sum() / (queries.sum() * kl.shape[1])


def teacher_targets(
    teacher: nn.Module,
    layers: list[int],
    inputs: dict[str, torch.Tensor],
    relations: bool,
) -> tuple[list[torch.Tensor], LayerCapture | None]:
    """Hidden states of the mapped teacher layers and, if asked, their Q/K/V, without grad.

    The capture's hooks are removed before returning; the tensors it caught stay.
    """
    capture = LayerCapture(teacher, layers) if relations else None
    try:
        with torch.no_grad():
            out = teacher(**inputs, output_hidden_states=True)
    finally:
        if capture is not None:
            capture.detach_hooks()
    hidden = [out.hidden_states[i + 1] for i in layers]  # [0] is the embedding output
    return hidden, capture
