"""The training set a student distils from: the original rows, rule-made variants and optional
unlabelled text, all labelled once by the teacher and cached by content hash (decision 9).

Original rows keep their gold labels for the hard-label term; every added row takes the
teacher's prediction. Soft logits come from the teacher in ORT FP32 (the latency reference),
the same model that labels the original rows.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from autotune import augment, cache
from autotune.compression.batching import TokenizedSplit
from autotune.compression.evaluate import predict_logits
from autotune.data import MAX_CHARS_PER_TOKEN
from autotune.errors import DataError
from autotune.spec import AugmentationSpec

MAX_UNLABELLED_LINES = 5_000_000


@dataclass(frozen=True)
class DistillationSet:
    train: TokenizedSplit  # original rows first, then added rows
    logits: np.ndarray  # the teacher's logits for every row of ``train``
    key: str  # content hash of everything that decided the rows and logits
    original_rows: int
    labelling_seconds: float  # teacher labelling when the cache entries were made
    augment_seconds: float


@dataclass(frozen=True)
class Labelled:
    logits: np.ndarray
    seconds: float


def teacher_logits(reference: Path, split: TokenizedSplit, key: str, pad_id: int) -> Labelled:
    """The teacher's logits on ``split``, computed once and cached under ``key``."""
    target = cache.entry_dir("logits", key)
    if not (target / "logits.npy").exists():
        started = time.perf_counter()
        logits = predict_logits(reference, split, threads=os.cpu_count(), pad_id=pad_id)
        seconds = time.perf_counter() - started
        with cache.atomic_dir(target) as tmp:
            np.save(tmp / "logits.npy", logits)
            (tmp / "meta.json").write_text(json.dumps({"seconds": seconds, "rows": len(split)}))
    return Labelled(np.load(target / "logits.npy"), _seconds(target))


def _seconds(target: Path) -> float:
    try:
        return float(json.loads((target / "meta.json").read_text())["seconds"])
    except (OSError, ValueError, KeyError):
        return 0.0  # an entry written before timings were kept


def build(
    teacher: Any,
    reference: Path,
    train: TokenizedSplit,
    validation: TokenizedSplit,
    settings: AugmentationSpec,
    seed: int,
    base_key: str,
    pad_id: int,
    max_length: int,
    pairs: bool = False,
) -> DistillationSet:
    """Originals plus (if ``settings`` asks) teacher-labelled variants and unlabelled text."""
    original = teacher_logits(
        reference, train, cache.hash_json([teacher.fingerprint, base_key]), pad_id
    )
    if not settings.enabled:
        return DistillationSet(train, original.logits, base_key, len(train), original.seconds, 0.0)
    unlabelled = _unlabelled_file(settings.unlabelled_path)
    key = cache.hash_json(
        [
            teacher.fingerprint,
            base_key,
            settings.model_dump(exclude={"unlabelled_path"}),
            seed,
            unlabelled[1] if unlabelled else None,
            max_length,
            _split_hash(validation),
        ]
    )
    added, augment_seconds = _added_rows(
        teacher, train, validation, settings, seed, key, unlabelled, (max_length, pairs)
    )
    labelled = teacher_logits(reference, added, cache.hash_json(["added", key]), pad_id)
    taught = replace(added, labels=labelled.logits.argmax(axis=1).astype(np.int64))
    return DistillationSet(
        train=train.concat(taught),
        logits=np.concatenate([original.logits, labelled.logits]),
        key=key,
        original_rows=len(train),
        labelling_seconds=original.seconds + labelled.seconds,
        augment_seconds=augment_seconds,
    )


def _split_hash(split: TokenizedSplit) -> str:
    return cache.hash_json([cache.hash_bytes(split.ids.tobytes()), int(split.offsets[-1])])


def _unlabelled_file(path: str | None) -> tuple[Path, str] | None:
    if path is None:
        return None
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(
            f"augmentation.unlabelled_path: {file} is not a file (give a text file, "
            "one sentence per line)"
        )
    return file, cache.hash_file(file)


