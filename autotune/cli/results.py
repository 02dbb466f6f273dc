"""``autotune pareto``, ``autotune best`` and ``autotune export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from autotune import api
from autotune.cli.options import CHOICE, Hardware, JsonOutput, Storage, with_options
from autotune.cli.output import console, front_table

Name = Annotated[str, typer.Argument(help="Study name.")]


def pareto(
    name: Name, storage: Storage = None, hardware: Hardware = None, json_output: JsonOutput = False
) -> None:
    """The feasible Pareto front of a study (one machine's results)."""
    view = api.pareto_front(name, storage, hardware)
    if json_output:
        console.print_json(json.dumps(view.to_json()))
    else:
        console.print(front_table(view))


@with_options("choice", CHOICE)
def best(name: Name, json_output: JsonOutput = False, *, choice: dict[str, Any]) -> None:
    """The best configuration under constraints."""
    found = api.best_config(name, **choice)
    if json_output:
        console.print_json(json.dumps(found.to_json()))
        return
    m = found.trial.measured
    console.print(
        f"trial {found.trial.number}: [bold]{found.config.label()}[/] "
        f"T={found.config.temperature:g} alpha={found.config.alpha:g}\n"
        f"accuracy {m.accuracy:.4f}, latency {m.latency_ms:.2f} ms, "
        f"{m.speedup_vs_teacher_pytorch:.1f}x vs PyTorch, size {m.size_mb:.1f} MB\n"
        f"model: {found.artifact_path}"
    )


@with_options("choice", CHOICE)
def export(
    name: Name,
    out: Annotated[Path, typer.Option("--out", help="Folder to write.")],
    trial: Annotated[int | None, typer.Option("--trial", min=0, help="Trial number.")] = None,
    *,
    choice: dict[str, Any],
) -> None:
    """Export a trial (or the best under constraints): ONNX, tokenizer, config, metrics card."""
    path = api.export_model(name, out, trial, **choice)
    console.print(
        f"exported to [bold]{path}[/]: {', '.join(sorted(p.name for p in path.iterdir()))}"
    )
