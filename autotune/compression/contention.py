"""Is the machine busy while we time? Other processes' CPU use during a latency window.

Interleaving with the reference protects a speedup from slow drift, not from heavy
contention: short calls fit in a time slice more often than long ones, and ratios measured
beside two CPU-bound processes were off by up to 47%. So every window also records how much
CPU the rest of the machine used meanwhile: all CPUs' busy time (``/proc/stat``) minus this
process's own (``os.times``), in cores. Where ``/proc/stat`` is missing (not Linux), only the
reference's own spread can tell.

autotune's own processes on one machine do not count as contention: they take turns through a
lock file (:func:`timing_alone`, :class:`TimingGate`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

try:
    import fcntl
except ImportError:  # not POSIX: no coordination between processes
    fcntl = None  # type: ignore[assignment]

PROC_STAT = Path("/proc/stat")
# /proc/stat counts in clock ticks (10 ms): a window is observed for at least this long, the
# rest after it, so that even a window of a few milliseconds gets a figure to 0.05 cores.
MIN_OBSERVED_S = 0.3
# Fields of the "cpu" line of /proc/stat that count as busy (iowait and idle do not;
# guest time is already inside user).
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal


@dataclass
class Window:
    """Filled in when the ``with`` block ends: wall seconds and other processes' cores."""

    seconds: float = 0.0
    foreign_cores: float | None = None


def _busy_seconds() -> float | None:
    try:
        first = PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in first[1:]]
    return sum(values[i] for i in BUSY_FIELDS if i < len(values)) / ticks


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


@contextmanager
def watched() -> Iterator[Window]:
    """Time a block and measure the CPU the rest of the machine used during it."""
    window = Window()
    busy, own, start = _busy_seconds(), _own_seconds(), time.perf_counter()
    try:
        yield window
    finally:
        window.seconds = time.perf_counter() - start
        if busy is not None and window.seconds < MIN_OBSERVED_S:
            time.sleep(MIN_OBSERVED_S - window.seconds)  # our own CPU stays out of the count
        observed = time.perf_counter() - start
        after = _busy_seconds()
        if busy is not None and after is not None:
            foreign = (after - busy) - (_own_seconds() - own)
            window.foreign_cores = max(0.0, foreign / observed)


# Processes of this user on this machine (local workers, a study beside a benchmark) take
# turns: whoever times latency holds the lock exclusively, and training and evaluation pass
# through it between steps, so they pause while someone times and never hold it long.
LOCK_FILE = Path(tempfile.gettempdir()) / f"autotune-timing-{os.getuid()}.lock"


@contextmanager
def timing_alone() -> Iterator[None]:
    """Hold the machine's timing lock: autotune's other processes pause at their next step."""
    if fcntl is None:
        yield
        return
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_gate: TextIO | None = None  # opened once per process


def wait_while_timing() -> None:
    """Between steps of heavy work: wait while another autotune process is timing."""
    global _gate
    if fcntl is None:
        return
    if _gate is None:
        _gate = LOCK_FILE.open("a")
    fcntl.flock(_gate, fcntl.LOCK_SH)  # blocks only while someone holds it exclusively
    fcntl.flock(_gate, fcntl.LOCK_UN)
