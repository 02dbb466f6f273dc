"""Milliseconds that do not go stale: a baseline measured on a busy machine is corrected by
the trials' own latency windows, and a trial timed beside CPU-bound processes is marked
unreliable, kept out of fronts and `best`, and trusted again once re-timed quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import autotune
from autotune import cache
from autotune.store import measured
from autotune.store.db import session_scope
from autotune.store.models import BaselineRecord
from autotune.store.reads import trials as stored_trials
from tests.helpers import spec_text

SLOWER = 3.0


def test_quiet_reference_is_a_low_sample_of_every_window() -> None:
    assert measured.quiet_reference_ms(None, []) is None
    # A stale baseline three times too slow loses to the first quiet window.
    assert measured.quiet_reference_ms(30.0, [10.2]) == 10.2
    # Never interpolated towards the slow ones; one lucky fast window among many is skipped.
    windows = [10.0 + 0.1 * i for i in range(18)] + [7.0]
    assert measured.quiet_reference_ms(30.0, windows) == 10.0


def _stale_baselines(url: str) -> tuple[float, Path, str]:
    """Multiply the teacher baselines, in the database and in the on-disk cache the next
    run reads them from, by SLOWER: as if measured on a busy machine. Returns the true
    ORT FP32 figure."""
    keys = ("ort_fp32_ms", "ort_int8_ms", "pytorch_fp32_ms")
    with session_scope(url) as session:
        [record] = session.query(BaselineRecord).all()
        true_ms = record.values["ort_fp32_ms"]
        record.values = {k: v * SLOWER if k in keys else v for k, v in record.values.items()}
    [cached] = [
        p
        for p in (cache.cache_root() / "baselines").glob("*/baselines.json")
        if json.loads(p.read_text())["ort_fp32_ms"] == true_ms
    ]
    original = cached.read_text()
    values = json.loads(original)
    cached.write_text(json.dumps({k: v * SLOWER if k in keys else v for k, v in values.items()}))
    return true_ms, cached, original


def test_a_stale_baseline_is_corrected_after_a_few_trials(
    tmp_path: Path, tiny_teacher: Path, tiny_data: Path, tiny_context
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = tmp_path / "tiny.toml"
    spec.write_text(spec_text(tiny_data, tiny_teacher, search='sampler = "random"\nn_trials = 4'))
    autotune.api.create_study(spec, url, artifacts=tmp_path / "a")
    true_ms, cached, original = _stale_baselines(url)
    try:
        autotune.run_study(spec, url, artifacts=tmp_path / "a")
    finally:
        cached.write_text(original)  # the cache is shared by the whole test session

    [hardware_id] = autotune.api.hardware_info("tiny", url)
    view = measured.machine_view(url, "tiny", hardware_id)
    assert view.stored_baselines["ort_fp32_ms"] == pytest.approx(true_ms * SLOWER)
    # The quiet reference came from the trials' windows, not from the stale baseline.
    assert view.reference_ms is not None and view.reference_ms < 0.6 * true_ms * SLOWER
    assert view.baselines["ort_fp32_ms"] == pytest.approx(view.reference_ms)
    stored = {t.number: t.metrics for t in stored_trials(url, "tiny") if t.status == "complete"}
    shown = {t.number: t for t in autotune.api.study_trials("tiny", url)}
    first = min(stored)
    # The first trial was judged by the stale baseline alone: stored 2-3x too slow...
    assert stored[first]["latency_ms"] > 1.8 * shown[first].metrics["latency_ms"]
    for number, metrics in stored.items():
        calibrated = shown[number].metrics
        # ...and every trial now shows the quiet reference over its own speedup.
        expected = view.reference_ms / metrics["speedup_vs_teacher_ort"]
        assert calibrated["latency_ms"] == pytest.approx(expected)
        assert calibrated["latency_baseline_ms"] == pytest.approx(view.reference_ms)
    # The front and `best` read the calibrated figures too.
    front = autotune.pareto_front("tiny", url)
    assert front.baselines["ort_fp32_ms"] == pytest.approx(view.reference_ms)
    for member in front.members:
        assert member.metrics["latency_ms"] == pytest.approx(
            shown[member.number].metrics["latency_ms"]
        )


def _burners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def test_a_trial_timed_beside_busy_processes_is_marked_and_retimed(
    tmp_path: Path, tiny_teacher: Path, tiny_data: Path, tiny_context
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = tmp_path / "tiny.toml"
    latency = (
        "threads = 1\nwarmup = 2\nruns = 20\nprecision = 0\nsequence_length = 16\n"
        "busy_cores = 0.75\nmax_reference_cv = 10\nbusy_retries = 1\nbusy_wait_s = 0.2"
    )
    spec.write_text(
        spec_text(
            tiny_data, tiny_teacher, latency=latency, search='sampler = "random"\nn_trials = 2'
        )
    )
    env = dict(os.environ, AUTOTUNE_STORAGE=url)
    command = [sys.executable, "-m", "autotune"]
    burners = _burners(2)
    try:
        run = subprocess.run(
            [*command, "study", "run", str(spec), "--artifacts", str(tmp_path / "a")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("trial ")]
    assert lines and all("UNRELIABLE latency" in line for line in lines), run.stdout
    assert "autotune remeasure tiny --unreliable" in lines[0]
    shown = autotune.api.study_trials("tiny", url)
    assert all(not t.metrics["latency_reliable"] for t in shown)
    assert all(t.metrics["latency_foreign_cores"] > 0.75 for t in shown)
    # Not trusted: no front, and `best` has nothing to choose from.
    assert autotune.pareto_front("tiny", url).members == []
    best = subprocess.run([*command, "best", "tiny"], capture_output=True, text=True, env=env)
    assert best.returncode == 1 and "no finished trials on this machine" in best.stderr

    # Quiet again: re-timed, trusted, on the front.
    again = subprocess.run(
        [
            *command,
            "remeasure",
            "tiny",
            "--unreliable",
            "--json",
            "--artifacts",
            str(tmp_path / "a"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout)
    assert sorted(report["measured"]) == sorted(t.number for t in shown)
    assert report["unreliable"] == [] and report["front"]
    retimed = autotune.api.study_trials("tiny", url)
    assert all(t.metrics["latency_reliable"] for t in retimed)
    assert autotune.pareto_front("tiny", url).members
