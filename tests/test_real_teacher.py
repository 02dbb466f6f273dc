"""One real trial: the shipped MiniLM teacher fine-tuned on SST-2, the real SST-2 files."""

from pathlib import Path

import pytest

from autotune import api
from autotune.compression.evaluate import evaluate_onnx
from tests.conftest import SHARED_DATA, SHARED_MODELS, shared_available

STUDIES = Path(__file__).resolve().parents[1] / "studies"

pytestmark = pytest.mark.skipif(
    not shared_available(),
    reason="../shared/data/sst2 and ../shared/models/minilm-l6-sst2 are absent",
)


def test_smoke_spec_on_sst2_with_shipped_teacher(tmp_path: Path) -> None:
    context = api.prepare(STUDIES / "smoke.toml", SHARED_DATA, SHARED_MODELS)
    # The teacher scores what its training log says on these 200 validation rows (90.4% on all 872).
    assert context.baselines.accuracy > 0.88
    assert context.baselines.ort_fp32_ms < context.baselines.pytorch_fp32_ms
    # Dynamic INT8 pays where the CPU has integer dot products (VNNI, AMX); on AVX2 alone
    # (a first-generation EPYC: 40.2 vs 39.5 ms) it is no faster than FP32, nor much slower.
    int8_dot = {"avx512_vnni", "avx_vnni", "amx_int8"} & set(context.hardware["isa"])
    ratio = context.baselines.ort_int8_ms / context.baselines.ort_fp32_ms
    assert ratio < 1.0 if int8_dot else ratio < 1.25, (ratio, context.hardware["isa"])
    assert len(context.inputs.train) == 512 and context.inputs.teacher_logits.shape == (512, 2)

    report = api.run_one_trial(
        STUDIES / "smoke.toml",
        {"layers": 2, "bits": 8, "temperature": 3.0},
        tmp_path,
        context=context,
    )
    result = report.result
    assert result.metrics.accuracy > 0.7  # 512 distillation rows only; the benchmark trains on all
    assert result.metrics.speedup_vs_teacher_ort > 2.0  # a third of the layers in INT8
    assert result.metrics.speedup_vs_teacher_pytorch > result.metrics.speedup_vs_teacher_ort
    fresh = evaluate_onnx(Path(result.model_path), context.inputs.validation)
    assert fresh.accuracy == result.metrics.accuracy
