import json
from pathlib import Path

import pytest

from autotune.errors import TeacherError
from autotune.teacher import check_labels, load_teacher, resolve_checkpoint
from tests.helpers import make_tiny_teacher


def test_loads_tiny_teacher(tiny_teacher: Path) -> None:
    teacher = load_teacher(str(tiny_teacher))
    assert teacher.num_labels == 2
    assert not teacher.model.training
    assert teacher.model.config._attn_implementation == "eager"


def test_resolves_name_in_models_dir(tiny_teacher: Path) -> None:
    assert resolve_checkpoint(tiny_teacher.name, tiny_teacher.parent) == str(tiny_teacher)


def test_missing_teacher_directory(tmp_path: Path) -> None:
    with pytest.raises(TeacherError, match=r"teacher checkpoint 'nope' not found \(looked in"):
        load_teacher("nope", tmp_path)


def test_hub_id_is_passed_through_when_not_local(tmp_path: Path) -> None:
    assert resolve_checkpoint("someone/model", tmp_path) == "someone/model"


def test_directory_missing_weights(tmp_path: Path, tiny_teacher: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_teacher / "config.json").read_text())
    with pytest.raises(TeacherError, match=r"missing model.safetensors or pytorch_model.bin"):
        load_teacher(str(broken))


def test_wrong_number_of_labels(tmp_path: Path) -> None:
    teacher = load_teacher(str(make_tiny_teacher(tmp_path / "three", num_labels=3)))
    with pytest.raises(TeacherError, match="predicts 3 labels but the dataset has 2"):
        check_labels(teacher, 2)


def test_wrong_architecture(tmp_path: Path, tiny_teacher: Path) -> None:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    path = tmp_path / "gpt2"
    model = GPT2ForSequenceClassification(
        GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=100)
    )
    model.save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        if (tiny_teacher / name).exists():
            (path / name).write_bytes((tiny_teacher / name).read_bytes())
    with pytest.raises(TeacherError, match="is a 'gpt2' model; autotune supports BERT-style"):
        load_teacher(str(path))


def test_missing_models_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(TeacherError, match=r"the models directory .*nowhere does not exist"):
        load_teacher("my-teacher", tmp_path / "nowhere")


def test_missing_teacher_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(TeacherError, match=r"make it with: autotune teacher train SPEC \(it "):
        load_teacher("my-teacher", tmp_path)


def test_teacher_naming_its_classes_in_another_order(tmp_path: Path) -> None:
    path = make_tiny_teacher(tmp_path / "named")
    config = json.loads((path / "config.json").read_text())
    config |= {"id2label": {"0": "pos", "1": "neg"}, "label2id": {"pos": 0, "neg": 1}}
    (path / "config.json").write_text(json.dumps(config))
    teacher = load_teacher(str(path))
    check_labels(teacher, 2, ("pos", "neg"))  # the same order: fine
    check_labels(teacher, 2, None)  # integer labels without names: nothing to compare
    with pytest.raises(TeacherError, match=r"names its classes \['pos', 'neg'\] .* dataset's"):
        check_labels(teacher, 2, ("neg", "pos"))
