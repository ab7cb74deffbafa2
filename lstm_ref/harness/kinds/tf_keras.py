"""``tf_keras.layers.LSTM`` (Keras 2): its record, the Hypothesis strategy of its
cases, the report's sweep, its error inputs and its golden cases.
"""

import itertools

import numpy as np

from ... import tf_keras_lstm
from ...case import Case, build_weights, one_hot_the_mice_had
from ...errors import ConfigError, InputError, WeightError
from ..error_inputs import BATCH, TIME, E, states, zeros
from ..golden.case import golden, seed_weights, wide_float16_case
from ..oracles.client import ORACLES
from ..sweep import ALL_MASKS, drawn_case
from ..tflite.spec import TARGET as TFLITE
from ..tolerances import Tolerance
from .record import KindRecord

# -- strategy: the option space the tests draw from ------------------------------------------------

#
# The option space that changes the numbers: the activations tf_keras knows
# (Keras 2 ``hard_sigmoid``, ``None`` = linear), the code path (tanh/sigmoid
# with a bias and no unroll take ``standard_lstm``, anything else the cell
# loop), ``implementation`` 0/1/2 and ``recurrent_dropout`` (which forces 1
# off ``standard_lstm``), ``unroll`` (with go_backwards and
# zero_output_for_mask: TF's unrolled-mask bug), masks of every pattern,
# go_backwards, initial states, use_bias, and dtype policies.  Layout and
# inert keys (``time_major``, ``return_*``, ``dropout``, initializers) are
# drawn too, so that a key TF accepts is never refused or mis-read.

# tf_keras.activations.get names (tf_keras 2.21); None is linear.  Bounded
# gates keep c bounded; the others let c grow geometrically and amplify
# rounding (conditioning, not semantics): their draws use small weights and
# short sequences, as keras_lstm_examples does.
TF_KERAS_GATE_SAFE = ["sigmoid", "hard_sigmoid", "tanh", "softsign", "softmax"]

TF_KERAS_BOUNDED = TF_KERAS_GATE_SAFE + ["relu6"]

TF_KERAS_UNBOUNDED = [
    None,
    "linear",
    "relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "leaky_relu",
    "exponential",
    "log_softmax",
]


def examples():
    """A Hypothesis strategy of ``tf_keras.layers.LSTM`` :class:`~lstm_ref.case.Case` s."""
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import dtypes, keras_layer_run, times, units

    activations_ = st.one_of(st.just("tanh"), st.sampled_from(TF_KERAS_BOUNDED + TF_KERAS_UNBOUNDED))

    recurrent_activations = st.one_of(
        st.just("sigmoid"), st.sampled_from(TF_KERAS_GATE_SAFE + ["relu6"] + TF_KERAS_UNBOUNDED)
    )

    @st.composite
    def tf_keras_lstm_examples(draw):
        """A :class:`~lstm_ref.case.Case` of ``tf_keras.layers.LSTM``."""
        # One draw in three is pinned to standard_lstm (tanh, sigmoid, bias, no
        # unroll, no recurrent dropout); the rest draw every option freely.
        standard = draw(st.integers(0, 2), label="standard_lstm?") == 0
        activation = "tanh" if standard else draw(activations_, label="activation")
        recurrent_activation = "sigmoid" if standard else draw(recurrent_activations, label="recurrent_activation")
        # exponential feeds exp(c) back through the recurrent kernel: even tame
        # draws reach h ~ 1e5 (see strategies.py); keep it to a few steps.
        tame = activation not in TF_KERAS_BOUNDED or recurrent_activation not in TF_KERAS_GATE_SAFE
        config = {
            "units": draw(units, label="units"),
            "activation": activation,
            "recurrent_activation": recurrent_activation,
            "use_bias": True if standard else draw(st.booleans(), label="use_bias"),
            "go_backwards": draw(st.booleans(), label="go_backwards"),
            "dtype": draw(dtypes, label="dtype"),
        }
        for key in ("zero_output_for_mask", "unroll", "time_major", "return_state"):
            if not (standard and key == "unroll") and draw(st.booleans(), label=f"{key}?"):
                config[key] = True
        implementation = draw(st.sampled_from([None, 1, 2, 0]), label="implementation")
        if implementation is not None:
            config["implementation"] = implementation
        if draw(st.booleans(), label="dropout?"):
            config["dropout"] = draw(st.sampled_from([0.0, 0.1, 0.5]), label="dropout")
            config["recurrent_dropout"] = (
                0.0 if standard else draw(st.sampled_from([0.0, 0.2]), label="recurrent_dropout")
            )
        if draw(st.booleans(), label="inert_keys?"):
            config.update(
                unit_forget_bias=draw(st.booleans(), label="unit_forget_bias"),
                name="lstm_drawn",
                trainable=True,
                return_sequences=True,
                stateful=False,
                bias_initializer="zeros",
                kernel_regularizer=None,
                activity_regularizer=None,
            )
        tame_time = st.integers(1, 4 if activation == "exponential" else 6)
        return draw(keras_layer_run("tf_keras.layers.LSTM", config, tame, tame_time if tame else times))

    return tf_keras_lstm_examples()


