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


def assert_oracle_mode_is_tf_float64(oracle, ref, x, weights, h0=None, c0=None, mask=None, context=""):
    """Oracle mode must match TF run in float64 on :func:`float64_twin`,
    to the float64 tolerance."""
    from lstm_ref.compare import assert_parity

    trace = ref.run(x, weights, h0=h0, c0=c0, mask=mask, oracle=True)
    assert trace.h.dtype == trace.c.dtype == np.float64
    desired = oracle.run(ref.kind, *float64_twin(ref, ref.config, x, weights, h0, c0, mask))
    return assert_parity(trace, desired, np.float64, kind=ref.kind, context="oracle mode vs TF float64: " + context)


def has_float64_twin(kind, config):
    """contrib's layer-norm epsilon is 1e-3 in float16 but 1e-12 in float64,
    so a float16 contrib cell has no float64 twin."""
    return not (kind == "tf.contrib.rnn.LayerNormBasicLSTMCell" and config.get("dtype") == "float16")
