"""autotune: find the best compressed transformer text classifier for your latency budget.

The names below load on first use (PEP 562), so that ``import autotune`` and the CLI stay
free of torch, transformers and ONNX Runtime until a command needs them.
"""

from __future__ import annotations

import importlib
import logging as _logging
from typing import TYPE_CHECKING, Any

# torchao (pulled in by transformers when installed) logs about CUDA kernels it cannot load on
# a CPU machine, and torch about an enum registration; neither concerns a CPU user.
for _name in ("torchao", "torch.utils._pytree"):
    _logging.getLogger(_name).setLevel(_logging.ERROR)

# public name -> module that defines it
_EXPORTS = {
    "AutotuneError": "autotune.errors",
    "BestConfig": "autotune.api",
    "CompressionConfig": "autotune.compression.config",
    "EvalResult": "autotune.compression.config",
    "Settings": "autotune.api",
    "StudySpec": "autotune.spec",
    "TrialReport": "autotune.api",
    "best_config": "autotune.api",
    "export_model": "autotune.api",
    "list_studies": "autotune.api",
    "load_spec": "autotune.spec",
    "pareto_front": "autotune.api",
    "prepare": "autotune.api",
    "run_one_trial": "autotune.api",
    "run_study": "autotune.api",
    "train_teacher": "autotune.api",
}
_SUBMODULES = {"api", "errors", "spec"}  # `import autotune; autotune.api` as before
__all__ = [
    "AutotuneError",
    "BestConfig",
    "CompressionConfig",
    "EvalResult",
    "Settings",
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

if TYPE_CHECKING:
    from autotune.api import (
        BestConfig,
        Settings,
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
    from autotune.compression.config import CompressionConfig, EvalResult
    from autotune.errors import AutotuneError
    from autotune.spec import StudySpec, load_spec


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"autotune.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autotune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
