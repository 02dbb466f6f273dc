"""The README's "your data, your teacher" path, as a user runs it: a CSV folder with three
text labels, `teacher train`, a study, `best` and `export`, in real processes."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tests.helpers import make_tiny_teacher

WORDS = {
    "pos": ["a great film", "wonderful acting", "i loved it", "superb"],
    "neg": ["a dull mess", "terrible acting", "i hated it", "awful"],
    "meh": ["it was a film", "some acting", "it exists", "fine i guess"],
}


def _write_csv(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for _ in range(rows):
            label = rng.choice(sorted(WORDS))
            writer.writerow([f"{rng.choice(WORDS[label])} {rng.choice(['', 'really'])}", label])


def autotune(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    env.pop("AUTOTUNE_MODELS_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "autotune", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def test_three_text_labels_from_csv_to_export(tmp_path: Path) -> None:
    data = tmp_path / "reviews"
    data.mkdir()
    _write_csv(data / "train.csv", 96, seed=1)
    _write_csv(data / "validation.csv", 30, seed=2)
    backbone = make_tiny_teacher(tmp_path / "backbone")  # a 2-label head: replaced by 3
    teacher = tmp_path / "teacher"
    spec = tmp_path / "reviews.toml"
    spec.write_text(
        f'name = "reviews"\nseed = 0\n\n'
        f'[dataset]\npath = "{data}"\ntext_column = "review"\nlabel_column = "sentiment"\n'
        f"max_length = 16\n\n"
        f'[teacher]\ncheckpoint = "{teacher}"\nbackbone = "{backbone}"\nepochs = 2\n'
        f"learning_rate = 0.001\n\n"
        f"[training]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.001\n\n"
        f"[space]\nlayers = {{ min = 1, max = 2 }}\nheads = {{ min = 2, max = 4 }}\n\n"
        f"[latency]\nthreads = 1\nwarmup = 2\nruns = 10\nprecision = 0\nsequence_length = 16\n\n"
        f'[search]\nsampler = "random"\nn_trials = 2\n'
    )

    # The spec's absolute checkpoint is where the teacher goes: no --out needed.
    trained = autotune("teacher", "train", str(spec), cwd=tmp_path)
    assert "validation accuracy" in trained.stdout
    assert "MISSING" not in trained.stdout + trained.stderr  # the new head is expected
    teacher_config = json.loads((teacher / "config.json").read_text())
    assert teacher_config["id2label"] == {"0": "meh", "1": "neg", "2": "pos"}  # sorted

    autotune("study", "run", str(spec), cwd=tmp_path)
    best = json.loads(autotune("best", "reviews", "--json", cwd=tmp_path).stdout)
    assert 0.0 <= best["metrics"]["macro_f1"] <= 1.0
    autotune("export", "reviews", "--out", "deploy", cwd=tmp_path)

    from transformers import AutoConfig, AutoTokenizer

    out = tmp_path / "deploy"
    config = AutoConfig.from_pretrained(out)
    assert config.id2label == {0: "meh", 1: "neg", 2: "pos"}
    assert config.num_labels == 3
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer(["i loved it", "a dull mess"], padding=True, return_tensors="np")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], dict(inputs))
    assert logits.shape == (2, 3) and np.isfinite(logits).all()
