"""Multi-fidelity studies on the tiny teacher: rungs, promotions, resumed training, the
answer from the top rung only, and promotions racing on a real database."""

from __future__ import annotations

import signal
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState
from rich.console import Console

import autotune
from autotune.cli.output import front_table
from autotune.compression.fidelity import RungPlan
from autotune.errors import ConfigError
from autotune.search import fidelity
from autotune.search.promotion import promotable
from autotune.store import db, promotions
from tests.helpers import spec_text

# 96 rows, batch 16, 4 epochs: 24 steps (384 examples); eta 2 down to 96 examples gives rungs
# of 6, 12 and 24 steps. Four configurations: 4 at rung 0, 2 at rung 1, 1 at the top.
FIDELITY = 'sampler = "random"\nn_trials = 4\nfidelity = { min_examples = 96, eta = 2 }'
TRAINING = "epochs = 4\nbatch_size = 16\nlearning_rate = 0.001"


def _spec(tmp_path: Path, tiny_teacher: Path, tiny_data: Path, search: str = FIDELITY) -> Path:
    path = tmp_path / "mf.toml"
    path.write_text(spec_text(tiny_data, tiny_teacher, training=TRAINING, search=search))
    return path


def test_a_multi_fidelity_study_trains_the_promising_further(
    pg_url: str, tmp_path: Path, tiny_teacher, tiny_data
) -> None:
    # PostgreSQL here; the killed-worker test and the dashboard's run such studies on SQLite.
    storage = pg_url
    artifacts = tmp_path / "artifacts"
    autotune.run_study(_spec(tmp_path, tiny_teacher, tiny_data), storage, artifacts=artifacts)
    study = optuna.load_study(study_name="tiny", storage=storage)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert Counter(fidelity.rung_of(t) for t in study.trials) == {0: 4, 1: 2, 2: 1}
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.user_attrs["fidelity"]["examples"] == [96, 192, 384]

    rows = {r.number: r for r in autotune.api.study_trials("tiny", storage)}
    for trial in complete:
        rung = fidelity.rung_of(trial)
        metrics = rows[trial.number].metrics
        assert metrics["rung"] == rung and metrics["top_rung"] == (rung == 2)
        assert metrics["budget_examples"] == [96, 192, 384][rung]
        if rung == 0:
            assert metrics["trained_examples"] == 96
            continue
        # A promotion resumes its configuration's lower rung: only the steps in between.
        source = study.trials[trial.user_attrs["resume_trial"]]
        assert fidelity.rung_of(source) == rung - 1
        assert source.user_attrs["config_id"] == trial.user_attrs["config_id"]
        assert metrics["trained_examples"] == [96, 192, 384][rung] - [96, 192, 384][rung - 1]

    # Checkpoints: a promoted trial released the one it resumed from, and the finished study
    # removed those of configurations never promoted; the exported models stay.
    checkpoints = [t.user_attrs["checkpoint_artifact"] for t in complete if fidelity.rung_of(t) < 2]
    assert len(checkpoints) == 6
    assert not any((artifacts / artifact).exists() for artifact in checkpoints)
    assert all((artifacts / rows[t.number].artifact_id).is_file() for t in complete)

    # The configuration at the top is the better of the two at rung 1, by Pareto rank.
    rung1 = fidelity.rung_results(complete, 1)
    best = rung1[promotable(fidelity.losses(rung1, study.directions), 2)[0]]
    (top,) = [t for t in complete if fidelity.rung_of(t) == 2]
    assert top.user_attrs["config_id"] == best.user_attrs["config_id"]

    # The answer is the top rung only: front, best, export.
    front = autotune.pareto_front("tiny", storage)
    assert [m.number for m in front.members] == [top.number]
    chosen = autotune.best_config("tiny", storage=storage, artifacts=artifacts)
    assert chosen.trial.number == top.number
    assert len(promotions.promotions(storage, "tiny")) == 3

    # What it saved: exact in examples, estimated in seconds.
    summary = front.fidelity
    assert [(r.examples, r.trials) for r in summary.rungs] == [(96, 4), (192, 2), (384, 1)]
    assert summary.trained_examples == 4 * 96 + 2 * 96 + 192
    assert summary.full_examples == 4 * 384 and summary.saved == pytest.approx(0.5)
    assert 0 < summary.train_seconds < summary.full_seconds
    # Each rung has its own front; the top rung's is the study's.
    assert summary.rungs[2].front == [top.number]
    assert set(summary.rungs[0].front) <= {t.number for t in complete if fidelity.rung_of(t) == 0}
    assert summary.rungs[0].front
    console = Console(record=True, width=300)
    console.print(front_table(front))
    text = " ".join(console.export_text().split())
    assert "trials per rung: rung 0: 4 (96 examples), rung 1: 2 (192 examples)" in text
    assert "trained 768 of the 1,536 examples" in text and "(50% saved)" in text
    assert autotune.pareto_front("tiny", storage).to_json()["fidelity"]["saved"] == 0.5

    # Finished: running it again runs nothing.
    autotune.run_study(_spec(tmp_path, tiny_teacher, tiny_data), storage, artifacts=artifacts)
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 7


