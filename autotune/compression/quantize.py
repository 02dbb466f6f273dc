"""Bit widths: FP32, INT8 (ORT dynamic per-channel, or NNCF quantization-aware training) and
INT4 weight-only (ORT ``MatMulNBits``).

Dynamic INT8 quantizes weights per output channel offline and activations per call at run
time: on CPU it is the fastest INT8 for transformers (static QDQ was no faster than FP32 in our
prototype). INT4 stores weights in blocks of 32 with one scale each; ``accuracy_level=4`` lets
ORT compute with INT8 activations, which is what makes it fast on CPUs with VNNI.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import onnx
from torch import nn

from autotune.compression.batching import Batch
from autotune.errors import CompressionError

INT4_BLOCK = 32


def quantize_onnx(source: Path, target: Path, bits: int, reduce_range: bool = False) -> Path:
    """Write ``source`` (an FP32 ONNX model) to ``target`` at ``bits`` bits; for INT8,
    ``reduce_range`` keeps weights to 7 bits."""
    try:
        with quiet_ort_logs():
            _quantize(source, target, bits, reduce_range)
    except CompressionError:
        raise
    except Exception as exc:
        raise CompressionError(f"INT{bits} quantization of {source.name} failed: {exc}") from None
    return target


def _quantize(source: Path, target: Path, bits: int, reduce_range: bool) -> None:
    if bits == 32:
        shutil.copyfile(source, target)
    elif bits == 8:
        _dynamic_int8(source, target, reduce_range)
    elif bits == 4:
        _weight_only_int4(source, target)
    else:
        raise CompressionError(f"bits={bits} is not supported; allowed: 32, 8, 4")


def _dynamic_int8(source: Path, target: Path, reduce_range: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # 7-bit weights: meant for CPUs without VNNI, whose u8s8 kernels can saturate; on
        # SST-2 it also kept 0.6 points more of the teacher (BENCHMARKS section 7).
        reduce_range=reduce_range,
        # Embedding tables (Gather) are quantized too: they are most of a small student's bytes.
        op_types_to_quantize=["MatMul", "Gather"],
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _weight_only_int4(source: Path, target: Path) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)),
        block_size=INT4_BLOCK,
        is_symmetric=True,
        accuracy_level=4,
        op_types_to_quantize=("MatMul", "Gather"),
    )
    with warnings.catch_warnings():
        # Blocks that sparsity zeroed entirely have scale 0; ORT divides by it, then masks it.
        warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning)
        quantizer.process()
    quantizer.model.save_model_to_file(str(target), False)


def prepare_qat(model: nn.Module, calibration: Iterable[Batch]) -> nn.Module:
    """Insert NNCF fake-quantizers (INT8 weights and activations) calibrated on a few batches.

    The returned model trains like the original; :func:`strip_qat` turns it back into a plain
    torch module whose quantizers export as ONNX QuantizeLinear/DequantizeLinear pairs.
    """
    import nncf

    logging.getLogger("nncf").setLevel(logging.ERROR)
    items = [b.tensors() for b in calibration]
    if not items:
        raise CompressionError("quantization-aware training needs calibration batches")
    dataset = nncf.Dataset(items)
    try:
        # NNCF draws progress bars with no switch to turn them off; they would break ours.
        with contextlib.redirect_stdout(io.StringIO()):
            # TRANSFORMER keeps quantizers off the attention-mask arithmetic and softmax
            # inputs; without it the quantized BERT gives NaN and its export fails.
            return nncf.quantize(
                model, dataset, subset_size=len(items), model_type=nncf.ModelType.TRANSFORMER
            )
    except Exception as exc:
        raise CompressionError(
            f"NNCF could not prepare quantization-aware training: {exc}"
        ) from None


def strip_qat(model: nn.Module, input_names: tuple[str, ...]) -> nn.Module:
    """Replace NNCF's quantizers by torch-native fake-quantize ops (exported as QDQ)."""
    import nncf

    from autotune.compression.export import example_inputs

    example = example_inputs(names=input_names)
    return nncf.strip(
        model, do_copy=False, strip_format=nncf.StripFormat.NATIVE, example_input=example
    )


@contextlib.contextmanager
def quiet_ort_logs() -> Iterator[None]:
    # ORT's quantizers log advice and every skipped tensor, through the root logger and their
    # own module loggers (which carry handlers of their own). The root level is restored after:
    # the rest of the process (database retries, stale trials) still reports warnings.
    root = logging.getLogger()
    previous = root.level
    root.setLevel(max(previous, logging.ERROR))
    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)
