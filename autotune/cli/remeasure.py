"""``autotune remeasure STUDY``: this machine's own front from a study's exported models."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from autotune import api
from autotune.cli.options import WHERE, JsonOutput, Storage, with_options
from autotune.cli.output import console, console_err
from autotune.progress import Progress


class _Stages(Progress):
    """Preparation stages on stderr, so that ``--json`` keeps stdout for the report."""

    def stage(self, name: str) -> None:
        console_err.print(f"[dim]{name}[/]", highlight=False)


@with_options("where", WHERE)
def remeasure(
    study: Annotated[str, typer.Argument(help="Name of an existing study.")],
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Hardware id whose trials to measure here (default: the only other machine).",
        ),
    ] = None,
    all_trials: Annotated[
        bool, typer.Option("--all", help="Every complete trial of that machine, not its front.")
    ] = False,
    unreliable: Annotated[
        bool,
        typer.Option(
            "--unreliable",
            help="Re-time this machine's trials whose latency was marked unreliable.",
        ),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="Latency threads (default: the spec's); another count is another machine id.",
        ),
    ] = None,
    storage: Storage = None,
    json_output: JsonOutput = False,
    *,
    where: dict[str, Any],
) -> None:
    """Measure STUDY's exported models on this machine, without training: accuracy and
    latency here, stored under this machine's fingerprint, and its own Pareto front.

    Run it on the machine you deploy on. Runs on several machines share the work; a model
    measured here already is not measured again.
    """
    if unreliable and (all_trials or source):
        raise typer.BadParameter("--unreliable re-times this machine's trials; drop --from/--all")
    scope = "unreliable" if unreliable else "all" if all_trials else "front"

    def tell(number: int, outcome: str) -> None:
        console_err.print(f"trial {number}: {outcome}", highlight=False)

    report = api.remeasure(study, source, scope, storage, threads, _Stages(), tell, **where)
    if json_output:
        console.print_json(json.dumps(report.to_json()))
        return
    console.print(
        f"{len(report.measured)} measured, {len(report.skipped)} already measured, "
        f"{len(report.failed)} failed in {report.seconds:.0f} s on {report.hardware_id} "
        f"(from {report.source_hardware_id}); front: {report.front}"
    )
    if report.unreliable:
        console.print(
            f"[yellow]latency unreliable (machine busy) for trials {report.unreliable}[/]: "
            f"run again when it is quiet: autotune remeasure {study} --unreliable"
        )
    console.print(f"see it: autotune pareto {study} --hardware {report.hardware_id}")
