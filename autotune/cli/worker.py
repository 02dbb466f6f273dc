"""``autotune worker STUDY``: join a study (on this or another machine) and run its trials."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from autotune import api
from autotune.cli.options import WHERE, Heartbeat, JsonLog, Storage, Timeout, with_options
from autotune.cli.output import console
from autotune.cli.study_progress import reports_interrupt, study_progress


@with_options("where", WHERE)
def worker(
    study: Annotated[str, typer.Argument(help="Name of an existing study.")],
    storage: Storage = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Run at most this many trials here.")
    ] = None,
    timeout: Timeout = None,
    heartbeat: Heartbeat = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
    json_log: JsonLog = False,
    *,
    where: dict[str, Any],
) -> None:
    """Join STUDY and run its trials until it has n_trials (all workers counted).

    Start one per machine, or several: Optuna's storage hands each its own trials.
    """
    if quiet:
        with reports_interrupt():
            api.run_worker(study, storage, trials, timeout, heartbeat=heartbeat, **where)
        return
    with study_progress(study, storage, None, json_log) as (prep, callback):
        state = api.run_worker(
            study,
            storage,
            trials,
            timeout,
            progress=prep,
            on_progress=callback,
            heartbeat=heartbeat,
            **where,
        )
    console.print(f"study [bold]{study}[/]: {state.total} trials in storage")
