"""Server time of the dashboard on a study with 10,000 trials.

The trials are synthetic (made with Optuna's API, metrics drawn at random, for this benchmark
only): what is measured is reading and serving them, not measuring models.

    python benchmarks/dashboard.py [--trials 10000] [--repeats 7]

Times are medians of in-process requests (FastAPI's TestClient: routing, database reads,
JSON or template rendering; no network). optuna-dashboard's study endpoint on the same
database is timed the same way for comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autotune.search import pareto  # noqa: E402
from autotune.spec import load_spec  # noqa: E402
from autotune.store import db, fronts  # noqa: E402
from autotune.store.models import (  # noqa: E402
    BaselineRecord,
    HardwareRecord,
    StudyRecord,
    TrialRecord,
    TrialStatus,
)

RESULTS = ROOT / "benchmarks" / "results" / "dashboard.json"
STUDY = "synthetic-10k"
HARDWARE = {"id": "bench0000000", "cpu": "synthetic CPU", "threads": 1}
DISTRIBUTIONS = {
    "layers": IntDistribution(1, 6),
    "heads": IntDistribution(4, 12),
    "ffn_fraction": FloatDistribution(0.25, 1.0, step=0.25),
    "sparsity": FloatDistribution(0.0, 0.9, step=0.1),
    "bits": CategoricalDistribution([32, 8, 4]),
    "temperature": FloatDistribution(1.0, 8.0),
    "alpha": FloatDistribution(0.1, 0.9),
}


def synthetic(rng: random.Random, number: int) -> tuple[dict, dict]:
    params = {
        "layers": rng.randint(1, 6),
        "heads": rng.randint(4, 12),
        "ffn_fraction": rng.choice([0.25, 0.5, 0.75, 1.0]),
        "sparsity": round(rng.randint(0, 9) / 10, 1),
        "bits": rng.choice([32, 8, 4]),
        "temperature": rng.uniform(1, 8),
        "alpha": rng.uniform(0.1, 0.9),
    }
    size = params["layers"] * params["heads"] * params["ffn_fraction"]
    latency = 0.3 + 0.02 * size * (0.5 if params["bits"] == 8 else 1.0) * rng.uniform(0.8, 1.2)
    accuracy = min(0.93, 0.70 + 0.03 * params["layers"] + rng.gauss(0, 0.02))
    metrics = {
        "accuracy": accuracy,
        "macro_f1": accuracy - 0.01,
        "latency_ms": latency,
        "latency_raw_ms": latency,
        "speedup_vs_teacher_pytorch": 19.0 / latency,
        "speedup_vs_teacher_ort": 9.0 / latency,
        "size_mb": 4.0 * size,
        "sparsity": params["sparsity"],
        "train_curve": [[i, 1.0 / (i + 1)] for i in range(0, 100, 10)],
    }
    return params, metrics


def fill(url: str, n_trials: int) -> None:
    spec = load_spec(ROOT / "studies" / "smoke.toml").model_copy(update={"name": STUDY})
    db.upgrade(url)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(
        study_name=STUDY, storage=storage, directions=["maximize", "minimize"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.set_metric_names(["accuracy", "latency_ms"])
    rng = random.Random(0)
    start = datetime(2026, 11, 1)
    frozen, rows = [], []
    for number in range(n_trials):
        params, metrics = synthetic(rng, number)
        config = {**params, "int8_method": "dynamic" if params["bits"] == 8 else None}
        frozen.append(
            create_trial(
                state=TrialState.COMPLETE,
                values=[metrics["accuracy"], metrics["latency_ms"]],
                params=params,
                distributions=DISTRIBUTIONS,
                user_attrs={"hardware_id": HARDWARE["id"], "worker": "bench:1"},
            )
        )
        frozen[-1].datetime_start = start + timedelta(seconds=number)
        frozen[-1].datetime_complete = start + timedelta(seconds=number + 1)
        rows.append(
            TrialRecord(
                study_name=STUDY,
                trial_number=number,
                status=TrialStatus.complete,
                config=config,
                metrics=metrics,
                artifact_id=None,
                hardware_id=HARDWARE["id"],
                seconds=1.0,
            )
        )
    study.add_trials(frozen)
    with db.session_scope(url) as session:
        session.add(StudyRecord(study_name=STUDY, spec=spec.model_dump(mode="json"), spec_hash="x"))
        session.add(HardwareRecord(id=HARDWARE["id"], info=HARDWARE))
        session.flush()
        baselines = {
            "accuracy": 0.9037,
            "int8_accuracy": 0.90,
            "pytorch_fp32_ms": 19.0,
            "ort_fp32_ms": 9.0,
            "ort_int8_ms": 4.3,
            "num_labels": 2,
        }
        session.add(BaselineRecord(study_name=STUDY, hardware_id=HARDWARE["id"], values=baselines))
        session.add_all(rows)
    trials = study.get_trials(deepcopy=False)
    reference = pareto.reference_point(["accuracy", "latency"], baselines, None, 2)
    for seen in (n_trials // 4, n_trials // 2, n_trials):  # a few front versions
        with db.session_scope(url) as session:
            points = pareto.trial_points(trials[:seen], HARDWARE["id"])
            front = pareto.compute_front(points, ["accuracy", "latency"], reference)
            members = front.members
            fronts.record_snapshot(
                session, STUDY, HARDWARE["id"], members, front.hypervolume, reference, seen
            )


def time_get(client, path: str, repeats: int) -> tuple[float, int, int]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return statistics.median(samples), len(response.content), response.status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from autotune.dashboard import create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'synthetic.db'}"
        started = time.perf_counter()
        fill(url, args.trials)
        filled = time.perf_counter() - started
        client = TestClient(create_app(url))
        rows = []
        for what, path in (
            ("studies page (HTML)", "/"),
            ("study page (HTML)", f"/studies/{STUDY}"),
            ("study summary JSON", f"/api/studies/{STUDY}"),
            ("front JSON", f"/api/studies/{STUDY}/front"),
            ("studies JSON", "/api/studies"),
            ("best under constraints JSON", f"/api/studies/{STUDY}/best?min_accuracy=0.85"),
            ("trial page (HTML)", f"/studies/{STUDY}/trials/{args.trials // 2}"),
            ("all trials JSON (table, plot)", f"/api/studies/{STUDY}/trials"),
        ):
            median, size, _ = time_get(client, path, args.repeats)
            rows.append({"what": what, "path": path, "median_s": median, "bytes": size})
        rows.append(optuna_dashboard_row(url, args.repeats))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"trials": args.trials, "fill_s": filled, "rows": rows}, indent=2) + "\n"
    )
    table = Table(title=f"dashboard server time, {args.trials:,} trials (median of {args.repeats})")
    for column in ("request", "median ms", "response KB"):
        table.add_column(column, justify="right" if column != "request" else "left")
    for r in rows:
        table.add_row(r["what"], f"{1000 * r['median_s']:.0f}", f"{r['bytes'] / 1024:.0f}")
    Console().print(table)


def optuna_dashboard_row(url: str, repeats: int) -> dict:
    """optuna-dashboard's own study endpoint on the same database, for comparison."""
    from wsgiref.util import setup_testing_defaults

    from optuna_dashboard import wsgi

    storage = optuna.storages.RDBStorage(url)
    app = wsgi(storage)
    study_id = storage.get_study_id_from_name(STUDY)
    path = f"/api/studies/{study_id}"
    samples, body, status = [], b"", []
    for _ in range(repeats):
        environ: dict = {"PATH_INFO": path, "QUERY_STRING": "after=0"}
        setup_testing_defaults(environ)
        started = time.perf_counter()
        body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
        samples.append(time.perf_counter() - started)
        assert status[-1].startswith("200"), status[-1]
    return {
        "what": "optuna-dashboard study JSON",
        "path": path,
        "median_s": statistics.median(samples),
        "bytes": len(body),
    }


if __name__ == "__main__":
    main()
