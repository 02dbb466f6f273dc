"""Create or resume a multi-objective Optuna study and run trials into it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune import cache
from autotune.context import StudyContext
from autotune.errors import ConfigError
from autotune.search.fidelity import sampled_at_rung_zero
from autotune.search.objective import METRIC_NAMES
from autotune.search.storage import optuna_storage
from autotune.spec import StudySpec
from autotune.store import studies

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# What counts towards n_trials: trials that produced a measurement (stopped ones did: their
# latency). Failed trials do not, so resuming a study retries them.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)

EXPORT_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "merges.txt",
    "vocab.json",
)

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def sampler_seed(spec: StudySpec, stream: object = 0) -> int:
    """The spec's seed for a fresh study in one process; a derived one for every other
    ``stream`` (a resumed session, another worker), which would otherwise draw the very
    configurations the first one drew."""
    if stream == 0:
        return spec.seed
    return int(cache.hash_json([spec.seed, stream])[:8], 16)


def make_sampler(spec: StudySpec, stream: object = 0) -> optuna.samplers.BaseSampler:
    sampler = _base_sampler(spec, stream)
    if spec.search.fidelity is not None:
        return sampled_at_rung_zero(sampler)
    return sampler


def _base_sampler(spec: StudySpec, stream: object) -> optuna.samplers.BaseSampler:
    seed = sampler_seed(spec, stream)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.search.sampler == "tpe":
            # multivariate + group: joint model of the axes, conditional int8_method handled.
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=8
            )
        if spec.search.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        if spec.search.sampler == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)


def directions(spec: StudySpec) -> list[str]:
    return ["maximize" if o == "accuracy" else "minimize" for o in spec.objectives]


def record_context(url: str, context: StudyContext) -> None:
    """This machine's fingerprint and the teacher baselines measured on it."""
    values = context.baselines.stored(context.inputs.reference_onnx, context.num_labels)
    studies.record_baselines(url, context.spec.name, context.hardware, values)


def open_study(
    url: str, spec: StudySpec, create: bool, heartbeat: int | None = None
) -> optuna.Study:
    storage = optuna_storage(url, heartbeat)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        study = optuna.create_study(
            study_name=spec.name,
            storage=storage,
            sampler=make_sampler(spec),
            directions=directions(spec),
            load_if_exists=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC_NAMES[o] for o in spec.objectives])
        study.set_user_attr("autotune", {"objectives": spec.objectives})
        return study
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec))


def store_tokenizer(study: optuna.Study, context: StudyContext, artifact_store: Any) -> None:
    """Keep the tokenizer, the teacher's configuration and the class names with the study, so
    that exports need no teacher directory and no dataset."""
    import tempfile
    from pathlib import Path

    names = list(context.label_names) if context.label_names else None
    if "label_names" not in study.user_attrs:
        study.set_user_attr("label_names", names)
    elif study.user_attrs["label_names"] != names:
        # Its trials were measured under the stored names: relabelling them would be wrong.
        raise ConfigError(
            f"study '{study.study_name}' was run with labels {study.user_attrs['label_names']}, "
            f"but this data gives {names}; use the same data, or another study name"
        )
    if study.user_attrs.get("tokenizer_artifacts"):
        return
    with tempfile.TemporaryDirectory() as tmp:
        context.teacher.tokenizer.save_pretrained(tmp)
        ids = {
            name: optuna.artifacts.upload_artifact(
                artifact_store=artifact_store, file_path=str(Path(tmp) / name), study_or_trial=study
            )
            for name in EXPORT_TOKENIZER_FILES
            if (Path(tmp) / name).exists()
        }
    study.set_user_attr("tokenizer_artifacts", ids)
    study.set_user_attr("teacher_config", context.teacher.model.config.to_diff_dict())
