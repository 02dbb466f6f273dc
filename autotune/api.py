"""The one entry point for the CLI, the dashboard and Python users: a thin facade.

Each name lives in a module with one job (``autotune/service/``) and loads on first use, so
that ``import autotune.api`` costs almost nothing and reading results never imports torch:

- ``service.trials``: one configuration by hand, the teacher (``trial run``, ``teacher train``)
- ``service.studies``: create, run and join studies (``study run|create``, ``worker``)
- ``service.reads``: studies, trials, fronts, machines, the database (``study list|show``,
  ``pareto``, ``db``, the dashboard)
- ``service.selection``: the best trial under constraints (``best``)
- ``service.export``: a deployable folder (``export``)
- ``service.remeasure``: a study's models measured on this machine, no training (``remeasure``)
- ``settings``: where a study lives (database, artifacts, data, teachers, heartbeat)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "autotune.service.trials": (
        "TrialReport",
        "default_config",
        "parse_overrides",
        "prepare",
        "run_one_trial",
        "train_teacher",
    ),
    "autotune.service.studies": (
        "OnProgress",
        "StudyState",
        "create_study",
        "run_study",
        "run_worker",
    ),
    "autotune.service.reads": (
        "StudyInfo",
        "TrialDetail",
        "TrialMetrics",
        "artifact_file",
        "check_study",
        "database_revision",
        "hardware_info",
        "list_studies",
        "machine_trials",
        "open_results",
        "open_storage",
        "pareto_front",
        "param_importance",
        "running_trials",
        "storage_label",
        "study_info",
        "study_trials",
        "trial_detail",
        "upgrade_database",
    ),
    "autotune.service.selection": ("BestConfig", "best_config"),
    "autotune.service.export": ("export_model",),
    "autotune.service.remeasure": ("RemeasureReport", "remeasure"),
    "autotune.settings": ("Settings",),
    "autotune.compression.config": ("CompressionConfig", "TrialMetrics"),
    "autotune.spec": ("StudySpec", "load_spec"),
    "autotune.store.reads": ("FrontView", "StudyOverview", "TrialSummary"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = [
    "BestConfig",
    "CompressionConfig",
    "FrontView",
    "OnProgress",
    "RemeasureReport",
    "Settings",
    "StudyInfo",
    "StudyOverview",
    "StudySpec",
    "StudyState",
    "TrialDetail",
    "TrialMetrics",
    "TrialReport",
    "TrialSummary",
    "artifact_file",
    "best_config",
    "check_study",
    "create_study",
    "database_revision",
    "default_config",
    "export_model",
    "hardware_info",
    "list_studies",
    "load_spec",
    "machine_trials",
    "open_results",
    "open_storage",
    "param_importance",
    "pareto_front",
    "parse_overrides",
    "prepare",
    "remeasure",
    "run_one_trial",
    "run_study",
    "run_worker",
    "running_trials",
    "storage_label",
    "study_info",
    "study_trials",
    "train_teacher",
    "trial_detail",
    "upgrade_database",
]

if TYPE_CHECKING:
    from autotune.compression.config import CompressionConfig, TrialMetrics
    from autotune.service.export import (
        export_model,
    )
    from autotune.service.reads import (
        StudyInfo,
        TrialDetail,
        artifact_file,
        check_study,
        database_revision,
        hardware_info,
        list_studies,
        machine_trials,
        open_results,
        open_storage,
        param_importance,
        pareto_front,
        running_trials,
        storage_label,
        study_info,
        study_trials,
        trial_detail,
        upgrade_database,
    )
    from autotune.service.remeasure import RemeasureReport, remeasure
    from autotune.service.selection import (
        BestConfig,
        best_config,
    )
    from autotune.service.studies import (
        OnProgress,
        StudyState,
        create_study,
        run_study,
        run_worker,
    )
    from autotune.service.trials import (
        TrialReport,
        default_config,
        parse_overrides,
        prepare,
        run_one_trial,
        train_teacher,
    )
    from autotune.settings import (
        Settings,
    )
    from autotune.spec import (
        StudySpec,
        load_spec,
    )
    from autotune.store.reads import (
        FrontView,
        StudyOverview,
        TrialSummary,
    )


def __getattr__(name: str) -> Any:
    home = _HOME_OF.get(name)
    if home is None:
        raise AttributeError(f"module 'autotune.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
