"""Benchmark: do autotune's latency windows give the speedup a model shows on its own?

autotune times a candidate against the teacher reference (ORT FP32) in one window, the two
alternating, in sessions that do not spin. A deployed model runs alone, in a default
(spinning) session. This script compares, per model and thread count, the speedup over the
teacher from

- ``autotune``: ``measure_interleaved`` as a trial runs it: the two models in alternating
  blocks of 10 calls, each after 2 untimed ones (``latency.block``), 100 calls and then more
  until the speedup's 95% interval is within +-1.5% (three windows: their spread, and how
  many calls each needed);
- ``call by call``: the same with ``block = 1``, autotune's timing before this benchmark;
- ``alone``: each model in its own default session, in alternating blocks of 50 calls after
  10 untimed ones, 500 per model: what a model serving back-to-back requests sees.

Models: the teacher in INT8 and students built from it as autotune ships them (exported,
optimised, INT8 where named), from about half the teacher's cost down to about a twentieth.
They are untrained: latency depends on their shapes only.

    python benchmarks/timing_methods.py --data-dir ../shared/data --models-dir ../shared/models
    python benchmarks/timing_methods.py --table     # print every stored machine's results

Results: ``benchmarks/results/timing_methods-<fingerprint>.json``, written after every row;
a rerun skips the rows it has.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import machine_bench  # benchmarks/, on the path when run as a script
import numpy as np

RESULTS = machine_bench.RESULTS
LENGTH, WINDOWS, ROUNDS, BLOCK, WARMUP = 64, 3, 10, 50, 10
THREADS = (1, 2)


def default_session(path: Path, threads: int):
    """What a user deploys: ORT's defaults (a spinning pool) but for the thread count."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def in_blocks(candidate, reference, feed: dict, block: int, warm: int, calls: int) -> dict:
    """Medians of two sessions timed in alternating blocks: ``warm`` untimed calls (the
    model's weights back in cache), then ``block`` timed ones, until ``calls`` per model."""
    times: dict[str, list[float]] = {"candidate_ms": [], "reference_ms": []}
    while len(times["candidate_ms"]) < calls:
        for name, s in (("candidate_ms", candidate), ("reference_ms", reference)):
            for _ in range(warm):
                s.run(None, feed)
            for _ in range(block):
                start = time.perf_counter()
                s.run(None, feed)
                times[name].append((time.perf_counter() - start) * 1e3)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    return medians | {"speedup": medians["reference_ms"] / medians["candidate_ms"]}


def models(bench, work: Path) -> dict[str, Path]:
    """The teacher in INT8 and four students, optimised as a trial deploys them."""
    from autotune.compression.export import export_onnx, optimize_for_ort
    from autotune.compression.quantize import quantize_onnx
    from autotune.compression.student import StudentPlan, build_student

    teacher = bench.teacher.model
    width = teacher.config.intermediate_size

    def plan(layers: tuple[int, ...], heads: int, ffn: float) -> StudentPlan:
        kept = tuple(range(int(width * ffn)))
        return StudentPlan(layers, (tuple(range(heads)),) * len(layers), (kept,) * len(layers))

    students = {
        "student L4-H12-F0.5 FP32": (plan((0, 2, 3, 5), 12, 0.5), False),
        "student L3-H8-F0.5 INT8": (plan((0, 3, 5), 8, 0.5), True),
        "student L2-H6-F0.25 INT8": (plan((0, 5), 6, 0.25), True),
        "student L1-H4-F0.25 INT8": (plan((5,), 4, 0.25), True),
    }
    raw = {"teacher INT8": (teacher, True)} | {
        name: (build_student(teacher, p), int8) for name, (p, int8) in students.items()
    }
    paths = {}
    for i, (name, (model, int8)) in enumerate(raw.items()):
        path = export_onnx(model, work / f"{i}.onnx")
        if int8:
            path = quantize_onnx(path, work / f"{i}-q.onnx", 8)
        paths[name] = optimize_for_ort(path, work / f"{i}-o.onnx")
    return paths


def window(path: Path, bench, settings) -> dict:
    from autotune.compression.latency import measure_interleaved

    r = measure_interleaved(path, bench.reference, settings, bench.teacher.model.config.vocab_size)
    return {"speedup": r.speedup_vs_reference, "runs": r.runs, "precision": r.precision,
            "reliable": r.reliable, "candidate_ms": r.median_ms,
            "reference_ms": r.reference_median_ms, "foreign_cores": r.foreign_cores}  # fmt: skip


def row(name: str, path: Path, bench, threads: int, feed: dict) -> dict:
    """Three windows of each of autotune's two timings, alternated so that drift hits both,
    then the models alone."""
    settings = replace(bench.settings, threads=threads, busy_retries=0)
    windows, calls = [], []
    for _ in range(WINDOWS):
        windows.append(window(path, bench, settings))
        calls.append(window(path, bench, replace(settings, block=1)))
    solo = (default_session(path, threads), default_session(bench.reference, threads))
    result = {"model": name, "threads": threads, "windows": windows, "call_by_call": calls,
              "alone": in_blocks(*solo, feed, BLOCK, WARMUP, ROUNDS * BLOCK)}  # fmt: skip
    print(result, flush=True)
    return result