def test_promote_sets_the_fraction_promoted_apart_from_the_rungs_spacing(
    tmp_path: Path, tiny_teacher, tiny_data
) -> None:
    # eta 4 from 384 examples: two rungs, 96 and 384 (4x apart). eta alone promotes one in
    # four: one configuration of four reaches the top. promote = 2 sends the best half: the
    # final best two of rung 0 (and one promoted early, while rung 0 held two or three).
    storage = f"sqlite:///{tmp_path / 'promote.db'}"
    search = FIDELITY.replace("eta = 2 }", "eta = 4, promote = 2 }")
    autotune.run_study(_spec(tmp_path, tiny_teacher, tiny_data, search), storage)
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert study.user_attrs["fidelity"]["examples"] == [96, 384]
    rungs = Counter(fidelity.rung_of(t) for t in study.trials)
    assert rungs[0] == 4 and 2 <= rungs[1] <= 3, rungs
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    rung0 = fidelity.rung_results(complete, 0)
    best_half = promotable(fidelity.losses(rung0, study.directions), 2)
    top = {t.user_attrs["config_id"] for t in complete if fidelity.rung_of(t) == 1}
    assert {rung0[i].user_attrs["config_id"] for i in best_half} <= top


def test_bad_schedules_are_refused_before_anything_is_written(
    tmp_path: Path, tiny_teacher, tiny_data
) -> None:
    storage = f"sqlite:///{tmp_path / 'bad.db'}"
    too_big = FIDELITY.replace("min_examples = 96", "min_examples = 300")
    with pytest.raises(ConfigError, match="min_examples = 300 leaves a single rung"):
        autotune.run_study(_spec(tmp_path, tiny_teacher, tiny_data, too_big), storage)
    assert not autotune.api.list_studies(storage)


def _study_with_rung_zero(url: str, n: int) -> optuna.Study:
    db.ensure_current(url)
    study = optuna.create_study(study_name="race", storage=url, directions=["maximize", "minimize"])
    distributions = {
        "layers": IntDistribution(1, 100),
        "ffn_fraction": FloatDistribution(0.0, 1.0),
        "rung": IntDistribution(0, 2),
    }
    for i in range(n):
        study.add_trial(
            optuna.create_trial(
                params={"layers": i + 1, "ffn_fraction": 0.5, "rung": 0},
                distributions=distributions,
                values=[0.5 + 0.01 * (i % 7), 1.0 + 0.1 * (i % 5)],
                user_attrs={"config_id": f"c{i}", "checkpoint_artifact": f"a{i}"},
            )
        )
    return study


