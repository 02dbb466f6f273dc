"""Pay for nothing twice (decision 4), inside one trial's pipeline.

* Latency depends on architecture and bit width, not on weights: a probe result is looked up
  by a key of teacher, shape, number format and latency settings before anything is built.
  The cache is a protocol; the search layer stores it in SQL per hardware fingerprint.
* Post-training quantization does not change training: a trained FP32 student is kept on disk
  by the key of everything that shaped its weights, and a later trial that differs only in
  ``bits`` (dynamic INT8, INT4 or FP32) loads it instead of distilling again.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from autotune.cache import hash_json
from autotune.compression.config import (
    CompressionConfig,
    LatencyResult,
    LatencySettings,
    TrainingSettings,
)


class ProbeCache(Protocol):
    def get(self, key: str) -> LatencyResult | None: ...

    def put(self, key: str, result: LatencyResult) -> None: ...


def probe_key(teacher_key: str, config: CompressionConfig, settings: LatencySettings) -> str:
    return hash_json(["probe", teacher_key, config.architecture_key, asdict(settings)])


def training_key(
    teacher_key: str, data_key: str, config: CompressionConfig, settings: TrainingSettings
) -> str:
    """Everything that decides a trained student's weights; ``bits`` deliberately not."""
    shape = (config.layers, config.heads, config.ffn_fraction, config.sparsity)
    recipe = (config.temperature, config.alpha)
    return hash_json(["student", teacher_key, data_key, shape, recipe, asdict(settings)])


def reusable(config: CompressionConfig) -> bool:
    """QAT trains with INT8 fake-quantizers: its weights are not an FP32 student's."""
    return config.int8_method != "qat"


class StudentStore:
    """Trained students on disk, the oldest dropped beyond ``max_entries``."""

    def __init__(self, root: Path, max_entries: int = 32) -> None:
        self.root = root
        self.max_entries = max_entries

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        """Load weights into ``model`` (already built to the same shape); None on a miss."""
        folder = self.root / key[:32]
        try:
            meta = json.loads((folder / "meta.json").read_text())
            state = torch.load(folder / "weights.pt", weights_only=True)
        except (OSError, ValueError, RuntimeError):
            return None
        model.load_state_dict(state)
        model.eval()
        return meta

    def save(self, key: str, model: nn.Module, meta: dict[str, Any]) -> None:
        folder = self.root / key[:32]
        tmp = folder.with_name(folder.name + f".tmp{time.monotonic_ns()}")
        tmp.mkdir(parents=True)
        torch.save(model.state_dict(), tmp / "weights.pt")
        (tmp / "meta.json").write_text(json.dumps(meta))
        if folder.exists():
            shutil.rmtree(tmp)
        else:
            tmp.rename(folder)
        self._trim()

    def _trim(self) -> None:
        # Workers sharing the cache trim it at once: an entry may vanish while we look.
        ages: list[tuple[float, Path]] = []
        for entry in self.root.iterdir():
            try:
                ages.append(((entry / "meta.json").stat().st_mtime, entry))
            except FileNotFoundError:
                continue
        entries = [entry for _, entry in sorted(ages)]
        for old in entries[: max(0, len(entries) - self.max_entries)]:
            shutil.rmtree(old, ignore_errors=True)
