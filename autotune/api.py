"""The one entry point for the CLI, the dashboard and Python users."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune import data, results, teacher
from autotune.compression.config import CompressionConfig, EvalResult
from autotune.compression.pipeline import Progress, run_trial
from autotune.context import Baselines, StudyContext, prepare_study
from autotune.errors import ConfigError, NoFeasibleConfigError, StorageError
from autotune.results import FrontView, StudyOverview, TrialSummary
from autotune.spec import StudySpec, load_spec
from autotune.store import db

ARTIFACTS_ENV = "AUTOTUNE_ARTIFACTS"


@dataclass(frozen=True)
class TrialReport:
    """One configuration measured end to end, with the teacher baselines it is compared to."""

    result: EvalResult
    baselines: Baselines
    hardware: dict[str, Any]


def default_config(spec: StudySpec, teacher_config: Any) -> dict[str, Any]:
    """The teacher's own shape in FP32: what ``--set`` values are applied on top of."""
    return {
        "layers": min(spec.space.layers.max, teacher_config.num_hidden_layers),
        "heads": min(spec.space.heads.max, teacher_config.num_attention_heads),
        "ffn_fraction": 1.0,
        "sparsity": 0.0,
        "bits": 32,
        "int8_method": None,
        "temperature": 2.0,
        "alpha": 0.5,
    }


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["layers=2", "bits=8"]`` -> typed values for :class:`CompressionConfig`."""
    allowed = CompressionConfig.fields()
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not raw.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}; keys: {', '.join(allowed)}")
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in --set; allowed: {', '.join(allowed)}")
        values[key] = _typed(key, raw.strip())
    return values


def _typed(key: str, raw: str) -> Any:
    if key == "int8_method":
        return None if raw.lower() in {"none", ""} else raw
    kind = int if key in {"layers", "heads", "bits"} else float
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"{key}={raw!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None


def prepare(
    spec: StudySpec | str | Path,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    progress: Progress | None = None,
    sequence_length: int | None = None,
) -> StudyContext:
    """Load the teacher and data and compute the cached per-study pieces."""
    spec = spec if isinstance(spec, StudySpec) else load_spec(spec)
    return prepare_study(
        spec, data.data_dir(data_dir), teacher.models_dir(models_dir), progress, sequence_length
    )


def run_one_trial(
    spec: StudySpec | str | Path,
    overrides: dict[str, Any],
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    progress: Progress | None = None,
    context: StudyContext | None = None,
) -> TrialReport:
    """Run one configuration (teacher shape + ``overrides``) and write it to ``out_dir``."""
    context = context or prepare(spec, data_dir, models_dir, progress)
    values = default_config(context.spec, context.teacher.model.config) | overrides
    config = CompressionConfig.from_dict(values)
    result = run_trial(context.inputs, config, Path(out_dir), progress)
    return TrialReport(result, context.baselines, context.hardware)


def train_teacher(
    spec: StudySpec | str | Path,
    out_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    max_train_samples: int | None = None,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fine-tune the spec's backbone and save it where the spec's checkpoint name resolves."""
    spec = spec if isinstance(spec, StudySpec) else load_spec(spec)
    root = teacher.models_dir(models_dir)
    if out_dir is None:
        if root is None:
            raise ConfigError(
                f"say where to save the teacher: --out, --models-dir or {teacher.MODELS_DIR_ENV}"
            )
        out_dir = root / spec.teacher.checkpoint
    out = Path(out_dir)
    log = teacher.fine_tune(spec, data.data_dir(data_dir), out, max_train_samples, progress)
    return out, log


# --- studies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BestConfig:
    """The best trial under constraints: its configuration, metrics and model file."""

    study: str
    trial: TrialSummary
    config: CompressionConfig
    metrics: dict[str, Any]
    artifact_path: Path | None
    hardware_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "trial": self.trial.number,
            "config": self.config.to_dict(),
            "metrics": self.trial.to_json()["metrics"],
            "artifact_path": str(self.artifact_path) if self.artifact_path else None,
            "artifact_sha256": self.trial.artifact_sha256,
            "hardware_id": self.hardware_id,
        }


def artifacts_dir(storage: str | None = None, explicit: str | Path | None = None) -> Path:
    """``--artifacts`` or ``$AUTOTUNE_ARTIFACTS``, else beside a SQLite file, else ./autotune-…"""
    import os

    value = explicit or os.environ.get(ARTIFACTS_ENV)
    if value:
        return Path(value)
    url = db.storage_url(storage)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        database = Path(url.removeprefix("sqlite:///"))
        return database.with_name(database.name + ".artifacts")
    return Path("autotune-artifacts")


def _artifact_store(storage: str, artifacts: str | Path | None):
    from optuna.artifacts import FileSystemArtifactStore

    # The database first: a bad URL must not leave an artifact folder behind.
    db.check_reachable(storage)
    root = artifacts_dir(storage, artifacts)
    root.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(root))


