"""The front table as a terminal shows it."""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from autotune.cli.output import front_table
from autotune.store.reads import FrontView, TrialSummary
from tests.service.test_selection import _trial

LONGEST = {"layers": 6, "heads": 11, "ffn_fraction": 0.75, "sparsity": 0.25, "bits": 8,
           "int8_method": "dynamic", "temperature": 2.0, "alpha": 0.5}  # fmt: skip
BASELINES = {"sequence_length": 64, "threads": 1, "accuracy": 0.9037, "int8_accuracy": 0.8956,
             "pytorch_fp32_ms": 54.84, "ort_fp32_ms": 30.48, "ort_int8_ms": 26.97}  # fmt: skip


def test_front_fits_80_columns_without_cutting_the_configuration() -> None:
    member: TrialSummary = replace(_trial(123, 0.9014, 135.8, 19.4), config=LONGEST)
    member = replace(member, metrics={**member.metrics, "latency_data_mean_ms": 61.25})
    view = FrontView("sst2-minilm", "45f6b58774ad", 3, 1.5, [1.0, 0.0], [member], BASELINES)
    console = Console(width=80, record=True)
    console.print(front_table(view))
    text = console.export_text()
    assert "L6-H11-F0.75-S0.25-INT8-dynamic" in text
    assert "…" not in text  # nothing cut
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    row = next(line for line in text.splitlines() if "INT8-dynamic" in line)
    assert row.split()[2:] == ["0.9014", "135.80", "61.25", "0.07x", "19.4"]
