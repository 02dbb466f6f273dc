"""Rich consoles and the progress adapter shared by the commands."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from autotune.compression.pipeline import Progress as PipelineProgress

console = Console()
console_err = Console(stderr=True)


class RichProgress(PipelineProgress):
    """Shows the current stage and, while training, a step bar with ETA."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console_err,
            transient=True,
        )
        self.task = self.bar.add_task("starting", total=None)

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def stage(self, name: str) -> None:
        self.bar.update(self.task, description=name, total=None, completed=0)

    def step(self, done: int, total: int) -> None:
        self.bar.update(self.task, total=total, completed=done)
