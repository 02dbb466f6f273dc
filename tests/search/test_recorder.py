"""The recorder settles autotune's trial rows against the states Optuna stored."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from autotune.search.recorder import TrialRecorder
from autotune.spec import load_spec
from autotune.store import db
from autotune.store.models import HardwareRecord, TrialRecord, TrialStatus

MACHINE = "m1"
METRICS = {"accuracy": 0.9, "latency_ms": 2.0}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'r.db'}"
    return request.getfixturevalue("pg_url")


def _row(number: int, status: TrialStatus, metrics: dict) -> TrialRecord:
    return TrialRecord(
        study_name="tiny",
        trial_number=number,
        status=status,
        config={"layers": 2},
        metrics=metrics,
        hardware_id=MACHINE,
        seconds=1.0,
    )


def _trial(state: TrialState, **attrs: str):
    values = [0.9, 2.0] if state == TrialState.COMPLETE else None
    return create_trial(state=state, values=values, user_attrs=attrs)


def test_sync_settles_rows_from_optunas_states(url: str, tiny_spec: Path) -> None:
    db.upgrade(url)
    study = optuna.create_study(storage=url, study_name="tiny", directions=["maximize", "minimize"])
    study.add_trial(_trial(TrialState.COMPLETE, hardware_id=MACHINE))  # 0: row written, kept
    study.add_trial(_trial(TrialState.FAIL, hardware_id=MACHINE))  # 1: died after its row
    study.add_trial(_trial(TrialState.FAIL, hardware_id=MACHINE))  # 2: died before any row
    study.add_trial(_trial(TrialState.FAIL))  # 3: never reached the objective
    with db.session_scope(url) as session:
        HardwareRecord.ensure(session, {"id": MACHINE})
        session.add(_row(0, TrialStatus.complete, METRICS))
        session.add(_row(1, TrialStatus.complete, METRICS))

    recorder = TrialRecorder(url, load_spec(tiny_spec))
    recorder.sync(study)
    recorder.sync(study)  # idempotent: nothing written twice

    with db.session_scope(url) as session:
        rows = {r.trial_number: r for r in TrialRecord.for_study(session, "tiny")}
        assert sorted(rows) == [0, 1, 2]
        assert rows[0].status == TrialStatus.complete and rows[0].metrics == METRICS
        # Optuna's word on the outcome wins; what was measured is not touched.
        assert rows[1].status == TrialStatus.failed and rows[1].metrics == METRICS
        assert rows[1].reason == "interrupted or lost before it finished"
        assert rows[2].status == TrialStatus.failed and rows[2].metrics == {}


def test_callback_settles_a_trial_optuna_failed(url: str, tiny_spec: Path) -> None:
    db.upgrade(url)
    study = optuna.create_study(storage=url, study_name="tiny", directions=["maximize", "minimize"])
    study.add_trial(_trial(TrialState.FAIL, hardware_id=MACHINE, failure="ValueError: nan"))
    with db.session_scope(url) as session:
        HardwareRecord.ensure(session, {"id": MACHINE})
        session.add(_row(0, TrialStatus.complete, METRICS))

    TrialRecorder(url, load_spec(tiny_spec))(study, study.trials[0])

    with db.session_scope(url) as session:
        row = TrialRecord.find(session, "tiny", 0)
        assert row is not None
        assert (row.status, row.reason) == (TrialStatus.failed, "ValueError: nan")
