"""Benchmark of the search service: one study per sampler on SST-2 with the shipped teacher.

For each sampler (default TPE, and random search with the same seed and budget) it runs a
study of N trials, then prints: the Pareto front, the best speedup vs the teacher in PyTorch
FP32 at <= 1.0 point accuracy loss, the hypervolume after 10/20/40 trials (from the stored
front snapshots), time per trial by stage, time saved by latency-first stopping and student
reuse, and the service's own overhead (sampler + database + front bookkeeping).

    python benchmarks/study.py --trials 40 --max-train-samples 8000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import autotune
from autotune.spec import load_spec
from autotune.store.db import session_scope, storage_url
from autotune.store.models import FrontSnapshot

CHECKPOINTS = (10, 20, 40)


def study_spec(base: str, sampler: str, trials: int, samples: int, seq: int, methods: list[str]):
    spec = load_spec(base)
    data = spec.model_dump()
    data["name"] = f"bench-{sampler}-{trials}x{samples}-seq{seq}-{'-'.join(methods)}"
    data["space"]["int8_methods"] = methods
    data["search"] = {"sampler": sampler, "n_trials": trials, "enqueue": []}
    data["training"]["max_train_samples"] = samples
    data["latency"]["sequence_length"] = seq
    data["constraints"] = {}
    return type(spec).model_validate(data)


def run(args: argparse.Namespace, sampler: str) -> dict:
    spec = study_spec(
        args.spec, sampler, args.trials, args.max_train_samples, args.seq, args.int8_methods
    )
    started = time.perf_counter()
    study = autotune.run_study(
        spec, args.storage, data_dir=args.data_dir, models_dir=args.models_dir
    )
    wall = time.perf_counter() - started
    rows = autotune.api.study_trials(spec.name, args.storage)
    front = autotune.pareto_front(spec.name, args.storage)
    base = front.baselines
    complete = [r for r in rows if r.status == "complete"]
    within = [r for r in complete if r.metrics["accuracy"] >= base["accuracy"] - 0.01]
    with session_scope(storage_url(args.storage)) as session:
        history = FrontSnapshot.history(session, spec.name, front.hardware_id)
    by_checkpoint = {
        k: max((s.hypervolume for s in history if s.trials_seen <= k), default=0.0)
        for k in CHECKPOINTS
    }
    stages: dict[str, list[float]] = {}
    for r in complete:
        for stage, seconds in r.metrics["stage_seconds"].items():
            stages.setdefault(stage, []).append(seconds)
    objective = sum(t.user_attrs.get("objective_seconds", 0.0) for t in study.trials)
    full_cost = (
        statistics.median([sum(r.metrics["stage_seconds"].values()) for r in complete])
        if complete
        else 0.0
    )
    stopped = [r for r in rows if r.status == "stopped"]
    return {
        "study": spec.name,
        "wall_s": wall,
        "trials": len(rows),
        "complete": len(complete),
        "stopped": len(stopped),
        "failed": sum(r.status == "failed" for r in rows),
        "baselines": base,
        "front": [m.to_json() for m in front.members],
        "best_speedup_within_1pt": max(
            (r.metrics["speedup_vs_teacher_pytorch"] for r in within), default=None
        ),
        "best_within_1pt": max(
            within, key=lambda r: r.metrics["speedup_vs_teacher_pytorch"]
        ).to_json()
        if within
        else None,
        "hypervolume": by_checkpoint,
        "stage_mean_s": {k: statistics.mean(v) for k, v in stages.items()},
        "saved_by_reuse_s": sum(r.metrics.get("distill_seconds_saved", 0.0) for r in complete),
        "students_reused": sum(bool(r.metrics.get("student_reused")) for r in complete),
        "saved_by_stopping_s_estimate": len(stopped) * full_cost,
        "service_overhead_share": (wall - objective) / wall if wall and objective else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="studies/sst2-minilm.toml")
    parser.add_argument("--storage", default="sqlite:///benchmarks/results/study.db")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--models-dir", default="../shared/models")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--max-train-samples", type=int, default=8000)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    # QAT trials train through NNCF's fake-quantizer hooks, many times slower per step.
    parser.add_argument("--int8-methods", nargs="+", default=["dynamic", "qat"])
    parser.add_argument("--results", default="benchmarks/results/study.json")
    args = parser.parse_args()
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    results = {}
    for sampler in args.samplers:  # written after each study, so a partial run is kept
        results[sampler] = run(args, sampler)
        Path(args.results).write_text(json.dumps(results, indent=1, default=str))
    print(
        json.dumps(
            {
                k: {
                    x: v[x]
                    for x in ("hypervolume", "best_speedup_within_1pt", "service_overhead_share")
                }
                for k, v in results.items()
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
