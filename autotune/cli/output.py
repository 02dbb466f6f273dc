"""Rich consoles and the progress adapter shared by the commands."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from autotune.progress import Progress as PipelineProgress

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


def fidelity_caption(summary) -> str:
    """A multi-fidelity study's rungs and savings, under its front (which is its top rung)."""
    if summary is None:
        return ""
    rungs = ", ".join(f"rung {r.rung}: {r.trials} ({r.examples:,} examples)" for r in summary.rungs)
    spent, full = _duration(summary.train_seconds), _duration(summary.full_seconds)
    return (
        f"\nfront: top rung only (the whole recipe); trials per rung: {rungs}"
        f"\ntrained {summary.trained_examples:,} of the {summary.full_examples:,} examples that "
        f"training all {summary.configurations} configurations fully takes ({summary.saved:.0%} "
        f"saved): {spent} of training instead of about {full}"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def front_table(view) -> Table:
    """A front (``autotune.api.FrontView``) with the teacher baselines on top.

    Fits 80 columns with the longest configuration label: the label never wraps or gets cut
    (it is what users copy), the numbers' headers take two lines, and no vertical rules."""
    b = view.baselines
    table = Table(
        title=f"{view.study}: Pareto front v{view.version} on {view.hardware_id} "
        f"(hypervolume {view.hypervolume:.4g})",
        caption=f"latency: batch 1, seq {b.get('sequence_length', '?')}, "
        f"{b.get('threads', '?')} thread(s), in the teacher's quiet ORT FP32 time; "
        "'data': real sentences at their own lengths, mean" + fidelity_caption(view.fidelity),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("#", justify="right")  # the trial number
    table.add_column("configuration", no_wrap=True)
    # Speedup vs ORT FP32 is in --json; the data-length mean earns the room.
    for header in ("accuracy", "latency\nms", "data\nms", "vs\nPyTorch", "size\nMB"):
        table.add_column(header, justify="right")
    if b:
        for label, key, acc in (
            ("PyTorch FP32", "pytorch_fp32_ms", "accuracy"),
            ("ORT FP32", "ort_fp32_ms", "accuracy"),
            ("ORT INT8", "ort_int8_ms", "int8_accuracy"),
        ):
            table.add_row(
                "",
                f"teacher {label}",
                f"{b[acc]:.4f}",
                f"{b[key]:.2f}",
                "",
                f"{b['pytorch_fp32_ms'] / b[key]:.2f}x",
                "",
                style="dim",
            )
    for member in view.members:
        m = member.measured
        table.add_row(
            str(member.number),
            member.compression.label(),
            f"{m.accuracy:.4f}",
            f"{m.latency_ms:.2f}",
            "-" if m.latency_data_mean_ms is None else f"{m.latency_data_mean_ms:.2f}",
            f"{m.speedup_vs_teacher_pytorch:.2f}x",
            f"{m.size_mb:.1f}",
        )
    return table
