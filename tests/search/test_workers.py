"""Several worker processes on one study: real PostgreSQL and SQLite, real `autotune worker`
processes, a worker killed with SIGKILL, and a PostgreSQL server restarted mid-study."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

import autotune
from autotune.search import pareto
from autotune.search.objective import trial_status
from autotune.store import measured as results_on
from autotune.store.db import session_scope
from autotune.store.models import FrontSnapshot, TrialRecord
from tests.helpers import spec_text

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
OBJECTIVES = ["accuracy", "latency"]


def cheap_spec(tmp_path: Path, tiny_teacher: Path, tiny_data: Path, n_trials: int) -> Path:
    path = tmp_path / "cheap.toml"
    path.write_text(
        spec_text(
            tiny_data,
            tiny_teacher,
            search=f'sampler = "random"\nn_trials = {n_trials}',
            training="epochs = 1\nbatch_size = 32\nlearning_rate = 0.001\nmax_train_samples = 64",
        )
    )
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "autotune", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit {process.returncode}\n{out}\n{err}"
    return err


def assert_consistent(url: str, target: int, workers: int) -> optuna.Study:
    """Every trial finished once, mirrored once, and the latest front covers all of them."""
    study = optuna.load_study(study_name="tiny", storage=url)
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0, states
    counted = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
    # A worker may start one trial in the instant before another's last one is told.
    assert target <= counted <= target + workers - 1, states
    # No two workers (or sessions) drew the same configuration; retries repeat on purpose.
    drawn = [
        tuple(sorted(t.params.items()))
        for t in study.trials
        if "failed_trial" not in t.system_attrs and len(t.params) >= 7
    ]
    assert len(set(drawn)) == len(drawn)
    with session_scope(url) as session:
        rows = TrialRecord.for_study(session, "tiny")
        measured = [t for t in study.trials if "hardware_id" in t.user_attrs]
        assert sorted(r.trial_number for r in rows) == [t.number for t in measured]
        # Each row says what Optuna says of its trial, and only complete rows hold metrics.
        by_number = {t.number: t for t in study.trials}
        for row in rows:
            assert row.status.value == trial_status(by_number[row.trial_number]), row.trial_number
            assert bool(row.metrics) == (row.status.value == "complete"), row.trial_number
        for hardware_id in {t.user_attrs["hardware_id"] for t in measured}:
            history = FrontSnapshot.history(session, "tiny", hardware_id)
            assert [s.version for s in history] == list(range(1, len(history) + 1))
            # The front of the machine's rows, in its calibrated milliseconds.
            view = results_on.machine_view(url, "tiny", hardware_id)
            points = pareto.summary_points(results_on.trusted(view.trials), OBJECTIVES, {})
            expected = pareto.compute_front(points, OBJECTIVES, history[-1].reference_point)
            assert sorted(history[-1].members) == expected.members
    return study


def test_four_workers_share_twelve_trials_on_postgresql(
    pg_url: str, tmp_path: Path, tiny_teacher, tiny_data, tiny_context
) -> None:
    # 12, not the 60 of earlier releases: still the longest test of the suite for the same
    # checks; three trials a worker still overlap throughout (2 cores, 4 workers).
    spec = cheap_spec(tmp_path, tiny_teacher, tiny_data, 12)
    run = cli("study", "run", str(spec), "--workers", "4", "--storage", pg_url,
              "--artifacts", str(tmp_path / "a"))  # fmt: skip
    finish(run)
    study = assert_consistent(pg_url, 12, 4)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 4  # all four took trials
    # Artifacts of every worker landed in the one shared store.
    with session_scope(pg_url) as session:
        rows = TrialRecord.for_study(session, "tiny")
        complete = [r for r in rows if r.status.value == "complete"]
        assert complete and all((tmp_path / "a" / r.artifact_id).is_file() for r in complete)


def _running_trial_of(url: str, pid: int, deadline: float) -> int:
    study = optuna.load_study(study_name="tiny", storage=url)
    while time.monotonic() < deadline:
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker", "").endswith(f":{pid}"):
                return t.number
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} never ran a trial")


def test_killed_worker_trial_fails_within_two_heartbeats_and_is_retried(
    pg_url: str, tmp_path: Path, tiny_teacher, tiny_data, tiny_context
) -> None:
    heartbeat = 4
    spec = cheap_spec(tmp_path, tiny_teacher, tiny_data, 8)
    autotune.api.create_study(spec, pg_url, artifacts=tmp_path / "a")
    env = {"AUTOTUNE_STORAGE": pg_url, "AUTOTUNE_HEARTBEAT_SECONDS": str(heartbeat)}
    args = ("worker", "tiny", "--artifacts", str(tmp_path / "a"), "--quiet")
    victim, survivor = cli(*args, env=env), cli(*args, env=env)
    number = _running_trial_of(pg_url, victim.pid, time.monotonic() + 120)
    victim.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    victim.wait()

    study = optuna.load_study(study_name="tiny", storage=pg_url)
    while study.trials[number].state == TrialState.RUNNING:
        assert time.monotonic() - killed_at < 30, "the dead worker's trial stayed RUNNING"
        time.sleep(0.1)
    failed_after = time.monotonic() - killed_at
    assert study.trials[number].state == TrialState.FAIL
    assert failed_after <= 2 * heartbeat, f"FAIL after {failed_after:.1f}s"

    finish(survivor)
    study = assert_consistent(pg_url, 8, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retries = [
            t for t in study.trials if RetryFailedTrialCallback.retried_trial_number(t) == number
        ]
    assert len(retries) == 1 and retries[0].state in COUNTED
    # The retry keeps what the dead trial had sampled (the rest of it was never chosen).
    assert study.trials[number].params.items() <= retries[0].params.items()
    rows = {r.number: r for r in autotune.api.study_trials("tiny", pg_url)}
    assert rows[number].status == "failed"


def _pg_ctl(action: str) -> None:
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    version, name = next(
        ln.split()[:2] for ln in clusters.stdout.splitlines() if ln.split()[2] == "5432"
    )
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
        check=True,
        capture_output=True,
    )


class StderrLines:
    """Collects a running process's stderr on a thread, so a test can wait for a line (and
    drains its stdout, so a full pipe never blocks it)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()
        threading.Thread(target=process.stdout.read, daemon=True).start()  # type: ignore[union-attr]

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def worker_waits(self, parent: int) -> set[int]:
        pids = re.findall(r"warning \(pid (\d+)\): .*database unavailable", "".join(self.lines))
        return {int(pid) for pid in pids} - {parent}

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


@pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None or os.geteuid() != 0,
    reason="restarting PostgreSQL needs Debian's pg_ctlcluster and root",
)
def test_workers_survive_a_postgresql_restart(
    pg_url: str, tmp_path: Path, tiny_teacher, tiny_data, tiny_context
) -> None:
    spec = cheap_spec(tmp_path, tiny_teacher, tiny_data, 7)
    run = cli("study", "run", str(spec), "--workers", "2", "--storage", pg_url,
              "--artifacts", str(tmp_path / "a"))  # fmt: skip
    study = (
        optuna.load_study(study_name="tiny", storage=pg_url) if _wait_for_study(pg_url) else None
    )
    assert study is not None
    while len(study.get_trials(deepcopy=False, states=COUNTED)) < 3:
        assert run.poll() is None, run.communicate()
        time.sleep(0.2)
    # Keep the server down until a worker (not only the parent watching them) has hit the
    # outage: a worker inside a long latency window touches no database for many seconds,
    # and a pre-pinged pool reconnects silently to a server that is already back.
    stderr = StderrLines(run)
    _pg_ctl("stop")
    down_since = time.monotonic()
    while not stderr.worker_waits(run.pid) and time.monotonic() - down_since < 120:
        time.sleep(0.5)
    time.sleep(2)  # an outage that lasts past the first retry
    _pg_ctl("start")
    assert run.wait(timeout=600) == 0, stderr.text()
    assert stderr.worker_waits(run.pid), stderr.text()
    assert_consistent(pg_url, 7, 2)


def _wait_for_study(url: str) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            optuna.load_study(study_name="tiny", storage=url)
            return True
        except KeyError:
            time.sleep(0.5)
    return False


def test_two_workers_on_one_sqlite_file(tmp_path: Path, tiny_teacher, tiny_data, tiny_context):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    spec = cheap_spec(tmp_path, tiny_teacher, tiny_data, 4)
    finish(cli("study", "run", str(spec), "--workers", "2", "--storage", url))
    study = assert_consistent(url, 4, 2)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


def test_fronts_never_mix_hardware_fingerprints(
    tmp_path: Path, tiny_teacher, tiny_data, tiny_context
) -> None:
    """A worker on another machine (here: labelled as one) records its own fingerprint,
    baselines and front."""
    url = f"sqlite:///{tmp_path / 'two-machines.db'}"
    spec = cheap_spec(tmp_path, tiny_teacher, tiny_data, 8)
    autotune.run_study(spec, url, n_trials=4)
    env = {"AUTOTUNE_STORAGE": url, "AUTOTUNE_HARDWARE_LABEL": "other-box"}
    autotune.api.create_study(spec, url, n_trials=8)
    finish(cli("worker", "tiny", "--quiet", env=env))
    study = optuna.load_study(study_name="tiny", storage=url)
    machines = Counter(t.user_attrs["hardware_id"] for t in study.trials)
    assert len(machines) == 2 and sum(machines.values()) == 8, machines
    for hardware_id in machines:
        view = autotune.pareto_front("tiny", url, hardware=hardware_id)
        assert view.members and all(m.hardware_id == hardware_id for m in view.members)
        assert view.baselines  # teacher baselines measured on that machine
        with session_scope(url) as session:
            for snapshot in FrontSnapshot.history(session, "tiny", hardware_id):
                owners = {study.trials[n].user_attrs["hardware_id"] for n in snapshot.members}
                assert owners == {hardware_id}
