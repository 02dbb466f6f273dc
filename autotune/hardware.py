"""Hardware fingerprint (decision 7): results are per machine, fronts never mix machines."""

from __future__ import annotations

import importlib
import os
import platform
from functools import cache
from importlib import metadata
from typing import Any

from autotune.cache import hash_json

LABEL_ENV = "AUTOTUNE_HARDWARE_LABEL"
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")


@cache
def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _version(package: str) -> str:
    """The installed version, read from package metadata: importing torch to ask it costs
    seconds, and ``best`` or ``pareto`` only need the fingerprint's id."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        module = importlib.import_module(package)  # a build installed under another name
        return str(module.__version__)


def fingerprint(threads: int) -> dict[str, Any]:
    """What decides latency on this machine: CPU, ISA extensions, runtimes and thread count."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    data: dict[str, Any] = {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "isa": sorted(flag for flag in ISA_FLAGS if flag in flags),
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "threads": threads,
    }
    # Machines that look alike (same CPU model and runtimes) may still differ in speed, e.g.
    # two cloud instance types or a laptop on battery: a label keeps their fronts apart.
    label = os.environ.get(LABEL_ENV, "").strip()
    if label:
        data["label"] = label
    data["id"] = hash_json(data)[:12]
    return data
