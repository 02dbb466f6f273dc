"""Throughput of 1, 2 and 4 local workers, and database overhead per trial, SQLite vs PostgreSQL.

Trials are cheap on purpose (the tiny 4-layer BERT of the tests, 64 distillation rows), so
that what is measured is the service (storage, sampler, heartbeats, front snapshots, process
start-up) and the machine's cores, not distillation.

    python benchmarks/workers.py [--trials 32] [--pg postgresql://postgres@127.0.0.1:5432/test]

Throughput counts trials finished between the first trial's start and the last trial's end
(Optuna's own timestamps), so process start-up and study preparation are left out and shown
apart. Overhead per trial = (that span x workers - sum of the objectives' own time) / trials.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import make_dataset, make_tiny_teacher, spec_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "workers.json"


def cheap_spec(folder: Path, n_trials: int) -> Path:
    teacher = make_tiny_teacher(folder / "teacher" / "tiny-bert")
    data = make_dataset(folder / "data" / "tiny")
    path = folder / "cheap.toml"
    path.write_text(
        spec_text(
            data,
            teacher,
            search=f'sampler = "random"\nn_trials = {n_trials}',
            training="epochs = 1\nbatch_size = 32\nlearning_rate = 0.001\nmax_train_samples = 64",
        )
    )
    return path


def fresh_pg(admin_url: str) -> str:
    import psycopg

    name = f"autotune_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def run(spec: Path, url: str, workers: int, artifacts: Path) -> dict:
    started = time.perf_counter()
    command = [sys.executable, "-m", "autotune", "study", "run", str(spec)]
    command += ["--workers", str(workers), "--storage", url, "--artifacts", str(artifacts)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    storage = url.replace("postgresql://", "postgresql+psycopg://")
    study = optuna.load_study(study_name="tiny", storage=storage)
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    first = min(t.datetime_start for t in study.trials)
    last = max(t.datetime_complete for t in study.trials)
    span = (last - first).total_seconds()
    objective = sum(t.user_attrs.get("objective_seconds", 0.0) for t in study.trials)
    return {
        "workers": workers,
        "storage": url.split(":", 1)[0],
        "trials": len(done),
        "span_s": span,
        "wall_s": wall,
        "trials_per_min": 60 * len(done) / span,
        "overhead_ms_per_trial": 1000 * (span * workers - objective) / len(study.trials),
        "objective_s_per_trial": objective / len(study.trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["AUTOTUNE_CACHE_DIR"] = str(folder / "cache")
        spec = cheap_spec(folder, args.trials)
        plan = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4)]
        plan += [("sqlite", 2)]
        for engine, workers in plan:
            url = (
                f"sqlite:///{folder / f'{engine}-{workers}.db'}"
                if engine == "sqlite"
                else fresh_pg(args.pg)
            )
            rows.append(run(spec, url, workers, folder / f"artifacts-{engine}-{workers}"))
            print(json.dumps(rows[-1]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    table = Table(title=f"{args.trials} cheap trials, {os.cpu_count()} cores")
    for column in (
        "storage",
        "workers",
        "trials/min",
        "objective s/trial",
        "overhead ms/trial",
        "span s",
        "wall s",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["storage"],
            str(r["workers"]),
            f"{r['trials_per_min']:.1f}",
            f"{r['objective_s_per_trial']:.2f}",
            f"{r['overhead_ms_per_trial']:.0f}",
            f"{r['span_s']:.1f}",
            f"{r['wall_s']:.1f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