def session_effect(path: Path, bench, windows: int = 6) -> dict:
    """Speedups of ``windows`` windows that reuse one pair of sessions, and of as many that
    each load fresh sessions (as every trial does): is the spread between windows the
    machine's, or the sessions' (where their buffers landed in memory)?"""
    from autotune.compression.latency import (
        _interleaved,
        feed_for,
        fixed_inputs,
        latency_session,
        measure_interleaved,
    )

    settings = replace(bench.settings, precision=0, runs=300, busy_retries=0)
    vocab = bench.teacher.model.config.vocab_size
    cand, ref = latency_session(path, 1), latency_session(bench.reference, 1)
    feed = feed_for(cand, fixed_inputs(settings, vocab))
    same, fresh = [], []
    for _ in range(windows):  # alternated, so that slow drift hits both kinds alike
        same.append(_interleaved(lambda: cand.run(None, feed), lambda: ref.run(None, feed),
                                 settings).speedup_vs_reference)  # fmt: skip
        fresh.append(measure_interleaved(path, bench.reference, settings, vocab)
                     .speedup_vs_reference)  # fmt: skip
    result = {"runs": settings.runs, "same_sessions": same, "fresh_sessions": fresh}
    print(result, flush=True)
    return result


def run(args: argparse.Namespace) -> None:
    import tempfile

    from autotune import api
    from autotune.context import prepare_bench
    from autotune.hardware import fingerprint

    spec = api.load_spec(args.spec)
    bench = prepare_bench(spec, args.data_dir, args.models_dir, sequence_length=LENGTH)
    vocab = bench.teacher.model.config.vocab_size
    feed = {
        "input_ids": np.random.default_rng(0).integers(1000, vocab, (1, LENGTH)),
        "attention_mask": np.ones((1, LENGTH), dtype=np.int64),
    }
    out = RESULTS / f"timing_methods-{bench.hardware['id']}.json"
    result = json.loads(out.read_text()) if out.exists() else {}
    result |= {"hardware": {t: fingerprint(t) for t in THREADS}, "sequence_length": LENGTH,
               "settings": {"runs": bench.settings.runs, "precision": bench.settings.precision,
                            "max_runs": bench.settings.max_runs,
                            "block": bench.settings.block}}  # fmt: skip
    rows = result.setdefault("rows", [])
    with tempfile.TemporaryDirectory() as scratch:
        paths = models(bench, Path(scratch))
        for threads in THREADS:
            for name, path in paths.items():
                if any(r["model"] == name and r["threads"] == threads for r in rows):
                    continue
                rows.append(row(name, path, bench, threads, feed))
                out.write_text(json.dumps(result, indent=1))
        if "sessions" not in result:
            name = "student L2-H6-F0.25 INT8"
            result["sessions"] = {"model": name, **session_effect(paths[name], bench)}
            out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    print(markdown(result))


def spread(windows: list[dict], alone: dict) -> str:
    """Range of the windows' speedups, and their median against the model alone."""
    v = [w["speedup"] for w in windows]
    return f"{min(v):.2f}-{max(v):.2f}x ({float(np.median(v)) / alone['speedup'] - 1:+.1%})"


def markdown(r: dict) -> str:
    hw = r["hardware"]
    first = next(iter(hw.values()))
    s = r["settings"]
    prints = ", ".join(f"{h['id']} at {t} thread(s)" for t, h in hw.items())
    lines = [f"Machine {first['cpu']}, ISA {', '.join(first['isa'])}, ORT {first['onnxruntime']} "
             f"(fingerprints {prints}); batch 1, seq {r['sequence_length']}. Speedup over the "
             f"teacher in ORT FP32. autotune: {WINDOWS} windows of `measure_interleaved` "
             f"(blocks of {s.get('block', 10)}, {s['runs']} calls, then more until "
             f"+-{s['precision']:.1%}, at most {s['max_runs']}), and as many call by call; "
             f"alone: default sessions, {ROUNDS} alternating blocks of {BLOCK} calls.", "",
             "| model | threads | ms alone (teacher) | speedup alone | autotune (blocks) | "
             "call by call | calls per autotune window | autotune ms (teacher) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        solo = row["alone"]

        ms = [np.median([w[k] for w in row["windows"]]) for k in ("candidate_ms", "reference_ms")]
        lines.append(
            f"| {row['model']} | {row['threads']} | "
            f"{solo['candidate_ms']:.2f} ({solo['reference_ms']:.2f}) | {solo['speedup']:.2f}x | "
            f"{spread(row['windows'], solo)} | {spread(row['call_by_call'], solo)} | "
            f"{'/'.join(str(w['runs']) for w in row['windows'])} | {ms[0]:.2f} ({ms[1]:.2f}) |"
        )
    if "sessions" in r:
        e = r["sessions"]
        lines += ["", f"Spread between windows, {e['model']}, 1 thread, {e['runs']} calls per "
                  "window (fixed), the two kinds alternated:", "",
                  "| windows | speedups | range |", "|---|---|---|"]  # fmt: skip
        for kind in ("same_sessions", "fresh_sessions"):
            v = e[kind]
            lines.append(f"| {kind.replace('_', ' ')} | "
                         f"{', '.join(f'{x:.2f}' for x in v)} | "
                         f"{max(v) / min(v) - 1:.1%} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    machine_bench.main(__doc__, "timing_methods", run, markdown)


if __name__ == "__main__":
    main()
