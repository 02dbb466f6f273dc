"""Tokenized splits and length-sorted, dynamically padded batches.

Sorting by length and padding each batch only to its longest row is about 3x faster than
padding everything to the maximum length on SST-2, whose sentences are mostly short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenizedSplit:
    """Token ids of every row stored flat, with offsets, plus integer labels."""

    ids: np.ndarray  # int32, all rows concatenated
    offsets: np.ndarray  # int64, len(rows) + 1
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def subset(self, indices: np.ndarray) -> TokenizedSplit:
        rows = [self.row(i) for i in indices]
        return TokenizedSplit.from_rows(rows, self.labels[indices])

    @classmethod
    def from_rows(cls, rows: list[np.ndarray], labels: np.ndarray) -> TokenizedSplit:
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
        return cls(ids=ids, offsets=offsets, labels=np.asarray(labels, dtype=np.int64))


@dataclass(frozen=True)
class Batch:
    indices: np.ndarray
    input_ids: np.ndarray  # int64 [batch, longest]
    attention_mask: np.ndarray  # int64 [batch, longest]
    labels: np.ndarray


def pad(split: TokenizedSplit, indices: np.ndarray, pad_id: int = 0) -> Batch:
    lengths = split.lengths[indices]
    width = int(lengths.max())
    input_ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(indices), width), dtype=np.int64)
    for row, (index, length) in enumerate(zip(indices, lengths, strict=True)):
        input_ids[row, :length] = split.row(index)
        mask[row, :length] = 1
    return Batch(indices, input_ids, mask, split.labels[indices])


def eval_batches(split: TokenizedSplit, batch_size: int, pad_id: int = 0) -> Iterator[Batch]:
    """All rows once, sorted by length so that padding is minimal."""
    order = np.argsort(split.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield pad(split, order[start : start + batch_size], pad_id)


def train_batches(
    split: TokenizedSplit, batch_size: int, rng: np.random.Generator, pad_id: int = 0
) -> Iterator[Batch]:
    """One epoch of length-bucketed batches in random order.

    Rows are shuffled, cut into chunks of 50 batches, sorted by length inside each chunk and
    batched; the batches are then shuffled, so training sees similar lengths together (little
    padding) without a fixed short-to-long curriculum.
    """
    order = rng.permutation(len(split))
    chunk = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(split.lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    for position in rng.permutation(len(batches)):
        yield pad(split, batches[position], pad_id)


def batches_per_epoch(n_rows: int, batch_size: int) -> int:
    """Upper bound used for schedules (chunking can add at most one short batch per chunk)."""
    chunk = batch_size * 50
    full, rest = divmod(n_rows, chunk)
    return full * 50 + -(-rest // batch_size)
