"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
