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

import optuna

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
    autotune.run_study(spec, args.storage, data_dir=args.data_dir, models_dir=args.models_dir)
    study = optuna.load_study(study_name=spec.name, storage=storage_url(args.storage))
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


def savings(args: argparse.Namespace) -> dict:
    """Both "pay for nothing twice" mechanisms, made to fire on purpose.

    Three enqueued configurations share everything but ``bits`` (two should reuse the first's
    trained student); two enqueued 6-layer FP32 configurations break a latency budget (they
    should stop at the probe); then the sampler proposes the rest.
    """
    spec = load_spec(args.spec)
    data = spec.model_dump()
    data["name"] = f"bench-savings-{args.max_train_samples}-seq{args.seq}"
    data["training"]["max_train_samples"] = args.max_train_samples
    data["latency"]["sequence_length"] = args.seq
    data["constraints"] = {"max_latency_ms": args.savings_budget_ms}
    data["space"]["int8_methods"] = ["dynamic"]
    data["space"]["temperature"] = {"min": 1.0, "max": 8.0, "step": 1.0}
    data["space"]["alpha"] = {"min": 0.0, "max": 1.0, "step": 0.25}
    shared = {
        "layers": 3,
        "heads": 12,
        "ffn_fraction": 0.5,
        "sparsity": 0.0,
        "temperature": 3.0,
        "alpha": 0.75,
    }
    big = {
        "layers": 6,
        "heads": 12,
        "ffn_fraction": 1.0,
        "sparsity": 0.0,
        "bits": 32,
        "temperature": 2.0,
        "alpha": 0.5,
    }
    data["search"] = {
        "sampler": "tpe",
        "n_trials": 10,
        "enqueue": [
            {**shared, "bits": 32},
            {**shared, "bits": 8},
            {**shared, "bits": 4},
            big,
            {**big, "alpha": 0.25},
        ],
    }
    spec = type(spec).model_validate(data)
    started = time.perf_counter()
    autotune.run_study(spec, args.storage, data_dir=args.data_dir, models_dir=args.models_dir)
    wall = time.perf_counter() - started
    rows = autotune.api.study_trials(spec.name, args.storage)
    complete = [r for r in rows if r.status == "complete"]
    stopped = [r for r in rows if r.status == "stopped"]
    trained = [r for r in complete if not r.metrics.get("student_reused")]
    full = statistics.median(sum(r.metrics["stage_seconds"].values()) for r in trained)
    return {
        "study": spec.name,
        "wall_s": wall,
        "trials": [
            (
                r.number,
                r.status,
                r.config.get("layers"),
                r.config.get("bits"),
                r.seconds,
                r.metrics.get("student_reused"),
                r.reason,
            )
            for r in rows
        ],
        "reused": sum(bool(r.metrics.get("student_reused")) for r in complete),
        "saved_by_reuse_s": sum(r.metrics.get("distill_seconds_saved", 0.0) for r in complete),
        "stopped": len(stopped),
        "stopped_spent_s": sum(r.seconds for r in stopped),
        "median_trained_trial_s": full,
        "probes_cached": sum(bool(r.metrics.get("probe_cached")) for r in complete),
    }


def overhead(storage: str, study_name: str) -> dict:
    """The service's share of a study's optimize() time, from the stored trials.

    Between two objectives Optuna asks the sampler, writes the trial and its attributes, and
    runs the callbacks (autotune's trial record and front snapshot): the gaps between one
    trial's end and the next one's start, plus the sampler's own time, measured by asking it
    for one more trial on a copy of the finished study.
    """
    import optuna

    from autotune.search.space import suggest_config
    from autotune.search.study import make_sampler

    study = optuna.load_study(study_name=study_name, storage=storage_url(storage))
    trials = sorted((t for t in study.trials if t.datetime_complete), key=lambda t: t.number)
    total = (trials[-1].datetime_complete - trials[0].datetime_start).total_seconds()
    objective = sum(t.user_attrs.get("objective_seconds", 0.0) for t in trials)
    gaps = total - sum(t.duration.total_seconds() for t in trials)
    framing = sum(t.duration.total_seconds() for t in trials) - objective
    from autotune.spec import StudySpec
    from autotune.store.reads import study_record

    spec = StudySpec.model_validate(study_record(storage_url(storage), study_name).spec)
    replay = optuna.create_study(directions=study.directions, sampler=make_sampler(spec))
    replay.add_trials(study.trials)
    started = time.perf_counter()
    suggest_config(replay.ask(), spec.space, teacher_layers=6, teacher_heads=12)
    sample_s = time.perf_counter() - started
    return {
        "optimize_s": total,
        "objective_s": objective,
        "between_trials_s": gaps + framing,
        "sampler_s_per_trial_at_end": sample_s,
        "share": (gaps + framing + sample_s * len(trials)) / total,
    }