# -- sweep: the report's seeded cases --------------------------------------------------------------


def sweep(seed=0):
    """Both code paths (standard_lstm: tanh/sigmoid, bias, no unroll; the cell
    loop otherwise), implementation 0/1/2, unroll with go_backwards and
    zero_output_for_mask (TF's unrolled-mask bug), Keras 2 hard_sigmoid and
    activation=None, every mask pattern, every dtype."""
    rng = np.random.default_rng(seed + 5)
    kind = "tf_keras.layers.LSTM"
    options = [
        {},
        {"implementation": 1},
        {"recurrent_activation": "hard_sigmoid", "implementation": 1},
        {"activation": "softsign", "implementation": 0, "unroll": True},
        {"unroll": True, "go_backwards": True, "zero_output_for_mask": True},
        {"go_backwards": True, "time_major": True},
        {"activation": None, "use_bias": False},
    ]
    grid = itertools.product(["float32", "float64", "float16", "mixed_float16"], options)
    for i, (dtype, extra) in enumerate(grid):
        pattern = ALL_MASKS[i % len(ALL_MASKS)]
        tame = extra.get("activation", "tanh") is None  # linear c: keep it short and small
        yield drawn_case(
            rng,
            f"sweep_tf_keras_{i:02d}_{dtype}_{pattern}",
            kind,
            {"units": int(rng.integers(2, 7)), "dtype": dtype, **extra},
            mask=pattern,
            time=5 if tame else None,
            scales=(0.2, -0.15, 0.3, 0.1) if tame else None,
            states=i % 3 == 0,
        )


# -- error inputs (units 3) ----------------------------------------------------------------------------------

U = {"units": 3}
ERROR_INPUTS = (
    E("config_typo", {"units": 3, "go_backward": True}, ConfigError, r"unknown config key\(s\) \['go_backward'\]"),
    E("keras3_only_key", {"units": 3, "use_cudnn": True}, ConfigError, r"unknown config key\(s\) \['use_cudnn'\]"),
    E("units_missing", {}, ConfigError, r"config\['units'\] is required"),
    E("units_zero", {"units": 0}, ConfigError, r"config\['units'\] must be a positive integer, got 0"),
    E("stateful_refused", {"units": 3, "stateful": True}, ConfigError, r"config\['stateful'\]=True is not supported"),
    E(
        "keras3_only_activation",
        {"units": 3, "activation": "hard_tanh"},
        ConfigError,
        r"config\['activation'\]='hard_tanh' is not a tf_keras \(Keras 2\) activation",
    ),
    E(
        "keras3_only_recurrent_activation",
        {"units": 3, "recurrent_activation": "hard_silu"},
        ConfigError,
        r"'hard_silu' is not a tf_keras",
    ),
    E("implementation_3", {"units": 3, "implementation": 3}, ConfigError, r"implementation'\] must be 0, 1 or 2"),
    E("implementation_bool", {"units": 3, "implementation": True}, ConfigError, r"must be 0, 1 or 2, got True"),
    E("unroll_int", {"units": 3, "unroll": 1}, ConfigError, r"config\['unroll'\] must be True or False"),
    E(
        "time_major_string",
        {"units": 3, "time_major": "yes"},
        ConfigError,
        r"config\['time_major'\] must be True or False",
    ),
    E("bfloat16", {"units": 3, "dtype": "mixed_bfloat16"}, ConfigError, r"mixed_bfloat16.*not supported"),
    E(
        "policy_without_name",
        {"units": 3, "dtype": {"class_name": "Policy"}},
        ConfigError,
        r"cannot read a policy name",
    ),
    E(
        "recurrent_dropout_above_one",
        {"units": 3, "recurrent_dropout": 1.5},
        ConfigError,
        r"recurrent_dropout'\] must be a number in \[0, 1\]",
    ),
    E("missing_bias", U, WeightError, r"missing weight\(s\) \['bias'\]", {"weights": {"bias": None}}),
    E(
        "unexpected_bias",
        {"units": 3, "use_bias": False},
        WeightError,
        r"unknown weight\(s\) \['bias'\]",
        {"weights": {"bias": zeros(12)}},
    ),
    E(
        "scoped_name",
        U,
        WeightError,
        r"lstm_cell/kernel:0",
        {"weights": {"kernel": None, "lstm_cell/kernel:0": zeros(3, 12)}},
    ),
    E(
        "time_major_mask",
        {"units": 3, "time_major": True},
        InputError,
        r"mask has shape \(4, 2\), expected \(batch, time\) = \(2, 4\)",
        {"mask": np.ones((TIME, BATCH), bool)},
    ),
    E("h0_without_c0", U, InputError, r"give all of \['h0', 'c0'\] or none", {"h0": zeros(BATCH, 3)}),
    E("h0_wrong_shape", U, InputError, r"h0 has shape \(2, 4\), expected \(batch, 3\)", states(4, 3)),
)


