"""autotune: find the best compressed transformer text classifier for your latency budget."""

from autotune.api import TrialReport, prepare, run_one_trial, train_teacher
from autotune.compression.config import CompressionConfig, EvalResult
from autotune.errors import AutotuneError
from autotune.spec import StudySpec, load_spec

__all__ = [
    "AutotuneError",
    "CompressionConfig",
    "EvalResult",
    "StudySpec",
    "TrialReport",
    "load_spec",
    "prepare",
    "run_one_trial",
    "train_teacher",
]
__version__ = "0.1.0"
