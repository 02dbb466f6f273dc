"""Build a smaller student from the teacher's own weights.

Depth: layers are kept evenly spaced, the top layer always included (its output is what the
classifier was trained on). Width: attention heads and FFN neurons are ranked by a first-order
Taylor importance score (|activation x gradient| of the loss, Michel et al. 2019 for heads,
Molchanov et al. 2019 for neurons) and the weakest are physically removed with
``prune_linear_layer``, so matrices shrink and ONNX Runtime runs less arithmetic.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from autotune.compression.batching import Batch
from autotune.compression.config import CompressionConfig, ffn_width
from autotune.errors import ConfigError


@dataclass(frozen=True)
class Importance:
    """Per-layer importance of every head ([layers, heads]) and FFN neuron ([layers, ffn])."""

    heads: np.ndarray
    ffn: np.ndarray


@dataclass(frozen=True)
class StudentPlan:
    """Which teacher layers, heads and FFN neurons the student keeps."""

    layers: tuple[int, ...]
    heads: tuple[tuple[int, ...], ...]
    ffn: tuple[tuple[int, ...], ...]


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.base_model.encoder.layer


def kept_layers(total: int, keep: int) -> list[int]:
    """Evenly spaced layers ending with the top one: 6 -> 2 keeps [2, 5], 6 -> 3 keeps [1, 3, 5]."""
    return [int((k + 1) * total / keep) - 1 for k in range(keep)]


def plan_student(teacher_config, config: CompressionConfig, importance: Importance) -> StudentPlan:
    total_layers = teacher_config.num_hidden_layers
    total_heads = teacher_config.num_attention_heads
    if config.layers > total_layers:
        raise ConfigError(
            f"layers={config.layers} but the teacher has {total_layers}; allowed: 1..{total_layers}"
        )
    if config.heads > total_heads:
        raise ConfigError(
            f"heads={config.heads} but the teacher has {total_heads} per layer; "
            f"allowed: 1..{total_heads}"
        )
    layers = kept_layers(total_layers, config.layers)
    width = ffn_width(teacher_config.intermediate_size, config.ffn_fraction)
    heads = tuple(_top(importance.heads[i], config.heads) for i in layers)
    ffn = tuple(_top(importance.ffn[i], width) for i in layers)
    return StudentPlan(tuple(layers), heads, ffn)


def _top(scores: np.ndarray, keep: int) -> tuple[int, ...]:
    """Indices of the ``keep`` highest scores, in their original order."""
    return tuple(sorted(np.argsort(-scores, kind="stable")[:keep].tolist()))


def build_student(teacher: nn.Module, plan: StudentPlan) -> nn.Module:
    """A copy of the teacher cut down to ``plan``; the teacher is left untouched."""
    student = copy.deepcopy(teacher)
    base = student.base_model
    base.encoder.layer = nn.ModuleList([base.encoder.layer[i] for i in plan.layers])
    student.config.num_hidden_layers = len(plan.layers)
    head_size = teacher.config.hidden_size // teacher.config.num_attention_heads
    for layer, heads, neurons in zip(base.encoder.layer, plan.heads, plan.ffn, strict=True):
        _prune_heads(layer, heads, head_size)
        _prune_ffn(layer, neurons)
        if hasattr(layer.attention.self, "layer_idx"):
            layer.attention.self.layer_idx = None
    student.config.num_attention_heads = len(plan.heads[0])
    student.config.intermediate_size = len(plan.ffn[0])
    student.eval()
    return student


def _prune_heads(layer: nn.Module, heads: tuple[int, ...], head_size: int) -> None:
    index = torch.cat([torch.arange(h * head_size, (h + 1) * head_size) for h in heads])
    attention = layer.attention.self
    attention.query = prune_linear_layer(attention.query, index)
    attention.key = prune_linear_layer(attention.key, index)
    attention.value = prune_linear_layer(attention.value, index)
    layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, index, dim=1)
    # transformers 5 reshapes with -1 heads; keep the bookkeeping attributes truthful anyway.
    attention.num_attention_heads = len(heads)
    attention.all_head_size = len(heads) * head_size


def _prune_ffn(layer: nn.Module, neurons: tuple[int, ...]) -> None:
    index = torch.tensor(neurons, dtype=torch.long)
    layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, index)
    layer.output.dense = prune_linear_layer(layer.output.dense, index, dim=1)


def importance_scores(model: nn.Module, batches: Iterable[Batch]) -> Importance:
    """First-order Taylor importance of heads and FFN neurons on labelled batches."""
    layers = encoder_layers(model)
    n_heads = model.config.num_attention_heads
    head_size = model.config.hidden_size // n_heads
    heads = torch.zeros(len(layers), n_heads)
    ffn = torch.zeros(len(layers), model.config.intermediate_size)
    captured: dict[tuple[str, int], torch.Tensor] = {}

    def keep(kind: str, index: int):
        def hook(_module, args, output=None):
            tensor = args[0] if output is None else output
            tensor.retain_grad()
            captured[(kind, index)] = tensor

        return hook

    handles = []
    for i, layer in enumerate(layers):
        # Input of the attention output projection = concatenated head contexts.
        handles.append(layer.attention.output.dense.register_forward_pre_hook(keep("heads", i)))
        handles.append(layer.intermediate.register_forward_hook(keep("ffn", i)))
    model.eval()
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            out = model(**batch.tensors(), labels=torch.from_numpy(batch.labels))
            out.loss.backward()
            mask = torch.from_numpy(batch.attention_mask).unsqueeze(-1).float()
            for i in range(len(layers)):
                context = captured[("heads", i)]
                taylor = (context * context.grad * mask).sum(1)  # [batch, heads*size]
                heads[i] += taylor.view(len(batch.labels), n_heads, head_size).sum(-1).abs().sum(0)
                act = captured[("ffn", i)]
                ffn[i] += (act * act.grad * mask).sum(1).abs().sum(0)
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
    return Importance(heads.detach().numpy(), ffn.detach().numpy())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
