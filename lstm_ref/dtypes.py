"""Keras dtype policies: which dtype the variables live in, which one computes.

Keras 3 (``keras/src/dtype_policies/dtype_policy.py``) splits a policy name
into a variable dtype and a compute dtype: ``"float16"`` keeps both in
float16, ``"mixed_float16"`` keeps float32 variables and casts them, and the
inputs, to float16 at every use.
"""

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

_POLICIES = {
    "float16": ("float16", "float16"),
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "mixed_float16": ("float32", "float16"),
}
_REFUSED = {
    "bfloat16": "NumPy has no native bfloat16 arithmetic",
    "mixed_bfloat16": "NumPy has no native bfloat16 arithmetic",
}


@dataclass(frozen=True)
class Policy:
    name: str
    variable: np.dtype
    compute: np.dtype


def resolve_policy(dtype=None) -> Policy:
    """Turn a Keras ``dtype`` argument (name, np.dtype or a serialized
    ``DTypePolicy`` dict from ``get_config()``) into a :class:`Policy`."""
    if dtype is None:
        name = "float32"  # keras.config.floatx() default
    elif isinstance(dtype, dict):
        try:
            name = dtype["config"]["name"]
        except (KeyError, TypeError):
            raise ConfigError(f"config['dtype']: cannot read a policy name from {dtype!r}") from None
    elif isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            raise ConfigError(f"config['dtype']: expected a dtype or policy name, got {dtype!r}") from None
    if name in _REFUSED:
        raise ConfigError(f"config['dtype']={name!r} is not supported: {_REFUSED[name]}")
    if name not in _POLICIES:
        raise ConfigError(f"config['dtype']={name!r} is not supported; expected one of {sorted(_POLICIES)}")
    variable, compute = _POLICIES[name]
    return Policy(name, np.dtype(variable), np.dtype(compute))
