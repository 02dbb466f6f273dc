"""The distillation set: originals plus teacher-labelled variants and unlabelled text, cached."""

from pathlib import Path

import numpy as np
import pytest

from autotune import augment, cache, data, distill_data
from autotune.compression import export
from autotune.errors import DataError
from autotune.spec import AugmentationSpec, DatasetSpec
from autotune.teacher import load_teacher


@pytest.fixture(scope="module")
def setup(tiny_teacher: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):
    teacher = load_teacher(str(tiny_teacher))
    splits = data.load_splits(
        DatasetSpec(path=str(tiny_data), max_length=16),
        teacher.tokenizer,
        teacher.tokenizer_fingerprint,
        None,
    )
    folder = tmp_path_factory.mktemp("reference")
    reference = export.optimize_for_ort(
        export.export_onnx(teacher.model, folder / "raw.onnx"), folder / "fp32.onnx"
    )
    return teacher, splits, reference


def _build(setup, settings: AugmentationSpec, seed: int = 0) -> distill_data.DistillationSet:
    teacher, splits, reference = setup
    return distill_data.build(
        teacher, reference, splits.train, splits.validation, settings, seed, "base", 0, 16
    )


def _keys(split, start: int = 0) -> list[tuple[int, ...]]:
    return [tuple(split.row(i).tolist()) for i in range(start, len(split))]


def test_without_augmentation_it_is_the_training_split(setup) -> None:
    _, splits, _ = setup
    plain = _build(setup, AugmentationSpec())
    assert len(plain.train) == len(splits.train) == plain.original_rows
    assert plain.logits.shape == (len(splits.train), 2)
    assert plain.key == "base"


def test_added_rows_are_labelled_new_and_never_validation(setup) -> None:
    _, splits, _ = setup
    built = _build(setup, AugmentationSpec(copies=4, mask_prob=0.3, replace_prob=0.3))
    added = _keys(built.train, built.original_rows)
    assert len(added) > len(splits.train)  # 96 rows from 20 distinct phrases give ~100 new ones
    assert len(set(added)) == len(added)
    assert not set(added) & set(_keys(splits.validation))
    assert not set(added) & set(_keys(splits.train))
    np.testing.assert_array_equal(built.train.labels[: built.original_rows], splits.train.labels)
    teacher_says = built.logits[built.original_rows :].argmax(axis=1)
    np.testing.assert_array_equal(built.train.labels[built.original_rows :], teacher_says)
    assert built.labelling_seconds > 0


def test_second_build_is_a_cache_hit(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = AugmentationSpec(copies=2)
    first = _build(setup, settings, seed=7)

    def refuse(*_args, **_kwargs):
        raise AssertionError("augmented again instead of reading the cache")

    monkeypatch.setattr(augment, "augment", refuse)
    monkeypatch.setattr(distill_data, "predict_logits", refuse)
    second = _build(setup, settings, seed=7)
    np.testing.assert_array_equal(first.train.ids, second.train.ids)
    np.testing.assert_array_equal(first.logits, second.logits)
    assert first.key == second.key
    with pytest.raises(AssertionError, match="augmented again"):
        _build(setup, settings, seed=8)  # another seed is another entry


def test_unlabelled_text_joins_without_validation_sentences(setup, tmp_path: Path) -> None:
    teacher, splits, _ = setup
    validation_text = teacher.tokenizer.decode(splits.validation.row(0)[1:-1])
    text = tmp_path / "reviews.txt"
    text.write_text(f"an odd little film\n\n{validation_text}\nan odd little film\n")
    built = _build(setup, AugmentationSpec(unlabelled_path=str(text)))
    added = _keys(built.train, built.original_rows)
    assert [teacher.tokenizer.decode(row[1:-1]) for row in added] == ["an odd little film"]


def test_unlabelled_file_errors_are_one_line(setup, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing.txt is not a file \(give a text file"):
        _build(setup, AugmentationSpec(unlabelled_path=str(tmp_path / "missing.txt")))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match="no text"):
        _build(setup, AugmentationSpec(unlabelled_path=str(empty)))
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        _build(setup, AugmentationSpec(unlabelled_path=str(latin)))
    assert not list((cache.cache_root() / "augmented").glob(".*"))  # nothing half-written


def test_pair_rows_keep_their_token_types_through_augmentation(
    tiny_teacher: Path, tmp_path: Path
) -> None:
    """A study of pairs: variants and tab-separated unlabelled lines carry token types; a
    line that is not two texts is refused with its number."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    for split, n in (("train", 40), ("validation", 10)):
        lines = ["first\tsecond\tlabel"] + [
            f"a great film number {i}\tawful acting {i % 3}\t{i % 2}" for i in range(n)
        ]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    teacher = load_teacher(str(tiny_teacher))
    ds = DatasetSpec(path=str(folder), text_column="first", text_pair_column="second")
    splits = data.load_splits(ds, teacher.tokenizer, teacher.tokenizer_fingerprint, None)
    names = splits.train.input_names
    reference = export.optimize_for_ort(
        export.export_onnx(teacher.model, tmp_path / "raw.onnx", names), tmp_path / "fp32.onnx"
    )
    unlabelled = tmp_path / "more.txt"
    unlabelled.write_text("superb\ti hated it\nwonderful acting\tboring and slow\n")
    settings = AugmentationSpec(copies=2, unlabelled_path=str(unlabelled))
    built = distill_data.build(
        teacher, reference, splits.train, splits.validation, settings, 0, "pairs", 0, 16, True
    )
    assert built.train.type_ids is not None and len(built.train) > len(splits.train) + 2
    sep = teacher.tokenizer.sep_token_id
    for i in range(built.original_rows, len(built.train)):
        row, types = built.train.row(i), built.train.row_types(i)
        middle = int(np.flatnonzero(row == sep)[0])
        assert (types[: middle + 1] == 0).all() and (types[middle + 1 :] == 1).all()
    first_line = teacher.tokenizer("superb", "i hated it")["input_ids"]
    assert tuple(first_line) in set(_keys(built.train, built.original_rows))

    unlabelled.write_text("superb\ti hated it\njust one text\n")
    with pytest.raises(DataError, match=r"more.txt: line 2 is not two texts separated by a tab"):
        distill_data.build(
            teacher, reference, splits.train, splits.validation, settings, 1, "p2", 0, 16, True
        )
