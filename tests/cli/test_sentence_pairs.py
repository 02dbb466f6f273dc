"""Sentence pairs (``dataset.text_pair_column``) end to end, as a user runs them: a tiny
paraphrase-style CSV, `teacher train`, a study whose trials augment, distil intermediate
layers and quantize-aware-train, `best` and `export`; then the exported folder is used the
way a deployer would, with the tokenizer's output for two texts fed to ONNX Runtime as is."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.cli.test_your_data import autotune
from tests.helpers import NEGATIVE, POSITIVE, make_tiny_teacher


def _write_pairs(path: Path, rows: int, seed: int) -> list[tuple[str, str, str]]:
    """Two reviews per row: 'same' when they agree in sentiment, else 'different'. Only the
    pair decides the label, so a model must read both texts."""
    rng = random.Random(seed)
    written = []
    for _ in range(rows):
        first = rng.choice(POSITIVE + NEGATIVE)
        second = rng.choice(POSITIVE + NEGATIVE)
        same = (first in POSITIVE) == (second in POSITIVE)
        written.append(
            (first, f"{second} {rng.choice(['', 'really'])}".strip(), ["different", "same"][same])
        )
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["premise", "hypothesis", "relation"])
        writer.writerows(written)
    return written


@pytest.fixture(scope="module")
def pair_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str, str]]]:
    """A pair study run to completion; returns its folder and the validation rows."""
    root = tmp_path_factory.mktemp("pairs")
    data = root / "pairs"
    data.mkdir()
    _write_pairs(data / "train.csv", 96, seed=1)
    validation = _write_pairs(data / "validation.csv", 30, seed=2)
    unlabelled = root / "unlabelled.txt"
    unlabelled.write_text("a great film\tawful\nsuperb\ti loved it\n", encoding="utf-8")
    backbone = make_tiny_teacher(root / "backbone")
    (root / "pairs.toml").write_text(
        'name = "pairs"\nseed = 0\n\n'
        f'[dataset]\npath = "{data}"\ntext_column = "premise"\n'
        'text_pair_column = "hypothesis"\nlabel_column = "relation"\nmax_length = 16\n\n'
        f'[teacher]\ncheckpoint = "{root / "teacher"}"\nbackbone = "{backbone}"\nepochs = 2\n'
        "learning_rate = 0.001\n\n"
        "[training]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.001\n\n"
        "[distillation]\nhidden_weight = 1.0\nattention_weight = 1.0\n\n"
        f'[augmentation]\ncopies = 2\nunlabelled_path = "{unlabelled}"\n\n'
        "[space]\nlayers = { min = 1, max = 2 }\nheads = { min = 2, max = 4 }\nbits = [8, 32]\n\n"
        "[latency]\nthreads = 1\nwarmup = 2\nruns = 10\nprecision = 0\nsequence_length = 16\n\n"
        '[search]\nsampler = "random"\nn_trials = 3\n'
    )
    autotune("teacher", "train", "pairs.toml", cwd=root)
    autotune("study", "run", "pairs.toml", cwd=root)
    return root, validation


def test_every_trial_of_a_pair_study_completes(pair_study) -> None:
    root, _ = pair_study
    from autotune import api

    trials = api.study_trials("pairs", f"sqlite:///{root / 'autotune.db'}")
    assert [t.status for t in trials] == ["complete"] * 3, [t.status for t in trials]


def test_a_quantization_aware_pair_trial_exports_token_types(pair_study) -> None:
    root, _ = pair_study
    ran = autotune(
        "trial",
        "run",
        "pairs.toml",
        "--set",
        "layers=1",
        "bits=8",
        "int8_method=qat",
        "--out",
        "qat",
        "--json",
        cwd=root,
    )
    assert json.loads(ran.stdout)["accuracy"] >= 0
    session = ort.InferenceSession(str(root / "qat" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == [
        "input_ids",
        "attention_mask",
        "token_type_ids",
    ]


def test_an_exported_pair_model_takes_the_tokenizers_output_unchanged(pair_study) -> None:
    root, validation = pair_study
    best = json.loads(autotune("best", "pairs", "--json", cwd=root).stdout)
    autotune("export", "pairs", "--out", "deploy", cwd=root)
    out = root / "deploy"

    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(out)
    assert config.id2label == {0: "different", 1: "same"}
    assert config.autotune["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.model_input_names == ["input_ids", "attention_mask", "token_type_ids"]
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    firsts, seconds, relations = zip(*validation, strict=True)
    inputs = tokenizer(
        list(firsts), list(seconds), padding=True, truncation=True, return_tensors="np"
    )
    (logits,) = session.run(["logits"], dict(inputs))
    # The study measured this model on the same pairs: it fed the token types too.
    labels = np.array([config.label2id[r] for r in relations])
    assert (logits.argmax(-1) == labels).mean() == pytest.approx(best["metrics"]["accuracy"])
    # The graph reads the token types: without them the pairs are other inputs.
    one_segment = dict(inputs, token_type_ids=np.zeros_like(inputs["token_type_ids"]))
    (flat,) = session.run(["logits"], one_segment)
    assert not np.allclose(flat, logits)

    card = (out / "README.md").read_text()
    assert "pairs of texts" in card
    snippet = card.split("```python\n")[1].split("```")[0]
    ran = subprocess.run([sys.executable, "-c", snippet], cwd=out, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() in ("['different']", "['same']")
