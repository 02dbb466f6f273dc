"""Options shared by several commands, and a decorator that gives a command a whole group
of them at once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="AUTOTUNE_DATA_DIR",
        help="Folder holding local dataset copies (e.g. sst2/train.tsv), tried before the hub.",
    ),
]
ModelsDir = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        envvar="AUTOTUNE_MODELS_DIR",
        help="Folder holding teacher checkpoints by name, tried before the hub.",
    ),
]
SpecPath = Annotated[Path, typer.Argument(help="Study spec (TOML), e.g. studies/smoke.toml.")]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar="AUTOTUNE_STORAGE",
        help="Database URL (default sqlite:///autotune.db; PostgreSQL: postgresql://...).",
    ),
]
Artifacts = Annotated[
    Path | None,
    typer.Option(
        "--artifacts",
        envvar="AUTOTUNE_ARTIFACTS",
        help="Artifact store folder (default: next to a SQLite file, else ./autotune-artifacts).",
    ),
]
Hardware = Annotated[
    str | None,
    typer.Option("--hardware", help="Hardware fingerprint id (default: this machine's)."),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print stable JSON (see README).")]
JsonLog = Annotated[
    bool,
    typer.Option(
        "--json-log",
        help="One JSON object per line on stdout for each stage and finished trial, then a "
        "final 'done' object, instead "
        "of progress bars (plain lines are the default when stdout is not a terminal).",
    ),
]
MaxLatency = Annotated[
    float | None, typer.Option("--max-latency-ms", min=0.0, help="Latency budget in ms.")
]
MinAccuracy = Annotated[
    float | None, typer.Option("--min-accuracy", min=0.0, max=1.0, help="Accuracy floor.")
]
MaxSize = Annotated[float | None, typer.Option("--max-size-mb", min=0.0, help="Size cap in MB.")]
Heartbeat = Annotated[
    int | None,
    typer.Option(
        "--heartbeat",
        envvar="AUTOTUNE_HEARTBEAT_SECONDS",
        min=1,
        help="Seconds between a running trial's heartbeats (default 60); a trial silent for "
        "1.5 of them is failed and retried by another worker.",
    ),
]
TotalTrials = Annotated[
    int | None,
    typer.Option(
        "--trials",
        min=1,
        help="Finished trials the study should have in total, earlier runs and every worker "
        "counted (default: the spec's search.n_trials).",
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=1,
        help="Seconds to run trials, counted from the first trial (preparation not included).",
    ),
]
Prefer = Annotated[str, typer.Option("--prefer", help="'accuracy' or 'latency'.")]

# name -> (annotated type, default): the option groups several commands take.
OptionGroup = dict[str, tuple[Any, Any]]
WHERE: OptionGroup = {
    "data_dir": (DataDir, None),
    "models_dir": (ModelsDir, None),
    "artifacts": (Artifacts, None),
}
CHOICE: OptionGroup = {
    "max_latency_ms": (MaxLatency, None),
    "min_accuracy": (MinAccuracy, None),
    "max_size_mb": (MaxSize, None),
    "prefer": (Prefer, "accuracy"),
    "storage": (Storage, None),
    "hardware": (Hardware, None),
    "artifacts": (Artifacts, None),
}


def with_options(group_name: str, group: OptionGroup) -> Callable[[Callable], Callable]:
    """Give a command every option of ``group`` and hand them to it as one dict, its
    parameter ``group_name``: commands that share a group declare it once, here.

    Typer reads a command's options from its signature, so the wrapper's signature is the
    command's own parameters followed by the group's.
    """

    def decorate(command: Callable) -> Callable:
        own = inspect.signature(command, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name != group_name]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
            for name, (a, d) in group.items()
        ]

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            chosen = {name: values.pop(name) for name in group}
            return command(**values, **{group_name: chosen})

        run.__signature__ = own.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in [*kept, *added]} | {"return": None}
        return run

    return decorate