def _study_storage(
    spec: StudySpec | str | Path, storage: str | None, artifacts: str | Path | None
) -> tuple[StudySpec, str, Any]:
    """The loaded spec, its database URL (``storage``, else the spec's) and artifact store."""
    spec = spec if isinstance(spec, StudySpec) else load_spec(spec)
    url = db.storage_url(storage or spec.storage)
    return spec, url, _artifact_store(url, artifacts)


def run_study(
    spec: StudySpec | str | Path,
    storage: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    artifacts: str | Path | None = None,
    callbacks: list[Any] | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    heartbeat: int | None = None,
    on_poll: Any = None,
):
    """Create or resume the spec's study and run it until ``n_trials`` trials have finished.

    ``workers > 1`` prepares the study here, then runs that many ``autotune worker``
    processes on it (``on_poll(study)`` is called every second while they run).
    """
    from autotune.search import local_workers, worker

    if workers < 1:
        raise ConfigError(f"workers={workers}; expected 1 or more")
    spec, url, store = _study_storage(spec, storage, artifacts)
    study = worker.run_study(
        spec,
        url,
        lambda: prepare(spec, data_dir, models_dir, progress),
        store,
        n_trials,
        timeout,
        callbacks,
        heartbeat,
        prepare_only=workers > 1,
    )
    if workers > 1:
        local_workers.run_local_workers(
            spec.name,
            url,
            workers,
            artifacts_dir(url, artifacts).resolve(),
            _absolute(data.data_dir(data_dir)),
            _absolute(teacher.models_dir(models_dir)),
            heartbeat,
            timeout,
            on_poll=(lambda: on_poll(study)) if on_poll else None,
        )
    return study


def create_study(
    spec: StudySpec | str | Path,
    storage: str | None = None,
    n_trials: int | None = None,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    artifacts: str | Path | None = None,
    progress: Progress | None = None,
):
    """Set the study up (teacher, data, baselines, tokenizer) without running trials, for
    ``autotune worker`` processes to join."""
    from autotune.search import worker

    spec, url, store = _study_storage(spec, storage, artifacts)
    return worker.run_study(
        spec,
        url,
        lambda: prepare(spec, data_dir, models_dir, progress),
        store,
        n_trials,
        prepare_only=True,
    )


