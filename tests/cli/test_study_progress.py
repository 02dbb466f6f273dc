"""What a user sees while a study runs, as real processes: lines in a pipe, JSON lines, the
bars in a terminal, and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from autotune.store.db import session_scope
from autotune.store.models import TrialRecord, TrialStatus
from tests.helpers import spec_text

TRIAL_LINE = re.compile(
    r"^trial (\d+) (complete|stopped|failed): .*\[(\d+)/3 finished, front \d+, eta ([-:\d]+)\]$"
)


def _spec(tmp_path: Path, tiny_data: Path, tiny_teacher: Path, trials: int = 3) -> Path:
    spec = tmp_path / "tiny.toml"
    search = f'sampler = "random"\nn_trials = {trials}'
    spec.write_text(spec_text(tiny_data, tiny_teacher, search=search))
    return spec


def _command(spec: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "autotune", "study", "run", str(spec), "--storage", url, *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTY_")}
    return {**env, "COLUMNS": "200", **extra}


def test_piped_output_has_a_line_per_stage_and_per_trial(
    tmp_path: Path, tiny_data: Path, tiny_teacher: Path
) -> None:
    spec = _spec(tmp_path, tiny_data, tiny_teacher)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    proc = subprocess.run(_command(spec, url), capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    trials = [m for line in lines if (m := TRIAL_LINE.match(line))]
    assert sorted(int(m[3]) for m in trials) == [1, 2, 3]  # one line per finished trial
    assert trials[-1][4] == "0:00:00"  # nothing left
    assert all(m[4] != "-:--:--" for m in trials)  # an ETA from the first finished trial on
    first_trial = next(i for i, line in enumerate(lines) if TRIAL_LINE.match(line))
    stages = [line.split(" ", 1)[1] for line in lines[:first_trial]]
    assert "baselines" in stages and "teacher logits" in " ".join(stages)


def test_json_log_is_one_object_per_line(
    tmp_path: Path, tiny_data: Path, tiny_teacher: Path
) -> None:
    spec = _spec(tmp_path, tiny_data, tiny_teacher)
    url = f"sqlite:///{tmp_path / 'j.db'}"
    proc = subprocess.run(
        _command(spec, url, "--json-log"), capture_output=True, text=True, env=_env()
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]  # every line, to the end
    assert events[-1]["event"] == "done" and events[-1]["complete"] + events[-1]["stopped"] == 3
    trials = [e for e in events if e["event"] == "trial"]
    assert [e["finished"] for e in trials] == [1, 2, 3]
    assert {e["status"] for e in trials} <= {"complete", "stopped", "failed"}
    assert all("accuracy" in e["metrics"] for e in trials if e["status"] == "complete")
    assert events[0]["event"] == "stage"


def test_terminal_shows_each_trials_stage_and_an_eta(
    tmp_path: Path, tiny_data: Path, tiny_teacher: Path
) -> None:
    spec = _spec(tmp_path, tiny_data, tiny_teacher)
    url = f"sqlite:///{tmp_path / 't.db'}"
    env = _env(TTY_INTERACTIVE="1", TTY_COMPATIBLE="1")
    proc = subprocess.run(_command(spec, url), capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stderr)
    assert re.search(r"trial \d+: (distill|latency_probe|evaluate)", screen)  # not frozen
    assert re.search(r"eta 0:00:\d\d", screen)  # from the mean trial time, not -:--:--
    assert len(re.findall(r"^trial \d+ (complete|stopped|failed):", screen, re.M)) == 3


def test_ctrl_c_discards_the_running_trial_and_says_how_to_resume(
    tmp_path: Path, tiny_data: Path, tiny_teacher: Path
) -> None:
    spec = _spec(tmp_path, tiny_data, tiny_teacher, trials=4)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    proc = subprocess.Popen(
        _command(spec, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    running = _wait_for_training_trial(url, time.monotonic() + 600)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert f"interrupted: trial {running} discarded; run the same command to resume" in err
    assert "Traceback" not in err
    study = optuna.load_study(study_name="tiny", storage=url)
    assert study.trials[running].state == TrialState.FAIL
    with session_scope(url) as session:
        row = TrialRecord.find(session, "tiny", running)
        assert row is not None and row.status == TrialStatus.failed
        assert row.reason is not None and row.reason.startswith("interrupted (Ctrl-C)")
    resumed = subprocess.run(_command(spec, url), capture_output=True, text=True, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    study = optuna.load_study(study_name="tiny", storage=url)
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4


def _wait_for_training_trial(url: str, deadline: float) -> int:
    """The number of a trial that has its configuration (it is inside the pipeline)."""
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name="tiny", storage=url)
        except KeyError:
            time.sleep(0.2)
            continue
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if "config" in t.user_attrs:
                return t.number
        time.sleep(0.1)
    raise AssertionError("no trial started")
