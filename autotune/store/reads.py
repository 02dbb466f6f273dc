"""Read side of the result database: typed views of studies, trials and fronts.

The writes live beside it in ``autotune.store``; callers outside go through ``autotune.api``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import select

from autotune.compression.config import CompressionConfig, TrialMetrics
from autotune.errors import (
    AmbiguousHardwareError,
    HardwareNotFoundError,
    StudyNotFoundError,
    TrialNotFoundError,
)
from autotune.store.db import redact, session_scope
from autotune.store.models import (
    BaselineRecord,
    FrontSnapshot,
    HardwareRecord,
    StudyRecord,
    TrialRecord,
    TrialStatus,
)

ROW_COLUMNS = (
    "trial_number",
    "status",
    "config",
    "metrics",
    "hardware_id",
    "reason",
    "artifact_id",
    "artifact_sha256",
    "seconds",
)


@dataclass(frozen=True)
class TrialSummary:
    number: int
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    hardware_id: str
    reason: str | None = None
    artifact_id: str | None = None
    artifact_sha256: str | None = None
    seconds: float = 0.0
    remeasured_from: str | None = None  # the machine it trained on, when measured again here

    @classmethod
    def of(cls, record: Any) -> TrialSummary:
        """From a :class:`TrialRecord` or a row of its ``ROW_COLUMNS``."""
        return cls(
            number=record.trial_number,
            status=record.status.value,
            config=record.config,
            metrics=record.metrics,
            hardware_id=record.hardware_id,
            reason=record.reason,
            artifact_id=record.artifact_id,
            artifact_sha256=record.artifact_sha256,
            seconds=record.seconds,
        )

    @property
    def compression(self) -> CompressionConfig:
        return CompressionConfig.from_dict(self.config)

    @property
    def measured(self) -> TrialMetrics:
        """The typed metrics of a complete trial (``metrics`` is their stored JSON)."""
        typed = TrialMetrics.from_json(self.metrics)
        if typed is None:
            raise ValueError(f"trial {self.number} is {self.status}: it has no metrics")
        return typed

    def to_json(self) -> dict[str, Any]:
        # Shallow on purpose: asdict() deep-copies every metrics dict, two thirds of the time
        # of serving 10,000 trials.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["config"] = dict(self.config)
        data["metrics"] = {k: v for k, v in self.metrics.items() if k != "train_curve"}
        return data


@dataclass(frozen=True)
class FrontView:
    study: str
    hardware_id: str
    version: int
    hypervolume: float
    reference_point: list[float]
    members: list[TrialSummary]
    baselines: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    # A multi-fidelity study's rungs and savings (``store.rungs.FidelitySummary``).
    fidelity: Any = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["members"] = [m.to_json() for m in self.members]
        data["fidelity"] = self.fidelity.to_json() if self.fidelity else None
        return data


@dataclass(frozen=True)
class StudyOverview:
    name: str
    dataset: str
    teacher: str
    complete: int
    failed: int
    stopped: int
    front_size: int
    best_speedup: float | None  # vs teacher PyTorch FP32, among trials meeting min_accuracy
    hardware_ids: list[str]
    updated: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def study_record(url: str, name: str) -> StudyRecord:
    with session_scope(url) as session:
        record = StudyRecord.find(session, name)
        if record is None:
            names = [r.study_name for r in StudyRecord.all(session)]
            known = ", ".join(names) if names else "none"
            raise StudyNotFoundError(
                f"no study named '{name}' in '{redact(url)}' (studies there: {known})"
            )
        return record


def trials(url: str, name: str) -> list[TrialSummary]:
    study_record(url, name)
    # Plain column rows, not ORM entities: a 10,000-trial study reads in a fraction of the time.
    columns = [getattr(TrialRecord, c) for c in ROW_COLUMNS]
    query = select(*columns).where(TrialRecord.study_name == name)
    with session_scope(url) as session:
        rows = session.execute(query.order_by(TrialRecord.trial_number)).all()
    return [TrialSummary.of(row) for row in rows]


def trial(url: str, name: str, number: int) -> TrialSummary:
    study_record(url, name)
    with session_scope(url) as session:
        record = TrialRecord.find(session, name, number)
        if record is None:
            raise TrialNotFoundError(f"study '{name}' has no measured trial {number}")
        return TrialSummary.of(record)


def hardware_info(url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    with session_scope(url) as session:
        return {r.id: dict(r.info) for r in HardwareRecord.some(session, ids)}


def hardware_ids(url: str, name: str) -> list[str]:
    with session_scope(url) as session:
        return sorted({b.hardware_id for b in BaselineRecord.for_study(session, name)})


def baselines(url: str, name: str, hardware_id: str) -> dict[str, Any]:
    with session_scope(url) as session:
        for record in BaselineRecord.for_study(session, name):
            if record.hardware_id == hardware_id:
                return dict(record.values)
    return {}


def pick_hardware(url: str, name: str, requested: str | None, current: str | None) -> str:
    """The fingerprint to read results for: asked for, else this machine's, else the only one."""
    known = hardware_ids(url, name)
    if requested is not None:
        if requested not in known:
            raise HardwareNotFoundError(
                f"study '{name}' has no results for hardware '{requested}' "
                f"(it has: {', '.join(known) or 'none'})"
            )
        return requested
    if current in known:
        return current
    if len(known) == 1:
        return known[0]
    if not known:
        raise HardwareNotFoundError(f"study '{name}' has no measured trials yet")
    raise AmbiguousHardwareError(
        f"study '{name}' has results from several machines ({', '.join(known)}); "
        "choose one with --hardware"
    )


