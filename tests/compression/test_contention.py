"""Contention seen from inside a latency window: other processes' CPU (not our own), and the
lock through which autotune's own processes take turns."""

from __future__ import annotations

import subprocess
import sys
import time

from autotune.compression import contention


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_own_work_is_not_contention_and_a_busy_process_is() -> None:
    with contention.watched() as alone:
        _spin(0.5)
    assert alone.foreign_cores is not None and alone.foreign_cores < 0.5, alone
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        with contention.watched() as beside:
            _spin(0.5)
    finally:
        burner.kill()
        burner.wait()
    assert beside.foreign_cores is not None and beside.foreign_cores > 0.6, beside


def test_a_short_window_is_observed_long_enough_to_count() -> None:
    with contention.watched() as window:
        pass
    assert window.seconds < 0.05 and window.foreign_cores is not None


def test_work_waits_while_another_process_times() -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from autotune.compression import contention\n"
            "with contention.timing_alone():\n"
            "    print('holding', flush=True)\n"
            "    time.sleep(1.0)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        started = time.perf_counter()
        contention.wait_while_timing()
        waited = time.perf_counter() - started
    finally:
        holder.wait(timeout=30)
    assert waited > 0.5, waited
    started = time.perf_counter()
    contention.wait_while_timing()  # nobody times now: no wait
    assert time.perf_counter() - started < 0.1
