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
