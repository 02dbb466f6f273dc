import optuna
import pytest

from autotune.errors import ConfigError
from autotune.search.space import config_params, suggest_config
from autotune.spec import SpaceSpec


def _sample(space: SpaceSpec, n: int = 40):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append((trial, suggest_config(trial, space, teacher_layers=6, teacher_heads=12)))
        study.tell(trial, 0.0)
    return configs


def test_int8_method_is_only_suggested_for_int8() -> None:
    space = SpaceSpec(bits=[32, 8, 4], int8_methods=["dynamic", "qat"])
    seen_bits = set()
    for trial, config in _sample(space):
        seen_bits.add(config.bits)
        assert ("int8_method" in trial.params) == (config.bits == 8)
        assert (config.int8_method is not None) == (config.bits == 8)
    assert seen_bits == {32, 8, 4}


def test_bounds_steps_and_teacher_caps() -> None:
    space = SpaceSpec.model_validate(
        {"layers": {"min": 2, "max": 12}, "sparsity": {"min": 0, "max": 0.9, "step": 0.3}}
    )
    for _, config in _sample(space):
        assert 2 <= config.layers <= 6  # capped at the teacher's depth
        assert config.sparsity in (0.0, 0.3, 0.6, 0.9)


def test_space_beyond_teacher_is_a_config_error() -> None:
    study = optuna.create_study()
    with pytest.raises(ConfigError, match="space.layers.min=8 but the teacher has 6"):
        suggest_config(
            study.ask(), SpaceSpec.model_validate({"layers": {"min": 8, "max": 9}}), 6, 12
        )


def test_enqueued_params_reproduce_a_config() -> None:
    space = SpaceSpec(int8_methods=["dynamic", "qat"])
    _, config = _sample(space, 1)[0]
    study = optuna.create_study()
    study.enqueue_trial(config_params(config, space))
    assert suggest_config(study.ask(), space, 6, 12) == config
