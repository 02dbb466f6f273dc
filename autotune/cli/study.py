"""``autotune study run|list|show``."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autotune import api
from autotune.cli.options import (
    WHERE,
    Hardware,
    Heartbeat,
    JsonLog,
    JsonOutput,
    SpecPath,
    Storage,
    Timeout,
    TotalTrials,
    with_options,
)
from autotune.cli.output import RichProgress, console, front_table
from autotune.cli.study_progress import study_progress

app = typer.Typer(help="Run and inspect studies.", no_args_is_help=True)


@app.command("run")
@with_options("where", WHERE)
def run(
    spec: SpecPath,
    trials: TotalTrials = None,
    timeout: Timeout = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, max=256, help="Worker processes on this machine (see docs)."
        ),
    ] = 1,
    storage: Storage = None,
    heartbeat: Heartbeat = None,
    json_log: JsonLog = False,
    *,
    where: dict[str, Any],
) -> None:
    """Create or resume SPEC's study and run trials until it has --trials finished."""
    loaded = api.load_spec(spec)
    target = trials or loaded.search.n_trials
    started = time.perf_counter()
    with study_progress(loaded.name, storage or loaded.storage, target, json_log) as (
        prep,
        callback,
    ):
        state = api.run_study(
            loaded,
            storage,
            trials,
            timeout,
            progress=prep,
            on_progress=callback,
            workers=workers,
            heartbeat=heartbeat,
            **where,
        )
    seconds = time.perf_counter() - started
    if json_log:  # every line JSON, to the end: the front is `autotune pareto NAME --json`
        print(json.dumps({"event": "done", **asdict(state), "seconds": seconds}), flush=True)
        return
    console.print(
        f"study [bold]{loaded.name}[/]: {state.total} trials in storage ({seconds:.0f}s this run)"
    )
    console.print(front_table(api.pareto_front(loaded.name, storage or loaded.storage)))


@app.command("create")
@with_options("where", WHERE)
def create(
    spec: SpecPath, trials: TotalTrials = None, storage: Storage = None, *, where: dict[str, Any]
) -> None:
    """Set SPEC's study up without running trials; then start `autotune worker` anywhere."""
    loaded = api.load_spec(spec)
    with RichProgress() as prep:
        state = api.create_study(loaded, storage, trials, progress=prep, **where)
    url = api.storage_label(storage or loaded.storage)
    console.print(
        f"study [bold]{loaded.name}[/] ready ({state.total} trials so far); "
        f"join it with: autotune worker {loaded.name} --storage '{url}'",
        highlight=False,
    )


@app.command("list")
def list_(storage: Storage = None, json_output: JsonOutput = False) -> None:
    """Every study in the storage."""
    studies = api.list_studies(storage)
    if json_output:
        console.print_json(json.dumps([s.to_json() for s in studies]))
        return
    if not studies:
        console.print(
            f"no studies in {api.storage_label(storage)} yet; start one with: "
            "autotune study run SPEC (e.g. studies/smoke.toml)",
            highlight=False,
        )
        return
    table = Table(title=f"studies in {api.storage_label(storage)}")
    for column in (
        "study",
        "dataset",
        "teacher",
        "complete",
        "failed",
        "stopped",
        "front",
        "best speedup",
        "updated",
    ):
        table.add_column(column)
    for s in studies:
        best = f"{s.best_speedup:.1f}x" if s.best_speedup else "-"
        table.add_row(
            s.name,
            s.dataset,
            Path(s.teacher).name,
            str(s.complete),
            str(s.failed),
            str(s.stopped),
            str(s.front_size),
            best,
            (s.updated or "-")[:19],
        )
    console.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Study name.")],
    storage: Storage = None,
    hardware: Hardware = None,
    json_output: JsonOutput = False,
) -> None:
    """The study's Pareto front as a table, with the teacher baselines."""
    view = api.pareto_front(name, storage, hardware)
    if json_output:
        console.print_json(json.dumps(view.to_json()))
        return
    console.print(front_table(view))
