"""Create or resume a multi-objective Optuna study and run trials into it."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune import cache
from autotune.context import StudyContext
from autotune.errors import SpecError, StorageError, StudyNotFoundError
from autotune.search.objective import METRIC_NAMES
from autotune.search.storage import optuna_storage
from autotune.spec import StudySpec
from autotune.store.db import session_scope
from autotune.store.models import (
    BaselineRecord,
    HardwareRecord,
    StudyRecord,
)
from autotune.store.retry import retrying

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


def spec_hash(spec: StudySpec) -> str:
    """What must not change when a study is resumed (the trial budget may)."""
    data = spec.model_dump(mode="json")
    data["search"].pop("n_trials", None)
    data.pop("storage", None)
    return cache.hash_json(data)


@retrying
def find_spec(url: str, name: str) -> StudySpec:
    """The spec a study was created with, as stored in the database."""
    with session_scope(url) as session:
        record = StudyRecord.find(session, name)
        if record is None:
            known = ", ".join(r.study_name for r in StudyRecord.all(session)) or "none"
            raise StudyNotFoundError(f"no study named {name!r} in this storage; studies: {known}")
        return StudySpec.model_validate(record.spec)


@retrying
def check_resumable(url: str, spec: StudySpec) -> bool:
    """Refuse a spec that differs from the stored one; True if the study already exists."""
    with session_scope(url) as session:
        record = StudyRecord.find(session, spec.name)
        if record is not None and record.spec_hash != spec_hash(spec):
            raise SpecError(
                f"study '{spec.name}' already exists in this storage with a different spec; "
                "resume it with the same spec or give the new spec another name"
            )
        return record is not None


@retrying
def register_study(url: str, spec: StudySpec) -> None:
    """Snapshot the spec (after :func:`check_resumable` accepted it)."""
    with session_scope(url) as session:
        if StudyRecord.find(session, spec.name) is None:
            session.add(
                StudyRecord(
                    study_name=spec.name,
                    spec=spec.model_dump(mode="json"),
                    spec_hash=spec_hash(spec),
                )
            )


@retrying
def record_context(url: str, context: StudyContext) -> None:
    """This machine's fingerprint and teacher baselines; workers may race to insert them."""
    for attempt in range(3):
        try:
            return _record_context(url, context)
        except StorageError:
            if attempt == 2:
                raise
            time.sleep(random.uniform(0.1, 0.5))  # another worker inserted them first


def _record_context(url: str, context: StudyContext) -> None:
    with session_scope(url) as session:
        HardwareRecord.ensure(session, context.hardware)
        session.flush()
        study = context.spec.name
        found = [
            b
            for b in BaselineRecord.for_study(session, study)
            if b.hardware_id == context.hardware["id"]
        ]
        values = asdict(context.baselines)
        values["size_mb"] = context.inputs.reference_onnx.stat().st_size / 1e6
        values["num_labels"] = context.num_labels
        if found:
            found[0].values = values
        else:
            session.add(
                BaselineRecord(study_name=study, hardware_id=context.hardware["id"], values=values)
            )


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
    """Keep the tokenizer with the study's artifacts so exports need no teacher directory."""
    import tempfile
    from pathlib import Path

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
