"""Train/validation splits from local files or the Hugging Face hub, tokenized and cached.

A spec names its dataset by hub id; a local copy in the data directory (``--data-dir`` or
``AUTOTUNE_DATA_DIR``) is preferred, so the same spec works online and offline.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from autotune import cache
from autotune.compression.batching import TokenizedSplit
from autotune.errors import DataError, one_line
from autotune.locations import DATA_DIR_ENV
from autotune.spec import DatasetSpec

E = TypeVar("E", bound=BaseException)
MAX_CHARS_PER_TOKEN = 64
FORMATS = {".tsv": "csv", ".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class DataSource:
    """Where one split's rows come from: a local file, or a hub id (+config)."""

    description: str
    fingerprint: str
    file: Path | None = None
    hub_id: str | None = None
    hub_config: str | None = None


@dataclass(frozen=True)
class Splits:
    train: TokenizedSplit
    validation: TokenizedSplit
    num_labels: int
    fingerprint: str  # content hash of both tokenized splits' inputs
    label_names: tuple[str, ...] | None = None  # id -> name, when the data or spec names them


@dataclass(frozen=True)
class Rows:
    """One split as read: texts, raw label values, and the label names its source declares
    (a hub dataset's ``ClassLabel``)."""

    texts: list[str]
    labels: list[Any]
    declared_names: tuple[str, ...] | None = None
    pairs: list[str] | None = None  # the second texts, for sentence pairs


def resolve_split(ds: DatasetSpec, split: str, root: Path | None) -> DataSource:
    """Find a split: explicit path, then the data directory, then the hub."""
    looked: list[str] = []
    if ds.path:
        found = _file_for_split(Path(ds.path), split, looked)
        if found is None:
            raise DataError(f"dataset path: no file for split '{split}' (looked for {looked})")
        return _local(found)
    if root is not None and ds.local_folder:
        found = _file_for_split(root / ds.local_folder, split, looked)
        if found is not None:
            return _local(found)
    if ds.hub_id:
        where = f"; no local copy in {looked}" if looked else ""
        return DataSource(
            description=f"hub {ds.hub_id}{'/' + ds.hub_config if ds.hub_config else ''}{where}",
            fingerprint=cache.hash_json([ds.hub_id, ds.hub_config, split]),
            hub_id=ds.hub_id,
            hub_config=ds.hub_config,
        )
    if root is None:
        hint = f"set --data-dir or {DATA_DIR_ENV} to the folder holding '{ds.local_folder}/'"
    elif not root.is_dir():
        hint = f"the data directory {root} does not exist"
    else:
        hint = f"looked for {looked}"
    raise DataError(f"dataset '{ds.local_folder}' split '{split}' not found ({hint})")


def _file_for_split(base: Path, split: str, looked: list[str]) -> Path | None:
    if base.is_file():
        return base
    for suffix in FORMATS:
        candidate = base / f"{split}{suffix}"
        looked.append(str(candidate))
        if candidate.is_file():
            return candidate
    return None


def _local(path: Path) -> DataSource:
    if path.suffix not in FORMATS:
        raise DataError(
            f"{path}: unsupported format '{path.suffix}'; allowed: {', '.join(FORMATS)}"
        )
    return DataSource(description=str(path), fingerprint=cache.hash_file(path), file=path)


def read_rows(source: DataSource, split: str, ds: DatasetSpec) -> Rows:
    """Texts and raw label values of one split, validated."""
    table = _load_table(source, split)
    columns = list(table.column_names)
    roles = [
        ("text", ds.text_column),
        ("text pair", ds.text_pair_column),
        ("label", ds.label_column),
    ]
    for role, name in roles:
        if name is not None and name not in columns:
            raise DataError(
                f"{source.description}: {role} column '{name}' not found; columns: {columns}"
            )
    if len(table) == 0:
        raise DataError(f"{source.description}: split '{split}' is empty")
    texts = _texts(table, ds.text_column, source)
    pairs = _texts(table, ds.text_pair_column, source) if ds.text_pair_column else None
    feature = getattr(table, "features", {}).get(ds.label_column)
    declared = tuple(feature.names) if getattr(feature, "names", None) else None
    return Rows(texts, list(table[ds.label_column]), declared, pairs)


