"""``study run --workers N``: N ``autotune worker`` processes on this machine.

They are ordinary workers (the same command a user runs on other machines), so what holds
for several machines is exercised on one. The storage URL travels in the environment, not on
the command line, where ``ps`` would show its password.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.compression.config import TRAIN_THREADS_ENV
from autotune.errors import AutotuneError
from autotune.search.heartbeat import HEARTBEAT_ENV

if TYPE_CHECKING:
    from autotune.settings import Settings


def worker_command(study: str, artifacts: Path, timeout: float | None) -> list[str]:
    command = [sys.executable, "-m", "autotune", "worker", study, "--artifacts", str(artifacts)]
    command += ["--quiet"]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    return command


def worker_env(settings: Settings, workers: int) -> dict[str, str]:
    env = dict(os.environ, AUTOTUNE_STORAGE=settings.storage)
    # Each worker trains on its share of the cores instead of all of them.
    env.setdefault(TRAIN_THREADS_ENV, str(max(1, (os.cpu_count() or 1) // workers)))
    if settings.data_dir is not None:
        env["AUTOTUNE_DATA_DIR"] = str(settings.data_dir)
    if settings.models_dir is not None:
        env["AUTOTUNE_MODELS_DIR"] = str(settings.models_dir)
    if settings.heartbeat is not None:
        env[HEARTBEAT_ENV] = str(settings.heartbeat)
    return env


def run_local_workers(
    study: str,
    settings: Settings,
    workers: int,
    timeout: float | None = None,
    on_poll: Callable[[], None] | None = None,
) -> None:
    """Start ``workers`` processes on ``study`` and wait for all of them."""
    command = worker_command(study, settings.artifacts.resolve(), timeout)
    env = worker_env(settings, workers)
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)
    ]
    try:
        while any(p.poll() is None for p in processes):
            if on_poll is not None:
                on_poll()
            time.sleep(1.0)
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=120)
        raise
    if on_poll is not None:
        on_poll()
    failed = [(i, p.returncode) for i, p in enumerate(processes, 1) if p.returncode != 0]
    if failed:
        shown = ", ".join(f"worker {i} exited with {code}" for i, code in failed)
        raise AutotuneError(f"{shown} (of {workers}); their errors are printed above")
