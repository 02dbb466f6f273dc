import pytest

from autotune.compression.config import CompressionConfig
from autotune.errors import ConfigError


def test_int8_method_is_conditional_on_bits() -> None:
    assert CompressionConfig(layers=2, heads=4, bits=8).int8_method == "dynamic"
    assert CompressionConfig(layers=2, heads=4, bits=4, int8_method="qat").int8_method is None
    assert CompressionConfig(layers=2, heads=4, bits=8, int8_method="qat").int8_method == "qat"
    seven = CompressionConfig(layers=2, heads=4, bits=8, int8_method="dynamic7")
    assert seven.label().endswith("INT8-dynamic7")


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("layers", 0, "an integer >= 1"),
        ("sparsity", 0.95, "0..0.9"),
        ("bits", 16, "one of 32, 8, 4"),
        ("ffn_fraction", 0.0, "(0, 1]"),
        ("alpha", 1.5, "[0, 1]"),
        ("temperature", 0, "> 0"),
    ],
)
def test_out_of_range_values(field: str, value: float, allowed: str) -> None:
    values = {"layers": 2, "heads": 4, field: value}
    with pytest.raises(ConfigError) as err:
        CompressionConfig.from_dict(values)
    assert f"{field}={value!r} is out of range" in str(err.value)
    assert allowed in str(err.value)


def test_unknown_key_lists_allowed() -> None:
    with pytest.raises(ConfigError, match=r"unknown configuration key\(s\) depth; allowed: layers"):
        CompressionConfig.from_dict({"layers": 2, "heads": 4, "depth": 3})


def test_label_and_roundtrip() -> None:
    config = CompressionConfig(layers=4, heads=6, ffn_fraction=0.5, sparsity=0.5, bits=8)
    assert config.label() == "L4-H6-F0.5-S0.5-INT8-dynamic"
    assert CompressionConfig.from_dict(config.to_dict()) == config
