"""One configuration by hand, and the teacher: ``trial run`` and ``teacher train``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune import locations, teacher
from autotune.compression.config import CompressionConfig, EvalResult
from autotune.errors import ConfigError
from autotune.progress import Progress
from autotune.spec import StudySpec, load_spec

if TYPE_CHECKING:
    from autotune.context import Baselines, StudyContext

INTEGER_KEYS = {"layers", "heads", "bits"}


@dataclass(frozen=True)
class TrialReport:
    """One configuration measured end to end, with the teacher baselines it is compared to."""

    result: EvalResult
    baselines: Baselines
    hardware: dict[str, Any]


def as_spec(spec: StudySpec | str | Path) -> StudySpec:
    return spec if isinstance(spec, StudySpec) else load_spec(spec)


def default_config(spec: StudySpec, teacher_config: Any) -> dict[str, Any]:
    """The teacher's own shape in FP32: what ``--set`` values are applied on top of."""
    return {
        "layers": min(spec.space.layers.max, teacher_config.num_hidden_layers),
        "heads": min(spec.space.heads.max, teacher_config.num_attention_heads),
        "ffn_fraction": 1.0,
        "sparsity": 0.0,
        "bits": 32,
        "int8_method": None,
        "temperature": 2.0,
        "alpha": 0.5,
    }


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["layers=2", "bits=8"]`` -> typed values for :class:`CompressionConfig`."""
    allowed = CompressionConfig.fields()
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not raw.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}; keys: {', '.join(allowed)}")
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in --set; allowed: {', '.join(allowed)}")
        values[key] = _typed(key, raw.strip())
    return values


def _typed(key: str, raw: str) -> Any:
    if key == "int8_method":
        return None if raw.lower() in {"none", ""} else raw
    kind = int if key in INTEGER_KEYS else float
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"{key}={raw!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None


def prepare(
    spec: StudySpec | str | Path,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    progress: Progress | None = None,
    sequence_length: int | None = None,
) -> StudyContext:
    """Load the teacher and data and compute the cached per-study pieces."""
    from autotune.context import prepare_study

    return prepare_study(
        as_spec(spec),
        locations.data_dir(data_dir),
        locations.models_dir(models_dir),
        progress,
        sequence_length,
    )


def run_one_trial(
    spec: StudySpec | str | Path,
    overrides: dict[str, Any],
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    progress: Progress | None = None,
    context: StudyContext | None = None,
) -> TrialReport:
    """Run one configuration (teacher shape + ``overrides``) and write it to ``out_dir``."""
    from autotune.compression.pipeline import run_trial

    context = context or prepare(spec, data_dir, models_dir, progress)
    values = default_config(context.spec, context.teacher.model.config) | overrides
    config = CompressionConfig.from_dict(values)
    result = run_trial(context.inputs, config, Path(out_dir), progress)
    _make_loadable(Path(out_dir), context, result)
    return TrialReport(result, context.baselines, context.hardware)


def _make_loadable(out: Path, context: StudyContext, result: EvalResult) -> None:
    """The folder ``export`` writes: tokenizer, the student's config and the card beside the
    model and ``metrics.json`` (whose keys stay ``EvalResult.to_dict()``'s)."""
    from autotune.service.export import describe_folder
    from autotune.store.reads import TrialSummary

    context.teacher.tokenizer.save_pretrained(out)
    trial = TrialSummary(
        number=-1,  # not a study's trial
        status="complete",
        config=result.config.to_dict(),
        metrics=result.metrics.to_json(),
        hardware_id=context.hardware["id"],
    )
    attrs = {
        "teacher_config": context.teacher.model.config.to_diff_dict(),
        "label_names": list(context.label_names) if context.label_names else None,
    }
    describe_folder(out, context.spec.name, trial, attrs, context.spec.dataset.max_length)


def train_teacher(
    spec: StudySpec | str | Path,
    out_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    max_train_samples: int | None = None,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fine-tune the spec's backbone and save it where the spec's checkpoint name resolves."""
    spec = as_spec(spec)
    out = Path(out_dir) if out_dir is not None else _teacher_destination(spec, models_dir)
    log = teacher.fine_tune(spec, locations.data_dir(data_dir), out, max_train_samples, progress)
    return out, log


def _teacher_destination(spec: StudySpec, models_dir: str | Path | None) -> Path:
    """Where the spec's checkpoint name resolves: the path itself when absolute, else under
    the models folder. A teacher already there is not overwritten without ``--out``."""
    checkpoint = Path(spec.teacher.checkpoint).expanduser()
    root = locations.models_dir(models_dir)
    if checkpoint.is_absolute():
        out = checkpoint
    elif root is not None:
        out = root / spec.teacher.checkpoint
    else:
        raise ConfigError(
            f"say where to save the teacher '{spec.teacher.checkpoint}': --out DIR, "
            f"--models-dir DIR or {locations.MODELS_DIR_ENV} (or an absolute "
            "teacher.checkpoint in the spec)"
        )
    if (out / "config.json").exists():
        raise ConfigError(
            f"a teacher already exists at {out}; delete it first, or save this one elsewhere "
            "with --out DIR"
        )
    return out
