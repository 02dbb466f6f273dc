"""The only place that calls ``trial.suggest_*``: spec bounds -> :class:`CompressionConfig`."""

from __future__ import annotations

from typing import Any

from autotune.compression.config import CompressionConfig
from autotune.errors import ConfigError
from autotune.spec import FloatRange, SpaceSpec


def suggest_config(
    trial: Any, space: SpaceSpec, teacher_layers: int, teacher_heads: int
) -> CompressionConfig:
    layers = trial.suggest_int(
        "layers", space.layers.min, _cap("layers", space.layers, teacher_layers)
    )
    heads = trial.suggest_int("heads", space.heads.min, _cap("heads", space.heads, teacher_heads))
    ffn_fraction = _suggest_float(trial, "ffn_fraction", space.ffn_fraction)
    sparsity = _suggest_float(trial, "sparsity", space.sparsity)
    bits = trial.suggest_categorical("bits", list(space.bits))
    int8_method = None
    if bits == 8:
        # Conditional: the INT8 method exists only when bits == 8, so TPE models it only there.
        methods = list(space.int8_methods)
        int8_method = (
            trial.suggest_categorical("int8_method", methods) if len(methods) > 1 else methods[0]
        )
    return CompressionConfig(
        layers=layers,
        heads=heads,
        ffn_fraction=ffn_fraction,
        sparsity=sparsity,
        bits=bits,
        int8_method=int8_method,
        temperature=_suggest_float(trial, "temperature", space.temperature),
        alpha=_suggest_float(trial, "alpha", space.alpha),
    )


def _cap(name: str, bounds: Any, teacher_max: int) -> int:
    if bounds.min > teacher_max:
        raise ConfigError(
            f"space.{name}.min={bounds.min} but the teacher has {teacher_max}; "
            f"allowed: 1..{teacher_max}"
        )
    return min(bounds.max, teacher_max)


def _suggest_float(trial: Any, name: str, bounds: FloatRange) -> float:
    if bounds.min == bounds.max:
        return bounds.min
    value = trial.suggest_float(name, bounds.min, bounds.max, step=bounds.step)
    return round(value, 6)  # stepped floats: 0.30000000000000004 -> 0.3, stable cache keys


def config_params(config: CompressionConfig, space: SpaceSpec) -> dict[str, Any]:
    """Optuna parameters that make ``suggest_config`` return ``config`` (for enqueueing)."""
    params = {
        "layers": config.layers,
        "heads": config.heads,
        "ffn_fraction": config.ffn_fraction,
        "sparsity": config.sparsity,
        "bits": config.bits,
        "temperature": config.temperature,
        "alpha": config.alpha,
    }
    if config.bits == 8 and len(space.int8_methods) > 1:
        params["int8_method"] = config.int8_method
    return params
