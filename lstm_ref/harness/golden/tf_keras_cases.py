"""Golden cases for ``tf_keras.layers.LSTM`` (Keras 2, tf_keras 2.21).

Each case is seeded and tiny.  Except for the seed scenario, kernels differ
per gate block (the one builder, ``lstm_ref.case.build_weights``), so that a
gate-order bug cannot hide.  The layer has two CPU code paths
(``standard_lstm`` for tanh/sigmoid with a bias and no unroll, the cell loop
otherwise); cases say which one they take.  ``implementation`` (1 vs 2) is an
ulp-level rounding difference, never visible through the tolerance: those
cases pin it only as far as they pin the bits of TF's own output.
"""

import numpy as np

from ...case import build_weights
from ...tf_keras_lstm import TfKerasLSTM
from .case import Case, golden, one_hot_the_mice_had, wide_float16_case
from .keras_cases import seed_weights

KIND = TfKerasLSTM.kind

# Right-padded, left-padded, holes, fully masked: every pattern in one batch.
EVERY_MASK = np.array([
    [1, 1, 1, 0, 0, 0],
    [0, 0, 1, 1, 1, 1],
    [1, 0, 1, 0, 0, 1],
    [0, 0, 0, 0, 0, 0],
], dtype=bool)


def _weights(config, rng, input_dim, scales=(0.7, -0.5, 1.1, 0.4), recurrent_scale=0.6, dtype=None):
    return build_weights(TfKerasLSTM(config), rng, input_dim, scales, recurrent_scale, dtype)


def _x(rng, batch, time, features, dtype="float32", scale=1.0):
    return (scale * rng.standard_normal((batch, time, features))).astype(dtype)


def _states(rng, batch, units, dtype="float32", scale=1.0):
    return {"h0": (scale * rng.standard_normal((batch, units))).astype(dtype),
            "c0": (scale * rng.standard_normal((batch, units))).astype(dtype)}


def _case(config, seed, batch, time, features, *, mask=None, states=False, notes="", x_scale=1.0,
          scales=(0.7, -0.5, 1.1, 0.4), dtype="float32"):
    rng = np.random.default_rng(seed)
    x = _x(rng, batch, time, features, dtype, x_scale)
    w = _weights(config, rng, features, scales, dtype=dtype)
    init = _states(rng, batch, config["units"], dtype) if states else {}
    return Case(KIND, config, x, w, mask, notes=notes, **init)


@golden("tf_keras_seed_the_mice_had")
def tf_keras_seed_the_mice_had():
    return Case(
        KIND, {"units": 5, "return_sequences": True}, one_hot_the_mice_had(), seed_weights(),
        notes=(
            "The project's seed: one-hot 'the mice had', batch 1, 5 units, every weight and bias 0.1 "
            "(standard_lstm path). All four gates see the same pre-activation and all units are equal, so "
            "it cannot tell gate orders apart, nor unit permutations, nor a forget-bias habit from a "
            "larger bias; it does pin sigmoid/tanh, the forget path and the per-step recurrence."
        ),
    )


@golden("tf_keras_per_gate_basic")
def tf_keras_per_gate_basic():
    return _case({"units": 4}, 1, 2, 5, 3,
                 notes="standard_lstm path, per-gate kernels and biases: a gate-order swap or a forget "
                       "bias +1 changes every step. No mask, no state: says nothing about either.")


@golden("tf_keras_initial_state")
def tf_keras_initial_state():
    return _case({"units": 3}, 2, 2, 4, 3, states=True,
                 notes="Non-zero h0 and c0 distinguish h0 from c0 and from zeros (standard_lstm path).")


@golden("tf_keras_go_backwards")
def tf_keras_go_backwards():
    return _case({"units": 3, "go_backwards": True}, 3, 2, 5, 2, states=True,
                 notes="The sequence is returned in processing (reversed) order; flipping it back "
                       "changes every step. The final states cannot tell the output order apart.")


