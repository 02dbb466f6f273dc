"""Export a PyTorch classifier to ONNX and apply ONNX Runtime's graph optimisations offline.

The legacy TorchScript exporter (``dynamo=False``) with eager attention gives a graph that
ORT's quantizers and fusions understand; inputs are named explicitly so every artifact has the
same interface: ``input_ids`` and ``attention_mask`` (int64, [batch, sequence]) -> ``logits``,
plus ``token_type_ids`` for a model of sentence pairs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn

from autotune.compression.batching import BASE_INPUTS
from autotune.errors import CompressionError

OUTPUT_NAMES = ["logits"]
OPSET = 17


def example_inputs(
    sequence_length: int = 16, names: tuple[str, ...] = BASE_INPUTS
) -> dict[str, torch.Tensor]:
    """Two rows, the second padded; with ``token_type_ids``, each row a pair of segments.

    The mask must contain zeros: transformers skips building the attention mask when it is
    all ones, and the tracer would then record a graph that ignores ``attention_mask``.
    """
    ids = torch.full((2, sequence_length), 1000, dtype=torch.long)
    mask = torch.ones((2, sequence_length), dtype=torch.long)
    mask[1, sequence_length // 2 :] = 0
    ids[1, sequence_length // 2 :] = 0
    types = torch.zeros((2, sequence_length), dtype=torch.long)
    types[0, sequence_length // 2 :] = 1
    types[1, sequence_length // 4 : sequence_length // 2] = 1
    example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: example[name] for name in names}


def export_onnx(model: nn.Module, path: Path, input_names: tuple[str, ...] = BASE_INPUTS) -> Path:
    """Trace ``model`` to ONNX with dynamic batch and sequence axes, taking ``input_ids``,
    ``attention_mask`` and, for sentence pairs, ``token_type_ids``."""
    example = example_inputs(names=input_names)
    # No wrapper module: the exporter restores the traced module's training flag on every
    # submodule afterwards, and NNCF's QAT hooks are keyed by the model's own module paths.
    model.eval()
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes["logits"] = {0: "batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            # positional: forward(input_ids, attention_mask, token_type_ids, ...)
            tuple(example.values()),
            str(path),
            input_names=list(input_names),
            output_names=OUTPUT_NAMES,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def optimize_for_ort(source: Path, target: Path) -> Path:
    """Save ORT's EXTENDED-level optimised graph (fusions valid on any CPU).

    ``ORT_ENABLE_ALL`` adds layout transforms tied to the exporting machine's ISA, so it is
    left to the session that loads the file.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CompressionError(f"ONNX Runtime could not optimise {source.name}: {exc}") from None
    return target


def check_loads(path: Path) -> None:
    """The deployable file must load in a fresh session on its own."""
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CompressionError(f"exported model {path} does not load in ORT: {exc}") from None