def test_two_workers_never_promote_one_configuration_twice(storage: str) -> None:
    study = _study_with_rung_zero(storage, 12)
    plan = RungPlan((10, 30, 90), batch_size=1)
    start = threading.Barrier(4)
    enqueued: list[int] = []

    def worker(name: str) -> None:
        promoter = fidelity.Promoter(storage, "race", plan, promote_one_in=3, worker=name)
        mine = optuna.load_study(study_name="race", storage=storage)
        start.wait()
        enqueued.append(promoter.promote(mine))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    waiting = study.get_trials(states=(TrialState.WAITING,))
    expected = fidelity.rung_results(study.get_trials(states=(TrialState.COMPLETE,)), 0)
    chosen = promotable(fidelity.losses(expected, study.directions), 3)
    assert sum(enqueued) == len(waiting) == len(chosen) == 4
    assert sorted(t.user_attrs["config_id"] for t in waiting) == sorted(
        expected[i].user_attrs["config_id"] for i in chosen
    )
    assert all(fidelity.rung_of(t) == 1 and t.user_attrs["resume_artifact"] for t in waiting)
    assert all(t.system_attrs["fixed_params"]["rung"] == 1 for t in waiting)
    # A claim whose worker died before enqueueing is taken over once it is stale.
    assert promotions.claim(storage, "race", "c11", 2, 11, "dead")
    fidelity.STALE_CLAIM_SECONDS, saved = 0.0, fidelity.STALE_CLAIM_SECONDS
    try:
        assert fidelity.Promoter(storage, "race", plan, 3, "alive").promote(study) == 1
    finally:
        fidelity.STALE_CLAIM_SECONDS = saved
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 5


def test_a_killed_worker_mid_rung_is_retried_at_that_rung(
    storage: str, tmp_path: Path, tiny_teacher, tiny_data, tiny_context
) -> None:
    from tests.search.test_workers import cli, finish

    # Two configurations, two rungs (6 and 12 steps): the better one is promoted, once.
    spec = tmp_path / "two.toml"
    two_rungs = FIDELITY.replace("n_trials = 4", "n_trials = 2")
    spec.write_text(
        spec_text(tiny_data, tiny_teacher, training=TRAINING.replace("4", "2"), search=two_rungs)
    )
    autotune.api.create_study(spec, storage, artifacts=tmp_path / "a")
    env = {"AUTOTUNE_STORAGE": storage, "AUTOTUNE_HEARTBEAT_SECONDS": "4"}
    args = ("worker", "tiny", "--artifacts", str(tmp_path / "a"), "--quiet")
    victim = cli(*args, env=env)
    study = optuna.load_study(study_name="tiny", storage=storage)
    deadline = time.monotonic() + 300
    killed = None
    while killed is None:
        assert time.monotonic() < deadline and victim.poll() is None, "no promoted trial ran"
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        killed = next((t for t in running if fidelity.rung_of(t) > 0), None)
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    finish(cli(*args, env=env))  # fails the dead trial, runs its retry and the rest
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert study.trials[killed.number].state == TrialState.FAIL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        (retry,) = [t for t in study.trials if retried(t) == killed.number]
    assert retry.state == TrialState.COMPLETE
    assert fidelity.rung_of(retry) == fidelity.rung_of(killed)
    assert retry.user_attrs["resume_trial"] == killed.user_attrs["resume_trial"]
    rows = {r.number: r for r in autotune.api.study_trials("tiny", storage)}
    rung = fidelity.rung_of(retry)
    assert rung == 1 and rows[retry.number].metrics["trained_examples"] == 96
    # Every configuration ran once per rung it reached, the retry standing in for the kill.
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert Counter(fidelity.rung_of(t) for t in done) == {0: 2, 1: 1}


def retried(trial: optuna.trial.FrozenTrial) -> int | None:
    return optuna.storages.RetryFailedTrialCallback.retried_trial_number(trial)
