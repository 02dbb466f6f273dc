"""The read and set-up commands as a user runs them: real processes on a real study, their
JSON equal to what the Python API returns, and no torch loaded where none is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import autotune
from autotune.errors import DatabaseNotFoundError
from autotune.store import db
from tests.conftest import FilledDatabase

HEAVY = ("torch", "transformers", "onnxruntime")


def run(*args: str, storage: str | None = None) -> subprocess.CompletedProcess:
    """``python -X importtime -m autotune ARGS``: stderr lists every module the command loaded."""
    env = dict(os.environ, COLUMNS="200")
    if storage is not None:
        env["AUTOTUNE_STORAGE"] = storage
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "autotune", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def loaded_modules(proc: subprocess.CompletedProcess) -> set[str]:
    # importtime lines: "import time: self | cumulative | <indent>module"
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }


def assert_light(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-2000:]
    heavy = sorted(m for m in loaded_modules(proc) if m.split(".")[0] in HEAVY)
    assert not heavy, f"loaded {heavy[:5]}"


def test_importing_the_cli_loads_no_torch() -> None:
    code = "import sys, autotune, autotune.cli, autotune.api; print(sorted(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    modules = set(eval(proc.stdout))
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_help_loads_no_torch() -> None:
    proc = run("--help")
    assert_light(proc)
    assert "study" in proc.stdout and "best" in proc.stdout


def test_study_list_json(filled_db: FilledDatabase) -> None:
    proc = run("study", "list", "--json", storage=filled_db.url)
    assert_light(proc)
    expected = [s.to_json() for s in autotune.list_studies(filled_db.url)]
    assert json.loads(proc.stdout) == expected


def test_best_json(filled_db: FilledDatabase) -> None:
    proc = run(
        "best", "tiny", "--json", "--artifacts", str(filled_db.artifacts), storage=filled_db.url
    )
    assert_light(proc)
    expected = autotune.best_config("tiny", storage=filled_db.url, artifacts=filled_db.artifacts)
    assert json.loads(proc.stdout) == json.loads(json.dumps(expected.to_json()))
    assert Path(json.loads(proc.stdout)["artifact_path"]).is_file()


def test_best_with_impossible_budget_names_closest(filled_db: FilledDatabase) -> None:
    proc = run("best", "tiny", "--max-latency-ms", "0.000001", storage=filled_db.url)
    assert proc.returncode == 1
    assert "error: no trial of 'tiny' meets max_latency_ms=1e-06; closest: trial" in proc.stderr


@pytest.mark.parametrize("command", [("pareto", "tiny"), ("study", "show", "tiny")])
def test_front_json(filled_db: FilledDatabase, command: tuple[str, ...]) -> None:
    proc = run(*command, "--json", storage=filled_db.url)
    assert_light(proc)
    expected = autotune.pareto_front("tiny", filled_db.url).to_json()
    assert json.loads(proc.stdout) == json.loads(json.dumps(expected))
    table = run(*command, storage=filled_db.url)
    assert table.returncode == 0 and "Pareto front" in table.stdout and "ORT INT8" in table.stdout


def test_export_writes_a_folder(filled_db: FilledDatabase, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    proc = run(
        "export", "tiny", "--out", str(out), "--artifacts", str(filled_db.artifacts),
        storage=filled_db.url,
    )  # fmt: skip
    assert_light(proc)
    assert {"model.onnx", "config.json", "metrics.json", "README.md"} <= {
        p.name for p in out.iterdir()
    }
    best = autotune.best_config("tiny", storage=filled_db.url, artifacts=filled_db.artifacts)
    assert json.loads((out / "metrics.json").read_text())["number"] == best.trial.number


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgraded = run("db", "upgrade", storage=url)
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    assert f"autotune schema none -> {db.HEAD_REVISION}" in upgraded.stdout
    current = run("db", "current", storage=url)
    assert current.returncode == 0
    assert f"{db.HEAD_REVISION} (head {db.HEAD_REVISION})" in current.stdout


def test_study_create_then_list(tiny_spec: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'created.db'}"
    created = run("study", "create", str(tiny_spec), "--trials", "3", storage=url)
    assert created.returncode == 0, created.stderr[-2000:]
    assert "study tiny ready (0 trials so far); join it with: autotune worker tiny" in " ".join(
        created.stdout.split()
    )
    listed = json.loads(run("study", "list", "--json", storage=url).stdout)
    assert [(s["name"], s["complete"]) for s in listed] == [("tiny", 0)]


@pytest.mark.parametrize(
    "command",
    [
        ("study", "list"),
        ("study", "show", "tiny"),
        ("pareto", "tiny"),
        ("best", "tiny"),
        ("export", "tiny", "--out", "OUT"),
        ("db", "current"),
        ("worker", "tiny", "--quiet"),
        ("dashboard", "--port", "1"),
    ],
)
def test_commands_that_read_never_create_a_database(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    typo = tmp_path / "autotun.db"
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    proc = run(*args, storage=f"sqlite:///{typo}")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: no database file '{typo}' (--storage 'sqlite:///{typo}'); check the name, "
        f"or start a study there: autotune study run SPEC --storage 'sqlite:///{typo}'"
    ]
    assert not typo.exists()
    assert not (tmp_path / "out").exists()


def test_an_empty_database_is_not_initialised_by_reading(pg_url: str) -> None:
    proc = run("study", "list", storage=pg_url)
    assert proc.returncode != 0
    assert "holds no autotune results yet; start a study there" in proc.stderr
    assert db.current_revision(pg_url) is None


def test_empty_study_list_says_how_to_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert run("db", "upgrade", storage=url).returncode == 0
    listed = run("study", "list", storage=url)
    assert_light(listed)
    assert "no studies in" in listed.stdout
    assert "start one with: autotune study run SPEC" in " ".join(listed.stdout.split())


def test_a_path_as_storage_suggests_its_sqlite_url() -> None:
    proc = run("study", "list", storage="autotune.db")
    assert proc.returncode != 0
    assert "error: storage 'autotune.db' is not a database URL; did you mean " in proc.stderr
    assert "'sqlite:///autotune.db'?" in proc.stderr


def test_reading_through_a_read_only_sqlite_uri(filled_db: FilledDatabase) -> None:
    path = filled_db.url.removeprefix("sqlite:///")
    listed = run("study", "list", "--json", storage=f"sqlite:///file:{path}?mode=ro&uri=true")
    assert_light(listed)
    assert [s["name"] for s in json.loads(listed.stdout)] == ["tiny"]


def test_library_reads_never_create_a_database(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    for read in (autotune.api.param_importance, autotune.api.hardware_info):
        with pytest.raises(DatabaseNotFoundError, match="no database file"):
            read("tiny", f"sqlite:///{typo}")
    assert not typo.exists()
