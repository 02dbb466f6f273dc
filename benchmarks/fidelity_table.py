"""A tabular benchmark for multi-fidelity search on SST-2, and search strategies replayed on it.

**Build** (default): a grid of student configurations (layers x heads x FFN width x KD
settings x bits) on SST-2 with the shipped teacher. Each grid *run* (a shape and KD setting)
trains once along the rung schedule with autotune's own resumable training
(``compression.distill`` with ``RungTraining``): at every rung's checkpoint the student is
exported at each bit width and scored in ONNX Runtime on all 872 validation sentences, and
the training segment's seconds are recorded. Latency is timed once per architecture and bit
width (it does not depend on training). Every finished run is written to the results file at
once, so an interrupted build resumes where it stopped.

**Replay** (``--replay``): random search, single-fidelity TPE, and multi-fidelity (MO-ASHA,
autotune's promotion rule) with random and with TPE proposals, on the table's three rungs and
on two of them, each driven by Optuna against the table over many seeds, one worker. The time
axis is wall seconds of a quiet build: the training segments a trial runs, plus (by default)
what every trial pays besides training (export, validation scoring, one latency timing).
Reports the hypervolume of the top-rung front against that time and the time to reach 95% of
the table's best hypervolume, for two reference points (see ``references``).

    python benchmarks/fidelity_table.py --data-dir ../shared/data --models-dir ../shared/models
    python benchmarks/fidelity_table.py --replay --seeds 20
    python benchmarks/fidelity_table.py --table
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
GRID = {
    "layers": [1, 2, 3],
    "heads": [6, 12],
    "ffn_fraction": [0.5, 1.0],
    "kd": ["T2-a0.5", "T4-a0.9"],
}
KD = {"T2-a0.5": (2.0, 0.5), "T4-a0.9": (4.0, 0.9)}
BITS = [32, 8, 4]
# The table's recipe: one stage of logit KD on the original sentences with the shipped
# spec's batch, learning rate and frozen embeddings, over TOP_STEPS steps (see --table).
BATCH, TOP_STEPS, ETA, MIN_EXAMPLES = 64, 384, 3, 2560
STRATEGIES = ["random", "tpe", "mf-random", "mf-tpe", "mf-random-2", "mf-tpe-2", "mf-tpe-2-eta9"]
# The table's checkpoints each strategy uses as rungs: "-2" skips the middle checkpoint (two
# rungs, 2,752 and 24,576 examples) and still promotes the top third; "-eta9" promotes the
# top ninth: `eta = 9, promote = 3` and `eta = 9` in a spec.
LEVELS = {"mf-random-2": [0, 2], "mf-tpe-2": [0, 2], "mf-tpe-2-eta9": [0, 2]}
PROMOTE_ETA = {"mf-tpe-2-eta9": 9}
COSTS = ["with_overhead", "training_only"]


def runs() -> list[dict[str, Any]]:
    """Every training run of the grid, in a fixed shuffled order (a partial table still
    covers the grid's corners)."""
    keys = list(GRID)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*GRID.values())]
    order = np.random.default_rng(0).permutation(len(combos))
    return [combos[i] for i in order]


def run_key(run: dict[str, Any]) -> str:
    return "L{layers}-H{heads}-F{ffn_fraction}-{kd}".format(**run)


