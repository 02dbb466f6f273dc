"""Versioned snapshots of Pareto fronts: one row per change of a front's membership."""

from __future__ import annotations

from sqlalchemy.orm import Session

from autotune.store.models import FrontSnapshot


def record_snapshot(
    session: Session,
    study_name: str,
    hardware_id: str,
    members: list[int],
    hypervolume: float,
    reference_point: list[float],
    trials_seen: int,
) -> FrontSnapshot | None:
    """Store a new version when the front's membership changed; None when it did not.

    Raises ``IntegrityError`` when a concurrent worker took the same version number first.
    """
    latest = FrontSnapshot.latest(session, study_name, hardware_id)
    if latest is not None and sorted(latest.members) == sorted(members):
        return None
    snapshot = FrontSnapshot(
        study_name=study_name,
        hardware_id=hardware_id,
        version=FrontSnapshot.next_version(session, study_name, hardware_id),
        trials_seen=trials_seen,
        members=sorted(members),
        hypervolume=hypervolume,
        reference_point=list(reference_point),
    )
    with session.begin_nested():
        session.add(snapshot)
    return snapshot