def _added_rows(
    teacher: Any,
    train: TokenizedSplit,
    validation: TokenizedSplit,
    settings: AugmentationSpec,
    seed: int,
    key: str,
    unlabelled: tuple[Path, str] | None,
    shape: tuple[int, bool],
) -> tuple[TokenizedSplit, float]:
    target = cache.entry_dir("augmented", key)
    if not (target / "rows.npz").exists():
        started = time.perf_counter()
        split = _make_rows(teacher, train, validation, settings, seed, unlabelled, shape)
        if not len(split):
            raise DataError(
                "augmentation produced no new sentence; raise augmentation.copies "
                "or give more unlabelled text"
            )
        with cache.atomic_dir(target) as tmp:
            arrays = {"ids": split.ids, "offsets": split.offsets}
            if split.type_ids is not None:
                arrays["type_ids"] = split.type_ids
            np.savez(tmp / "rows.npz", **arrays)
            meta = {"seconds": time.perf_counter() - started, "rows": len(split)}
            (tmp / "meta.json").write_text(json.dumps(meta))
    with np.load(target / "rows.npz") as saved:
        ids, offsets = saved["ids"], saved["offsets"]
        types = saved.get("type_ids", None)
    labels = np.full(len(offsets) - 1, -1, dtype=np.int64)
    return TokenizedSplit(ids, offsets, labels, types), _seconds(target)


def _make_rows(
    teacher: Any,
    train: TokenizedSplit,
    validation: TokenizedSplit,
    settings: AugmentationSpec,
    seed: int,
    unlabelled: tuple[Path, str] | None,
    shape: tuple[int, bool],
) -> TokenizedSplit:
    """Unlabelled text first (its rows not already in training or validation), then the
    rule-made variants (none repeating a row before them)."""
    seen = _sequences(train) | _sequences(validation)
    typed = train.type_ids is not None
    made = TokenizedSplit.from_rows([], np.zeros(0, np.int64), [] if typed else None)
    if unlabelled is not None:
        lines = _tokenize_lines(teacher.tokenizer, unlabelled[0], shape, typed)
        fresh = []
        for index in range(len(lines)):
            key = tuple(lines.row(index).tolist())
            if key not in seen:
                seen.add(key)
                fresh.append(index)
        made = made.concat(lines.subset(np.asarray(fresh, dtype=np.int64)))
    if settings.copies > 0:
        embeddings = teacher.model.base_model.embeddings.word_embeddings.weight.detach().numpy()
        vocab = augment.vocabulary(teacher.tokenizer, embeddings, train.ids)
        made = made.concat(augment.augment(train, vocab, settings, seed, seen))
    return made


def _sequences(split: TokenizedSplit) -> set[tuple[int, ...]]:
    return {tuple(split.row(i).tolist()) for i in range(len(split))}


def _tokenize_lines(
    tokenizer: Any, path: Path, shape: tuple[int, bool], typed: bool
) -> TokenizedSplit:
    """One row per non-empty line (``shape``: the study's max length, and whether it
    classifies sentence pairs, whose lines hold the two texts separated by a tab); ``typed``
    keeps the token types, as the study's splits do."""
    max_length, pairs = shape
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    expected = "two texts separated by a tab per line" if pairs else "one sentence per line"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: no text (give {expected})")
    if len(lines) > MAX_UNLABELLED_LINES:
        raise DataError(f"{path}: {len(lines)} lines; allowed: at most {MAX_UNLABELLED_LINES}")
    limit = max_length * MAX_CHARS_PER_TOKEN  # as data.py does
    if not pairs:
        encoded = tokenizer(
            [line[:limit] for line in lines], truncation=True, max_length=max_length
        )
        return _as_split(encoded, typed)
    firsts, seconds = [], []
    for number, line in enumerate(lines, start=1):
        cells = [cell.strip() for cell in line.split("\t")]
        if len(cells) != 2 or not all(cells):
            raise DataError(f"{path}: line {number} is not {expected}")
        firsts.append(cells[0][:limit])
        seconds.append(cells[1][:limit])
    return _as_split(tokenizer(firsts, seconds, truncation=True, max_length=max_length), typed)


def _as_split(encoded: Any, typed: bool) -> TokenizedSplit:
    rows = [np.asarray(r, dtype=np.int32) for r in encoded["input_ids"]]
    types = encoded.get("token_type_ids") if typed else None
    return TokenizedSplit.from_rows(
        rows,
        np.full(len(rows), -1, dtype=np.int64),
        None if types is None else [np.asarray(t, dtype=np.int8) for t in types],
    )
