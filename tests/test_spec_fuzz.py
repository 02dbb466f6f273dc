"""Hypothesis fuzzes the spec loader: whatever a spec file holds, the loader returns a valid
spec or raises SpecError with one line naming the file, never anything else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autotune.errors import SpecError
from autotune.spec import StudySpec, TrainingSpec, load_spec, parse_spec

STUDIES = Path(__file__).resolve().parents[1] / "studies"
VALID = load_spec(STUDIES / "smoke.toml").model_dump(mode="json", exclude_none=True)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    return found


PATHS = _paths(VALID)


def _assert_clean(error: SpecError, source: str) -> None:
    message = str(error)
    assert message.startswith(f"{source}: "), message
    assert "\n" not in message and len(message) < 2000, message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=values, delete=st.booleans())
def test_mutated_spec_is_valid_or_one_line_error(path: tuple, value: Any, delete: bool) -> None:
    raw = copy.deepcopy(VALID)
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        assert isinstance(parse_spec(raw, source="fuzz.toml"), StudySpec)
    except SpecError as error:
        _assert_clean(error, "fuzz.toml")


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=12), values, min_size=1, max_size=3))
@example(extra={"\n": 0})  # found by Hypothesis in CI: a key holding a newline
@example(extra={"": 0, " x": 1})
@example(extra={"threads": None})  # a known key at its default is fine
def test_unknown_keys_anywhere_are_refused(extra: dict[str, Any]) -> None:
    raw = copy.deepcopy(VALID)
    raw["training"] = {**raw["training"], **extra}
    try:
        parse_spec(raw, source="fuzz.toml")
    except SpecError as error:
        _assert_clean(error, "fuzz.toml")
    else:
        assert set(extra) <= set(TrainingSpec.model_fields)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_file_content(tmp_path_factory, content: bytes | str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "spec.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(content)
    try:
        load_spec(path)
    except SpecError as error:
        _assert_clean(error, str(path))
