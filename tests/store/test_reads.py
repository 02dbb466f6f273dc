"""The read side on a database filled by hand: typed errors for what is missing or ambiguous."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotune.errors import (
    AmbiguousHardwareError,
    HardwareNotFoundError,
    StudyNotFoundError,
    TrialNotFoundError,
)
from autotune.store import db, reads, studies
from autotune.store.models import StudyRecord, TrialRecord, TrialStatus


def _database(tmp_path: Path, machines: list[str]) -> str:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    db.upgrade(url)
    with db.session_scope(url) as session:
        session.add(StudyRecord(study_name="s", spec={"latency": {"threads": 1}}, spec_hash="x"))
        session.add(
            TrialRecord(
                study_name="s",
                trial_number=0,
                status=TrialStatus.complete,
                config={},
                metrics={"accuracy": 0.9},
                hardware_id=machines[0] if machines else "none",
                seconds=1.0,
            )
        )
    for machine in machines:
        studies.record_baselines(url, "s", {"id": machine, "cpu": "test"}, {"ort_fp32_ms": 1.0})
    return url


def test_pick_hardware(tmp_path: Path) -> None:
    url = _database(tmp_path, ["aaa", "bbb"])
    assert reads.pick_hardware(url, "s", "bbb", None) == "bbb"
    assert reads.pick_hardware(url, "s", None, "aaa") == "aaa"  # this machine measured it
    with pytest.raises(AmbiguousHardwareError, match=r"several machines \(aaa, bbb\)"):
        reads.pick_hardware(url, "s", None, "ccc")
    with pytest.raises(HardwareNotFoundError, match="no results for hardware 'ccc'"):
        reads.pick_hardware(url, "s", "ccc", None)


def test_only_machine_is_taken_and_none_is_an_error(tmp_path: Path) -> None:
    assert reads.pick_hardware(_database(tmp_path, ["aaa"]), "s", None, "zzz") == "aaa"
    (tmp_path / "empty").mkdir()
    empty = _database(tmp_path / "empty", [])
    with pytest.raises(HardwareNotFoundError, match="no measured trials yet"):
        reads.pick_hardware(empty, "s", None, "zzz")


def test_missing_study_and_trial(tmp_path: Path) -> None:
    url = _database(tmp_path, ["aaa"])
    assert reads.trial(url, "s", 0).metrics == {"accuracy": 0.9}
    with pytest.raises(TrialNotFoundError, match="study 's' has no measured trial 7"):
        reads.trial(url, "s", 7)
    with pytest.raises(StudyNotFoundError, match="studies there: s"):
        reads.trials(url, "nope")
    assert reads.baselines(url, "s", "aaa") == {"ort_fp32_ms": 1.0}
