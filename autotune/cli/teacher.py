"""``autotune teacher train``: fine-tune a backbone into the study's teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from autotune import api
from autotune.cli.options import DataDir, ModelsDir, SpecPath
from autotune.cli.output import RichProgress, console

app = typer.Typer(help="Make or inspect the teacher.", no_args_is_help=True)


@app.command("train")
def train(
    spec: SpecPath,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Checkpoint directory (default: MODELS_DIR/<checkpoint>)."),
    ] = None,
    data_dir: DataDir = None,
    models_dir: ModelsDir = None,
    max_train_samples: Annotated[
        int | None, typer.Option(min=1, help="Fine-tune on a random subset of this many rows.")
    ] = None,
) -> None:
    """Fine-tune SPEC's teacher backbone on SPEC's dataset and save the checkpoint."""
    with RichProgress() as progress:
        path, log = api.train_teacher(spec, out, data_dir, models_dir, max_train_samples, progress)
    console.print(
        f"teacher saved to [bold]{path}[/]: validation accuracy {log['val_acc']:.4f} "
        f"after {log['seconds']:.0f}s on {log['train_rows']} rows"
    )
