"""`autotune remeasure`: a second machine gets its own front from a study's exported models,
without training, on real SQLite and PostgreSQL; two machines are told apart by labelled
fingerprints (``AUTOTUNE_HARDWARE_LABEL``), as two cloud instance types would be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna

import autotune
from autotune.store import measured
from autotune.store.db import session_scope
from autotune.store.models import FrontSnapshot, RemeasureRecord
from tests.helpers import spec_text


def autotune_cli(*args: str, label: str, storage: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, AUTOTUNE_HARDWARE_LABEL=label, AUTOTUNE_STORAGE=storage)
    proc = subprocess.run(
        [sys.executable, "-m", "autotune", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_a_second_machine_gets_its_own_front_without_training(
    storage: str, tmp_path: Path, tiny_teacher: Path, tiny_data: Path, tiny_context
) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(spec_text(tiny_data, tiny_teacher, search='sampler = "random"\nn_trials = 3'))
    artifacts = str(tmp_path / "artifacts")
    autotune_cli(
        "study", "run", str(spec), "--artifacts", artifacts, label="box-a", storage=storage
    )
    trials_before = len(optuna.load_study(study_name="tiny", storage=storage).trials)
    [box_a] = {t.hardware_id for t in autotune.api.study_trials("tiny", storage)}
    complete = {
        t.number for t in autotune.api.study_trials("tiny", storage) if t.status == "complete"
    }

    ran = autotune_cli(
        "remeasure",
        "tiny",
        "--all",
        "--json",
        "--artifacts",
        artifacts,
        label="box-b",
        storage=storage,
    )
    report = json.loads(ran.stdout)
    box_b = report["hardware_id"]
    assert box_b != box_a and report["source_hardware_id"] == box_a
    assert sorted(report["measured"]) == sorted(complete) and not report["failed"]
    # No training: no new Optuna trial, and each result's time is evaluation and latency.
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == trials_before
    here = {t.number: t for t in measured.on_machine(storage, "tiny", box_b)}
    assert set(here) == complete
    for number, result in here.items():
        assert result.hardware_id == box_b and result.remeasured_from == box_a
        assert set(result.metrics["stage_seconds"]) == {"evaluate", "latency"}, number
        assert 0.0 <= result.metrics["accuracy"] <= 1.0
        assert result.metrics["latency_data_mean_ms"] > 0  # the data profile, timed here

    # Each machine has its own front, of its own results only.
    front_b = autotune.pareto_front("tiny", storage, hardware=box_b)
    assert front_b.members and {m.number for m in front_b.members} <= complete
    assert all(m.hardware_id == box_b and m.remeasured_from == box_a for m in front_b.members)
    assert front_b.baselines["ort_fp32_ms"] > 0  # box-b's own teacher baselines
    front_a = autotune.pareto_front("tiny", storage, hardware=box_a)
    assert all(m.hardware_id == box_a and m.remeasured_from is None for m in front_a.members)
    pareto_json = json.loads(
        autotune_cli(
            "pareto", "tiny", "--hardware", box_b, "--json", label="box-b", storage=storage
        ).stdout
    )
    assert {m["remeasured_from"] for m in pareto_json["members"]} == {box_a}
    best = json.loads(
        autotune_cli(
            "best", "tiny", "--json", "--artifacts", artifacts, label="box-b", storage=storage
        ).stdout
    )
    assert best["hardware_id"] == box_b  # this machine's results, chosen on its own

    # Measured twice is stored once: a second run finds nothing left to do.
    again = json.loads(
        autotune_cli(
            "remeasure",
            "tiny",
            "--all",
            "--json",
            "--artifacts",
            artifacts,
            label="box-b",
            storage=storage,
        ).stdout
    )
    assert again["measured"] == [] and sorted(again["skipped"]) == sorted(complete)
    with session_scope(storage) as session:
        rows = session.query(RemeasureRecord).filter_by(study_name="tiny").all()
        assert sorted(r.trial_number for r in rows) == sorted(complete)
        for hardware_id in (box_a, box_b):
            snapshots = FrontSnapshot.history(session, "tiny", hardware_id)
            mine = {t.number for t in measured.on_machine(storage, "tiny", hardware_id)}
            assert snapshots and all(set(s.members) <= mine for s in snapshots)


def test_remeasure_names_what_is_wrong(tmp_path: Path, tiny_teacher: Path, tiny_data: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    spec = tmp_path / "tiny.toml"
    spec.write_text(spec_text(tiny_data, tiny_teacher, search='sampler = "random"\nn_trials = 1'))
    autotune_cli("study", "run", str(spec), label="box-a", storage=storage)
    env = dict(os.environ, AUTOTUNE_HARDWARE_LABEL="box-a", AUTOTUNE_STORAGE=storage)
    cases = [
        (["tiny"], "has no complete trials from another machine than this one"),
        (["tiny", "--from", "nope"], "has no complete trials from hardware 'nope'"),
        (["tiny", "--unreliable", "--all"], "--unreliable re-times this machine's trials"),
        (["missing"], "no study named 'missing'"),
    ]
    for args, expected in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "autotune", "remeasure", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode != 0, args
        assert proc.stderr.startswith("error:") and expected in proc.stderr, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
    # The refused runs wrote nothing: no re-measurement, no second machine.
    with session_scope(storage) as session:
        assert session.query(RemeasureRecord).count() == 0
    assert len(autotune.api.hardware_info("tiny", storage)) == 1


def test_two_remeasures_at_once_share_the_work(
    pg_url: str, tmp_path: Path, tiny_teacher: Path, tiny_data: Path, tiny_context
) -> None:
    """Two `remeasure` processes for one machine on PostgreSQL at the same moment: every
    model is measured once, by one of them."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(spec_text(tiny_data, tiny_teacher, search='sampler = "random"\nn_trials = 4'))
    artifacts = str(tmp_path / "artifacts")
    autotune_cli("study", "run", str(spec), "--artifacts", artifacts, label="box-a", storage=pg_url)
    complete = {
        t.number for t in autotune.api.study_trials("tiny", pg_url) if t.status == "complete"
    }
    env = dict(os.environ, AUTOTUNE_HARDWARE_LABEL="box-b", AUTOTUNE_STORAGE=pg_url)
    command = [sys.executable, "-m", "autotune", "remeasure", "tiny", "--all", "--json"]
    runs = [
        subprocess.Popen(
            [*command, "--artifacts", artifacts],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    first, second = (set(r["measured"]) for r in reports)
    assert not first & second and first | second == complete
    with session_scope(pg_url) as session:
        rows = session.query(RemeasureRecord).filter_by(study_name="tiny").all()
        assert sorted(r.trial_number for r in rows) == sorted(complete)
