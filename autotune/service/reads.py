"""Read a result database: studies, trials, fronts, machines, and Optuna's view of them.

Used by ``study list|show``, ``pareto``, ``db`` and the dashboard; nothing here imports
torch, and Optuna only where Optuna's own data is asked for.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autotune.errors import ArtifactError, ArtifactOutsideStoreError, ConfigError
from autotune.settings import Settings
from autotune.store import db, measured, rungs
from autotune.store import reads as stored
from autotune.store.reads import FrontView, StudyOverview, TrialSummary
from autotune.store.rungs import FidelitySummary


def open_storage(storage: str | Settings | None = None, **where: Any) -> Settings:
    """Resolved settings whose database is at this autotune's schema; an empty database is
    initialised. For the commands that create studies."""
    settings = Settings.resolve(storage, **where)
    db.ensure_current(settings.storage)
    return settings


def open_results(storage: str | Settings | None = None, **where: Any) -> Settings:
    """Resolved settings of a database that already holds autotune's results, checked to be
    at this autotune's schema. Reading never creates a database: a missing one is refused."""
    settings = Settings.resolve(storage, **where)
    db.ensure_current(settings.storage, create=False)
    return settings


def list_studies(storage: str | Settings | None = None) -> list[StudyOverview]:
    return stored.all_studies(open_results(storage).storage)


def study_trials(study: str, storage: str | Settings | None = None) -> list[TrialSummary]:
    """Every trial as it ran, in its machine's calibrated milliseconds."""
    return measured.calibrated_trials(open_results(storage).storage, study)


def machine_trials(
    study: str, hardware: str | None = None, storage: str | Settings | None = None
) -> list[TrialSummary]:
    """One machine's results (default: this one's, or the only one's): the trials that ran
    there and those it measured again, in its calibrated milliseconds."""
    url = open_results(storage).storage
    return measured.on_machine(url, study, pick_hardware(url, study, hardware))


@dataclass(frozen=True)
class StudyInfo:
    """One study for the dashboard: its overview, spec, running trials and machines."""

    overview: StudyOverview
    spec: dict[str, Any]
    running: int
    hardware: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.overview.to_json(),
            "running": self.running,
            "spec": self.spec,
            "hardware": self.hardware,
        }


def study_info(study: str, storage: str | Settings | None = None) -> StudyInfo:
    url = open_results(storage).storage
    record = stored.study_record(url, study)
    return StudyInfo(
        overview=stored.overview(url, record),
        spec=record.spec,
        running=running_trials(study, url),
        hardware=stored.hardware_info(url, stored.hardware_ids(url, study)),
    )


def check_study(study: str, storage: str | Settings | None = None) -> None:
    """Raise :class:`StudyNotFoundError` naming the studies there, unless ``study`` exists."""
    stored.study_record(open_results(storage).storage, study)


def pick_hardware(url: str, study: str, hardware: str | None) -> str:
    """The machine to read: ``hardware``, else this one if it measured ``study``, else the
    only one that did."""
    from autotune.hardware import fingerprint

    record = stored.study_record(url, study)
    threads = record.spec.get("latency", {}).get("threads", 1)
    return stored.pick_hardware(url, study, hardware, fingerprint(threads)["id"])


def pareto_front(
    study: str, storage: str | Settings | None = None, hardware: str | None = None
) -> FrontView:
    """The latest stored feasible Pareto front of ``study`` on one machine."""
    url = open_results(storage).storage
    hardware_id = pick_hardware(url, study, hardware)
    snapshot = stored.front(url, study, hardware_id)
    machine = measured.machine_view(url, study, hardware_id)
    by_number = {t.number: t for t in machine.trials}
    members = [by_number[m.number] for m in snapshot.members if m.number in by_number]
    members.sort(key=lambda t: t.metrics.get("latency_ms", 0.0))
    return replace(
        snapshot,
        members=members,
        baselines=machine.baselines,
        fidelity=fidelity_summary(study, url, machine.trials),
    )