# -- golden cases ----------------------------------------------------------------------------------

KIND = tf_keras_lstm.TfKerasLSTM.kind

# Right-padded, left-padded, holes, fully masked: every pattern in one batch.
EVERY_MASK = np.array(
    [
        [1, 1, 1, 0, 0, 0],
        [0, 0, 1, 1, 1, 1],
        [1, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=bool,
)


def _weights(config, rng, input_dim, scales=(0.7, -0.5, 1.1, 0.4), recurrent_scale=0.6, dtype=None):
    return build_weights(tf_keras_lstm.TfKerasLSTM(config), rng, input_dim, scales, recurrent_scale, dtype)


def _x(rng, batch, time, features, dtype="float32", scale=1.0):
    return (scale * rng.standard_normal((batch, time, features))).astype(dtype)


def _states(rng, batch, units, dtype="float32", scale=1.0):
    return {
        "h0": (scale * rng.standard_normal((batch, units))).astype(dtype),
        "c0": (scale * rng.standard_normal((batch, units))).astype(dtype),
    }


def _case(
    config,
    seed,
    batch,
    time,
    features,
    *,
    mask=None,
    states=False,
    notes="",
    x_scale=1.0,
    scales=(0.7, -0.5, 1.1, 0.4),
    dtype="float32",
):
    rng = np.random.default_rng(seed)
    x = _x(rng, batch, time, features, dtype, x_scale)
    w = _weights(config, rng, features, scales, dtype=dtype)
    init = _states(rng, batch, config["units"], dtype) if states else {}
    return Case(KIND, config, x, w, mask, notes=notes, **init)


@golden("tf_keras_seed_the_mice_had")
def tf_keras_seed_the_mice_had():
    return Case(
        KIND,
        {"units": 5, "return_sequences": True},
        one_hot_the_mice_had(),
        seed_weights(),
        notes=(
            "The project's seed: one-hot 'the mice had', batch 1, 5 units, every weight and bias 0.1 "
            "(standard_lstm path). All four gates see the same pre-activation and all units are equal, so "
            "it cannot tell gate orders apart, nor unit permutations, nor a forget-bias habit from a "
            "larger bias; it does pin sigmoid/tanh, the forget path and the per-step recurrence."
        ),
    )


@golden("tf_keras_per_gate_basic")
def tf_keras_per_gate_basic():
    return _case(
        {"units": 4},
        1,
        2,
        5,
        3,
        notes="standard_lstm path, per-gate kernels and biases: a gate-order swap or a forget "
        "bias +1 changes every step. No mask, no state: says nothing about either.",
    )


@golden("tf_keras_initial_state")
def tf_keras_initial_state():
    return _case(
        {"units": 3},
        2,
        2,
        4,
        3,
        states=True,
        notes="Non-zero h0 and c0 distinguish h0 from c0 and from zeros (standard_lstm path).",
    )


@golden("tf_keras_go_backwards")
def tf_keras_go_backwards():
    return _case(
        {"units": 3, "go_backwards": True},
        3,
        2,
        5,
        2,
        states=True,
        notes="The sequence is returned in processing (reversed) order; flipping it back "
        "changes every step. The final states cannot tell the output order apart.",
    )


@golden("tf_keras_mask_patterns")
def tf_keras_mask_patterns():
    return _case(
        {"units": 3},
        4,
        4,
        6,
        2,
        mask=EVERY_MASK,
        states=True,
        notes="standard_lstm path; right, left, holes and fully masked rows with non-zero h0/c0: "
        "masked steps repeat the previous output, zeros (not h0) before the first valid "
        "step; the fully masked row outputs zeros and keeps h0/c0 as final state.",
    )


@golden("tf_keras_mask_patterns_cell_path")
def tf_keras_mask_patterns_cell_path():
    return _case(
        {"units": 3, "activation": "softsign"},
        5,
        4,
        6,
        2,
        mask=EVERY_MASK,
        states=True,
        notes="The same mask patterns through the cell loop (softsign leaves standard_lstm): "
        "masking is backend.rnn's on both paths. Not a check of softsign alone.",
    )


@golden("tf_keras_mask_go_backwards")
def tf_keras_mask_go_backwards():
    mask = np.array([[1, 1, 1, 1, 0], [0, 1, 1, 0, 1], [0, 0, 0, 1, 1]], dtype=bool)
    return _case(
        {"units": 2, "go_backwards": True},
        6,
        3,
        5,
        3,
        mask=mask,
        states=True,
        notes="The mask is reversed with the input under go_backwards; outputs stay reversed; "
        "row 2 (left-padded in input order) starts with valid steps when processed.",
    )


@golden("tf_keras_zero_output_for_mask")
def tf_keras_zero_output_for_mask():
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=bool)
    return _case(
        {"units": 3, "zero_output_for_mask": True},
        7,
        3,
        5,
        2,
        mask=mask,
        states=True,
        notes="zero_output_for_mask=True (an RNN kwarg LSTM forwards): masked steps output zeros "
        "instead of the previous output; states still carry over.",
    )


@golden("tf_keras_unroll_go_backwards_zero_output")
def tf_keras_unroll_go_backwards_zero_output():
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 1, 1]], dtype=bool)
    return _case(
        {"units": 3, "unroll": True, "go_backwards": True, "zero_output_for_mask": True},
        8,
        3,
        5,
        2,
        mask=mask,
        states=True,
        notes="TF's unrolled backend.rnn zeroes the reversed outputs with the *unreversed* mask: "
        "masks that are not palindromes show it (a valid step whose mirror is masked outputs "
        "zero, a masked one whose mirror is valid repeats the previous output).",
    )