def table_spec(spec_path: Path):
    from autotune.spec import load_spec

    spec = load_spec(spec_path)
    per_epoch = -(-67349 // BATCH)  # the schedule's steps per epoch (at most; see batching)
    training = spec.training.model_copy(
        update={"epochs": TOP_STEPS / per_epoch, "batch_size": BATCH, "freeze_embeddings": True}
    )
    distillation = spec.distillation.model_copy(
        update={"hidden_weight": 0.0, "attention_weight": 0.0, "intermediate_epochs": 0.0}
    )
    augmentation = spec.augmentation.model_copy(update={"copies": 0})
    return spec.model_copy(
        update={"training": training, "distillation": distillation, "augmentation": augmentation}
    )


def build(args: argparse.Namespace) -> None:
    from autotune.compression.config import CompressionConfig
    from autotune.compression.distill import recipe_steps
    from autotune.compression.fidelity import rung_plan
    from autotune.context import prepare_study
    from autotune.hardware import fingerprint

    spec = table_spec(args.spec)
    context = prepare_study(spec, args.data_dir, args.models_dir)
    inputs = context.inputs
    steps, logits = recipe_steps(len(inputs.train), inputs.training)
    plan = rung_plan(steps, logits, BATCH, MIN_EXAMPLES, ETA)
    machine = fingerprint(spec.latency.threads)
    path = RESULTS / f"fidelity_table-{machine['id']}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    header = {
        "machine": machine,
        "rungs": plan.to_json(),
        "recipe": "logit KD, original sentences, batch 64, lr 2e-4, embeddings frozen",
        "train_rows": len(inputs.train),
        "teacher_ort_fp32_ms": context.baselines.ort_fp32_ms,
        "teacher_pytorch_fp32_ms": context.baselines.pytorch_fp32_ms,
    }
    if results and results["header"]["rungs"] != header["rungs"]:
        raise SystemExit(f"{path} holds another rung schedule; move it away to start afresh")
    results.setdefault("header", header)
    results.setdefault("runs", {})
    results.setdefault("latency", {})
    print(f"rungs (steps): {plan.steps}; {len(runs())} runs -> {path}", flush=True)
    for run in runs():
        key = run_key(run)
        if key in results["runs"]:
            continue
        temperature, alpha = KD[run["kd"]]
        config = CompressionConfig(
            layers=run["layers"],
            heads=run["heads"],
            ffn_fraction=run["ffn_fraction"],
            sparsity=0.0,
            bits=32,
            temperature=temperature,
            alpha=alpha,
        )
        started = time.perf_counter()
        record = train_run(context, config, plan, results["latency"])
        results["runs"][key] = {**run, **record, "wall_s": time.perf_counter() - started}
        path.write_text(json.dumps(results, indent=1) + "\n")
        accuracies = [r["accuracy"]["8"] for r in record["rungs"]]
        seconds = [round(r["train_cpu_s"]) for r in record["rungs"]]
        print(f"{key}: INT8 accuracy per rung {accuracies}, CPU s {seconds}", flush=True)


def train_run(context, config, plan, latency: dict[str, Any]) -> dict[str, Any]:
    """One run along the rungs: train each segment from the last checkpoint, then export and
    score at every bit width; time each architecture and bit width once."""
    from dataclasses import replace

    from autotune.compression import pipeline
    from autotune.compression.distill import distill
    from autotune.compression.evaluate import evaluate_onnx
    from autotune.compression.fidelity import RungTraining
    from autotune.compression.latency import measure_interleaved

    inputs = context.inputs
    student, _, layer_map = pipeline._student(inputs, config)  # as a trial builds it
    vocab = inputs.teacher.config.vocab_size
    names = inputs.validation.input_names
    rungs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = None
        for index, stop in enumerate(plan.steps):
            fresh = copy.deepcopy(student)  # a promoted trial builds its student afresh
            rung = RungTraining(stop, checkpoint, work / f"rung{index}.pt", index)
            cpu, wall = time.process_time(), time.perf_counter()
            distill(
                fresh,
                inputs.train,
                inputs.training,
                teacher_logits=inputs.teacher_logits,
                temperature=config.temperature,
                alpha=config.alpha,
                pad_id=inputs.pad_id,
                teacher=inputs.teacher,
                layer_map=layer_map,
                rung=rung,
            )
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            checkpoint = rung.save_to
            scores, score_s = {}, {}
            for bits in BITS:
                variant = replace(config, bits=bits)
                scoring = time.perf_counter()
                model = pipeline._export_deployable(
                    fresh, variant, names, work / f"e{index}-{bits}"
                )
                scores[str(bits)] = evaluate_onnx(model, inputs.validation).accuracy
                score_s[str(bits)] = time.perf_counter() - scoring
                arch = f"L{config.layers}-H{config.heads}-F{config.ffn_fraction}-b{bits}"
                if arch not in latency:
                    timing = time.perf_counter()
                    timed = measure_interleaved(model, inputs.reference_onnx, inputs.latency, vocab)
                    latency[arch] = {
                        "speedup_vs_teacher_ort": timed.speedup_vs_reference,
                        "median_ms": timed.median_ms,
                        "reliable": timed.reliable,
                        "timing_wall_s": time.perf_counter() - timing,
                    }
            rungs.append(
                {
                    "step": stop,
                    "examples": stop * BATCH,
                    "train_cpu_s": cpu,
                    "train_wall_s": wall,
                    "accuracy": scores,
                    # export + validation scoring: what every trial pays besides training
                    "score_wall_s": score_s,
                }
            )
    return {"rungs": rungs}