@golden("tf_keras_mask_patterns")
def tf_keras_mask_patterns():
    return _case({"units": 3}, 4, 4, 6, 2, mask=EVERY_MASK, states=True,
                 notes="standard_lstm path; right, left, holes and fully masked rows with non-zero h0/c0: "
                       "masked steps repeat the previous output, zeros (not h0) before the first valid "
                       "step; the fully masked row outputs zeros and keeps h0/c0 as final state.")


@golden("tf_keras_mask_patterns_cell_path")
def tf_keras_mask_patterns_cell_path():
    return _case({"units": 3, "activation": "softsign"}, 5, 4, 6, 2, mask=EVERY_MASK, states=True,
                 notes="The same mask patterns through the cell loop (softsign leaves standard_lstm): "
                       "masking is backend.rnn's on both paths. Not a check of softsign alone.")


@golden("tf_keras_mask_go_backwards")
def tf_keras_mask_go_backwards():
    mask = np.array([[1, 1, 1, 1, 0], [0, 1, 1, 0, 1], [0, 0, 0, 1, 1]], dtype=bool)
    return _case({"units": 2, "go_backwards": True}, 6, 3, 5, 3, mask=mask, states=True,
                 notes="The mask is reversed with the input under go_backwards; outputs stay reversed; "
                       "row 2 (left-padded in input order) starts with valid steps when processed.")


@golden("tf_keras_zero_output_for_mask")
def tf_keras_zero_output_for_mask():
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=bool)
    return _case({"units": 3, "zero_output_for_mask": True}, 7, 3, 5, 2, mask=mask, states=True,
                 notes="zero_output_for_mask=True (an RNN kwarg LSTM forwards): masked steps output zeros "
                       "instead of the previous output; states still carry over.")


@golden("tf_keras_unroll_go_backwards_zero_output")
def tf_keras_unroll_go_backwards_zero_output():
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 1, 1]], dtype=bool)
    return _case({"units": 3, "unroll": True, "go_backwards": True, "zero_output_for_mask": True}, 8, 3, 5, 2,
                 mask=mask, states=True,
                 notes="TF's unrolled backend.rnn zeroes the reversed outputs with the *unreversed* mask: "
                       "masks that are not palindromes show it (a valid step whose mirror is masked outputs "
                       "zero, a masked one whose mirror is valid repeats the previous output).")


@golden("tf_keras_unroll_masked")
def tf_keras_unroll_masked():
    return _case({"units": 3, "unroll": True}, 9, 4, 6, 2, mask=EVERY_MASK, states=True,
                 notes="unroll=True takes the cell path and the unrolled Python loop of backend.rnn; "
                       "the masking rules are the while loop's.")


@golden("tf_keras_no_bias")
def tf_keras_no_bias():
    return _case({"units": 3, "use_bias": False}, 10, 2, 4, 3, states=True,
                 notes="use_bias=False: no bias weight, cell path (standard_lstm needs a bias).")


@golden("tf_keras_hard_sigmoid")
def tf_keras_hard_sigmoid():
    return _case({"units": 4, "recurrent_activation": "hard_sigmoid"}, 11, 2, 6, 3, states=True,
                 notes="Keras 2 hard_sigmoid clip(0.2 x + 0.5, 0, 1) on every gate; pre-activations "
                       "spread over [-3, 3], where Keras 3's relu6(x + 3) / 6 differs by up to 0.083.")


@golden("tf_keras_activation_none_is_linear")
def tf_keras_activation_none_is_linear():
    return _case({"units": 3, "activation": None}, 12, 2, 4, 3, states=True, x_scale=0.5,
                 scales=(0.3, -0.2, 0.4, 0.25),
                 notes="activation=None is linear in tf_keras.activations.get (legacy TF1 cells read a "
                       "falsy activation as tanh); a tanh port is far off once |c| leaves [-0.5, 0.5].")


