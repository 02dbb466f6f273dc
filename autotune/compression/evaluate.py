"""Measure what is deployed: accuracy of the exported ONNX model in ONNX Runtime, its size,
and the sparsity of the weights it actually stores (after quantization)."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from autotune.compression.batching import TokenizedSplit, eval_batches
from autotune.compression.contention import wait_while_timing

EVAL_BATCH = 64
# Which input holds the weight and which its zero point, per op that multiplies by a weight.
_WEIGHT_INPUTS = {
    "MatMul": (1, None),
    "Gemm": (1, None),
    "FusedMatMul": (1, None),
    "MatMulInteger": (1, 3),
    "DynamicQuantizeMatMul": (1, 3),
    "MatMulIntegerToFloat": (1, 5),
    "QLinearMatMul": (3, 5),
    "MatMulNBits": (1, 3),
}


@dataclass(frozen=True)
class Accuracy:
    accuracy: float
    macro_f1: float
    predictions: np.ndarray


def session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def predict_logits(
    model_path: Path, split: TokenizedSplit, threads: int | None = None, pad_id: int = 0
) -> np.ndarray:
    runner = session(model_path, threads)
    logits: np.ndarray | None = None
    for batch in eval_batches(split, EVAL_BATCH, pad_id):
        wait_while_timing()  # pause while another autotune process times latency
        out = runner.run(["logits"], batch.inputs())[0]
        if logits is None:
            logits = np.zeros((len(split), out.shape[1]), dtype=np.float32)
        logits[batch.indices] = out
    assert logits is not None
    return logits


def evaluate_onnx(model_path: Path, split: TokenizedSplit, threads: int | None = None) -> Accuracy:
    predictions = predict_logits(model_path, split, threads).argmax(axis=1)
    return Accuracy(
        accuracy=float((predictions == split.labels).mean()),
        macro_f1=macro_f1(split.labels, predictions),
        predictions=predictions,
    )


def macro_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    scores = []
    for cls in np.unique(labels):
        tp = np.sum((predictions == cls) & (labels == cls))
        fp = np.sum((predictions == cls) & (labels != cls))
        fn = np.sum((predictions != cls) & (labels == cls))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def size_mb(path: Path) -> float:
    return os.path.getsize(path) / 1e6


def compressed_size_mb(path: Path) -> float:
    """Size after zlib (level 6): what unstructured sparsity saves in storage and download."""
    compressor = zlib.compressobj(6)
    total = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            total += len(compressor.compress(chunk))
    total += len(compressor.flush())
    return total / 1e6


def onnx_weight_sparsity(path: Path) -> float:
    """Share of stored weights of matrix-multiply ops that equal zero (their zero point)."""
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    zeros = total = 0
    for node in model.graph.node:
        spec = _WEIGHT_INPUTS.get(node.op_type)
        if spec is None or len(node.input) <= spec[0] or node.input[spec[0]] not in inits:
            continue
        weight = numpy_helper.to_array(inits[node.input[spec[0]]])
        if node.op_type == "MatMulNBits":
            values, zero = _unpack_nibbles(weight), 8
            if len(node.input) > 3 and node.input[3]:
                continue  # asymmetric blocks: zero point per block, not produced by autotune
        else:
            zp_name = (
                node.input[spec[1]] if spec[1] is not None and len(node.input) > spec[1] else ""
            )
            zero = numpy_helper.to_array(inits[zp_name]) if zp_name in inits else 0
            values = weight
            if np.ndim(zero) == 1 and values.ndim == 2:
                zero = zero.reshape(1, -1)  # per output channel (columns of B)
        zeros += int(np.sum(values == zero))
        total += values.size
    return zeros / total if total else 0.0


def _unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    flat = packed.astype(np.uint8).reshape(-1)
    return np.stack([flat & 0x0F, flat >> 4], axis=-1).reshape(-1)