def retime(args: argparse.Namespace) -> None:
    """Time every architecture and bit width of the table again, on a quiet machine (the
    build may share the cores with other work; latency does not depend on the weights, so
    an untrained student of the same shape is timed)."""
    from dataclasses import replace

    from autotune.compression import pipeline
    from autotune.compression.config import CompressionConfig
    from autotune.compression.latency import measure_interleaved
    from autotune.context import prepare_study
    from autotune.hardware import fingerprint

    spec = table_spec(args.spec)
    context = prepare_study(spec, args.data_dir, args.models_dir)
    inputs = context.inputs
    path = RESULTS / f"fidelity_table-{fingerprint(spec.latency.threads)['id']}.json"
    results = json.loads(path.read_text())
    names, vocab = inputs.validation.input_names, inputs.teacher.config.vocab_size
    for layers, heads, ffn in itertools.product(
        GRID["layers"], GRID["heads"], GRID["ffn_fraction"]
    ):
        base = CompressionConfig(layers=layers, heads=heads, ffn_fraction=ffn, bits=32)
        student, _, _ = pipeline._student(inputs, base)
        with tempfile.TemporaryDirectory() as tmp:
            for bits in BITS:
                model = pipeline._export_deployable(
                    student, replace(base, bits=bits), names, Path(tmp) / str(bits)
                )
                timed = measure_interleaved(model, inputs.reference_onnx, inputs.latency, vocab)
                results["latency"][f"L{layers}-H{heads}-F{ffn}-b{bits}"] = {
                    "speedup_vs_teacher_ort": timed.speedup_vs_reference,
                    "median_ms": timed.median_ms,
                    "reliable": timed.reliable,
                    "retimed": True,
                }
                print(f"L{layers}-H{heads}-F{ffn}-b{bits}: {timed.speedup_vs_reference:.2f}x")
        path.write_text(json.dumps(results, indent=1) + "\n")


# ----------------------------------------------------------------------------- replay


def load_table(path: Path, overhead: bool) -> dict[str, Any]:
    """The table as replay reads it: per configuration, accuracy and the seconds a trial
    pays at each rung. A trial pays its training segment (wall seconds) and, with
    ``overhead``, what every trial pays besides training: export and validation scoring at
    its bit width (median over the run's rungs) and one latency measurement."""
    data = json.loads(path.read_text())
    table = {}
    for run in data["runs"].values():
        arch = "L{layers}-H{heads}-F{ffn_fraction}".format(**run)
        for bits in BITS:
            latency = data["latency"][f"{arch}-b{bits}"]
            scoring = float(np.median([r["score_wall_s"][str(bits)] for r in run["rungs"]]))
            extra = scoring + latency["timing_wall_s"] if overhead else 0.0
            key = (run["layers"], run["heads"], run["ffn_fraction"], run["kd"], bits)
            table[key] = {
                "accuracy": [r["accuracy"][str(bits)] for r in run["rungs"]],
                "train_s": [r["train_wall_s"] for r in run["rungs"]],
                "overhead_s": extra,
                "relative_latency": 1.0 / latency["speedup_vs_teacher_ort"],
            }
    return {"header": data["header"], "configs": table}


def complete(path: Path) -> bool:
    data = json.loads(path.read_text())
    return len(data["runs"]) == len(runs()) and all(
        "score_wall_s" in r for run in data["runs"].values() for r in run["rungs"]
    )


