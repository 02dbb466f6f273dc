"""What ``study run`` and ``worker`` show while trials run.

In a terminal: the current stage (preparation, then each trial's ``trial N: distill`` with
its step bar), a trials bar whose ETA is the mean trial time so far times the trials left, and
one line per finished trial above the bars. Redirected to a file or a pipe: one plain line per
preparation stage and per finished trial, on stdout, as they happen; with ``--json-log``, one
JSON object per line instead.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
import time
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autotune import api
from autotune.cli.output import RichProgress, console_err
from autotune.errors import NotFoundError, StudyInterrupted
from autotune.progress import Progress as PipelineProgress

Emit = Callable[[str], None]


class Eta:
    """Seconds left: the time per trial finished since this run's first trial began (by any
    worker), times the trials left. Preparation is not a trial: the clock starts after it."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.first = 0  # trials already finished when the clock started

    def start(self, finished: int) -> None:
        self.started, self.first = time.monotonic(), finished

    def seconds(self, finished: int, target: int | None) -> float | None:
        done_here = finished - self.first
        if not target or done_here <= 0 or self.started is None:
            return None
        mean = (time.monotonic() - self.started) / done_here
        return mean * max(target - finished, 0)


def clock(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


class TrialLog:
    """One line per trial that finished since the run began (plain text or JSON)."""

    def __init__(self, study: str, storage: str | None, emit: Emit, as_json: bool) -> None:
        self.study, self.storage, self.emit, self.as_json = study, storage, emit, as_json
        self.logged: set[int] = set()
        self.seen_finished = -1  # rows are read again only when this count moves

    def snapshot(self) -> int:
        """Mark the trials finished so far (earlier runs' are not news); how many there are.
        Taken when trials start, after a resumed study has settled its interrupted ones."""
        self.logged = {t.number for t in self._rows()}
        return len(self.logged)

    def _rows(self) -> list[api.TrialSummary]:
        try:
            return api.study_trials(self.study, self.storage)
        except NotFoundError:
            return []  # the study (or its database) is made by this run

    def __call__(self, state: api.StudyState, target: int | None, eta: float | None) -> None:
        # With --workers N this runs every second: read the rows only when a trial finished.
        if state.finished == self.seen_finished:
            return
        self.seen_finished = state.finished
        for trial in self._rows():
            if trial.number not in self.logged:
                self.logged.add(trial.number)
                self.emit(self._line(trial, state, target, eta))

    def _line(
        self, t: api.TrialSummary, state: api.StudyState, target: int | None, eta: float | None
    ) -> str:
        where = {"finished": state.finished, "target": target, "front_size": state.front_size}
        if self.as_json:
            return json.dumps({"event": "trial", "study": self.study, **t.to_json(), **where,
                               "eta_seconds": eta})  # fmt: skip
        head = f"trial {t.number} {t.status}"
        if t.status == "complete":
            m = t.measured
            body = (
                f"{t.compression.label()}  accuracy {m.accuracy:.4f}  {m.latency_ms:.2f} ms  "
                f"{m.speedup_vs_teacher_pytorch:.1f}x vs PyTorch  {t.seconds:.0f} s"
            )
            if m.rung is not None:
                body += f"  rung {m.rung}" + (" (top)" if m.top_rung else "")
            if not m.latency_reliable:
                body += (
                    f"  UNRELIABLE latency (machine busy); when it is quiet: "
                    f"autotune remeasure {self.study} --unreliable"
                )
        else:
            body = t.reason or ""
        tail = f"{state.finished}/{target or '?'} finished, front {state.front_size}"
        if state.configurations is not None:
            tail = (
                f"{state.configurations}/{target or '?'} configurations, {state.finished} "
                f"trials, top-rung front {state.front_size}"
            )
        return f"{head}: {body}  [{tail}, eta {clock(eta)}]"


class PlainStages(PipelineProgress):
    """Preparation stages as lines; a trial's own stages are left to its finished line."""

    def __init__(self, emit: Emit, as_json: bool) -> None:
        self.emit, self.as_json = emit, as_json

    def stage(self, name: str) -> None:
        if name.startswith("trial "):
            return
        stamp = time.strftime("%H:%M:%S")
        self.emit(json.dumps({"event": "stage", "stage": name, "time": stamp})
                  if self.as_json else f"{stamp} {name}")  # fmt: skip


class TrialClock(PipelineProgress):
    """Passes stages and steps on; the first trial's stage starts the study's clock."""

    def __init__(self, inner: PipelineProgress, study: StudyProgress) -> None:
        self.inner, self.study = inner, study

    def stage(self, name: str) -> None:
        if name.startswith("trial "):
            self.study.begin()
        self.inner.stage(name)

    def step(self, done: int, total: int) -> None:
        self.inner.step(done, total)


class StudyProgress:
    """The trials bar in a terminal, and the finished-trial lines everywhere."""

    def __init__(self, log: TrialLog, target: int | None, bar: Progress | None = None) -> None:
        self.log, self.target, self.bar, self.eta = log, target, bar, Eta()
        self.task = bar.add_task("trials", total=target, eta="-:--:--") if bar else None

    def begin(self) -> None:
        """Trials start: earlier trials are known, and the ETA's clock runs from here. (With
        ``--workers N`` trials run in other processes: the first poll begins.)"""
        if self.eta.started is None:
            self.eta.start(self.log.snapshot())

    def __call__(self, state: api.StudyState) -> None:
        self.begin()
        left = self.eta.seconds(state.counted, self.target)
        if self.bar is not None and self.task is not None:
            self.bar.update(
                self.task,
                completed=state.counted,
                description=f"trials  front {state.front_size}  best {state.best_speedup:.1f}x",
                eta=clock(left),
            )
        self.log(state, self.target, left)


def trials_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("eta {task.fields[eta]}"),
        console=console_err,
        transient=True,  # an error leaves its one line, not a half-drawn bar
    )


def _stdout_line(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def study_progress(
    study: str, storage: str | None, target: int | None, json_log: bool = False
) -> Iterator[tuple[PipelineProgress, StudyProgress]]:
    """(what preparation and trials report stages to, the callback of finished trials)."""
    with reports_interrupt():
        if json_log or not console_err.is_terminal:
            log = TrialLog(study, storage, _stdout_line, json_log)
            progress = StudyProgress(log, target)
            yield TrialClock(PlainStages(_stdout_line, json_log), progress), progress
            return
        with RichProgress() as prep:
            bar = trials_bar()
            log = TrialLog(study, storage, lambda text: bar.console.print(text), False)
            with bar:
                progress = StudyProgress(log, target, bar)
                yield TrialClock(prep, progress), progress


@contextlib.contextmanager
def reports_interrupt() -> Iterator[None]:
    """Ctrl-C: say what was discarded and how to go on, and exit with status 130."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if isinstance(exc, StudyInterrupted) and exc.trial is not None:
            what = f"trial {exc.trial} discarded"
        elif isinstance(exc, StudyInterrupted):
            what = "no trial was running"
        else:
            what = "running trials discarded"
        console_err.print(
            f"[yellow]interrupted:[/] {what}; run the same command to resume", highlight=False
        )
        sys.exit(130)