def _absolute(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None


def run_worker(
    study: str,
    storage: str | None = None,
    max_trials: int | None = None,
    timeout: float | None = None,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    artifacts: str | Path | None = None,
    callbacks: list[Any] | None = None,
    progress: Progress | None = None,
    heartbeat: int | None = None,
):
    """Join an existing study (on this or another machine) and run its trials until the
    study has its ``n_trials``, or this worker ran ``max_trials``."""
    from autotune.search import worker

    url = db.storage_url(storage)
    store = _artifact_store(url, artifacts)

    def context(spec: StudySpec) -> StudyContext:
        return prepare(spec, data_dir, models_dir, progress)

    return worker.join_study(study, url, context, store, max_trials, timeout, callbacks, heartbeat)


def list_studies(storage: str | None = None) -> list[StudyOverview]:
    url = db.storage_url(storage)
    db.ensure_current(url)
    return results.all_studies(url)


def study_trials(study: str, storage: str | None = None) -> list[TrialSummary]:
    url = db.storage_url(storage)
    db.ensure_current(url)
    return results.trials(url, study)


def _hardware(url: str, study: str, hardware: str | None) -> str:
    from autotune.hardware import fingerprint

    record = results.study_record(url, study)
    threads = record.spec.get("latency", {}).get("threads", 1)
    return results.pick_hardware(url, study, hardware, fingerprint(threads)["id"])


def pareto_front(study: str, storage: str | None = None, hardware: str | None = None) -> FrontView:
    """The latest stored feasible Pareto front of ``study`` on one machine."""
    url = db.storage_url(storage)
    db.ensure_current(url)
    hardware_id = _hardware(url, study, hardware)
    view = results.front(url, study, hardware_id)
    return FrontView(**{**view.__dict__, "baselines": results.baselines(url, study, hardware_id)})


def best_config(
    study: str,
    max_latency_ms: float | None = None,
    min_accuracy: float | None = None,
    max_size_mb: float | None = None,
    prefer: str = "accuracy",
    storage: str | None = None,
    hardware: str | None = None,
    artifacts: str | Path | None = None,
) -> BestConfig:
    """The best finished trial meeting the constraints.

    ``prefer="accuracy"`` takes the most accurate (then the fastest); ``"latency"`` the fastest
    (then the most accurate). Raises :class:`NoFeasibleConfigError` naming the closest trials.
    """
    if prefer not in ("accuracy", "latency"):
        raise ConfigError(f"prefer={prefer!r}; allowed: 'accuracy', 'latency'")
    url = db.storage_url(storage)
    db.ensure_current(url)
    hardware_id = _hardware(url, study, hardware)
    done = [
        t
        for t in results.trials(url, study)
        if t.status == "complete" and t.hardware_id == hardware_id
    ]
    limits = {"latency_ms": max_latency_ms, "accuracy": min_accuracy, "size_mb": max_size_mb}
    feasible = [t for t in done if _violation(t, limits) == 0]
    if not feasible:
        raise NoFeasibleConfigError(_no_feasible_message(study, done, limits))
    if prefer == "accuracy":
        best = max(feasible, key=lambda t: (t.metrics["accuracy"], -t.metrics["latency_ms"]))
    else:
        best = min(feasible, key=lambda t: (t.metrics["latency_ms"], -t.metrics["accuracy"]))
    path = _artifact_path(url, artifacts, best)
    return BestConfig(study, best, best.compression, best.metrics, path, hardware_id)


def _violation(trial: TrialSummary, limits: dict[str, float | None]) -> float:
    """Sum of relative constraint violations (0 when feasible)."""
    total = 0.0
    for metric, limit in limits.items():
        if limit is None:
            continue
        value = trial.metrics[metric]
        excess = (limit - value) if metric == "accuracy" else (value - limit)
        total += max(0.0, excess) / max(abs(limit), 1e-9)
    return total


def _no_feasible_message(study: str, done: list[TrialSummary], limits: dict) -> str:
    asked = ", ".join(
        f"{'min' if k == 'accuracy' else 'max'}_{k}={v:g}"
        for k, v in limits.items()
        if v is not None
    )
    if not done:
        return f"study '{study}' has no finished trials on this machine yet"
    closest = sorted(done, key=lambda t: _violation(t, limits))[:3]
    shown = "; ".join(
        f"trial {t.number}: accuracy {t.metrics['accuracy']:.4f}, "
        f"latency {t.metrics['latency_ms']:.2f} ms, size {t.metrics['size_mb']:.1f} MB"
        for t in closest
    )
    return f"no trial of '{study}' meets {asked or 'the constraints'}; closest: {shown}"


def _artifact_path(url: str, artifacts: str | Path | None, trial: TrialSummary) -> Path | None:
    if trial.artifact_id is None:
        return None
    return artifacts_dir(url, artifacts) / trial.artifact_id


def export_model(
    study: str,
    out_dir: str | Path,
    trial: int | None = None,
    max_latency_ms: float | None = None,
    min_accuracy: float | None = None,
    max_size_mb: float | None = None,
    prefer: str = "accuracy",
    storage: str | None = None,
    hardware: str | None = None,
    artifacts: str | Path | None = None,
) -> Path:
    """Write a deployable folder: ``model.onnx``, tokenizer, ``config.json``, ``metrics.json``
    and a ``README.md`` card, for trial ``trial`` or the best under the constraints."""
    import json
    import shutil

    import optuna

    from autotune.cache import hash_file

    url = db.storage_url(storage)
    db.ensure_current(url)
    if trial is None:
        chosen = best_config(
            study, max_latency_ms, min_accuracy, max_size_mb, prefer, url, hardware, artifacts
        ).trial
    else:
        chosen = next((t for t in results.trials(url, study) if t.number == trial), None)
        if chosen is None or chosen.status != "complete":
            state = "does not exist" if chosen is None else f"is {chosen.status}"
            raise ConfigError(f"trial {trial} of '{study}' {state}; only complete trials export")
    source = _artifact_path(url, artifacts, chosen)
    if source is None or not source.is_file():
        raise StorageError(
            f"model of trial {chosen.number} is missing from the artifact store "
            f"({artifacts_dir(url, artifacts)})"
        )
    if hash_file(source) != chosen.artifact_sha256:
        raise StorageError(f"model of trial {chosen.number} does not match its stored sha256")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "model.onnx")
    loaded = optuna.load_study(study_name=study, storage=url)
    for name, artifact_id in loaded.user_attrs.get("tokenizer_artifacts", {}).items():
        shutil.copyfile(artifacts_dir(url, artifacts) / artifact_id, out / name)
    spec = results.study_record(url, study).spec
    config = {
        **loaded.user_attrs.get("teacher_config", {}),
        "autotune": {
            "study": study,
            "trial": chosen.number,
            "compression": chosen.config,
            "max_length": spec["dataset"]["max_length"],
            "inputs": ["input_ids", "attention_mask"],
            "outputs": ["logits"],
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(chosen.to_json(), indent=2) + "\n")
    (out / "README.md").write_text(_model_card(study, chosen), encoding="utf-8")
    return out


def _model_card(study: str, trial: TrialSummary) -> str:
    m, c = trial.metrics, trial.compression
    return (
        f"# {study} trial {trial.number}: {c.label()}\n\n"
        f"| metric | value |\n|---|---|\n"
        f"| accuracy | {m['accuracy']:.4f} |\n| macro-F1 | {m['macro_f1']:.4f} |\n"
        f"| latency (ms, batch 1) | {m['latency_ms']:.2f} |\n"
        f"| speedup vs teacher PyTorch FP32 | {m['speedup_vs_teacher_pytorch']:.2f}x |\n"
        f"| speedup vs teacher ORT FP32 | {m['speedup_vs_teacher_ort']:.2f}x |\n"
        f"| size (MB) | {m['size_mb']:.1f} |\n| weight sparsity | {m['sparsity']:.1%} |\n"
        f"| hardware | {trial.hardware_id} |\n\n"
        "Run with ONNX Runtime: inputs `input_ids`, `attention_mask` (int64), output `logits`.\n"
    )


# --- read side for the dashboard and HTTP clients ------------------------------------------


@dataclass(frozen=True)
class TrialDetail:
    """One trial with what Optuna knows of it beyond autotune's row."""

    study: str
    summary: TrialSummary
    train_curve: list[Any]
    params: dict[str, Any]
    worker: str | None
    retry_of: int | None
    started: str | None
    finished: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary.to_json(),
            "train_curve": self.train_curve,
            "params": self.params,
            "worker": self.worker,
            "retry_of": self.retry_of,
            "started": self.started,
            "finished": self.finished,
        }