@golden("tf_keras_implementation_1")
def tf_keras_implementation_1():
    return _case({"units": 3, "implementation": 1}, 13, 2, 4, 3, states=True,
                 notes="implementation=1 on the standard_lstm path, which ignores it (fused, bias last). "
                       "Bias-first would differ by an ulp: the tolerance cannot see it, only bitwise can.")


@golden("tf_keras_implementation_1_cell_path")
def tf_keras_implementation_1_cell_path():
    return _case({"units": 3, "implementation": 1, "activation": "softsign"}, 14, 2, 4, 3, states=True,
                 notes="implementation=1 on the cell path: per-gate kernels, bias before the recurrent "
                       "term. An ulp from implementation 2: not discriminated by the tolerance.")


@golden("tf_keras_implementation_0")
def tf_keras_implementation_0():
    return _case({"units": 3, "implementation": 0, "activation": "relu6"}, 15, 2, 4, 3, states=True,
                 notes="implementation=0 on the cell path takes the fused branch (LSTMCell.call's else:), "
                       "despite the 'defaults to 1' warning. An ulp from 1: not discriminated.")


@golden("tf_keras_time_major")
def tf_keras_time_major():
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=bool)
    return _case({"units": 3, "time_major": True, "go_backwards": True}, 16, 2, 5, 3, mask=mask, states=True,
                 notes="time_major=True: the wire stays batch-major, the worker feeds TF (time, batch, ...) "
                       "and a (time, batch) mask (TF fails on a (batch, time) one). Row 0 starts masked "
                       "once reversed. Says nothing of TF's time-major layout beyond the transposes.")


@golden("tf_keras_saturated_gates")
def tf_keras_saturated_gates():
    return _case({"units": 4}, 17, 2, 6, 3, x_scale=3.0, scales=(6.0, -8.0, 5.0, 7.0),
                 notes="Large pre-activations: sigmoid and tanh saturate; weak on gate order.")


@golden("tf_keras_long_sequence")
def tf_keras_long_sequence():
    return _case({"units": 8}, 18, 2, 200, 4, scales=(0.4, -0.3, 0.5, 0.35), states=True,
                 notes="200 steps: shows whether rounding error grows along the sequence.")


# A config straight from get_config() (tf_keras 2.21) of a Sequential's first
# layer: batch_input_shape, initializer dicts, recurrent_dropout (which forces
# implementation 1 and the cell path) -- unedited.
GET_CONFIG_FLOAT32 = {
    "name": "lstm_from_model", "trainable": True, "dtype": "float32", "batch_input_shape": [None, 6, 3],
    "return_sequences": True, "return_state": False, "go_backwards": True, "stateful": False, "unroll": False,
    "time_major": False, "units": 4, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
    "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None},
                           "registered_name": None},
    "recurrent_initializer": {"module": "keras.initializers", "class_name": "Orthogonal",
                              "config": {"gain": 1.0, "seed": None}, "registered_name": None},
    "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
    "unit_forget_bias": True, "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
    "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None,
    "dropout": 0.1, "recurrent_dropout": 0.2, "implementation": 1,
}

# get_config() of LSTM(3, dtype="mixed_float16", activation="softsign",
# recurrent_activation="hard_sigmoid", unit_forget_bias=False,
# zero_output_for_mask=True, return_state=True): the policy is a dict.
GET_CONFIG_MIXED = {
    "name": "lstm", "trainable": True,
    "dtype": {"module": "keras.mixed_precision", "class_name": "Policy", "config": {"name": "mixed_float16"},
              "registered_name": None},
    "return_sequences": False, "return_state": True, "go_backwards": False, "stateful": False, "unroll": False,
    "time_major": False, "zero_output_for_mask": True, "units": 3, "activation": "softsign",
    "recurrent_activation": "hard_sigmoid", "use_bias": True,
    "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None},
                           "registered_name": None},
    "recurrent_initializer": {"module": "keras.initializers", "class_name": "Orthogonal",
                              "config": {"gain": 1.0, "seed": None}, "registered_name": None},
    "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
    "unit_forget_bias": False, "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
    "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None,
    "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2,
}


