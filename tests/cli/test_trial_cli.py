"""``autotune trial run`` as a user runs it: a real process, real files, real exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import sentences, spec_text, write_tsv


def autotune(*args: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "autotune", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_trial_run_prints_table_and_writes_outputs(tiny_spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = autotune(
        "trial",
        "run",
        str(tiny_spec),
        "--set",
        "layers=2",
        "bits=8",
        "temperature=3",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "speedup vs PyTorch" in proc.stdout and "L2-H4-F1-S0-INT8-dynamic" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["layers"] == 2 and metrics["config"]["temperature"] == 3.0
    assert (out / "model.onnx").stat().st_size > 0
    # The same loadable folder as `export`: the student's config, the study's tokenizer.
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(out)
    assert (config.num_hidden_layers, config.num_attention_heads) == (2, 4)
    assert config.autotune["trial"] is None and config.autotune["max_length"] == 16
    assert set(AutoTokenizer.from_pretrained(out)("a film")) == {"input_ids", "attention_mask"}
    assert (out / "README.md").read_text().startswith("# tiny trial run: L2-H4-F1-S0-INT8")


def test_trial_run_json(tiny_spec: Path, tmp_path: Path) -> None:
    proc = autotune(
        "trial",
        "run",
        str(tiny_spec),
        "--set",
        "layers=1",
        "--set",
        "bits=4",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["bits"] == 4


def _spec(tmp_path: Path, tiny_teacher: Path, data: Path | None = None, **sections: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(spec_text(data or tmp_path / "data", tiny_teacher, **sections))
    return path


def _data(tmp_path: Path, train: list, header: str = "sentence\tlabel") -> Path:
    write_tsv(tmp_path / "data" / "train.tsv", train, header)
    write_tsv(tmp_path / "data" / "validation.tsv", sentences(8, 2), header)
    return tmp_path / "data"


BAD_INPUTS = {
    "unknown spec key": (
        lambda p, t: _spec(p, t, training="epochs = 1\nbatchsize = 4"),
        [],
        "training.batchsize: unknown key; allowed keys here: batch_size",
    ),
    "out-of-range spec value": (
        lambda p, t: _spec(p, t, latency="threads = 0"),
        [],
        "latency.threads: Input should be greater than or equal to 1 (got 0)",
    ),
    "out-of-range --set value": (
        lambda p, t: _spec(p, t, _data(p, sentences(16, 1))),
        ["--set", "layers=9"],
        "layers=9 but the teacher has 4; allowed: 1..4",
    ),
    "unknown --set key": (
        lambda p, t: _spec(p, t),
        ["--set", "depth=2"],
        "unknown key 'depth' in --set; allowed: layers, heads",
    ),
    "non-numeric --set value": (
        lambda p, t: _spec(p, t),
        ["--set", "bits=eight"],
        "bits='eight' is not an integer",
    ),
    "missing data file": (
        lambda p, t: _spec(p, t, p / "nowhere"),
        [],
        "no file for split 'train'",
    ),
    "missing text column": (
        lambda p, t: _spec(p, t, _data(p, sentences(8, 1), header="review\tlabel")),
        [],
        "text column 'sentence' not found; columns: ['review', 'label']",
    ),
    "negative label id": (
        lambda p, t: _spec(p, t, _data(p, [("good", 1), ("bad", -1)])),
        [],
        "label -1 in 'label' is neither a class id 0..K-1 nor a label name",
    ),
    "empty split": (
        lambda p, t: _spec(p, t, _data(p, [])),
        [],
        "split 'train' is empty",
    ),
    "missing teacher directory": (
        lambda p, t: _spec(p, p / "no-teacher", _data(p, sentences(8, 1))),
        [],
        "teacher checkpoint",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_clear_line(case: str, tmp_path: Path, tiny_teacher: Path) -> None:
    make_spec, extra, expected = BAD_INPUTS[case]
    spec = make_spec(tmp_path, tiny_teacher)
    proc = autotune("trial", "run", str(spec), *extra, "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert expected in " ".join(lines[0].split()), lines[0]
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_teacher_train_makes_a_loadable_teacher(tiny_spec: Path, tmp_path: Path) -> None:
    """Fine-tunes the packaged MiniLM backbone (the real default) on a few rows."""
    from autotune.teacher import load_teacher

    out = tmp_path / "teacher"
    proc = autotune(
        "teacher", "train", str(tiny_spec), "--out", str(out), "--max-train-samples", "32"
    )
    assert proc.returncode == 0, proc.stderr
    assert "validation accuracy" in " ".join(proc.stdout.split())  # Rich wraps long paths
    teacher = load_teacher(str(out))
    assert teacher.num_labels == 2 and teacher.model.config.num_hidden_layers == 6
    assert (out / "training_log.json").is_file()


def test_teacher_train_needs_a_destination(tiny_data: Path, tmp_path: Path) -> None:
    spec = tmp_path / "named.toml"
    spec.write_text(spec_text(tiny_data, Path("my-teacher")))  # a name, not a folder
    proc = autotune("teacher", "train", str(spec), unset=("AUTOTUNE_MODELS_DIR",))
    assert proc.returncode == 1
    assert (
        "say where to save the teacher 'my-teacher': --out DIR, --models-dir DIR or "
        "AUTOTUNE_MODELS_DIR (or an absolute teacher.checkpoint in the spec)"
    ) in " ".join(proc.stderr.split())


def test_teacher_train_never_overwrites_the_spec_teacher(tiny_spec: Path) -> None:
    """tiny_spec names its teacher by absolute path: the default destination, already there."""
    proc = autotune("teacher", "train", str(tiny_spec))
    assert proc.returncode == 1
    assert "a teacher already exists at" in proc.stderr and "--out DIR" in proc.stderr


def test_trial_run_uses_the_spec_recipe(
    tiny_data: Path, tiny_teacher: Path, tmp_path: Path
) -> None:
    """Layer losses, two stages, augmentation and frozen embeddings, all from the spec."""
    spec = tmp_path / "recipe.toml"
    training = "epochs = 2\nbatch_size = 16\nlearning_rate = 0.001\nfreeze_embeddings = true"
    spec.write_text(
        spec_text(
            tiny_data,
            tiny_teacher,
            training=training + '\ndevice = "auto"',
            distillation="hidden_weight = 1.0\nattention_weight = 0.5\nintermediate_epochs = 1",
            augmentation="copies = 3",
        )
    )
    out = tmp_path / "out"
    proc = autotune("trial", "run", str(spec), "--set", "layers=2", "bits=8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    steps = metrics["train_curve"][-1][0]
    # 96 originals + up to 3 variants each, two stages of batch 16: far more than 2 plain epochs.
    assert steps > 2 * 96 / 16 * 2, steps
    assert 0 <= metrics["accuracy"] <= 1

    bad = tmp_path / "bad.toml"
    bad.write_text(spec_text(tiny_data, tiny_teacher, distillation="hidden_weight = -2"))
    proc = autotune("trial", "run", str(bad), "--set", "layers=2", "--out", str(tmp_path / "b"))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "distillation.hidden_weight: Input should be greater than or equal to 0" in proc.stderr
    assert not (tmp_path / "b").exists()