def front(url: str, name: str, hardware_id: str) -> FrontView:
    study_record(url, name)
    with session_scope(url) as session:
        history = FrontSnapshot.history(session, name, hardware_id)
        latest = history[-1] if history else None
        by_number = {
            r.trial_number: r
            for r in TrialRecord.numbered(session, name, latest.members if latest else [])
        }
        members = [
            TrialSummary.of(by_number[n])
            for n in (latest.members if latest else [])
            if n in by_number
        ]
        members.sort(key=lambda t: t.metrics.get("latency_ms", 0.0))
        return FrontView(
            study=name,
            hardware_id=hardware_id,
            version=latest.version if latest else 0,
            hypervolume=latest.hypervolume if latest else 0.0,
            reference_point=latest.reference_point if latest else [],
            members=members,
            history=[
                {
                    "version": s.version,
                    "trials_seen": s.trials_seen,
                    "hypervolume": s.hypervolume,
                    "members": s.members,
                }
                for s in history
            ],
        )


def overview(url: str, record: StudyRecord) -> StudyOverview:
    columns = (TrialRecord.status, TrialRecord.metrics, TrialRecord.created_at)
    query = select(*columns).where(TrialRecord.study_name == record.study_name)
    with session_scope(url) as session:
        rows = session.execute(query).all()
        snapshots = FrontSnapshot.history(session, record.study_name)
    counts = {status: sum(r.status == status for r in rows) for status in TrialStatus}
    spec = record.spec
    min_accuracy = spec.get("constraints", {}).get("min_accuracy") or 0.0
    measured = [TrialMetrics.from_json(r.metrics) for r in rows if r.status == TrialStatus.complete]
    speedups = [m.speedup_vs_teacher_pytorch for m in measured if m and m.accuracy >= min_accuracy]
    latest_by_hw: dict[str, FrontSnapshot] = {}
    for snap in snapshots:
        latest_by_hw[snap.hardware_id] = snap
    dataset = spec["dataset"]
    return StudyOverview(
        name=record.study_name,
        dataset=dataset.get("path")
        or "/".join(x for x in (dataset.get("hub_id"), dataset.get("hub_config")) if x)
        or dataset.get("local_name", ""),
        teacher=spec["teacher"]["checkpoint"],
        complete=counts[TrialStatus.complete],
        failed=counts[TrialStatus.failed],
        stopped=counts[TrialStatus.stopped],
        front_size=sum(len(s.members) for s in latest_by_hw.values()),
        best_speedup=max(speedups) if speedups else None,
        hardware_ids=sorted(latest_by_hw),
        updated=max((r.created_at for r in rows), default=None)
        and str(max(r.created_at for r in rows)),
    )


def all_studies(url: str) -> list[StudyOverview]:
    with session_scope(url) as session:
        records = StudyRecord.all(session)
    return [overview(url, record) for record in records]