@golden("tf_keras_get_config_float32")
def tf_keras_get_config_float32():
    mask = np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=bool)
    return _case(GET_CONFIG_FLOAT32, 19, 2, 6, 3, mask=mask, states=True,
                 notes="Every key get_config() emits, accepted as is; dropout/recurrent_dropout inert at "
                       "inference except that recurrent_dropout forces implementation 1 (an ulp).")


@golden("tf_keras_get_config_mixed_float16")
def tf_keras_get_config_mixed_float16():
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 1, 1, 1]], dtype=bool)
    return _case(GET_CONFIG_MIXED, 20, 2, 5, 3, mask=mask, states=True,
                 notes="A serialized mixed_float16 Policy dict, softsign + Keras 2 hard_sigmoid, "
                       "zero_output_for_mask: float32 variables read as float16.")


def _activation_case(activation, recurrent_activation, seed):
    k = 0.15 if activation == "exponential" else 1.0  # exp(c) amplifies c's rounding; keep c small
    return _case({"units": 3, "activation": activation, "recurrent_activation": recurrent_activation}, seed,
                 2, 4, 3, x_scale=k, scales=(0.5 * k, -0.4 * k, 0.6 * k, 0.3 * k),
                 notes=f"activation={activation}, recurrent_activation={recurrent_activation} "
                       "(tf_keras definitions, cell path). With softmax as recurrent_activation a "
                       "constant shift of a gate block (a forget bias +1) is invisible.")


for _i, (_act, _rec) in enumerate([
    ("relu", "hard_sigmoid"), ("gelu", "sigmoid"), ("selu", "softsign"), ("elu", "sigmoid"),
    ("swish", "hard_sigmoid"), ("mish", "sigmoid"), ("softplus", "relu6"), ("linear", "sigmoid"),
    ("leaky_relu", "softmax"), ("exponential", "sigmoid"), ("log_softmax", "tanh"), ("silu", "hard_sigmoid"),
    ("tanh", "hard_sigmoid"), ("relu6", "softsign"), ("hard_sigmoid", "sigmoid"),
]):
    golden(f"tf_keras_activation_{_act}_{_rec}")(lambda a=_act, r=_rec, s=100 + _i: _activation_case(a, r, s))


def _dtype_case(dtype, seed, mask=False, activation="tanh"):
    var = "float32" if dtype.startswith("mixed") else dtype
    config = {"units": 4, "dtype": dtype}
    if activation != "tanh":
        config["activation"] = activation
    return _case(config, seed, 2, 6, 3, dtype=var, states=True,
                 mask=np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=bool) if mask else None,
                 notes=f"dtype policy {dtype} ({'cell path' if activation != 'tanh' else 'standard_lstm'}).")


for _dt, _seed in (("float64", 30), ("float16", 31), ("mixed_float16", 32)):
    golden(f"tf_keras_dtype_{_dt}")(lambda d=_dt, s=_seed: _dtype_case(d, s))
    golden(f"tf_keras_dtype_{_dt}_masked")(lambda d=_dt, s=_seed + 10: _dtype_case(d, s, mask=True))
    golden(f"tf_keras_dtype_{_dt}_cell_path")(lambda d=_dt, s=_seed + 20: _dtype_case(d, s, activation="softsign"))


@golden("tf_keras_float16_wide")
def tf_keras_float16_wide():
    return wide_float16_case(KIND, {"units": 64, "dtype": "float16"}, 42, notes="standard_lstm's op order in float16.")


@golden("tf_keras_mixed_float16_wide")
def tf_keras_mixed_float16_wide():
    return wide_float16_case(
        KIND, {"units": 64, "dtype": "mixed_float16"}, 43, notes="float32 variables cast to float16 at every use."
    )
