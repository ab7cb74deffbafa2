"""Golden cases for ``keras.layers.LSTM`` (Keras 3).

Each case is seeded and tiny.  Except for the seed scenario, kernels differ
per gate block (``per_gate``), so that a gate-order bug cannot hide.
"""

import numpy as np

from .case import Case, golden, one_hot_the_mice_had, per_gate, wide_float16_case

KIND = "keras.layers.LSTM"


def _weights(rng, input_dim, units, scales=(0.7, -0.5, 1.1, 0.4), bias=True, dtype="float32"):
    w = {
        "kernel": per_gate(rng, (input_dim, 4 * units), scales, dtype),
        "recurrent_kernel": per_gate(rng, (units, 4 * units), [s * 0.6 for s in scales[::-1]], dtype),
    }
    if bias:
        w["bias"] = (np.repeat([0.1, 1.0, -0.2, 0.3], units) + 0.05 * rng.standard_normal(4 * units)).astype(dtype)
    return w


def _x(rng, batch, time, features, dtype="float32", scale=1.0):
    return (scale * rng.standard_normal((batch, time, features))).astype(dtype)


def seed_weights():
    """The seed's Keras weights: 10 one-hot features, 5 units, everything 0.1."""
    return {
        "kernel": np.full((10, 20), 0.1, "float32"),
        "recurrent_kernel": np.full((5, 20), 0.1, "float32"),
        "bias": np.full((20,), 0.1, "float32"),
    }


@golden("keras_seed_the_mice_had")
def keras_seed_the_mice_had():
    return Case(
        KIND, {"units": 5, "return_sequences": True}, one_hot_the_mice_had(), seed_weights(),
        notes=(
            "The project's seed: one-hot 'the mice had', batch 1, 5 units, every weight and bias 0.1. "
            "All four gates see the same pre-activation and all units are equal, so it cannot tell "
            "gate orders apart, nor unit permutations; it does pin the activations, forget path and "
            "the per-step recurrence."
        ),
    )


@golden("keras_per_gate_basic")
def keras_per_gate_basic():
    rng = np.random.default_rng(1)
    return Case(KIND, {"units": 4}, _x(rng, 2, 5, 3), _weights(rng, 3, 4),
                notes="Per-gate kernels and biases: a gate-order swap changes every step.")


@golden("keras_initial_state")
def keras_initial_state():
    rng = np.random.default_rng(2)
    return Case(KIND, {"units": 3}, _x(rng, 2, 4, 3), _weights(rng, 3, 3),
                h0=rng.standard_normal((2, 3)).astype("float32"), c0=rng.standard_normal((2, 3)).astype("float32"),
                notes="Non-zero h0 and c0 distinguish h0 from c0 and from zeros.")


@golden("keras_go_backwards")
def keras_go_backwards():
    rng = np.random.default_rng(3)
    return Case(KIND, {"units": 3, "go_backwards": True}, _x(rng, 2, 5, 2), _weights(rng, 2, 3),
                notes="Output stays in processing (reversed) order; a flip back changes every step.")


@golden("keras_mask_patterns")
def keras_mask_patterns():
    rng = np.random.default_rng(4)
    mask = np.array([
        [1, 1, 1, 0, 0, 0],  # right-padded
        [0, 0, 1, 1, 1, 1],  # left-padded
        [1, 0, 1, 0, 0, 1],  # holes
        [0, 0, 0, 0, 0, 0],  # fully masked
    ], dtype=bool)
    return Case(
        KIND,
        {"units": 3},
        _x(rng, 4, 6, 2),
        _weights(rng, 2, 3),
        h0=rng.standard_normal((4, 3)).astype("float32"),
        c0=rng.standard_normal((4, 3)).astype("float32"),
        mask=mask,
        notes="Every mask pattern with non-zero initial states: leading masked steps output zeros, "
        "not h0; a fully masked row keeps h0/c0 as its final state.",
    )


@golden("keras_mask_go_backwards")
def keras_mask_go_backwards():
    rng = np.random.default_rng(5)
    mask = np.array([[1, 1, 1, 1, 0], [0, 1, 1, 0, 1]], dtype=bool)
    return Case(KIND, {"units": 2, "go_backwards": True}, _x(rng, 2, 5, 3), _weights(rng, 3, 2), mask=mask,
                notes="The mask is reversed with the input under go_backwards.")


@golden("keras_zero_output_for_mask")
def keras_zero_output_for_mask():
    rng = np.random.default_rng(6)
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=bool)
    return Case(KIND, {"units": 3, "zero_output_for_mask": True}, _x(rng, 2, 5, 2), _weights(rng, 2, 3), mask=mask,
                notes="zero_output_for_mask=True: masked steps output zeros instead of the previous output.")


