"""An exported folder describes the student inside it and loads as Hugging Face users load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

import autotune
from autotune.compression.config import ffn_width
from tests.conftest import FilledDatabase


def test_export_loads_with_auto_classes_and_runs_in_ort(
    filled_db: FilledDatabase, tmp_path: Path
) -> None:
    from transformers import AutoConfig, AutoTokenizer

    best = autotune.best_config("tiny", storage=filled_db.url, artifacts=filled_db.artifacts)
    out = autotune.export_model(
        "tiny", tmp_path / "deploy", storage=filled_db.url, artifacts=filled_db.artifacts
    )

    config = AutoConfig.from_pretrained(out)
    shape = best.config
    assert config.num_hidden_layers == shape.layers
    assert config.num_attention_heads == shape.heads
    assert config.intermediate_size == ffn_width(64, shape.ffn_fraction)  # tiny teacher: 64
    assert config.head_dim == 8  # the tiny teacher's 32 / 4 heads, whatever was pruned
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"}  # integer labels, no names given
    assert config.autotune["trial"] == best.trial.number

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.model_max_length == 16  # the study's max_length, not the backbone's
    texts = ["a great film", "terrible acting and a dull mess really"]
    inputs = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
    assert set(inputs) == {"input_ids", "attention_mask"}
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], dict(inputs))  # the tokenizer's output, unchanged
    assert logits.shape == (2, 2) and np.isfinite(logits).all()

    # Exports are saved after ONNX Runtime's graph optimisation, which fuses into its own ops.
    ops = config.autotune["ort_only_operators"]
    assert ops and all(op.startswith("com.microsoft:") for op in ops), ops
    card = (out / "README.md").read_text()
    assert "run it in ONNX Runtime" in card and "ORTModelForSequenceClassification" in card
    # The card's ONNX Runtime snippet runs as written, from the folder.
    snippet = card.split("```python\n")[1].split("```")[0]
    ran = subprocess.run([sys.executable, "-c", snippet], cwd=out, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() in ("['LABEL_0']", "['LABEL_1']")
    assert json.loads((out / "metrics.json").read_text())["number"] == best.trial.number
