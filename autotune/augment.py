"""Augmentation for distillation (Tang et al. 2019), with no generator model and no download.

Each training sentence yields ``copies`` variants. Per whole word (a word-piece and the ``##``
pieces that follow it), a variant masks the word with probability ``mask_prob`` and otherwise
replaces it with probability ``replace_prob`` by one of its nearest neighbours in the
teacher's own input-embedding space (standing in for the same-part-of-speech replacement of
the paper, since no tagger ships). With probability ``ngram_prob`` the variant is then cut to
a random window of 1..5 words. Rules work on token ids, so nothing is re-tokenised.

A sentence pair is two segments between separator tokens: each segment is varied on its own
(and cut on its own), the separators and token types stay where the tokenizer put them.

The teacher labels every variant later (soft logits, cached); the hard label of a variant is
the teacher's prediction. Variants are deduplicated, and any sequence that equals a
validation sentence is dropped, so no validation sentence reaches training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autotune.compression.batching import TokenizedSplit
from autotune.spec import AugmentationSpec

MAX_NGRAM = 5
NEIGHBOURS = 8
ATTEMPTS_PER_COPY = 3  # a variant equal to one seen already is drawn again, this many times


@dataclass(frozen=True)
class Vocabulary:
    """What the rules need to know of the tokenizer's vocabulary."""

    mask_id: int
    sep_id: int  # ends a segment: [SEP] of BERT, </s> of RoBERTa
    special_ids: frozenset[int]
    continuation: np.ndarray  # bool per token id: a '##' piece continues the previous word
    neighbours: dict[int, np.ndarray]  # whole-word token id -> nearest whole-word token ids


def vocabulary(tokenizer, embeddings: np.ndarray, used_ids: np.ndarray) -> Vocabulary:
    """Rule tables from the tokenizer and the teacher's word-embedding matrix."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(embeddings))))
    continuation = np.array([t.startswith("##") for t in tokens])
    special = frozenset(int(i) for i in tokenizer.all_special_ids)
    words = np.array(
        [
            t.isalpha() and not continuation[i] and i not in special and not t.startswith("[")
            for i, t in enumerate(tokens)
        ]
    )
    return Vocabulary(
        mask_id=int(tokenizer.mask_token_id),
        sep_id=int(tokenizer.sep_token_id),
        special_ids=special,
        continuation=continuation,
        neighbours=nearest_words(embeddings, words, np.unique(used_ids)),
    )


def nearest_words(
    embeddings: np.ndarray, is_word: np.ndarray, queries: np.ndarray, k: int = NEIGHBOURS
) -> dict[int, np.ndarray]:
    """The ``k`` whole-word tokens with the highest cosine similarity to each query word."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-8)
    candidates = np.flatnonzero(is_word)
    queries = queries[is_word[queries]]
    table = unit[candidates].T.astype(np.float32)
    result: dict[int, np.ndarray] = {}
    for start in range(0, len(queries), 1024):
        chunk = queries[start : start + 1024]
        scores = unit[chunk].astype(np.float32) @ table
        scores[np.arange(len(chunk)), np.searchsorted(candidates, chunk)] = -np.inf  # not itself
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for query, row in zip(chunk, top, strict=True):
            result[int(query)] = candidates[row]
    return result


def augment(
    train: TokenizedSplit,
    vocab: Vocabulary,
    settings: AugmentationSpec,
    seed: int,
    exclude: set[tuple[int, ...]],
) -> TokenizedSplit:
    """New token sequences (each with its [CLS]/[SEP]), never one of ``exclude`` or a repeat;
    unlabelled (label -1), with token types when ``train`` has them.

    ``exclude`` holds the sequences already in training and the validation sequences.
    """
    rng = np.random.default_rng(seed)
    seen = set(exclude)
    variants: list[np.ndarray] = []
    types: list[np.ndarray] = []
    for index in range(len(train)):
        layout = Layout.of(train.row(index), train.row_types(index), vocab)
        if not any(layout.segments):
            continue
        for _ in range(settings.copies):
            for _ in range(ATTEMPTS_PER_COPY):
                candidate, candidate_types = layout.variant(vocab, settings, rng)
                key = tuple(candidate.tolist())
                if key not in seen:
                    seen.add(key)
                    variants.append(candidate)
                    types.append(candidate_types)
                    break
    labels = np.full(len(variants), -1, dtype=np.int64)
    return TokenizedSplit.from_rows(variants, labels, types if train.type_ids is not None else None)


def split_words(row: np.ndarray, vocab: Vocabulary) -> list[np.ndarray]:
    """The row's inner tokens grouped into whole words (special tokens dropped)."""
    words: list[list[int]] = []
    for token in row.tolist():
        if token in vocab.special_ids:
            continue
        if words and vocab.continuation[token]:
            words[-1].append(token)
        else:
            words.append([token])
    return [np.asarray(w, dtype=np.int32) for w in words]


@dataclass(frozen=True)
class Layout:
    """A row cut at its separators: ``[CLS] words [SEP]`` for one sentence, ``[CLS] words
    [SEP] words [SEP]`` for a pair. ``parts`` alternate kept tokens (the first token and each
    separator, as arrays) and segment numbers (ints); ``types`` gives each part's token type."""

    parts: list[np.ndarray | int]
    segments: list[list[np.ndarray]]  # whole words of each segment
    types: list[int]

    @classmethod
    def of(cls, row: np.ndarray, row_types: np.ndarray | None, vocab: Vocabulary) -> Layout:
        parts: list[np.ndarray | int] = [row[:1]]
        segments: list[list[np.ndarray]] = []
        types = [0 if row_types is None else int(row_types[0])]
        start = 1
        for end in [*np.flatnonzero(row[1:] == vocab.sep_id) + 1, len(row)]:
            if end > start:
                parts.append(len(segments))
                segments.append(split_words(row[start:end], vocab))
                types.append(0 if row_types is None else int(row_types[start]))
            if end < len(row):
                parts.append(row[end : end + 1])
                types.append(0 if row_types is None else int(row_types[end]))
            start = end + 1
        return cls(parts, segments, types)

    def variant(
        self, vocab: Vocabulary, settings: AugmentationSpec, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """One variant's token ids and token types."""
        bodies = [_varied(words, vocab, settings, rng) for words in self.segments]
        pieces = [bodies[p] if isinstance(p, int) else p for p in self.parts]
        ids = np.concatenate(pieces).astype(np.int32)
        types = np.concatenate(
            [
                np.full(len(piece), t, dtype=np.int8)
                for piece, t in zip(pieces, self.types, strict=True)
            ]
        )
        return ids, types


def _varied(
    words: list[np.ndarray],
    vocab: Vocabulary,
    settings: AugmentationSpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """One segment's words after masking, replacement and the n-gram cut."""
    if not words:
        return np.zeros(0, dtype=np.int32)
    changed: list[np.ndarray] = []
    for word in words:
        draw = rng.random()
        if draw < settings.mask_prob:
            changed.append(np.array([vocab.mask_id], dtype=np.int32))
        elif draw < settings.mask_prob + settings.replace_prob and len(word) == 1:
            options = vocab.neighbours.get(int(word[0]))
            changed.append(word if options is None else options[rng.integers(len(options))][None])
        else:
            changed.append(word)
    if rng.random() < settings.ngram_prob and len(changed) > 1:
        n = int(rng.integers(1, min(MAX_NGRAM, len(changed)) + 1))
        start = int(rng.integers(0, len(changed) - n + 1))
        changed = changed[start : start + n]
    return np.concatenate(changed).astype(np.int32)
