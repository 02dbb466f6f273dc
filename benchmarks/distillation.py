"""Ablation of the distillation recipe on SST-2 with the shipped MiniLM teacher.

Rows are students (INT8), columns are recipes: today's (one epoch of logit KD on the original
sentences), + more epochs, + augmentation, + intermediate layers, and the whole recipe of
``studies/sst2-minilm.toml``. Each cell is one trial in a fresh process, scored in ORT on all
872 validation sentences, timed at sequence lengths 64 and 128 (batch 1, 1 thread,
interleaved with the teacher in ORT FP32).

Cells run in priority order (the whole recipe first) and every finished cell is written to
the results file at once, so an interrupted run resumes where it stopped.

    python benchmarks/distillation.py --data-dir ../shared/data --models-dir ../shared/models
    python benchmarks/distillation.py --table          # reprint from the stored results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

STUDENTS = {
    "2 layers INT8": "layers=2 bits=8",
    "2 layers 6 heads FFN 50% INT8": "layers=2 heads=6 ffn_fraction=0.5 bits=8",
    "4 layers INT8": "layers=4 bits=8",
}
KD = "temperature=3 alpha=0.7"  # section 1's values, kept fixed across the ablation

# Spec tables each recipe sets; anything not named keeps the shipped spec's value. "today" is
# the recipe of BENCHMARKS.md section 1.
TODAY: dict[str, dict[str, Any]] = {
    "training": {
        "epochs": 1,
        "batch_size": 32,
        "learning_rate": 1e-4,
        "freeze_embeddings": False,
    },
    "distillation": {"hidden_weight": 0.0, "attention_weight": 0.0, "intermediate_epochs": 0.0},
    "augmentation": {"copies": 0},
}
RECIPES: dict[str, dict[str, dict[str, Any]] | None] = {
    "today": TODAY,
    "+ epochs": {**TODAY, "training": {**TODAY["training"], "epochs": 3}},
    "+ augmentation": {**TODAY, "augmentation": {"copies": 2}},
    "+ intermediate": {
        **TODAY,
        "distillation": {"hidden_weight": 1.0, "attention_weight": 1.0, "intermediate_epochs": 0},
    },
    "all (shipped spec)": None,
}
# The whole recipe and today's for every student first: they give each row's gain and its
# best point. The single-ingredient columns follow, the dearest student last.
ORDER_RECIPES = ["all (shipped spec)", "today", "+ intermediate", "+ augmentation", "+ epochs"]
PRIORITY = [(student, recipe) for recipe in ORDER_RECIPES[:2] for student in STUDENTS] + [
    (student, recipe) for student in STUDENTS for recipe in ORDER_RECIPES[2:]
]
SEQUENCE_LENGTHS = (64, 128)
STEP_COST_STEPS = 40


def spec_for(spec_path: str, recipe: str):
    from autotune.spec import load_spec

    spec = load_spec(spec_path)
    tables = RECIPES[recipe]
    if tables is None:
        return spec
    update = {
        name: getattr(spec, name).model_copy(update=values) for name, values in tables.items()
    }
    return spec.model_copy(update=update)


def run_cell(args: argparse.Namespace) -> None:
    """Child process: one student under one recipe, measured at both sequence lengths."""
    from autotune import api
    from autotune.compression.latency import measure_interleaved

    spec = spec_for(args.spec, args.recipe)
    started = time.perf_counter()
    context = api.prepare(spec, args.data_dir, args.models_dir)
    prepare_s = time.perf_counter() - started
    overrides = api.parse_overrides(f"{STUDENTS[args.student]} {KD}".split())
    started = time.perf_counter()
    report = api.run_one_trial(spec, overrides, args.out, context=context)
    result = report.result
    row: dict[str, Any] = {
        "result": result.to_dict(),
        "wall_s": time.perf_counter() - started,
        "prepare_s": prepare_s,
        "recipe": {
            "training": spec.training.model_dump(),
            "distillation": spec.distillation.model_dump(),
            "augmentation": spec.augmentation.model_dump(),
        },
        "train_rows": len(context.distillation.train),
        "original_rows": context.distillation.original_rows,
        "labelling_s": context.distillation.labelling_seconds,
        "augment_s": context.distillation.augment_seconds,
        "latency": {},
    }
    for length in SEQUENCE_LENGTHS:
        at = api.prepare(spec, args.data_dir, args.models_dir, sequence_length=length)
        lat = measure_interleaved(
            Path(result.model_path),
            at.inputs.reference_onnx,
            at.inputs.latency,
            at.teacher.model.config.vocab_size,
        )
        row["latency"][length] = {
            "median_ms": lat.median_ms,
            "speedup_ort": lat.speedup_vs_reference,
            "speedup_pytorch": lat.speedup_vs_reference * at.baselines.pytorch_over_reference,
        }
    row["teacher"] = {"accuracy": context.baselines.accuracy, "hardware": context.hardware}
    Path(args.json).write_text(json.dumps(row, default=str))


def step_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per training step of each stage kind, per student: what the teacher pass costs."""
    import numpy as np

    from autotune import api
    from autotune.compression.config import CompressionConfig
    from autotune.compression.distill import distill
    from autotune.compression.student import build_student, plan_student

    spec = spec_for(args.spec, "today")
    context = api.prepare(spec, args.data_dir, args.models_dir)
    inputs, teacher = context.inputs, context.teacher.model
    train = inputs.train.subset(np.arange(STEP_COST_STEPS * 64))
    logits = inputs.teacher_logits[: len(train)]
    kinds = {
        "logits": {},
        "logits, embeddings frozen": {"freeze_embeddings": True},
        "intermediate (hidden + relations), embeddings frozen": {
            "freeze_embeddings": True,
            "hidden_weight": 1.0,
            "attention_weight": 1.0,
            "intermediate_epochs": 1.0,
            "epochs": 1e-9,
        },
    }
    costs: dict[str, Any] = {"batch_size": 64, "steps": STEP_COST_STEPS}
    for student, overrides in STUDENTS.items():
        values = api.parse_overrides(overrides.split())
        config = CompressionConfig.from_dict(api.default_config(spec, teacher.config) | values)
        plan = plan_student(teacher.config, config, inputs.importance)
        for kind, changes in kinds.items():
            settings = replace(inputs.training, **({"batch_size": 64, "epochs": 1.0} | changes))
            model = build_student(teacher, plan)
            started = time.perf_counter()
            distill(
                model,
                train,
                settings,
                teacher_logits=logits,
                temperature=3,
                alpha=0.7,
                teacher=teacher,
                layer_map=list(plan.layers),
            )
            costs[f"{student} | {kind}"] = (time.perf_counter() - started) / STEP_COST_STEPS
    return costs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="studies/sst2-minilm.toml")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--models-dir", default="../shared/models")
    parser.add_argument("--results", default="benchmarks/results/distillation.json")
    parser.add_argument("--only-recipes", nargs="*", help="recipes to run (default: all)")
    parser.add_argument("--table", action="store_true", help="only print the stored results")
    parser.add_argument("--step-cost", action="store_true", help="time training steps only")
    parser.add_argument("--student", help=argparse.SUPPRESS)
    parser.add_argument("--recipe", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.student:
        run_cell(args)
        return
    path = Path(args.results)
    results = json.loads(path.read_text()) if path.exists() else {"cells": {}}
    if args.step_cost:
        results["step_cost"] = step_cost(args)
        path.write_text(json.dumps(results, indent=1, default=str))
    elif not args.table:
        path.parent.mkdir(parents=True, exist_ok=True)
        for student, recipe in PRIORITY:
            key = f"{student} | {recipe}"
            if key in results["cells"] or (args.only_recipes and recipe not in args.only_recipes):
                continue
            print(f"== {key}", file=sys.stderr, flush=True)
            results["cells"][key] = run_child(args, student, recipe, path.parent)
            path.write_text(json.dumps(results, indent=1, default=str))
    print(markdown(results))


def run_child(args: argparse.Namespace, student: str, recipe: str, folder: Path) -> dict:
    child = folder / "distillation-child.json"
    slug = f"{student}-{recipe}".replace(" ", "_").replace("%", "").replace("+", "plus")
    command = [sys.executable, __file__, "--spec", args.spec, "--data-dir", args.data_dir]
    command += ["--models-dir", args.models_dir, "--student", student, "--recipe", recipe]
    command += ["--out", f"runs/bench-distill/{slug}", "--json", str(child)]
    subprocess.run(command, check=True)
    row = json.loads(child.read_text())
    child.unlink()
    return row


def markdown(results: dict) -> str:
    cells = results["cells"]
    if not cells:
        return "(no results yet)"
    teacher = next(iter(cells.values()))["teacher"]
    machines = _machines(cells)
    lines = [
        f"Teacher: {teacher['accuracy']:.4f} validation accuracy.",
        "",
        *(
            f"Machine {tag}: {hw['cpu']} ({', '.join(hw['isa'])}), fingerprint {hw['id']}."
            for tag, hw in machines.values()
        ),
        "",
        "Each cell: accuracy (loss vs teacher) / distillation s / teacher labelling share"
        + (" / machine." if len(machines) > 1 else "."),
        "",
        "| student | " + " | ".join(RECIPES) + " |",
        "|---|" + "---|" * len(RECIPES),
    ]
    for student in STUDENTS:
        row = [student]
        for recipe in RECIPES:
            cell = cells.get(f"{student} | {recipe}")
            row.append(_cell(cell, teacher["accuracy"], machines) if cell else "not run")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", _speed_table(cells, machines)]
    if "step_cost" in results:
        lines += ["", _step_table(results["step_cost"])]
    return "\n".join(lines)


def _machines(cells: dict) -> dict[str, tuple[str, dict]]:
    """Hardware id -> (letter, fingerprint), in the order the cells first used them."""
    found: dict[str, tuple[str, dict]] = {}
    for cell in cells.values():
        hardware = cell["teacher"]["hardware"]
        if hardware["id"] not in found:
            found[hardware["id"]] = ("ABCDEFGH"[len(found)], hardware)
    return found


def _tag(cell: dict, machines: dict[str, tuple[str, dict]]) -> str:
    return machines[cell["teacher"]["hardware"]["id"]][0]


def _cell(cell: dict, teacher_accuracy: float, machines: dict) -> str:
    r = cell["result"]
    train_s = r["stage_seconds"].get("distill", 0.0)
    labelling = cell["labelling_s"] + cell["augment_s"]
    share = labelling / (labelling + train_s) if labelling + train_s else 0.0
    loss = (r["accuracy"] - teacher_accuracy) * 100
    text = f"{r['accuracy']:.4f} ({loss:+.1f}) / {train_s:.0f} s / {share:.0%}"
    return text + (f" / {_tag(cell, machines)}" if len(machines) > 1 else "")


def _speed_table(cells: dict, machines: dict) -> str:
    lines = [
        "| student | recipe | machine | train rows | accuracy | vs PyTorch @64 "
        "| vs PyTorch @128 | vs ORT FP32 @128 | ms @128 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, cell in cells.items():
        student, recipe = key.split(" | ")
        lat = {str(k): v for k, v in cell["latency"].items()}
        lines.append(
            f"| {student} | {recipe} | {_tag(cell, machines)} | {cell['train_rows']:,} "
            f"| {cell['result']['accuracy']:.4f} "
            f"| {lat['64']['speedup_pytorch']:.1f}x | {lat['128']['speedup_pytorch']:.1f}x "
            f"| {lat['128']['speedup_ort']:.1f}x | {lat['128']['median_ms']:.2f} |"
        )
    return "\n".join(lines)


def _step_table(costs: dict[str, Any]) -> str:
    lines = [
        f"Seconds per training step (batch {costs['batch_size']}, {costs['steps']} steps):",
        "",
        "| student | stage | s/step |",
        "|---|---|---|",
    ]
    for key, seconds in costs.items():
        if " | " in key:
            student, kind = key.split(" | ")
            lines.append(f"| {student} | {kind} | {seconds:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
