"""Benchmark: do autotune's latency windows give the speedup a model shows on its own?

autotune times a candidate call by call against the teacher reference (ORT FP32), in sessions
that do not spin, adding calls until the speedup's 95% interval is within +-1.5%
(``latency.precision``). A deployed model runs alone, in a default (spinning) session. This
script compares, per model and thread count, the speedup over the teacher from

- ``autotune``: ``measure_interleaved`` as a trial runs it (three windows: their spread, and
  how many calls each needed);
- ``alone``: each model in its own default session, timed in blocks of consecutive calls,
  the blocks alternating between the two models (five rounds), which is what a user sees.

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
import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
LENGTH, WINDOWS, ROUNDS, BLOCK, WARMUP = 64, 3, 5, 100, 20
THREADS = (1, 2)


def default_session(path: Path, threads: int):
    """What a user deploys: ORT's defaults (a spinning pool) but for the thread count."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def alone(candidate: Path, reference: Path, threads: int, feed: dict) -> float:
    """Speedup of ``candidate`` over ``reference``, each timed alone in blocks of calls."""
    sessions = {"c": default_session(candidate, threads), "r": default_session(reference, threads)}
    times: dict[str, list[float]] = {"c": [], "r": []}
    for _ in range(ROUNDS):
        for name, s in sessions.items():
            for _ in range(WARMUP):
                s.run(None, feed)
            for _ in range(BLOCK):
                start = time.perf_counter()
                s.run(None, feed)
                times[name].append((time.perf_counter() - start) * 1e3)
    return float(np.median(times["r"]) / np.median(times["c"]))


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


def row(name: str, path: Path, bench, threads: int, feed: dict) -> dict:
    from autotune.compression.latency import measure_interleaved

    settings = replace(bench.settings, threads=threads, busy_retries=0)
    vocab = bench.teacher.model.config.vocab_size
    windows = []
    for _ in range(WINDOWS):
        r = measure_interleaved(path, bench.reference, settings, vocab)
        windows.append({"speedup": r.speedup_vs_reference, "runs": r.runs,
                        "precision": r.precision, "reliable": r.reliable,
                        "candidate_ms": r.median_ms, "foreign_cores": r.foreign_cores})  # fmt: skip
    result = {"model": name, "threads": threads, "windows": windows,
              "alone": alone(path, bench.reference, threads, feed)}  # fmt: skip
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
                            "max_runs": bench.settings.max_runs}}  # fmt: skip
    rows = result.setdefault("rows", [])
    with tempfile.TemporaryDirectory() as scratch:
        paths = models(bench, Path(scratch))
        for threads in THREADS:
            for name, path in paths.items():
                if any(r["model"] == name and r["threads"] == threads for r in rows):
                    continue
                rows.append(row(name, path, bench, threads, feed))
                out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    print(markdown(result))


def markdown(r: dict) -> str:
    hw = r["hardware"]
    first = next(iter(hw.values()))
    s = r["settings"]
    prints = ", ".join(f"{h['id']} at {t} thread(s)" for t, h in hw.items())
    lines = [f"Machine {first['cpu']}, ISA {', '.join(first['isa'])}, ORT {first['onnxruntime']} "
             f"(fingerprints {prints}); "
             f"batch 1, seq {r['sequence_length']}. autotune: {WINDOWS} windows of "
             f"`measure_interleaved` ({s['runs']} calls, then more until +-{s['precision']:.1%}, "
             f"at most {s['max_runs']}); alone: default sessions, {ROUNDS} alternating blocks "
             f"of {BLOCK} calls per model.", "",
             "| model | threads | candidate ms | speedup alone | autotune windows | "
             "calls per window | autotune median vs alone |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        speedups = [w["speedup"] for w in row["windows"]]
        mid = float(np.median(speedups))
        lines.append(
            f"| {row['model']} | {row['threads']} | "
            f"{np.median([w['candidate_ms'] for w in row['windows']]):.2f} | "
            f"{row['alone']:.2f}x | {min(speedups):.2f}-{max(speedups):.2f}x | "
            f"{'/'.join(str(w['runs']) for w in row['windows'])} | "
            f"{mid / row['alone'] - 1:+.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=Path("studies/sst2-minilm.toml"))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    if args.table:
        for path in sorted(RESULTS.glob("timing_methods-*.json")):
            print(markdown(json.loads(path.read_text())), "\n")
        return
    run(args)


if __name__ == "__main__":
    main()
