"""Hostile input wherever a user types: spec files, options, storage URLs, dataset files and
teacher directories. Each case runs the real command and expects one ``error:`` line, a
non-zero exit, no traceback, and no study in the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_trial_cli import autotune
from tests.helpers import make_tiny_teacher, sentences, spec_text, write_tsv

Case = tuple[Callable[[Path, Path], list[str]], str]


def _spec(tmp: Path, teacher: Path, data: Path | None = None, **sections: str) -> Path:
    if data is None:
        data = tmp / "data"
        write_tsv(data / "train.tsv", sentences(16, 1))
        write_tsv(data / "validation.tsv", sentences(8, 2))
    path = tmp / "spec.toml"
    path.write_text(spec_text(data, teacher, **sections))
    return path


def _run(tmp: Path, teacher: Path, *options: str, **sections: str) -> list[str]:
    return ["study", "run", str(_spec(tmp, teacher, **sections)), *options]


def _raw_spec(text: bytes | str) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, teacher: Path) -> list[str]:
        path = tmp / "spec.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["study", "run", str(path)]

    return make


def _train_file(content: bytes) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, teacher: Path) -> list[str]:
        data = tmp / "data"
        write_tsv(data / "validation.tsv", sentences(8, 2))
        (data / "train.tsv").write_bytes(content)
        return ["study", "run", str(_spec(tmp, teacher, data))]

    return make


def _teacher(build: Callable[[Path, Path], Path]) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, teacher: Path) -> list[str]:
        path = tmp / "spec.toml"
        data = tmp / "data"
        write_tsv(data / "train.tsv", sentences(16, 1))
        write_tsv(data / "validation.tsv", sentences(8, 2))
        path.write_text(spec_text(data, build(tmp, teacher)))
        return ["study", "run", str(path)]

    return make


def _teacher_without_weights(tmp: Path, teacher: Path) -> Path:
    broken = tmp / "no-weights"
    broken.mkdir()
    (broken / "config.json").write_text((teacher / "config.json").read_text())
    return broken


def _gpt2_teacher(tmp: Path, teacher: Path) -> Path:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    path = tmp / "gpt2"
    GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=16, n_head=2)).save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (path / name).write_bytes((teacher / name).read_bytes())
    return path


def _with_storage(url: str) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, teacher: Path) -> list[str]:
        return ["study", "run", str(_spec(tmp, teacher)), "--storage", url]

    return make


def _read_only_database(tmp: Path, teacher: Path) -> list[str]:
    """An existing, current database opened read-only (file permissions do not stop root)."""
    from autotune.store import db

    db.upgrade(f"sqlite:///{tmp / 'ro.db'}")
    url = f"sqlite:///file:{tmp / 'ro.db'}?mode=ro&uri=true"
    return ["study", "run", str(_spec(tmp, teacher)), "--storage", url]


HEADER = b"sentence\tlabel\n"
ROWS = b"".join(f"{t}\t{label}\n".encode() for t, label in sentences(16, 1))

CASES: dict[str, Case] = {
    # spec files
    "spec: binary garbage": (_raw_spec(b"\x00\xff\xfe garbage \x80"), "spec.toml"),
    "spec: not TOML": (_raw_spec('name = "x"\n[dataset\n'), "not valid TOML"),
    "spec: empty file": (_raw_spec(""), "name: required field is missing"),
    "spec: a directory": (
        lambda tmp, t: ["study", "run", str(tmp)],
        "is a directory, not a spec file",
    ),
    "spec: wrong type": (
        lambda tmp, t: _run(tmp, t, training="epochs = 'many'"),
        "training.epochs: Input should be a valid number",
    ),
    "spec: absurd number": (
        lambda tmp, t: _run(tmp, t, search="n_trials = 100000000000000000000"),
        "search.n_trials: Input should be less than or equal to 1000000",
    ),
    "spec: unknown sampler": (
        lambda tmp, t: _run(tmp, t, search="sampler = 'bayes'"),
        "search.sampler: Input should be 'tpe', 'nsga2', 'gp' or 'random'",
    ),
    # options
    "option: --workers 0": (
        lambda tmp, t: _run(tmp, t, "--workers", "0"),
        "Invalid value for '--workers'",
    ),
    "option: --trials -3": (
        lambda tmp, t: _run(tmp, t, "--trials", "-3"),
        "Invalid value for '--trials'",
    ),
    "option: --heartbeat abc": (
        lambda tmp, t: _run(tmp, t, "--heartbeat", "abc"),
        "Invalid value for '--heartbeat'",
    ),
    "option: unknown option": (lambda tmp, t: _run(tmp, t, "--turbo"), "No such option: --turbo"),
    "option: worker of an unknown study": (
        lambda tmp, t: ["worker", "nope", "--storage", f"sqlite:///{tmp / 'h.db'}"],
        "h.db' (--storage 'sqlite:///",
    ),
    "option: --artifacts an s3:// URL": (
        lambda tmp, t: _run(tmp, t, "--artifacts", "s3://bucket/models"),
        "artifacts 's3:/bucket/models': object-store URLs are not supported",
    ),
    # storage URLs
    "storage: not a URL": (
        _with_storage("not-a-url"),
        "storage 'not-a-url' is not a database URL; did you mean 'sqlite:///not-a-url'?",
    ),
    "storage: unknown driver": (
        _with_storage("oracle+nodriver://u@h/db"),
        "invalid storage URL 'oracle+nodriver://u@h/db'",
    ),
    "storage: unreachable server, password hidden": (
        _with_storage("postgresql://user:hunter2@127.0.0.1:1/db"),
        "cannot reach database 'postgresql+psycopg://user:***@127.0.0.1:1/db'",
    ),
    "storage: read-only database": (
        _read_only_database,
        "permission denied (attempt to write a readonly database)",
    ),
    "storage: SQLite under a file": (
        lambda tmp, t: _with_storage(f"sqlite:///{tmp / 'spec.toml' / 'x.db'}")(tmp, t),
        "unable to open database file",
    ),
    # dataset files
    "data: wrong encoding": (
        _train_file(HEADER + "très mauvais\t0\n".encode("latin-1") + ROWS),
        "not UTF-8 text",
    ),
    "data: missing label": (_train_file(HEADER + b"no label here\t\n" + ROWS), "is missing"),
    "data: one class only": (
        _train_file(HEADER + b"".join(b"fine %d\t1\n" % i for i in range(16))),
        "has a single class ([1]); classification needs at least two",
    ),
    "data: empty text": (_train_file(HEADER + b" \t1\n" + ROWS), "empty or non-text"),
    "data: header only": (_train_file(HEADER), "split 'train' is empty"),
    # teacher directories
    "teacher: missing directory": (
        _teacher(lambda tmp, t: tmp / "nowhere"),
        "teacher checkpoint",
    ),
    "teacher: no weights": (
        _teacher(_teacher_without_weights),
        "missing model.safetensors or pytorch_model.bin",
    ),
    "teacher: wrong architecture": (
        _teacher(_gpt2_teacher),
        "is a 'gpt2' model; autotune supports",
    ),
    "teacher: wrong number of labels": (
        _teacher(lambda tmp, t: make_tiny_teacher(tmp / "three", num_labels=3)),
        "predicts 3 labels but the dataset has 2",
    ),
}


def _studies_in(database: Path) -> list[tuple]:
    if not database.exists():
        return []
    with sqlite3.connect(database) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        rows = []
        for table in ("studies", "autotune_studies", "trials", "autotune_trials"):
            if table in tables:
                rows += connection.execute(f"SELECT * FROM {table}").fetchall()
        return rows


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_gives_one_line_and_writes_nothing(
    case: str, tmp_path: Path, tiny_teacher: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, expected = CASES[case]
    database = tmp_path / "autotune.db"
    monkeypatch.setenv("AUTOTUNE_STORAGE", f"sqlite:///{database}")
    proc = autotune(*make(tmp_path, tiny_teacher))
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert expected in " ".join(lines[0].split()), lines[0]
    assert "hunter2" not in proc.stderr + proc.stdout
    assert _studies_in(database) == []
