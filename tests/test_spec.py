from pathlib import Path

import pytest

from autotune.errors import SpecError
from autotune.spec import load_spec, parse_spec

STUDIES = Path(__file__).resolve().parents[1] / "studies"


@pytest.mark.parametrize(
    "name", ["smoke.toml", "sst2-minilm.toml", "sst2-minilm-logit-kd.toml", "sst2-minilm-mf.toml"]
)
def test_shipped_specs_load(name: str) -> None:
    spec = load_spec(STUDIES / name)
    assert spec.dataset.hub_id == "nyu-mll/glue"
    assert spec.dataset.local_folder == "sst2"
    assert spec.latency_sequence_length == 64


def _minimal(**extra: object) -> dict:
    raw: dict = {"name": "s", "dataset": {"path": "d"}, "teacher": {"checkpoint": "t"}}
    raw.update(extra)
    return raw


def test_unknown_key_names_the_field_and_allowed_keys() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_minimal(space={"layerz": {"min": 1, "max": 2}}), source="x.toml")
    message = str(err.value)
    assert message.startswith("x.toml: space.layerz: unknown key")
    assert "layers" in message and "sparsity" in message


def test_out_of_range_value_names_value_and_limit() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_minimal(space={"sparsity": {"min": 0.0, "max": 0.95}}), source="x.toml")
    assert "sparsity must lie in [0, 0.9]" in str(err.value)


def test_wrong_type_names_field_and_value() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_minimal(latency={"threads": "many"}), source="x.toml")
    assert "latency.threads" in str(err.value) and "'many'" in str(err.value)


def test_bits_outside_allowed_values() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_minimal(space={"bits": [16]}), source="x.toml")
    assert "space.bits.0" in str(err.value) and "32, 8 or 4" in str(err.value)


def test_missing_required_field() -> None:
    with pytest.raises(SpecError, match=r"teacher: required field is missing"):
        parse_spec({"name": "s", "dataset": {"path": "d"}})


def test_dataset_needs_a_source() -> None:
    with pytest.raises(SpecError, match="give one of 'path', 'local_name' or 'hub_id'"):
        parse_spec(_minimal(dataset={"text_column": "x"}))


def test_inverted_range() -> None:
    with pytest.raises(SpecError, match=r"min \(5\) must be <= max \(2\)"):
        parse_spec(_minimal(space={"layers": {"min": 5, "max": 2}}))


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("training", {"device": "tpu"}, "training.device: Input should be 'auto', 'cpu' or 'cuda'"),
        ("training", {"freeze_embeddings": "maybe"}, "training.freeze_embeddings: Input should"),
        ("distillation", {"hidden_weight": -1}, "distillation.hidden_weight: Input should be"),
        ("distillation", {"attention_wieght": 1}, "distillation.attention_wieght: unknown key"),
        ("distillation", {"intermediate_epochs": 99}, "distillation.intermediate_epochs: Input"),
        ("augmentation", {"copies": 51}, "augmentation.copies: Input should be less than or"),
        ("augmentation", {"mask_prob": 1.5}, "augmentation.mask_prob: Input should be less"),
        (
            "augmentation",
            {"mask_prob": 0.6, "replace_prob": 0.6},
            "augmentation: mask_prob + replace_prob must be <= 1, got 1.2",
        ),
        ("augmentation", {"unlabelled_path": ""}, "augmentation.unlabelled_path: String should"),
        ("search", {"fidelity": {"min_examples": 100, "eta": 1}}, "search.fidelity.eta: Input"),
        ("search", {"fidelity": {"eta": 3}}, "search.fidelity.min_examples: required field"),
        ("search", {"fidelity": {"min_examples": 0}}, "search.fidelity.min_examples: Input"),
        (
            "search",
            {"fidelity": {"min_examples": 100, "promote": 1}},
            "search.fidelity.promote: Input",
        ),
    ],
)
def test_recipe_fields_give_one_line_errors(section: str, values: dict, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_minimal(**{section: values}), source="x.toml")
    message = str(err.value)
    assert message.startswith(f"x.toml: {expected}"), message
    assert "\n" not in message


def test_recipe_defaults_keep_todays_behaviour() -> None:
    spec = parse_spec(_minimal())
    assert spec.training.device == "auto" and not spec.training.freeze_embeddings
    assert spec.distillation.hidden_weight == spec.distillation.attention_weight == 0
    assert not spec.augmentation.enabled


def test_shipped_sst2_spec_holds_the_recipe() -> None:
    spec = load_spec(STUDIES / "sst2-minilm.toml")
    assert spec.distillation.hidden_weight > 0 and spec.distillation.attention_weight > 0
    assert spec.augmentation.copies > 0
    assert spec.training.epochs > 1


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["only"], "dataset.label_names: List should have at least 2 items"),
        (["pos", "pos"], "dataset.label_names: label names must be distinct (got ['pos', 'pos'])"),
        (["pos", " "], "dataset.label_names: label names must not be empty"),
        ("pos,neg", "dataset.label_names: Input should be a valid list"),
    ],
)
def test_label_names_give_one_line_errors(names: object, expected: str) -> None:
    spec = _minimal()
    spec["dataset"] = {**spec["dataset"], "label_names": names}
    with pytest.raises(SpecError) as err:
        parse_spec(spec, source="x.toml")
    message = str(err.value)
    assert message.startswith(f"x.toml: {expected}"), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            {"text_column": "q", "text_pair_column": "q"},
            "dataset: text_column, text_pair_column and label_column must differ "
            "(got ['q', 'q', 'label'])",
        ),
        ({"text_pair_column": ""}, "dataset.text_pair_column: String should have at least 1"),
    ],
)
def test_pair_column_gives_one_line_errors(columns: dict, expected: str) -> None:
    spec = _minimal()
    spec["dataset"] = {**spec["dataset"], **columns}
    with pytest.raises(SpecError) as err:
        parse_spec(spec, source="x.toml")
    message = str(err.value)
    assert message.startswith(f"x.toml: {expected}"), message
    assert "\n" not in message


def test_ranking_by_the_data_profile_needs_one() -> None:
    spec = _minimal()
    spec["latency"] = {"optimise": "data_p90", "data_rows": 0}
    with pytest.raises(SpecError) as err:
        parse_spec(spec, source="x.toml")
    assert "optimise = 'data_p90' needs data_rows > 0" in str(err.value)
    spec["latency"] = {"optimise": "p50"}
    with pytest.raises(SpecError, match="latency.optimise: Input should be 'fixed', 'data_mean'"):
        parse_spec(spec, source="x.toml")


def test_latency_run_cap_below_the_first_batch_is_refused() -> None:
    spec = _minimal()
    spec["latency"] = {"runs": 200, "max_runs": 100}
    with pytest.raises(SpecError) as err:
        parse_spec(spec, source="x.toml")
    assert "max_runs (100) must be at least runs (200)" in str(err.value)
    spec["latency"] = {"precision": -0.1}
    with pytest.raises(SpecError, match="latency.precision"):
        parse_spec(spec, source="x.toml")