@golden("keras_no_bias")
def keras_no_bias():
    rng = np.random.default_rng(7)
    return Case(KIND, {"units": 3, "use_bias": False}, _x(rng, 2, 4, 3), _weights(rng, 3, 3, bias=False))


@golden("keras_unit_forget_bias_init")
def keras_unit_forget_bias_init():
    rng = np.random.default_rng(8)
    w = _weights(rng, 3, 4)
    w["bias"] = np.concatenate([np.zeros(4), np.ones(4), np.zeros(8)]).astype("float32")
    return Case(KIND, {"units": 4, "unit_forget_bias": True, "bias_initializer": "zeros"}, _x(rng, 1, 4, 3), w,
                notes="The bias Keras initialises with unit_forget_bias=True ([0, 1, 0, 0] blocks); "
                      "the option itself only shapes the initial bias.")


@golden("keras_implementation_1")
def keras_implementation_1():
    rng = np.random.default_rng(9)
    return Case(KIND, {"units": 3, "implementation": 1}, _x(rng, 2, 4, 3), _weights(rng, 3, 3))


@golden("keras_saturated_gates")
def keras_saturated_gates():
    rng = np.random.default_rng(10)
    return Case(KIND, {"units": 4}, _x(rng, 2, 6, 3, scale=3.0), _weights(rng, 3, 4, scales=(6.0, -8.0, 5.0, 7.0)),
                notes="Large pre-activations: sigmoid and tanh saturate.")


@golden("keras_long_sequence")
def keras_long_sequence():
    rng = np.random.default_rng(11)
    return Case(KIND, {"units": 8}, _x(rng, 2, 200, 4), _weights(rng, 4, 8, scales=(0.4, -0.3, 0.5, 0.35)),
                notes="200 steps: shows whether rounding error grows along the sequence.")


def _activation_case(activation, recurrent_activation, seed):
    rng = np.random.default_rng(seed)
    # exp(c) turns c's rounding into relative error in h; keep c small there.
    k = 0.15 if activation == "exponential" else 1.0
    return Case(KIND, {"units": 3, "activation": activation, "recurrent_activation": recurrent_activation},
                _x(rng, 2, 4, 3, scale=k), _weights(rng, 3, 3, scales=(0.5 * k, -0.4 * k, 0.6 * k, 0.3 * k)),
                notes=f"activation={activation}, recurrent_activation={recurrent_activation} (Keras 3 definitions).")


for _i, (_act, _rec) in enumerate([
    ("relu", "hard_sigmoid"), ("gelu", "sigmoid"), ("selu", "hard_silu"), ("softsign", "sparse_sigmoid"),
    ("elu", "sigmoid"), ("silu", "hard_tanh"), ("mish", "log_sigmoid"), ("softplus", "relu6"),
    ("linear", "sigmoid"), ("celu", "softmax"), ("leaky_relu", "squareplus"), ("tanh_shrink", "hard_shrink"),
    ("soft_shrink", "sparse_plus"), ("exponential", "sigmoid"), ("log_softmax", "tanh"),
]):
    golden(f"keras_activation_{_act}_{_rec}")(lambda a=_act, r=_rec, s=100 + _i: _activation_case(a, r, s))


def _dtype_case(dtype, seed, mask=False):
    rng = np.random.default_rng(seed)
    var = "float32" if dtype.startswith("mixed") else dtype
    return Case(KIND, {"units": 4, "dtype": dtype}, _x(rng, 2, 6, 3, var), _weights(rng, 3, 4, dtype=var),
                h0=rng.standard_normal((2, 4)).astype(var), c0=rng.standard_normal((2, 4)).astype(var),
                mask=np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=bool) if mask else None)


for _dt, _seed in (("float64", 20), ("float16", 21), ("mixed_float16", 22)):
    golden(f"keras_dtype_{_dt}")(lambda d=_dt, s=_seed: _dtype_case(d, s))
    golden(f"keras_dtype_{_dt}_masked")(lambda d=_dt, s=_seed + 10: _dtype_case(d, s, mask=True))


@golden("keras_float16_wide")
def keras_float16_wide():
    return wide_float16_case(
        KIND,
        {"units": 64, "dtype": "float16"},
        40,
        notes="TF 2.21 MatMul accumulates half in float32 and rounds once; z = x@K, += h@R, += bias each round.",
    )


@golden("keras_mixed_float16_wide")
def keras_mixed_float16_wide():
    return wide_float16_case(
        KIND, {"units": 64, "dtype": "mixed_float16"}, 41, notes="float32 variables cast to float16 at every use."
    )
