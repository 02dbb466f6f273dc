"""One compression configuration in, a measured, deployable ONNX model out.

This package knows nothing of Optuna or SQL: the search meets it only through
:class:`CompressionConfig` (in) and :class:`EvalResult` (out).
"""

from autotune.compression.config import (
    CompressionConfig,
    EvalResult,
    LatencySettings,
    TrainingSettings,
)

__all__ = ["CompressionConfig", "EvalResult", "LatencySettings", "TrainingSettings"]