def _texts(table: Any, column: str, source: DataSource) -> list[str]:
    texts = table[column]
    for row, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                f"{source.description}: row {row + 1} has an empty or non-text "
                f"'{column}' value ({text!r})"
            )
    return list(texts)


def _load_table(source: DataSource, split: str) -> Any:
    import datasets

    datasets.disable_progress_bars()
    # datasets logs a parse failure before raising it; the raised error is reported instead.
    logging.getLogger("datasets").setLevel(logging.CRITICAL)
    try:
        if source.file is None:
            return datasets.load_dataset(source.hub_id, source.hub_config, split=split)
        builder = FORMATS[source.file.suffix]
        options: dict[str, Any] = {}
        if source.file.suffix == ".tsv":
            # GLUE-style TSV: tab separated, quotes are part of the text.
            options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
        return datasets.load_dataset(builder, data_files=str(source.file), split="train", **options)
    except UnicodeDecodeError as exc:
        raise DataError(f"{source.description}: not UTF-8 text ({exc.reason})") from None
    except Exception as exc:  # datasets wraps parser errors in many types
        if (cause := _find(exc, UnicodeDecodeError)) is not None:
            raise DataError(f"{source.description}: not UTF-8 text ({cause.reason})") from None
        if "corresponds to no data" in str(exc):  # a file with a header and no rows
            raise DataError(f"{source.description}: split '{split}' is empty") from None
        reason = one_line(exc, first_line_only=True)
        hint = (
            "; give a local copy instead: dataset.path in the spec (a folder of "
            f"{split}.csv/.tsv/.jsonl/.parquet files), or --data-dir ({DATA_DIR_ENV})"
            if source.file is None
            else ""
        )
        raise DataError(
            f"{source.description}: cannot load split '{split}': {reason}{hint}"
        ) from None


