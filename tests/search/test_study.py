"""Studies end to end on the tiny teacher: SQLite and PostgreSQL, resume, constraints,
failures, snapshots, export, and Ctrl-C."""

import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import autotune
from autotune.compression.evaluate import evaluate_onnx
from autotune.errors import (
    ConfigError,
    NoFeasibleConfigError,
    SchemaOutOfDateError,
    SpecError,
    StudyNotFoundError,
)
from autotune.search import pareto
from autotune.store import db, measured
from autotune.store.db import session_scope
from autotune.store.models import FrontSnapshot, TrialRecord
from tests.helpers import spec_text


def _spec(
    tmp_path: Path, tiny_teacher: Path, tiny_data: Path, name: str = "tiny", **sections: str
) -> Path:
    sections.setdefault("search", 'sampler = "tpe"\nn_trials = 6')
    path = tmp_path / f"{name}.toml"
    path.write_text(
        spec_text(tiny_data, tiny_teacher, **sections).replace('name = "tiny"', f'name = "{name}"')
    )
    return path


def test_study_runs_resumes_and_exports(
    storage: str, tmp_path: Path, tiny_teacher, tiny_data, tiny_context
) -> None:
    spec = _spec(tmp_path, tiny_teacher, tiny_data, constraints="min_accuracy = 0.5")
    artifacts = tmp_path / "artifacts"
    study = autotune.run_study(spec, storage, artifacts=artifacts)
    assert study.total == 6

    # Resume: only the missing trials run; a finished study runs none.
    assert autotune.run_study(spec, storage, n_trials=8, artifacts=artifacts).total == 8
    assert autotune.run_study(spec, storage, n_trials=8, artifacts=artifacts).total == 8

    rows = autotune.api.study_trials("tiny", storage)
    assert [r.number for r in rows] == list(range(8))
    # The resumed session drew new configurations, not the first session's again.
    assert len({json.dumps(r.config, sort_keys=True) for r in rows}) == 8
    front = autotune.pareto_front("tiny", storage)
    members = {m.number for m in front.members}
    for row in rows:
        if row.number in members:
            assert row.status == "complete" and row.metrics["accuracy"] >= 0.5  # feasible only
    # The stored study still opens in plain Optuna, whose own front agrees with ours.
    plain = optuna.load_study(study_name="tiny", storage=storage)
    assert {t.number for t in plain.best_trials} == members
    # Without a fidelity schedule there are no rungs anywhere.
    assert front.fidelity is None and not any("rung" in t.params for t in plain.trials)

    best = autotune.best_config("tiny", min_accuracy=0.0, storage=storage, artifacts=artifacts)
    out = autotune.export_model("tiny", tmp_path / "export", storage=storage, artifacts=artifacts)
    assert {"model.onnx", "tokenizer.json", "config.json", "metrics.json", "README.md"} <= {
        p.name for p in out.iterdir()
    }
    exported = evaluate_onnx(out / "model.onnx", tiny_context.inputs.validation)
    assert exported.accuracy == pytest.approx(best.metrics["accuracy"])
    config = json.loads((out / "config.json").read_text())
    assert config["autotune"]["trial"] == best.trial.number


def test_snapshots_are_monotone_and_non_dominated(tmp_path: Path, tiny_teacher, tiny_data) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec = _spec(tmp_path, tiny_teacher, tiny_data, search='sampler = "random"\nn_trials = 8')
    autotune.run_study(spec, storage, artifacts=tmp_path / "a")
    study = optuna.load_study(study_name="tiny", storage=storage)
    with session_scope(storage) as session:
        history = FrontSnapshot.history(session, "tiny")
    assert history and [s.version for s in history] == list(range(1, len(history) + 1))
    volumes = [s.hypervolume for s in history]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(volumes))
    by_number = {t.number: t for t in study.trials}
    hardware_id = history[-1].hardware_id
    rows = {t.number: t for t in measured.on_machine(storage, "tiny", hardware_id)}
    objectives = ["accuracy", "latency"]
    for snapshot in history:
        assert all(by_number[n].state == TrialState.COMPLETE for n in snapshot.members)
    # The latest front: non-dominated in the machine's calibrated milliseconds.
    points = pareto.summary_points([rows[n] for n in history[-1].members], objectives, {})
    assert pareto.non_dominated(pareto.loss_matrix(points, objectives)).all()


