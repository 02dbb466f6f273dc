"""Tokenized splits and length-sorted, dynamically padded batches.

Sorting by length and padding each batch only to its longest row is about 3x faster than
padding everything to the maximum length on SST-2, whose sentences are mostly short.

A split of sentence pairs also keeps the tokenizer's ``token_type_ids`` (which segment each
token belongs to); its batches, every forward pass and the exported graph then take them as
a third input. Single sentences leave them out: BERT's default is all zeros.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


BASE_INPUTS = ("input_ids", "attention_mask")
PAIR_INPUTS = (*BASE_INPUTS, "token_type_ids")


@dataclass(frozen=True)
class TokenizedSplit:
    """Token ids of every row stored flat, with offsets, plus integer labels; for sentence
    pairs, the token type (segment) of every token in the same flat layout."""

    ids: np.ndarray  # int32, all rows concatenated
    offsets: np.ndarray  # int64, len(rows) + 1
    labels: np.ndarray  # int64
    type_ids: np.ndarray | None = None  # int8, like ``ids``; None for single sentences

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model inputs this split's batches feed."""
        return PAIR_INPUTS if self.type_ids is not None else BASE_INPUTS

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    def row_types(self, index: int) -> np.ndarray | None:
        if self.type_ids is None:
            return None
        return self.type_ids[self.offsets[index] : self.offsets[index + 1]]

    def subset(self, indices: np.ndarray) -> TokenizedSplit:
        rows = [self.row(i) for i in indices]
        types = None if self.type_ids is None else [self.row_types(i) for i in indices]
        return TokenizedSplit.from_rows(rows, self.labels[indices], types)

    def concat(self, other: TokenizedSplit) -> TokenizedSplit:
        """This split's rows, then ``other``'s (both pairs or both single sentences)."""
        if (self.type_ids is None) != (other.type_ids is None):
            raise ValueError("cannot join a split of sentence pairs with one of sentences")
        types = None
        if self.type_ids is not None and other.type_ids is not None:
            types = np.concatenate([self.type_ids, other.type_ids])
        return TokenizedSplit(
            ids=np.concatenate([self.ids, other.ids]),
            offsets=np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]]),
            labels=np.concatenate([self.labels, other.labels]),
            type_ids=types,
        )

    @classmethod
    def from_rows(
        cls,
        rows: list[np.ndarray],
        labels: np.ndarray,
        type_rows: list[np.ndarray] | None = None,
    ) -> TokenizedSplit:
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
        types = None
        if type_rows is not None:
            if [len(t) for t in type_rows] != lengths.tolist():
                raise ValueError("token types and token ids differ in length")
            types = np.concatenate(type_rows).astype(np.int8) if rows else np.zeros(0, np.int8)
        return cls(
            ids=ids, offsets=offsets, labels=np.asarray(labels, dtype=np.int64), type_ids=types
        )


@dataclass(frozen=True)
class Batch:
    indices: np.ndarray
    input_ids: np.ndarray  # int64 [batch, longest]
    attention_mask: np.ndarray  # int64 [batch, longest]
    labels: np.ndarray
    token_type_ids: np.ndarray | None = None  # int64 [batch, longest], sentence pairs only

    def inputs(self) -> dict[str, np.ndarray]:
        """The model's inputs by name: an ONNX Runtime feed, or keyword arguments."""
        feed = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            feed["token_type_ids"] = self.token_type_ids
        return feed

    def tensors(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """:meth:`inputs` as torch tensors on ``device``, for ``model(**batch.tensors())``."""
        import torch  # here: reading data must not load torch

        return {name: torch.from_numpy(array).to(device) for name, array in self.inputs().items()}


def pad(split: TokenizedSplit, indices: np.ndarray, pad_id: int = 0) -> Batch:
    lengths = split.lengths[indices]
    width = int(lengths.max())
    input_ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(indices), width), dtype=np.int64)
    types = None if split.type_ids is None else np.zeros((len(indices), width), dtype=np.int64)
    for row, (index, length) in enumerate(zip(indices, lengths, strict=True)):
        input_ids[row, :length] = split.row(index)
        mask[row, :length] = 1
        if types is not None:
            types[row, :length] = split.row_types(index)
    return Batch(indices, input_ids, mask, split.labels[indices], types)


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
