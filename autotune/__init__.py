"""autotune: find the best compressed transformer text classifier for your latency budget."""

import logging as _logging

# torchao (pulled in by transformers when installed) logs about CUDA kernels it cannot load on
# a CPU machine, and torch about an enum registration; neither concerns a CPU user.
for _name in ("torchao", "torch.utils._pytree"):
    _logging.getLogger(_name).setLevel(_logging.ERROR)

from autotune.api import (  # noqa: E402
    BestConfig,
    TrialReport,
    best_config,
    export_model,
    list_studies,
    pareto_front,
    prepare,
    run_one_trial,
    run_study,
    train_teacher,
)
from autotune.compression.config import CompressionConfig, EvalResult  # noqa: E402
from autotune.errors import AutotuneError  # noqa: E402
from autotune.spec import StudySpec, load_spec  # noqa: E402

__all__ = [
    "AutotuneError",
    "BestConfig",
    "CompressionConfig",
    "EvalResult",
    "StudySpec",
    "TrialReport",
    "best_config",
    "export_model",
    "list_studies",
    "load_spec",
    "pareto_front",
    "prepare",
    "run_one_trial",
    "run_study",
    "train_teacher",
]
__version__ = "0.1.0"
