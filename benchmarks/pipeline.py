"""Benchmark of the compression pipeline on SST-2 with the shipped MiniLM teacher.

Runs the teacher baselines and hand-picked configurations, each trial in a fresh process (so
peak RSS is the trial's own), distilled on the full training set from cached teacher logits,
and prints a Markdown table. Latency: ORT, batch 1, 1 thread, interleaved with the teacher in
ORT FP32; speedups are ratios measured in the same window.

    python benchmarks/pipeline.py --data-dir ../shared/data --models-dir ../shared/models
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "half depth FP32": "layers=3 bits=32",
    "4 layers INT8": "layers=4 bits=8",
    "2 layers INT8": "layers=2 bits=8",
    "4 layers FFN 50% INT8": "layers=4 ffn_fraction=0.5 bits=8",
    "6 layers 50% sparse INT4": "layers=6 sparsity=0.5 bits=4",
    "2 layers 6 heads FFN 50% INT8": "layers=2 heads=6 ffn_fraction=0.5 bits=8",
}
COMMON = "temperature=3 alpha=0.7"
SEQUENCE_LENGTHS = (64, 128)


def run_one(args: argparse.Namespace) -> None:
    """Child process: one configuration, measured at every sequence length."""
    from autotune import api
    from autotune.compression.latency import measure_interleaved

    spec = api.load_spec(args.spec)
    context = api.prepare(spec, args.data_dir, args.models_dir)
    overrides = api.parse_overrides(f"{args.one} {COMMON}".split())
    started = time.perf_counter()
    report = api.run_one_trial(spec, overrides, args.out, context=context)
    wall = time.perf_counter() - started
    row = {"result": report.result.to_dict(), "wall_s": wall, "latency": {}}
    for length in SEQUENCE_LENGTHS:
        at = api.prepare(spec, args.data_dir, args.models_dir, sequence_length=length)
        lat = measure_interleaved(
            Path(report.result.model_path),
            at.inputs.reference_onnx,
            at.inputs.latency,
            at.teacher.model.config.vocab_size,
        )
        row["latency"][length] = {
            "median_ms": lat.median_ms,
            "speedup_ort": lat.speedup_vs_reference,
            "speedup_pytorch": lat.speedup_vs_reference * at.baselines.pytorch_over_reference,
        }
    Path(args.json).write_text(json.dumps(row, default=str))


def teacher_rows(args: argparse.Namespace) -> dict:
    from autotune import api

    rows = {}
    for length in SEQUENCE_LENGTHS:
        ctx = api.prepare(args.spec, args.data_dir, args.models_dir, sequence_length=length)
        rows[length] = ctx.baselines.__dict__
    rows["hardware"] = ctx.hardware
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="studies/sst2-minilm-logit-kd.toml")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--models-dir", default="../shared/models")
    parser.add_argument("--results", default="benchmarks/results/pipeline.json")
    parser.add_argument("--only", nargs="*", help="names of CONFIGS to run (default: all)")
    parser.add_argument("--table", action="store_true", help="only print the stored results")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args)
        return
    results_path = Path(args.results)
    if args.table:
        print(markdown(json.loads(results_path.read_text())))
        return
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["teacher"] = teacher_rows(args)
    results.setdefault("configs", {})
    for name in args.only or CONFIGS:
        print(f"== {name}", file=sys.stderr, flush=True)
        child = results_path.parent / "child.json"
        command = [
            sys.executable,
            __file__,
            "--spec",
            args.spec,
            "--data-dir",
            args.data_dir,
            "--models-dir",
            args.models_dir,
            "--one",
            CONFIGS[name],
            "--out",
            f"runs/bench/{name.replace(' ', '_')}",
            "--json",
            str(child),
        ]
        subprocess.run(command, check=True)
        results["configs"][name] = json.loads(child.read_text())
        child.unlink()
        results_path.write_text(json.dumps(results, indent=1, default=str))
    print(markdown(results))


def markdown(results: dict) -> str:
    """The results as a Markdown table (JSON round trips turn the length keys into strings)."""
    teacher = {str(k): v for k, v in results["teacher"].items()}
    t64, t128 = teacher["64"], teacher["128"]
    lines = [
        "| model | val acc | ms @64 | ms @128 | vs PyTorch @64 | vs PyTorch @128 "
        "| vs ORT FP32 @128 | size MB (zlib) | sparsity "
        "| trial s (build/probe/distill/export/eval/lat) | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, key, acc in (
        ("teacher PyTorch FP32", "pytorch_fp32_ms", "accuracy"),
        ("teacher ORT FP32", "ort_fp32_ms", "accuracy"),
        ("teacher ORT INT8", "ort_int8_ms", "int8_accuracy"),
    ):
        pt64, pt128 = t64["pytorch_fp32_ms"] / t64[key], t128["pytorch_fp32_ms"] / t128[key]
        lines.append(
            f"| {label} | {t64[acc]:.4f} | {t64[key]:.2f} | {t128[key]:.2f} | {pt64:.2f}x "
            f"| {pt128:.2f}x | {t128['ort_fp32_ms'] / t128[key]:.2f}x | | | | |"
        )
    for name, row in results["configs"].items():
        r = row["result"]
        lat = {str(k): v for k, v in row["latency"].items()}
        stages = "/".join(f"{v:.0f}" for v in r["stage_seconds"].values())
        size = f"{r['size_mb']:.1f} ({r['compressed_size_mb']:.1f})"
        lines.append(
            f"| {name} | {r['accuracy']:.4f} | {lat['64']['median_ms']:.2f} "
            f"| {lat['128']['median_ms']:.2f} | {lat['64']['speedup_pytorch']:.2f}x "
            f"| {lat['128']['speedup_pytorch']:.2f}x | {lat['128']['speedup_ort']:.2f}x "
            f"| {size} | {r['sparsity']:.0%} | {row['wall_s']:.0f} ({stages}) "
            f"| {r['peak_rss_mb'] / 1024:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
