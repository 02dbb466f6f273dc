"""``autotune export``: a deployable folder for one trial, with its model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Unpack

from autotune.cache import hash_file
from autotune.errors import ArtifactError, ConfigError
from autotune.service.reads import artifact_path, open_storage
from autotune.service.selection import Choice, best_config
from autotune.settings import Settings
from autotune.store import reads as stored
from autotune.store.reads import TrialSummary


def export_model(
    study: str, out_dir: str | Path, trial: int | None = None, **choice: Unpack[Choice]
) -> Path:
    """Write a deployable folder: ``model.onnx``, tokenizer, ``config.json``, ``metrics.json``
    and a ``README.md`` card, for trial ``trial`` or the best under the constraints
    (``choice``: the keyword arguments of :func:`best_config`)."""
    settings = open_storage(choice.get("storage"), artifacts=choice.get("artifacts"))
    if trial is None:
        chosen = best_config(study, **(choice | {"storage": settings})).trial
    else:
        chosen = _complete_trial(settings, study, trial)
    source = _checked_model(settings, chosen)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "model.onnx")
    attrs = _study_user_attrs(settings, study)
    for name, artifact_id in attrs.get("tokenizer_artifacts", {}).items():
        shutil.copyfile(settings.artifacts / artifact_id, out / name)
    spec = stored.study_record(settings.storage, study).spec
    config = {
        **attrs.get("teacher_config", {}),
        "autotune": {
            "study": study,
            "trial": chosen.number,
            "compression": chosen.config,
            "max_length": spec["dataset"]["max_length"],
            "inputs": ["input_ids", "attention_mask"],
            "outputs": ["logits"],
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(chosen.to_json(), indent=2) + "\n")
    (out / "README.md").write_text(model_card(study, chosen), encoding="utf-8")
    return out


def _complete_trial(settings: Settings, study: str, number: int) -> TrialSummary:
    chosen = next((t for t in stored.trials(settings.storage, study) if t.number == number), None)
    if chosen is None or chosen.status != "complete":
        state = "does not exist" if chosen is None else f"is {chosen.status}"
        raise ConfigError(f"trial {number} of '{study}' {state}; only complete trials export")
    return chosen


def _checked_model(settings: Settings, trial: TrialSummary) -> Path:
    """The trial's model file, refused unless present and matching its stored sha256."""
    source = artifact_path(settings, trial)
    if source is None or not source.is_file():
        raise ArtifactError(
            f"model of trial {trial.number} is missing from the artifact store "
            f"({settings.artifacts})"
        )
    if hash_file(source) != trial.artifact_sha256:
        raise ArtifactError(f"model of trial {trial.number} does not match its stored sha256")
    return source


def _study_user_attrs(settings: Settings, study: str) -> dict:
    import optuna

    return optuna.load_study(study_name=study, storage=settings.storage).user_attrs


def model_card(study: str, trial: TrialSummary) -> str:
    m, c = trial.measured, trial.compression
    return (
        f"# {study} trial {trial.number}: {c.label()}\n\n"
        f"| metric | value |\n|---|---|\n"
        f"| accuracy | {m.accuracy:.4f} |\n| macro-F1 | {m.macro_f1:.4f} |\n"
        f"| latency (ms, batch 1) | {m.latency_ms:.2f} |\n"
        f"| speedup vs teacher PyTorch FP32 | {m.speedup_vs_teacher_pytorch:.2f}x |\n"
        f"| speedup vs teacher ORT FP32 | {m.speedup_vs_teacher_ort:.2f}x |\n"
        f"| size (MB) | {m.size_mb:.1f} |\n| weight sparsity | {m.sparsity:.1%} |\n"
        f"| hardware | {trial.hardware_id} |\n\n"
        "Run with ONNX Runtime: inputs `input_ids`, `attention_mask` (int64), output `logits`.\n"
    )