@functools.cache
def _optuna_reader(url: str):
    import optuna

    return optuna.storages.RDBStorage(url, skip_compatibility_check=True)


def running_trials(study: str, storage: str | None = None) -> int:
    """Trials running now, on any worker (from Optuna's table)."""
    from optuna.trial import TrialState

    url = db.storage_url(storage)
    reader = _optuna_reader(url)
    try:
        study_id = reader.get_study_id_from_name(study)
    except KeyError:
        return 0
    return len(reader.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)))


def trial_detail(study: str, number: int, storage: str | None = None) -> TrialDetail:
    from optuna.storages import RetryFailedTrialCallback

    url = db.storage_url(storage)
    db.ensure_current(url)
    summary = results.trial(url, study, number)
    reader = _optuna_reader(url)
    frozen = reader.get_trial(
        reader.get_trial_id_from_study_id_trial_number(reader.get_study_id_from_name(study), number)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # retried_trial_number is marked experimental
        retry_of = RetryFailedTrialCallback.retried_trial_number(frozen)
    return TrialDetail(
        study=study,
        summary=summary,
        train_curve=list(summary.metrics.get("train_curve") or []),
        params=frozen.params,
        worker=frozen.user_attrs.get("worker"),
        retry_of=retry_of,
        started=frozen.datetime_start.isoformat() if frozen.datetime_start else None,
        finished=frozen.datetime_complete.isoformat() if frozen.datetime_complete else None,
    )


def hardware_info(study: str, storage: str | None = None) -> dict[str, dict[str, Any]]:
    """Fingerprints (CPU, ISA, runtimes) of every machine that measured ``study``."""
    url = db.storage_url(storage)
    return results.hardware_info(url, results.hardware_ids(url, study))


def param_importance(study: str, storage: str | None = None) -> dict[str, dict[str, float]]:
    """Optuna's parameter importance (its default evaluator) for each objective."""
    import optuna

    url = db.storage_url(storage)
    loaded = optuna.load_study(study_name=study, storage=_optuna_reader(url))
    names = loaded.metric_names or [f"objective {i}" for i in range(len(loaded.directions))]
    out: dict[str, dict[str, float]] = {}
    for index, (name, direction) in enumerate(zip(names, loaded.directions, strict=True)):
        # The evaluator ranks what leads to *low* target values: flip maximised objectives.
        sign = -1.0 if direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = optuna.importance.get_param_importances(
                    loaded, target=lambda t, i=index, s=sign: s * t.values[i]
                )
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"importance of '{study}' cannot be computed yet: {exc}") from None
    return out


def artifact_file(
    study: str, number: int, storage: str | None = None, artifacts: str | Path | None = None
) -> Path:
    """The model file of a trial, guaranteed to lie inside the artifact store."""
    url = db.storage_url(storage)
    summary = results.trial(url, study, number)
    root = artifacts_dir(url, artifacts).resolve()
    path = _artifact_path(url, artifacts, summary)
    if path is None:
        raise StorageError(f"trial {number} of '{study}' has no model")
    resolved = path.resolve()
    # Artifact ids come from the database; a tampered id must not read outside the store.
    if not resolved.is_relative_to(root) or resolved == root:
        raise StorageError(f"trial {number} of '{study}' points outside the artifact store")
    if not resolved.is_file():
        raise StorageError(f"model of trial {number} is missing from the artifact store")
    return resolved
