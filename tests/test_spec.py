from pathlib import Path

import pytest

from autotune.errors import SpecError
from autotune.spec import load_spec, parse_spec

STUDIES = Path(__file__).resolve().parents[1] / "studies"


@pytest.mark.parametrize("name", ["smoke.toml", "sst2-minilm.toml"])
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