@golden("tf_keras_unroll_masked")
def tf_keras_unroll_masked():
    return _case(
        {"units": 3, "unroll": True},
        9,
        4,
        6,
        2,
        mask=EVERY_MASK,
        states=True,
        notes="unroll=True takes the cell path and the unrolled Python loop of backend.rnn; "
        "the masking rules are the while loop's.",
    )


@golden("tf_keras_no_bias")
def tf_keras_no_bias():
    return _case(
        {"units": 3, "use_bias": False},
        10,
        2,
        4,
        3,
        states=True,
        notes="use_bias=False: no bias weight, cell path (standard_lstm needs a bias).",
    )


@golden("tf_keras_hard_sigmoid")
def tf_keras_hard_sigmoid():
    return _case(
        {"units": 4, "recurrent_activation": "hard_sigmoid"},
        11,
        2,
        6,
        3,
        states=True,
        notes="Keras 2 hard_sigmoid clip(0.2 x + 0.5, 0, 1) on every gate; pre-activations "
        "spread over [-3, 3], where Keras 3's relu6(x + 3) / 6 differs by up to 0.083.",
    )


@golden("tf_keras_activation_none_is_linear")
def tf_keras_activation_none_is_linear():
    return _case(
        {"units": 3, "activation": None},
        12,
        2,
        4,
        3,
        states=True,
        x_scale=0.5,
        scales=(0.3, -0.2, 0.4, 0.25),
        notes="activation=None is linear in tf_keras.activations.get (legacy TF1 cells read a "
        "falsy activation as tanh); a tanh port is far off once |c| leaves [-0.5, 0.5].",
    )


@golden("tf_keras_implementation_1")
def tf_keras_implementation_1():
    return _case(
        {"units": 3, "implementation": 1},
        13,
        2,
        4,
        3,
        states=True,
        notes="implementation=1 on the standard_lstm path, which ignores it (fused, bias last). "
        "Bias-first would differ by an ulp: the tolerance cannot see it, only bitwise can.",
    )


