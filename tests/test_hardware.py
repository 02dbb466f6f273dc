"""The hardware fingerprint: runtime versions read without importing the runtimes."""

from __future__ import annotations

import onnxruntime
import torch

from autotune.hardware import fingerprint


def test_versions_match_the_imported_runtimes() -> None:
    # Read from package metadata; a mismatch would give a machine a second fingerprint.
    info = fingerprint(1)
    assert info["torch"] == torch.__version__
    assert info["onnxruntime"] == onnxruntime.__version__
    assert info["id"] == fingerprint(1)["id"] and info["threads"] == 1
