"""``autotune trial run``: one configuration by hand, end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autotune import api
from autotune.cli.options import DataDir, ModelsDir, SpecPath
from autotune.cli.output import RichProgress, console

app = typer.Typer(help="Run single configurations.", no_args_is_help=True)


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    ctx: typer.Context,
    spec: SpecPath,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="key=value configuration items (layers, heads, ffn_fraction, sparsity, bits, "
            "int8_method, temperature, alpha); several may follow one --set.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("runs/trial"),
    data_dir: DataDir = None,
    models_dir: ModelsDir = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Build, distill, compress, export and measure one configuration of SPEC."""
    overrides = api.parse_overrides([*(set_ or []), *ctx.args])
    with RichProgress() as progress:
        report = api.run_one_trial(spec, overrides, out, data_dir, models_dir, progress)
    if json_output:
        console.print_json(json.dumps(report.result.to_dict(), default=str))
        return
    console.print(metrics_table(report))
    console.print(f"model and metrics written to [bold]{out}[/]")


def metrics_table(report: api.TrialReport) -> Table:
    r, b = report.result, report.baselines
    m = r.metrics
    title = f"{r.config.label()}  T={r.config.temperature:g} alpha={r.config.alpha:g}"
    table = Table(title=title, caption=_caption(report))
    table.add_column("metric")
    table.add_column("student", justify="right")
    table.add_column("teacher", justify="right")
    table.add_row("accuracy", f"{m.accuracy:.4f}", f"{b.accuracy:.4f}")
    table.add_row("macro-F1", f"{m.macro_f1:.4f}", f"{b.macro_f1:.4f}")
    # The student's figure as a study stores it (drift-corrected), then what the clock said.
    table.add_row("latency ms", f"{m.latency_ms:.2f}", f"{b.ort_fp32_ms:.2f} (ORT FP32)")
    table.add_row("latency ms, raw median", f"{m.latency_raw_ms:.2f}", "")
    table.add_row("latency ms, raw p90", f"{m.latency_p90_ms:.2f}", "")
    table.add_row("latency ms, PyTorch FP32", "", f"{b.pytorch_fp32_ms:.2f}")
    table.add_row("latency CV", f"{m.latency_cv:.3f}", "")
    if m.latency_data_mean_ms is not None and m.latency_data_reference_ms is not None:
        # Real sentences at their own lengths: what most traffic sees.
        table.add_row(
            "latency ms, data mean",
            f"{m.latency_data_mean_ms:.2f}",
            f"{m.latency_data_reference_ms:.2f} (ORT FP32)",
        )
        table.add_row("latency ms, data p90", f"{m.latency_data_p90_ms:.2f}", "")
    if not m.latency_reliable:
        table.add_row("latency", "[yellow]UNRELIABLE: the machine was busy[/]", "")
    table.add_row("speedup vs PyTorch", f"{m.speedup_vs_teacher_pytorch:.2f}x", "1.00x")
    table.add_row("speedup vs ORT FP32", f"{m.speedup_vs_teacher_ort:.2f}x", "1.00x")
    table.add_row("size MB", f"{m.size_mb:.1f}", "")
    table.add_row("size MB (zlib)", f"{m.compressed_size_mb:.1f}", "")
    table.add_row("weight sparsity", f"{m.sparsity:.1%}", "0.0%")
    table.add_row("parameters", f"{m.parameters:,}", "")
    for stage, seconds in m.stage_seconds.items():
        table.add_row(f"time: {stage}", f"{seconds:.1f}s", "")
    table.add_row("peak RSS MB", f"{m.peak_rss_mb:.0f}", "")
    return table


def _caption(report: api.TrialReport) -> str:
    b, hw = report.baselines, report.hardware
    return (
        f"batch 1, seq {b.sequence_length}, {b.threads} thread(s); {hw['cpu']} "
        f"[{','.join(hw['isa'])}]"
    )