def _find(exc: BaseException | None, kind: type[E]) -> E | None:
    """The first exception of ``kind`` in the chain of causes of ``exc``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def label_names_of(rows: Rows, ds: DatasetSpec, where: str) -> tuple[str, ...] | None:
    """The names of the classes, id order: the spec's ``label_names``, else the source's
    ``ClassLabel`` names, else, for text labels, the distinct labels of this (the training)
    split in sorted order, which is stable whatever the row order. None for unnamed ids."""
    if ds.label_names:
        return tuple(ds.label_names)
    if rows.declared_names:
        return rows.declared_names
    if any(isinstance(value, str) for value in rows.labels):
        _check_present(rows.labels, where, ds.label_column)
        return tuple(sorted({str(v).strip() for v in rows.labels}))
    return None


def label_ids(
    values: list[Any], names: tuple[str, ...] | None, where: str, column: str
) -> np.ndarray:
    """Class ids of raw label values: text labels through ``names``, integer ids as they are
    (checked against ``names`` when the classes are named)."""
    _check_present(values, where, column)
    index = {name: i for i, name in enumerate(names or ())}
    labels = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip() in index:
            labels[row] = index[value.strip()]
        elif isinstance(value, int | np.integer) and 0 <= value < (len(index) or value + 1):
            labels[row] = value
        else:
            raise DataError(_bad_label(value, row, where, column, names))
    return labels


def _check_present(values: list[Any], where: str, column: str) -> None:
    for row, value in enumerate(values):
        if (
            isinstance(value, bool)
            or value is None
            or (isinstance(value, str) and not value.strip())
        ):
            raise DataError(f"{where}: row {row + 1}: label {value!r} in '{column}' is missing")


def _bad_label(value: Any, row: int, where: str, column: str, names: tuple[str, ...] | None) -> str:
    if names:
        allowed = ", ".join(repr(n) for n in names)
        return (
            f"{where}: row {row + 1}: label {value!r} in '{column}' is not one of the labels "
            f"{allowed} (or their ids 0..{len(names) - 1})"
        )
    return (
        f"{where}: row {row + 1}: label {value!r} in '{column}' is neither a class id "
        "0..K-1 nor a label name"
    )


def load_splits(
    ds: DatasetSpec, tokenizer: Any, tokenizer_fingerprint: str, root: Path | None
) -> Splits:
    """Both splits, tokenized (cached on disk by content hash) and checked against each other.

    Label names come from the training split (or the spec); the validation split is read
    through them, so a label only validation uses is an error, not a new class."""
    train, train_key, names = _tokenized(
        ds, ds.train_split, tokenizer, tokenizer_fingerprint, root, None
    )
    validation, val_key, _ = _tokenized(
        ds, ds.validation_split, tokenizer, tokenizer_fingerprint, root, names, find_names=False
    )
    classes = np.unique(train.labels)
    if len(classes) < 2:
        shown = [names[c] for c in classes] if names else classes.tolist()
        raise DataError(
            f"split '{ds.train_split}' has a single class ({shown}); "
            "classification needs at least two"
        )
    num_labels = len(names) if names else int(train.labels.max()) + 1
    if validation.labels.max() >= num_labels:
        raise DataError(
            f"split '{ds.validation_split}' has label {int(validation.labels.max())}, "
            f"which split '{ds.train_split}' never uses (labels 0..{num_labels - 1})"
        )
    if ds.max_validation_samples and len(validation) > ds.max_validation_samples:
        validation = validation.subset(np.arange(ds.max_validation_samples))
    fingerprint = cache.hash_json([train_key, val_key, ds.max_validation_samples])
    return Splits(train, validation, num_labels, fingerprint, names)


def _tokenized(
    ds: DatasetSpec,
    split: str,
    tokenizer: Any,
    tokenizer_fingerprint: str,
    root: Path | None,
    names: tuple[str, ...] | None,
    find_names: bool = True,
) -> tuple[TokenizedSplit, str, tuple[str, ...] | None]:
    """One split tokenized, its cache key, and the label names (the training split finds
    them; the validation split is given them, and unnamed classes stay unnamed)."""
    source = resolve_split(ds, split, root)
    key = cache.hash_json(
        [
            source.fingerprint,
            ds.text_column,
            ds.text_pair_column,
            ds.label_column,
            ds.max_length,
            split,
            tokenizer_fingerprint,
            ds.label_names,
            names,
        ]
    )
    target = cache.entry_dir("tokens", key)
    if (target / "split.npz").exists():
        found = json.loads((target / "labels.json").read_text())
        with np.load(target / "split.npz") as saved:
            types = saved.get("type_ids", None)
            split_ = TokenizedSplit(saved["ids"], saved["offsets"], saved["labels"], types)
        return split_, key, tuple(found) if found else None
    rows = read_rows(source, split, ds)
    if names is None and find_names:
        names = label_names_of(rows, ds, source.description)
    labels = label_ids(rows.labels, names, source.description, ds.label_column)
    # Tokenizers split a whole text before truncating it: one 10 MB line costs 9 s and 1.7 GB.
    # No token spans more than MAX_CHARS_PER_TOKEN characters of ordinary text, so cutting
    # there first changes nothing but the cost.
    limit = ds.max_length * MAX_CHARS_PER_TOKEN
    texts = [text[:limit] for text in rows.texts]
    if rows.pairs is None:
        encoded = tokenizer(texts, truncation=True, max_length=ds.max_length)
    else:
        # Truncation takes tokens from the longer text first (``longest_first``).
        seconds = [text[:limit] for text in rows.pairs]
        encoded = tokenizer(texts, seconds, truncation=True, max_length=ds.max_length)
    types = encoded.get("token_type_ids") if rows.pairs is not None else None
    result = TokenizedSplit.from_rows(
        [np.asarray(r, dtype=np.int32) for r in encoded["input_ids"]],
        labels,
        None if types is None else [np.asarray(t, dtype=np.int8) for t in types],
    )
    with cache.atomic_dir(target) as tmp:
        arrays = {"ids": result.ids, "offsets": result.offsets, "labels": result.labels}
        if result.type_ids is not None:
            arrays["type_ids"] = result.type_ids
        np.savez(tmp / "split.npz", **arrays)
        (tmp / "labels.json").write_text(json.dumps(list(names) if names else None))
    return result, key, names
