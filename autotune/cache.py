"""Content-addressed on-disk cache (decision 4: pay for nothing twice).

Keys are sha256 digests of what determines a result (file contents, settings), so a cache
entry is valid for as long as its inputs are unchanged, and never needs invalidating.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CACHE_ENV = "AUTOTUNE_CACHE_DIR"
_CHUNK = 1 << 20


def cache_root() -> Path:
    """The cache directory: ``$AUTOTUNE_CACHE_DIR`` or ``~/.cache/autotune``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autotune"
    return Path(root)


def hash_json(value: Any) -> str:
    """sha256 of a JSON-serialisable value, independent of dict ordering."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(paths: Iterable[Path]) -> str:
    """sha256 over the names and contents of several files (order-independent)."""
    parts = sorted((p.name, hash_file(p)) for p in paths)
    return hash_json(parts)


def entry_dir(kind: str, key: str) -> Path:
    """Where the cache entry ``key`` of a kind (``tokens``, ``logits``...) lives."""
    return cache_root() / kind / key[:16]


@contextmanager
def atomic_dir(target: Path):
    """Yield a temporary directory that is renamed to ``target`` only if the block succeeds.

    A crash or an exception leaves no half-written cache entry behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():  # another process finished first; its entry is equivalent
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
