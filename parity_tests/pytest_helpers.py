"""Helpers shared by the parity tests (array-api-tests' ``ph`` in spirit)."""

import numpy as np


def float64_twin(ref, config, x, weights, h0=None, c0=None, mask=None):
    """The run TF does in float64 on the inputs oracle mode sees: x and states
    rounded to the compute dtype, weights to the variable dtype, then widened.
    Oracle mode must match TF on this twin to the float64 tolerance."""
    compute, variable = ref.policy.compute, ref.policy.variable

    def widen(a, dtype):
        return None if a is None else np.asarray(a).astype(dtype).astype(np.float64)

    assert config == ref.config
    return (ref.float64_config(), widen(x, compute), {k: widen(v, variable) for k, v in weights.items()},
            widen(h0, compute), widen(c0, compute), mask)


def has_float64_twin(kind, config):
    """contrib's layer-norm epsilon is 1e-3 in float16 but 1e-12 in float64,
    so a float16 contrib cell has no float64 twin."""
    return not (kind == "tf.contrib.rnn.LayerNormBasicLSTMCell" and config.get("dtype") == "float16")
