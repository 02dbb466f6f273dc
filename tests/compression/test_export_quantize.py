"""Export, quantization and measurement with real ONNX Runtime sessions."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from autotune.compression.batching import TokenizedSplit
from autotune.compression.config import LatencySettings
from autotune.compression.evaluate import (
    compressed_size_mb,
    evaluate_onnx,
    macro_f1,
    onnx_weight_sparsity,
    session,
)
from autotune.compression.export import export_onnx, optimize_for_ort
from autotune.compression.latency import _interleaved, measure_interleaved
from autotune.compression.quantize import quantize_onnx
from autotune.compression.sparsity import prunable_linears
from autotune.teacher import load_teacher

IDS = np.array([[101, 2204, 2143, 102, 0, 0, 0], [101, 2919, 2143, 2428, 2307, 2307, 102]])
MASK = (IDS != 0).astype(np.int64)


@pytest.fixture(scope="module")
def model(tiny_teacher):
    return load_teacher(str(tiny_teacher)).model


@pytest.fixture(scope="module")
def fp32(model, tmp_path_factory) -> Path:
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "fp32.onnx")


def _run(path: Path) -> np.ndarray:
    return session(path).run(None, {"input_ids": IDS, "attention_mask": MASK})[0]


def _torch(model) -> np.ndarray:
    with torch.no_grad():
        return model(
            input_ids=torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK)
        ).logits.numpy()


def test_export_matches_torch_on_padded_rows_and_keeps_eval_mode(model, fp32: Path) -> None:
    assert not model.training, "export must not switch dropout on"
    np.testing.assert_allclose(_run(fp32), _torch(model), atol=1e-5)
    graph = onnx.load(str(fp32)).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["logits"]


def test_padding_does_not_change_a_rows_logits(fp32: Path) -> None:
    alone = session(fp32).run(None, {"input_ids": IDS[:1, :4], "attention_mask": MASK[:1, :4]})[0]
    np.testing.assert_allclose(alone[0], _run(fp32)[0], atol=1e-5)


@pytest.mark.parametrize(("bits", "tolerance"), [(32, 1e-5), (8, 0.2), (4, 0.3)])
def test_quantized_models_load_fresh_and_stay_close(
    fp32: Path, model, tmp_path: Path, bits: int, tolerance: float
) -> None:
    quantized = quantize_onnx(fp32, tmp_path / "q.onnx", bits)
    final = optimize_for_ort(quantized, tmp_path / "final.onnx")
    np.testing.assert_allclose(_run(final), _torch(model), atol=tolerance)
    ops = {node.op_type for node in onnx.load(str(quantized)).graph.node}
    if bits == 8:
        assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops
        assert final.stat().st_size < 0.5 * fp32.stat().st_size
    if bits == 4:
        assert "MatMulNBits" in ops


def test_measured_sparsity_follows_the_weights(model, tmp_path: Path) -> None:
    import copy

    sparse = copy.deepcopy(model)
    with torch.no_grad():
        for linear in prunable_linears(sparse):
            weight = linear.weight
            threshold = weight.abs().flatten().kthvalue(int(0.6 * weight.numel())).values
            weight[weight.abs() <= threshold] = 0
    path = export_onnx(sparse, tmp_path / "sparse.onnx")
    assert onnx_weight_sparsity(path) > 0.45  # encoder matmuls at 60%, classifier dense
    for bits in (8, 4):
        quantized = quantize_onnx(path, tmp_path / f"q{bits}.onnx", bits)
        assert onnx_weight_sparsity(quantized) > 0.45
    assert compressed_size_mb(path) < compressed_size_mb(
        export_onnx(model, tmp_path / "dense.onnx")
    )


def test_accuracy_and_macro_f1(fp32: Path) -> None:
    split = TokenizedSplit.from_rows([IDS[0][:4], IDS[1]], np.array([0, 1]))
    predictions = _run(fp32).argmax(1)
    result = evaluate_onnx(fp32, split)
    assert result.accuracy == float((predictions == [0, 1]).mean())
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(
        (2 / 3 + 0.8) / 2
    )


def test_interleaved_latency(fp32: Path, tmp_path: Path) -> None:
    int8 = optimize_for_ort(quantize_onnx(fp32, tmp_path / "q.onnx", 8), tmp_path / "int8.onnx")
    settings = LatencySettings(threads=1, sequence_length=16, warmup=2, runs=20)
    result = measure_interleaved(int8, fp32, settings, vocab_size=30522)
    assert 0 < result.median_ms <= result.p90_ms
    assert result.cv >= 0
    assert result.speedup_vs_reference == pytest.approx(
        result.reference_median_ms / result.median_ms
    )
    assert result.speedup_low <= result.speedup_vs_reference <= result.speedup_high
    assert settings.runs <= result.runs <= settings.max_runs
    assert result.runs % settings.runs == 0


def test_latency_runs_grow_until_the_speedup_is_precise(fp32: Path) -> None:
    base = LatencySettings(threads=1, sequence_length=16, warmup=2, runs=20, max_runs=60)
    exact = measure_interleaved(fp32, fp32, replace(base, precision=0), vocab_size=30522)
    loose = measure_interleaved(fp32, fp32, replace(base, precision=1.0), vocab_size=30522)
    strict = measure_interleaved(fp32, fp32, replace(base, precision=1e-9), vocab_size=30522)
    # precision 0 and a precision any window meets: one batch; one none meets: up to the cap.
    assert (exact.runs, loose.runs, strict.runs) == (20, 20, 60)
    assert strict.precision > 0
    assert strict.speedup_low < strict.speedup_vs_reference < strict.speedup_high


def _int8_weight_range(path: Path) -> tuple[int, int]:
    from onnx import numpy_helper

    weights = [
        numpy_helper.to_array(t)
        for t in onnx.load(str(path)).graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("_quantized")
    ]
    assert weights
    return min(int(w.min()) for w in weights), max(int(w.max()) for w in weights)


def test_reduce_range_keeps_int8_weights_to_seven_bits(fp32: Path, tmp_path: Path) -> None:
    full = quantize_onnx(fp32, tmp_path / "s8.onnx", 8)
    seven = quantize_onnx(fp32, tmp_path / "s7.onnx", 8, reduce_range=True)
    # Symmetric per-channel weights: +-127 at 8 bits, +-64 at ORT's reduced range.
    assert max(map(abs, _int8_weight_range(full))) == 127
    assert max(map(abs, _int8_weight_range(seven))) == 64
    assert np.abs(_run(seven) - _run(fp32)).max() < 0.3


def test_latency_sessions_do_not_spin(fp32: Path) -> None:
    # Interleaved sessions at several threads: a spinning idle pool slows the other one.
    from autotune.compression.latency import latency_session

    options = latency_session(fp32, 2).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize(("block", "untimed"), [(1, 0), (7, 2 * 3), (50, 2)])
def test_models_alternate_in_blocks_with_untimed_calls_before_each(
    block: int, untimed: int
) -> None:
    calls: list[str] = []
    settings = LatencySettings(warmup=3, runs=20, precision=0, block=block)
    result = _interleaved(lambda: calls.append("c"), lambda: calls.append("r"), settings)
    assert result.runs == 20
    # warm-up pairs, then per block: untimed calls and the block's timed ones
    assert calls.count("c") == calls.count("r") == 3 + 20 + untimed
    timed = calls[6:]
    if block == 7:
        # blocks of 7, 7 and 6, each model's block after its 2 untimed calls; who goes
        # first alternates
        assert timed[:18] == ["c"] * 9 + ["r"] * 9
        assert timed[18:36] == ["r"] * 9 + ["c"] * 9