def markdown(results: dict) -> str:
    """Front of the first sampler's study, then the sampler comparison and the time budget."""
    first = next(iter(results.values()))
    base = first["baselines"]
    lines = [
        f"Front of `{first['study']}` (teacher: {base['accuracy']:.4f} accuracy, "
        f"{base['pytorch_fp32_ms']:.2f} ms PyTorch FP32, {base['ort_fp32_ms']:.2f} ms ORT FP32 "
        f"at sequence length {base['sequence_length']}):",
        "",
        "| trial | configuration | T | alpha | accuracy | latency ms | vs PyTorch | vs ORT "
        "| size MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in first["front"]:
        c, x = m["config"], m["metrics"]
        label = f"L{c['layers']}-H{c['heads']}-F{c['ffn_fraction']:g}-S{c['sparsity']:g}-" + (
            "FP32" if c["bits"] == 32 else f"INT{c['bits']}"
        )
        lines.append(
            f"| {m['number']} | {label} | {c['temperature']:.2f} | {c['alpha']:.2f} "
            f"| {x['accuracy']:.4f} | {x['latency_ms']:.2f} "
            f"| {x['speedup_vs_teacher_pytorch']:.1f}x | {x['speedup_vs_teacher_ort']:.1f}x "
            f"| {x['size_mb']:.1f} |"
        )
    lines += [
        "",
        "| sampler | trials (complete/stopped/failed) | HV @10 | HV @20 | HV @40 "
        "| best speedup vs PyTorch within 1.0 pt | study wall | service overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sampler, r in results.items():
        hv = {str(k): v for k, v in r["hypervolume"].items()}
        best = r["best_speedup_within_1pt"]
        share = r.get("overhead", {}).get("share", r["service_overhead_share"])
        lines.append(
            f"| {sampler} | {r['trials']} ({r['complete']}/{r['stopped']}/{r['failed']}) "
            f"| {hv['10']:.3f} | {hv['20']:.3f} | {hv['40']:.3f} "
            f"| {f'{best:.1f}x' if best else 'none'} | {r['wall_s'] / 60:.0f} min "
            f"| {f'{share:.1%}' if share is not None else '-'} |"
        )
    lines += [
        "",
        "| sampler | mean seconds per completed trial, by stage | reused students "
        "| distillation saved by reuse | saved by latency-first stopping (est.) |",
        "|---|---|---|---|---|",
    ]
    for sampler, r in results.items():
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_mean_s"].items())
        lines.append(
            f"| {sampler} | {stages} | {r['students_reused']} | {r['saved_by_reuse_s']:.0f} s "
            f"| {r['saved_by_stopping_s_estimate']:.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="studies/sst2-minilm-logit-kd.toml")
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
    parser.add_argument("--table", action="store_true", help="only print the stored results")
    parser.add_argument("--savings", action="store_true", help="run the savings study only")
    parser.add_argument("--savings-budget-ms", type=float, default=6.0)
    args = parser.parse_args()
    if args.table:
        results = json.loads(Path(args.results).read_text())
        for r in results.values():
            r["overhead"] = overhead(args.storage, r["study"])
        Path(args.results).write_text(json.dumps(results, indent=1, default=str))
        print(markdown(results))
        print(json.dumps({k: v["overhead"] for k, v in results.items()}, indent=1))
        return
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    if args.savings:
        result = savings(args)
        Path(args.results).with_name("savings.json").write_text(
            json.dumps(result, indent=1, default=str)
        )
        print(json.dumps(result, indent=1, default=str))
        return
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