def test_latency_constraint_stops_trials_before_training(
    tmp_path: Path, tiny_teacher, tiny_data
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec = _spec(
        tmp_path,
        tiny_teacher,
        tiny_data,
        constraints="max_latency_ms = 0.000001",
        search='sampler = "random"\nn_trials = 3',
    )
    autotune.run_study(spec, storage, artifacts=tmp_path / "a")
    rows = autotune.api.study_trials("tiny", storage)
    assert [r.status for r in rows] == ["stopped"] * 3
    assert all("stopped before training" in r.reason for r in rows)
    assert all(r.artifact_id is None and not r.metrics for r in rows)  # nothing was exported
    with pytest.raises(NoFeasibleConfigError, match="no finished trials"):
        autotune.best_config("tiny", storage=storage)


def test_failing_trials_are_recorded_and_the_study_goes_on(
    tmp_path: Path, tiny_teacher, tiny_data
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec = _spec(
        tmp_path,
        tiny_teacher,
        tiny_data,
        space="layers = { min = 5, max = 6 }",
        search="n_trials = 2",
    )
    state = autotune.run_study(spec, storage, artifacts=tmp_path / "a")
    assert (state.total, state.failed) == (2, 2)
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    rows = autotune.api.study_trials("tiny", storage)
    assert all(
        r.status == "failed" and "space.layers.min=5 but the teacher has 4" in r.reason
        for r in rows
    )


def test_no_feasible_config_names_closest_trials(tmp_path: Path, tiny_teacher, tiny_data) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    autotune.run_study(
        _spec(tmp_path, tiny_teacher, tiny_data, search="n_trials = 2"),
        storage,
        artifacts=tmp_path / "a",
    )
    with pytest.raises(
        NoFeasibleConfigError, match=r"meets max_latency_ms=1e-06; closest: trial \d"
    ):
        autotune.best_config("tiny", max_latency_ms=1e-6, storage=storage)


def test_error_cases(tmp_path: Path, tiny_teacher, tiny_data) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    autotune.run_study(
        _spec(tmp_path, tiny_teacher, tiny_data, search="n_trials = 1"),
        storage,
        artifacts=tmp_path / "a",
    )
    with pytest.raises(StudyNotFoundError, match=r"no study named 'nope' .*studies there: tiny"):
        autotune.pareto_front("nope", storage)
    changed = _spec(tmp_path, tiny_teacher, tiny_data, training="epochs = 2\nbatch_size = 16")
    with pytest.raises(SpecError, match="already exists in this storage with a different spec"):
        autotune.run_study(changed, storage, artifacts=tmp_path / "a")
    from alembic import command

    command.downgrade(db.alembic_config(storage), "0001")
    with pytest.raises(SchemaOutOfDateError, match="run: autotune db upgrade"):
        autotune.list_studies(storage)


def test_ctrl_c_leaves_a_consistent_database(tmp_path: Path, tiny_teacher, tiny_data) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec = _spec(
        tmp_path,
        tiny_teacher,
        tiny_data,
        training="epochs = 25\nbatch_size = 8",
        search='sampler = "random"\nn_trials = 2',
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autotune",
            "study",
            "run",
            str(spec),
            "--storage",
            storage,
            "--artifacts",
            str(tmp_path / "a"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until a trial is running
        time.sleep(1)
        try:
            running = optuna.load_study(study_name="tiny", storage=storage).get_trials(
                states=(TrialState.RUNNING,)
            )
        except Exception:
            continue
        if running:
            break
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    with session_scope(storage) as session:
        records = {r.trial_number: r for r in TrialRecord.for_study(session, "tiny")}
    for number, record in records.items():
        assert study.trials[number].state.is_finished()
        if record.status.value == "complete":
            assert study.trials[number].state == TrialState.COMPLETE
    # Resuming records the interrupted trial as failed and runs until 2 trials finished.
    state = autotune.run_study(spec, storage, artifacts=tmp_path / "a")
    assert state.complete + state.stopped == 2
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 2
    interrupted = [r for r in autotune.api.study_trials("tiny", storage) if r.status == "failed"]
    assert interrupted and all(r.reason for r in interrupted)


def _wsgi_get(app, path: str) -> tuple[str, dict]:
    import io

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
    }
    status: dict[str, str] = {}
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.update(s=s)))
    return status["s"], json.loads(body)


def test_study_opens_in_optuna_dashboard(tmp_path: Path, tiny_teacher, tiny_data) -> None:
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    autotune.run_study(
        _spec(tmp_path, tiny_teacher, tiny_data, search="n_trials = 2"),
        storage,
        artifacts=tmp_path / "a",
    )
    app = optuna_dashboard.wsgi(storage)
    status, listing = _wsgi_get(app, "/api/studies")
    assert status.startswith("200")
    study = next(s for s in listing["study_summaries"] if s["study_name"] == "tiny")
    status, detail = _wsgi_get(app, f"/api/studies/{study['study_id']}")
    assert status.startswith("200")
    assert len(detail["trials"]) == 2
    assert detail["objective_names"] == ["accuracy", "latency_ms"]
    assert len(detail["best_trials"]) >= 1


def test_resuming_on_data_with_other_labels_is_refused(tmp_path: Path, tiny_teacher) -> None:
    """Same spec, another copy of the data whose text labels differ: the stored trials were
    measured under the first names, so the study refuses to relabel them."""
    from tests.helpers import sentences, write_tsv

    for folder, names in (("d1", ("neg", "pos")), ("d2", ("bad", "good"))):
        for split, seed in (("train", 1), ("validation", 2)):
            rows = [(text, names[label]) for text, label in sentences(32, seed)]
            write_tsv(tmp_path / folder / "rev" / f"{split}.tsv", rows)  # type: ignore[arg-type]
    spec = tmp_path / "rev.toml"
    spec.write_text(
        spec_text(tmp_path, tiny_teacher, dataset='local_name = "rev"\nmax_length = 16')
    )
    storage = f"sqlite:///{tmp_path / 's.db'}"
    autotune.api.create_study(spec, storage, data_dir=tmp_path / "d1", artifacts=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"was run with labels \['neg', 'pos'\], but this data"):
        autotune.api.create_study(spec, storage, data_dir=tmp_path / "d2", artifacts=tmp_path / "a")
