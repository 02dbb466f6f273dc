"""Benchmark: faster runs of what autotune exports, on this machine.

Part 1, fused attention: the SST-2 teacher and two full-width students (built from it, 4 and
2 layers, 12 heads, half the FFN), FP32, exported as autotune exports them, unfused and with
ORT's fused ``Attention`` (``autotune.compression.fusion``): largest logit difference, and
latency at batch 1, seq 64, interleaved round-robin in one process. A pruned-head student
shows what does not fuse.

Part 2, INT8 kernels: the teacher quantized dynamically as autotune does (s8 weights per
channel, u8 activations), with ``reduce_range`` (7-bit weights, for CPUs without VNNI whose
u8s8 kernels can saturate), with u8 weights (u8u8), and fused then quantized (``QAttention``):
SST-2 validation accuracy (872 sentences) and latency.

Part 3, session options: graph optimisation level (BASIC, EXTENDED, ALL) at 1 and 2 threads
for the teacher FP32 and INT8 and the 2-layer student INT8, the choices Olive's session
tuning pass searches; timed in rotated blocks of consecutive calls (``--session-only`` redoes
this part alone).

    python benchmarks/ort_variants.py --data-dir ../shared/data --models-dir ../shared/models
    python benchmarks/ort_variants.py --table     # print every stored machine's results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import machine_bench  # benchmarks/, on the path when run as a script
import numpy as np

RESULTS = machine_bench.RESULTS
RUNS, WARMUP, LENGTH = 200, 20, 64
LEVELS = ("BASIC", "EXTENDED", "ALL")


def session(path: Path, threads: int = 1, level: str = "ALL"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def round_robin(sessions: dict[str, object], feed: dict) -> dict[str, float]:
    """Median ms of each session, timed call by call in turn so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(WARMUP):
        for s in sessions.values():
            s.run(None, feed)
    for _ in range(RUNS):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def models(bench, work: Path) -> dict[str, Path]:
    """Raw FP32 exports of the teacher and three students built from it (untrained: their
    shapes are what latency depends on)."""
    from autotune.compression.export import export_onnx
    from autotune.compression.student import StudentPlan, build_student

    teacher = bench.teacher.model
    half = tuple(range(teacher.config.intermediate_size // 2))
    plans = {
        "student L4-H12-F0.5": StudentPlan((0, 2, 3, 5), (tuple(range(12)),) * 4, (half,) * 4),
        "student L2-H12-F0.5": StudentPlan((0, 5), (tuple(range(12)),) * 2, (half,) * 2),
        "student L2-H6-F0.5 (pruned heads)": StudentPlan(
            (0, 5), (tuple(range(6)),) * 2, (half,) * 2
        ),
    }
    paths = {"teacher": export_onnx(teacher, work / "teacher.onnx")}
    for name, plan in plans.items():
        paths[name] = export_onnx(build_student(teacher, plan), work / f"{len(paths)}.onnx")
    return paths


def fused_rows(paths: dict[str, Path], work: Path, feed: dict) -> list[dict]:
    from autotune.compression.export import optimize_for_ort
    from autotune.compression.fusion import fuse_attention

    rows = []
    for name, raw in paths.items():
        unfused = optimize_for_ort(raw, work / f"{raw.stem}-u.onnx")
        heads = 6 if "pruned" in name else 12
        fused = fuse_attention(raw, work / f"{raw.stem}-f-raw.onnx", heads, 384)
        row: dict = {"model": name, "fused_ops": fused.attention_ops if fused else 0}
        if fused:
            optimised = optimize_for_ort(fused.path, work / f"{raw.stem}-f.onnx")
            ms = round_robin({"unfused": session(unfused), "fused": session(optimised)}, feed)
            row |= {"max_logit_diff": fused.max_logit_diff, **{f"{k}_ms": v for k, v in ms.items()}}
        rows.append(row)
        print(row, flush=True)
    return rows


def int8_rows(bench, raw: Path, work: Path, feed: dict) -> list[dict]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from autotune.compression.evaluate import evaluate_onnx
    from autotune.compression.export import optimize_for_ort
    from autotune.compression.fusion import fuse_attention
    from autotune.compression.quantize import quantize_onnx

    def dynamic(source: Path, name: str, ops: list[str], **kw) -> Path:
        target = work / f"{name}.onnx"
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            op_types_to_quantize=ops,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            **kw,
        )
        return optimize_for_ort(target, work / f"{name}-o.onnx")

    fused = fuse_attention(raw, work / "teacher-fused.onnx", 12, 384)
    assert fused is not None
    variants = {
        "FP32": optimize_for_ort(raw, work / "fp32-o.onnx"),
        "INT8 u8s8 (autotune)": optimize_for_ort(
            quantize_onnx(raw, work / "s8.onnx", 8), work / "s8-o.onnx"
        ),
        "INT8 u8s8 reduce_range": dynamic(
            raw, "rr", ["MatMul", "Gather"], weight_type=QuantType.QInt8, reduce_range=True
        ),
        "INT8 u8u8": dynamic(raw, "u8", ["MatMul", "Gather"], weight_type=QuantType.QUInt8),
        "INT8 fused (QAttention)": dynamic(
            fused.path,
            "qattn",
            ["MatMul", "Gather", "Attention", "EmbedLayerNormalization"],
            weight_type=QuantType.QInt8,
        ),
    }
    ms = round_robin({k: session(v) for k, v in variants.items()}, feed)
    rows = []
    for name, path in variants.items():
        scores = evaluate_onnx(path, bench.splits.validation, 2)
        rows.append({"variant": name, "accuracy": scores.accuracy, "median_ms": ms[name]})
        print(rows[-1], flush=True)
    return rows


def in_blocks(sessions: dict[str, object], feed: dict, rounds: int = 3) -> dict[str, float]:
    """Median ms of each session timed in consecutive blocks, the blocks rotated ``rounds``
    times: with several threads, an idle session's spinning pool would slow the others'
    calls if they were interleaved call by call."""
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, s in sessions.items():
            for _ in range(WARMUP):
                s.run(None, feed)
            for _ in range(RUNS // rounds):
                start = time.perf_counter()
                s.run(None, feed)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def session_rows(paths: dict[str, Path], work: Path, feed: dict) -> list[dict]:
    from autotune.compression.quantize import quantize_onnx

    teacher, student = paths["teacher"], paths["student L2-H12-F0.5"]
    files = {
        "teacher FP32": teacher,
        "teacher INT8": quantize_onnx(teacher, work / "t8.onnx", 8),
        "student L2 INT8": quantize_onnx(student, work / "s28.onnx", 8),
    }
    rows = []
    for threads in (1, 2):
        sessions = {
            (name, level): session(path, threads, level)
            for name, path in files.items()
            for level in LEVELS
        }
        ms = in_blocks({f"{n}|{lv}": s for (n, lv), s in sessions.items()}, feed)
        for name, level in sessions:
            rows.append({"model": name, "threads": threads, "level": level,
                         "median_ms": ms[f"{name}|{level}"]})  # fmt: skip
    print(rows, flush=True)
    return rows


def run(args: argparse.Namespace) -> None:
    import tempfile

    from autotune import api
    from autotune.context import prepare_bench

    spec = api.load_spec(args.spec)
    bench = prepare_bench(spec, args.data_dir, args.models_dir, sequence_length=LENGTH)
    vocab = bench.teacher.model.config.vocab_size
    feed = {
        "input_ids": np.random.default_rng(0).integers(1000, vocab, (1, LENGTH)),
        "attention_mask": np.ones((1, LENGTH), dtype=np.int64),
    }
    out = RESULTS / f"ort_variants-{bench.hardware['id']}.json"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        paths = models(bench, work)
        result = {"hardware": bench.hardware, "runs": RUNS, "sequence_length": LENGTH}
        if args.session_only:
            result = json.loads(out.read_text())
        else:
            result["fusion"] = fused_rows(paths, work, feed)
            result["int8"] = int8_rows(bench, paths["teacher"], work, feed)
        result["session"] = session_rows(paths, work, feed)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    print(markdown(result))


def markdown(r: dict) -> str:
    hw = r["hardware"]
    lines = [f"Machine `{hw['id']}`: {hw['cpu']}, ISA {', '.join(hw['isa'])}, ORT "
             f"{hw['onnxruntime']}; batch 1, seq {r['sequence_length']}, median of "
             f"{r['runs']} interleaved calls.", "",
             "| model | attention ops fused | max logit diff | unfused ms | fused ms "
             "| fused/unfused |", "|---|---|---|---|---|---|"]  # fmt: skip
    for row in r["fusion"]:
        if row["fused_ops"]:
            ratio = row["fused_ms"] / row["unfused_ms"]
            diff, ms = row["max_logit_diff"], (row["unfused_ms"], row["fused_ms"])
            lines.append(f"| {row['model']} | {row['fused_ops']} | {diff:.1e} "
                         f"| {ms[0]:.2f} | {ms[1]:.2f} | {ratio:.3f} |")  # fmt: skip
        else:
            lines.append(f"| {row['model']} | 0 (no match) | - | - | - | - |")
    lines += ["", "| teacher variant | SST-2 accuracy | median ms |", "|---|---|---|"]
    for row in r["int8"]:
        lines.append(f"| {row['variant']} | {row['accuracy']:.4f} | {row['median_ms']:.2f} |")
    lines += ["", "| model | threads | BASIC ms | EXTENDED ms | ALL ms |", "|---|---|---|---|---|"]
    cells: dict = {}
    for row in r["session"]:
        cells.setdefault((row["model"], row["threads"]), {})[row["level"]] = row["median_ms"]
    for (model, threads), ms in cells.items():
        lines.append(
            f"| {model} | {threads} | " + " | ".join(f"{ms[lv]:.2f}" for lv in LEVELS) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    machine_bench.main(__doc__, "ort_variants", run, markdown, "--session-only")


if __name__ == "__main__":
    main()
