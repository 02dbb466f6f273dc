"""The folders autotune takes from options or the environment, read without importing the
code that uses them (reading results must stay fast)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "AUTOTUNE_DATA_DIR"
MODELS_DIR_ENV = "AUTOTUNE_MODELS_DIR"


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """``--data-dir``, else ``$AUTOTUNE_DATA_DIR``: local dataset copies, tried before the hub."""
    value = explicit or os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def models_dir(explicit: str | Path | None = None) -> Path | None:
    """``--models-dir``, else ``$AUTOTUNE_MODELS_DIR``: teacher checkpoints by name."""
    value = explicit or os.environ.get(MODELS_DIR_ENV)
    return Path(value) if value else None