def fidelity_summary(
    study: str, storage: str | Settings | None = None, shown: list[TrialSummary] | None = None
) -> FidelitySummary | None:
    """A multi-fidelity study's trials per rung, each rung's front among ``shown`` (one
    machine's calibrated trials), and the training its early stops saved (None for a study
    without rungs)."""
    url = open_results(storage).storage
    reader = _optuna_reader(url)
    try:
        attrs = reader.get_study_user_attrs(reader.get_study_id_from_name(study))
    except KeyError:
        return None
    plan = attrs.get("fidelity")
    if not plan:
        return None
    objectives = stored.study_record(url, study).spec.get("objectives", ["accuracy", "latency"])
    return rungs.summarize(
        stored.trials(url, study), plan["examples"], _rung_fronts(shown or [], objectives)
    )


def _rung_fronts(shown: list[TrialSummary], objectives: list[str]) -> dict[int, list[int]]:
    """Each rung's non-dominated trials (quiet windows only, as the study's front)."""
    from autotune.search import pareto

    fronts = {}
    by_rung: dict[int, list[TrialSummary]] = {}
    for trial in measured.trusted_any_rung(shown):
        if trial.metrics.get("rung") is not None:
            by_rung.setdefault(trial.metrics["rung"], []).append(trial)
    for rung, members in by_rung.items():
        points = pareto.summary_points(members, objectives, {})
        keep = pareto.non_dominated(pareto.loss_matrix(points, objectives))
        fronts[rung] = sorted(p.number for p, k in zip(points, keep, strict=True) if k)
    return fronts


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
def _optuna_reader(url: str) -> Any:
    import optuna

    return optuna.storages.RDBStorage(url, skip_compatibility_check=True)


def running_trials(study: str, storage: str | Settings | None = None) -> int:
    """Trials running now, on any worker (from Optuna's table)."""
    from optuna.trial import TrialState

    reader = _optuna_reader(open_results(storage).storage)
    try:
        study_id = reader.get_study_id_from_name(study)
    except KeyError:
        return 0
    return len(reader.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)))


def trial_detail(study: str, number: int, storage: str | Settings | None = None) -> TrialDetail:
    from optuna.storages import RetryFailedTrialCallback

    url = open_results(storage).storage
    summary = stored.trial(url, study, number)
    own = {t.number: t for t in measured.on_machine(url, study, summary.hardware_id)}
    summary = own.get(number, summary)
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


def hardware_info(study: str, storage: str | Settings | None = None) -> dict[str, dict[str, Any]]:
    """Fingerprints (CPU, ISA, runtimes) of every machine that measured ``study``."""
    url = open_results(storage).storage
    return stored.hardware_info(url, stored.hardware_ids(url, study))


def param_importance(
    study: str, storage: str | Settings | None = None
) -> dict[str, dict[str, float]]:
    """Optuna's parameter importance (its default evaluator) for each objective."""
    import optuna

    url = open_results(storage).storage
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


def artifact_path(settings: Settings, trial: TrialSummary) -> Path | None:
    """Where the trial's model file lies in the artifact store (None: it has none)."""
    if trial.artifact_id is None:
        return None
    return settings.artifacts / trial.artifact_id


def artifact_file(
    study: str,
    number: int,
    storage: str | Settings | None = None,
    artifacts: str | Path | None = None,
) -> Path:
    """The model file of a trial, guaranteed to lie inside the artifact store."""
    settings = open_results(storage, artifacts=artifacts)
    summary = stored.trial(settings.storage, study, number)
    root = settings.artifacts.resolve()
    path = artifact_path(settings, summary)
    if path is None:
        raise ArtifactError(f"trial {number} of '{study}' has no model")
    resolved = path.resolve()
    # Artifact ids come from the database; a tampered id must not read outside the store.
    if not resolved.is_relative_to(root) or resolved == root:
        raise ArtifactOutsideStoreError(
            f"trial {number} of '{study}' points outside the artifact store"
        )
    if not resolved.is_file():
        raise ArtifactError(f"model of trial {number} is missing from the artifact store")
    return resolved


def storage_label(storage: str | Settings | None = None) -> str:
    """The database URL without its password, for messages and titles."""
    return Settings.resolve(storage).redacted()


def upgrade_database(storage: str | None = None) -> tuple[str | None, str]:
    """Migrate Optuna's schema, then autotune's; returns (revision before, revision after)."""
    url = db.storage_url(storage)
    before = db.current_revision(url)
    return before, db.upgrade(url)


def database_revision(storage: str | None = None) -> tuple[str | None, str]:
    """(the database's autotune schema revision, this autotune's head revision)."""
    url = db.storage_url(storage)
    db.check_exists(url)
    return db.current_revision(url), db.head_revision()