@golden("tf_keras_implementation_1_cell_path")
def tf_keras_implementation_1_cell_path():
    return _case(
        {"units": 3, "implementation": 1, "activation": "softsign"},
        14,
        2,
        4,
        3,
        states=True,
        notes="implementation=1 on the cell path: per-gate kernels, bias before the recurrent "
        "term. An ulp from implementation 2: not discriminated by the tolerance.",
    )


@golden("tf_keras_implementation_0")
def tf_keras_implementation_0():
    return _case(
        {"units": 3, "implementation": 0, "activation": "relu6"},
        15,
        2,
        4,
        3,
        states=True,
        notes="implementation=0 on the cell path takes the fused branch (LSTMCell.call's else:), "
        "despite the 'defaults to 1' warning. An ulp from 1: not discriminated.",
    )


@golden("tf_keras_time_major")
def tf_keras_time_major():
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=bool)
    return _case(
        {"units": 3, "time_major": True, "go_backwards": True},
        16,
        2,
        5,
        3,
        mask=mask,
        states=True,
        notes="time_major=True: the wire stays batch-major, the worker feeds TF (time, batch, ...) "
        "and a (time, batch) mask (TF fails on a (batch, time) one). Row 0 starts masked "
        "once reversed. Says nothing of TF's time-major layout beyond the transposes.",
    )


@golden("tf_keras_saturated_gates")
def tf_keras_saturated_gates():
    return _case(
        {"units": 4},
        17,
        2,
        6,
        3,
        x_scale=3.0,
        scales=(6.0, -8.0, 5.0, 7.0),
        notes="Large pre-activations: sigmoid and tanh saturate; weak on gate order.",
    )


@golden("tf_keras_long_sequence")
def tf_keras_long_sequence():
    return _case(
        {"units": 8},
        18,
        2,
        200,
        4,
        scales=(0.4, -0.3, 0.5, 0.35),
        states=True,
        notes="200 steps: shows whether rounding error grows along the sequence.",
    )


# A config straight from get_config() (tf_keras 2.21) of a Sequential's first
# layer: batch_input_shape, initializer dicts, recurrent_dropout (which forces
# implementation 1 and the cell path) -- unedited.
GET_CONFIG_FLOAT32 = {
    "name": "lstm_from_model",
    "trainable": True,
    "dtype": "float32",
    "batch_input_shape": [None, 6, 3],
    "return_sequences": True,
    "return_state": False,
    "go_backwards": True,
    "stateful": False,
    "unroll": False,
    "time_major": False,
    "units": 4,
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "use_bias": True,
    "kernel_initializer": {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None},
        "registered_name": None,
    },
    "recurrent_initializer": {
        "module": "keras.initializers",
        "class_name": "Orthogonal",
        "config": {"gain": 1.0, "seed": None},
        "registered_name": None,
    },
    "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
    "unit_forget_bias": True,
    "kernel_regularizer": None,
    "recurrent_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "kernel_constraint": None,
    "recurrent_constraint": None,
    "bias_constraint": None,
    "dropout": 0.1,
    "recurrent_dropout": 0.2,
    "implementation": 1,
}

# get_config() of LSTM(3, dtype="mixed_float16", activation="softsign",
# recurrent_activation="hard_sigmoid", unit_forget_bias=False,
# zero_output_for_mask=True, return_state=True): the policy is a dict.
GET_CONFIG_MIXED = {
    "name": "lstm",
    "trainable": True,
    "dtype": {
        "module": "keras.mixed_precision",
        "class_name": "Policy",
        "config": {"name": "mixed_float16"},
        "registered_name": None,
    },
    "return_sequences": False,
    "return_state": True,
    "go_backwards": False,
    "stateful": False,
    "unroll": False,
    "time_major": False,
    "zero_output_for_mask": True,
    "units": 3,
    "activation": "softsign",
    "recurrent_activation": "hard_sigmoid",
    "use_bias": True,
    "kernel_initializer": {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None},
        "registered_name": None,
    },
    "recurrent_initializer": {
        "module": "keras.initializers",
        "class_name": "Orthogonal",
        "config": {"gain": 1.0, "seed": None},
        "registered_name": None,
    },
    "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None},
    "unit_forget_bias": False,
    "kernel_regularizer": None,
    "recurrent_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "kernel_constraint": None,
    "recurrent_constraint": None,
    "bias_constraint": None,
    "dropout": 0.0,
    "recurrent_dropout": 0.0,
    "implementation": 2,
}