def references(configs: dict[Any, dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Hypervolume reference points, as (accuracy, relative latency). "table": the table's
    worst top-rung accuracy and slowest configuration, widened by 1% of each range, the usual
    choice in multi-objective HPO benchmarks, so the volume measures differences between the
    table's students. "chance": chance accuracy and the teacher's latency, where most of the
    volume is being better than a coin, which every student is."""
    accuracy = [c["accuracy"][-1] for c in configs.values()]
    latency = [c["relative_latency"] for c in configs.values()]
    margin = 0.01 * (max(accuracy) - min(accuracy)), 0.01 * (max(latency) - min(latency))
    return {
        "table": (min(accuracy) - margin[0], max(latency) + margin[1]),
        "chance": (0.5, 1.0),
    }


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """2-D hypervolume of (accuracy, relative latency) points, accuracy maximised and latency
    minimised, above ``reference``."""
    floor, ceiling = reference
    inside = sorted((-a, r) for a, r in points if a > floor and r < ceiling)
    volume, best_latency = 0.0, ceiling
    for loss, latency in inside:
        if latency < best_latency:
            volume += (-floor - loss) * (best_latency - latency)
            best_latency = latency
    return volume


def hv_curve(events: list[list[float]], reference: tuple[float, float]) -> list[list[float]]:
    """(seconds spent, hypervolume of the top-rung front) after every top-rung result."""
    curve, front = [[0.0, 0.0]], []
    for spent, accuracy, latency in events:
        front.append((accuracy, latency))
        curve.append([spent, hypervolume(front, reference)])
    return curve


def replay(strategy: str, seed: int, table: dict[str, Any], budget_s: float) -> list[list[float]]:
    """One search against the table until ``budget_s`` seconds are spent; every top-rung
    result as (seconds spent, accuracy, relative latency)."""
    import optuna

    from autotune.search import fidelity
    from autotune.search.promotion import promotable

    checkpoints = len(table["header"]["rungs"]["steps"])
    multi = strategy.startswith("mf")
    levels = LEVELS.get(strategy, list(range(checkpoints))) if multi else [checkpoints - 1]
    top, eta = len(levels) - 1, PROMOTE_ETA.get(strategy, ETA)
    if "tpe" in strategy:
        sampler: Any = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=8
        )
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    if multi:
        sampler = fidelity.sampled_at_rung_zero(sampler)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    spent, events = 0.0, []
    promoted: set[tuple[str, int]] = set()
    while spent < budget_s:
        if multi:
            complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            for rung in range(top - 1, -1, -1):
                results = fidelity.rung_results(complete, rung)
                if len(results) < eta:
                    continue
                for index in promotable(fidelity.losses(results, study.directions), eta):
                    source = results[index]
                    key = (source.user_attrs[fidelity.CONFIG_ID], rung + 1)
                    if key not in promoted:
                        promoted.add(key)
                        fidelity.enqueue_promotion(study, source, rung + 1)
        trial = study.ask()
        key = (
            trial.suggest_categorical("layers", GRID["layers"]),
            trial.suggest_categorical("heads", GRID["heads"]),
            trial.suggest_categorical("ffn_fraction", GRID["ffn_fraction"]),
            trial.suggest_categorical("kd", GRID["kd"]),
            trial.suggest_categorical("bits", BITS),
        )
        rung = trial.suggest_int(fidelity.RUNG, 0, top) if multi else top
        entry = table["configs"][key]
        # A resumed trial trains from its lower rung's checkpoint; a trial trained from
        # scratch (sampled, or single-fidelity) trains every segment up to its rung. Each
        # trial pays its export, scoring and latency timing once.
        resumed = multi and rung > 0 and fidelity.RESUME_TRIAL in trial.user_attrs
        start = levels[rung - 1] + 1 if resumed else 0
        spent += sum(entry["train_s"][start : levels[rung] + 1]) + entry["overhead_s"]
        trial.set_user_attr(fidelity.CONFIG_ID, repr(key))
        trial.set_user_attr(fidelity.CHECKPOINT_ARTIFACT, "table")
        accuracy = entry["accuracy"][levels[rung]]
        study.tell(trial, [accuracy, entry["relative_latency"]])
        if rung == top:
            events.append([spent, accuracy, entry["relative_latency"]])
    return events


def run_replay(args: argparse.Namespace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for path in sorted(RESULTS.glob("fidelity_table-*.json")):
        if not complete(path):
            print(f"{path.name}: not a complete table (run the build on its machine); skipped")
            continue
        out: dict[str, Any] = {"table": path.name, "seeds": args.seeds}
        for cost in COSTS:
            table = load_table(path, overhead=cost == "with_overhead")
            configs = table["configs"]
            full = sum(sum(c["train_s"]) + c["overhead_s"] for c in configs.values())
            points = [(c["accuracy"][-1], c["relative_latency"]) for c in configs.values()]
            out[cost] = {
                "budget_s": full,
                "configs": len(configs),
                "references": {
                    name: {"point": ref, "best_hypervolume": hypervolume(points, ref)}
                    for name, ref in references(configs).items()
                },
            }
            for strategy in STRATEGIES:
                out[cost][strategy] = [
                    replay(strategy, seed, table, full) for seed in range(args.seeds)
                ]
                print(f"{path.name} {cost} {strategy}: {args.seeds} seeds", flush=True)
        target = RESULTS / path.name.replace("fidelity_table-", "fidelity_replay-")
        target.write_text(json.dumps(out) + "\n")
        print(replay_markdown(out))


def hv_at(curve: list[list[float]], seconds: float) -> float:
    reached = [hv for spent, hv in curve if spent <= seconds]
    return reached[-1] if reached else 0.0


def time_to(curve: list[list[float]], level: float) -> float:
    return next((spent for spent, hv in curve if hv >= level), float("inf"))


def _times_to_95(out: dict[str, Any], cost: str, reference: str, strategy: str) -> np.ndarray:
    ref = out[cost]["references"][reference]
    level = 0.95 * ref["best_hypervolume"]
    curves = [hv_curve(events, tuple(ref["point"])) for events in out[cost][strategy]]
    return np.array([time_to(curve, level) for curve in curves])


def _median(times: np.ndarray) -> float:
    """The median of times that may be infinite (not reached), without interpolating."""
    return float(np.percentile(times, 50, method="nearest"))


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if np.isfinite(value) else "not reached"


def replay_markdown(out: dict[str, Any]) -> str:
    """The main table (per-trial overhead paid, the table's own reference point), then the
    time to 95% under each way of paying and each reference point."""
    cost, reference = COSTS[0], "table"
    main, budget = out[cost], out[cost]["budget_s"]
    ref = main["references"][reference]
    point = ", ".join(f"{v:.4f}" for v in ref["point"])
    fractions = [0.05, 0.1, 0.2, 0.33, 0.5, 1.0]
    lines = [
        f"{main['configs']} configurations, {out['seeds']} seeds; seconds = training + each "
        f"trial's export, scoring and latency timing; budget {budget:.0f} s (every "
        f"configuration trained fully once); reference point ({point}) "
        "(accuracy, latency / teacher's)",
        "",
        "| strategy | time to 95% of best HV: median (IQR), reached | vs random | "
        + " | ".join(f"HV at {f:.0%} of budget" for f in fractions)
        + " |",
        "|---" * (3 + len(fractions)) + "|",
    ]
    random_median = _median(_times_to_95(out, cost, reference, "random"))
    for strategy in STRATEGIES:
        times = _times_to_95(out, cost, reference, strategy)
        q = np.percentile(times, [25, 50, 75], method="nearest")  # inf: not reached
        curves = [hv_curve(events, tuple(ref["point"])) for events in main[strategy]]
        cells = []
        for f in fractions:
            values = [hv_at(c, f * budget) / ref["best_hypervolume"] for c in curves]
            lo, mid, hi = np.percentile(values, [25, 50, 75])
            cells.append(f"{mid:.3f} ({lo:.3f}-{hi:.3f})")
        lines.append(
            f"| {strategy} | {_seconds(q[1])} ({_seconds(q[0])}-{_seconds(q[2])}), "
            f"{int(np.isfinite(times).sum())}/{len(times)} | {q[1] / random_median:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    variants = [(c, r) for c in COSTS for r in ("table", "chance")]
    lines += [
        "",
        "Median seconds to 95% of the best hypervolume (ratio to random search):",
        "",
        "| strategy | "
        + " | ".join(f"{c.replace('_', ' ')}, {r} reference" for c, r in variants)
        + " |",
        "|---" * (1 + len(variants)) + "|",
    ]
    bases = {(c, r): _median(_times_to_95(out, c, r, "random")) for c, r in variants}
    for strategy in STRATEGIES:
        cells = []
        for c, r in variants:
            median = _median(_times_to_95(out, c, r, strategy))
            base = bases[(c, r)]
            cells.append(f"{_seconds(median)} ({median / base:.2f})")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_markdown(path: Path) -> str:
    data = json.loads(path.read_text())
    header = data["header"]
    names = {32: "FP32", 8: "INT8", 4: "INT4"}
    lines = [
        f"machine {header['machine']['id']}; rungs {header['rungs']['examples']} examples; "
        f"{len(data['runs'])} of {len(runs())} runs",
        "",
        "| run | "
        + " | ".join(f"{names[b]} accuracy per rung" for b in BITS)
        + " | training s per segment (wall) | speedup vs teacher ORT FP32 ("
        + "/".join(names[b] for b in BITS)
        + ") |",
        "|---" * (len(BITS) + 3) + "|",
    ]
    for key, run in data["runs"].items():
        arch = "L{layers}-H{heads}-F{ffn_fraction}".format(**run)
        cells = [" / ".join(f"{r['accuracy'][str(b)]:.4f}" for r in run["rungs"]) for b in BITS]
        cpu = " / ".join(f"{r['train_wall_s']:.0f}" for r in run["rungs"])
        speed = "/".join(
            f"{data['latency'][f'{arch}-b{b}']['speedup_vs_teacher_ort']:.2f}" for b in BITS
        )
        lines.append(f"| {key} | {' | '.join(cells)} | {cpu} | {speed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=Path("studies/sst2-minilm.toml"))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--replay", action="store_true")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--retime", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    if args.table:
        for path in sorted(RESULTS.glob("fidelity_table-*.json")):
            print(table_markdown(path), "\n")
        for path in sorted(RESULTS.glob("fidelity_replay-*.json")):
            print(path.name, "\n", replay_markdown(json.loads(path.read_text())), "\n")
    elif args.replay:
        run_replay(args)
    elif args.retime:
        retime(args)
    else:
        build(args)


if __name__ == "__main__":
    main()