@golden("tf_keras_get_config_float32")
def tf_keras_get_config_float32():
    mask = np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=bool)
    return _case(
        GET_CONFIG_FLOAT32,
        19,
        2,
        6,
        3,
        mask=mask,
        states=True,
        notes="Every key get_config() emits, accepted as is; dropout/recurrent_dropout inert at "
        "inference except that recurrent_dropout forces implementation 1 (an ulp).",
    )


@golden("tf_keras_get_config_mixed_float16")
def tf_keras_get_config_mixed_float16():
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 1, 1, 1]], dtype=bool)
    return _case(
        GET_CONFIG_MIXED,
        20,
        2,
        5,
        3,
        mask=mask,
        states=True,
        notes="A serialized mixed_float16 Policy dict, softsign + Keras 2 hard_sigmoid, "
        "zero_output_for_mask: float32 variables read as float16.",
    )


def _activation_case(activation, recurrent_activation, seed):
    k = 0.15 if activation == "exponential" else 1.0  # exp(c) amplifies c's rounding; keep c small
    return _case(
        {"units": 3, "activation": activation, "recurrent_activation": recurrent_activation},
        seed,
        2,
        4,
        3,
        x_scale=k,
        scales=(0.5 * k, -0.4 * k, 0.6 * k, 0.3 * k),
        notes=f"activation={activation}, recurrent_activation={recurrent_activation} "
        "(tf_keras definitions, cell path). With softmax as recurrent_activation a "
        "constant shift of a gate block (a forget bias +1) is invisible.",
    )


for _i, (_act, _rec) in enumerate(
    [
        ("relu", "hard_sigmoid"),
        ("gelu", "sigmoid"),
        ("selu", "softsign"),
        ("elu", "sigmoid"),
        ("swish", "hard_sigmoid"),
        ("mish", "sigmoid"),
        ("softplus", "relu6"),
        ("linear", "sigmoid"),
        ("leaky_relu", "softmax"),
        ("exponential", "sigmoid"),
        ("log_softmax", "tanh"),
        ("silu", "hard_sigmoid"),
        ("tanh", "hard_sigmoid"),
        ("relu6", "softsign"),
        ("hard_sigmoid", "sigmoid"),
    ]
):
    golden(f"tf_keras_activation_{_act}_{_rec}")(lambda a=_act, r=_rec, s=100 + _i: _activation_case(a, r, s))


def _dtype_case(dtype, seed, mask=False, activation="tanh"):
    var = "float32" if dtype.startswith("mixed") else dtype
    config = {"units": 4, "dtype": dtype}
    if activation != "tanh":
        config["activation"] = activation
    return _case(
        config,
        seed,
        2,
        6,
        3,
        dtype=var,
        states=True,
        mask=np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=bool) if mask else None,
        notes=f"dtype policy {dtype} ({'cell path' if activation != 'tanh' else 'standard_lstm'}).",
    )


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


# -- the record -------------------------------------------------------------------------------------

RECORD = KindRecord(
    kind=KIND,
    id="tf_keras",
    label="LSTM (Keras 2, tf_keras)",
    reference=tf_keras_lstm.TfKerasLSTM,
    oracle=ORACLES["tf_keras"],
    examples=examples,
    sweep=sweep,
    variants=tf_keras_lstm.TF_KERAS_LSTM_VARIANTS,
    error_inputs=ERROR_INPUTS,
    throughput_config=lambda rng: {
        "units": int(rng.integers(1, 7)),
        "go_backwards": bool(rng.integers(2)),
        "activation": str(rng.choice(["tanh", "tanh", "relu"])),
        "recurrent_activation": str(rng.choice(["sigmoid", "hard_sigmoid"])),
    },
    targets=(TFLITE,),
    tolerances={
        # float16 free-running: as Keras 3 (the same TF ops): 1.4e-3 wide,
        # 1.1e-3 live (softmax gates); 5e-3 is 3.5x.
        "float16": Tolerance(atol=5e-3, rtol=5e-3),
    },
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 2.2e-16,  # left 0 (259 arrays; worst t 2.7e-15): eps
        "float32": 1.4e-7,  # left 4.7e-8 (447 arrays; worst t 2.3e-6; hard_sigmoid on its corners)
        "float16": 9.8e-4,  # left 1.3e-4 (124 arrays; worst t 4.2e-3): eps
        "mixed_float16": 2.0e-3,  # left 6.7e-4 (81 arrays; worst t 2.7e-3, 1 unit)
    },
)
