"""``keras.layers.LSTM`` (Keras 3): its record, the Hypothesis strategy of its
cases, the report's sweep, its error inputs and its golden cases.
"""

import itertools

import numpy as np

from ... import keras_lstm
from ...case import Case, one_hot_the_mice_had, per_gate
from ...errors import ConfigError, InputError, WeightError
from ..error_inputs import BATCH, FEATURES, TIME, E, states, zeros
from ..golden.case import golden, seed_weights, wide_float16_case
from ..oracles.client import ORACLES
from ..sweep import ALL_MASKS, drawn_case
from ..tflite.spec import TARGET as TFLITE
from ..tolerances import Tolerance
from .record import Backend, KindRecord

# -- strategy: the option space the tests draw from ------------------------------------------------


def examples():
    """A Hypothesis strategy of ``keras.layers.LSTM`` :class:`~lstm_ref.case.Case` s."""
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import BOUNDED, GATE_SAFE, UNBOUNDED, dtypes, keras_layer_run, times, units

    @st.composite
    def keras_lstm_examples(draw):
        """A :class:`Case` of ``keras.layers.LSTM``."""
        activation = draw(st.sampled_from(BOUNDED + UNBOUNDED), label="activation")
        recurrent_activation = draw(st.sampled_from(GATE_SAFE + ["relu6"] + UNBOUNDED), label="recurrent_activation")
        tame = activation not in BOUNDED or recurrent_activation not in GATE_SAFE
        config = {
            "units": draw(units, label="units"),
            "activation": activation,
            "recurrent_activation": recurrent_activation,
            "use_bias": draw(st.booleans(), label="use_bias"),
            "go_backwards": draw(st.booleans(), label="go_backwards"),
            "dtype": draw(dtypes, label="dtype"),
        }
        if draw(st.booleans(), label="zero_output_for_mask?"):
            config["zero_output_for_mask"] = True
        if draw(st.booleans(), label="implementation_1?"):
            config["implementation"] = 1
        return draw(keras_layer_run("keras.layers.LSTM", config, tame, st.integers(1, 6) if tame else times))

    return keras_lstm_examples()


# -- sweep: the report's seeded cases --------------------------------------------------------------


def sweep(seed=0, kind="keras.layers.LSTM", tag="keras"):
    rng = np.random.default_rng(seed)
    grid = itertools.product(["float32", "float64", "float16", "mixed_float16"], [False, True], ALL_MASKS)
    for i, (dtype, backwards, pattern) in enumerate(grid):
        if i % 2:  # half the grid keeps the sweep quick; the seed picks which half
            continue
        units = int(rng.integers(2, 9))
        # bounded activations only: a long sequence with relu is conditioning, not semantics
        activations = {
            "activation": ("tanh", "softsign")[(i // 4) % 2],
            "recurrent_activation": ("sigmoid", "hard_sigmoid")[(i // 2) % 2],
        }
        yield drawn_case(
            rng,
            f"sweep_{tag}_{i:02d}_{dtype}_{'bw' if backwards else 'fw'}_{pattern}",
            kind,
            {"units": units, "go_backwards": backwards, "dtype": dtype, **activations},
            time=int(rng.choice([5, 12, 40])),
            features=int(rng.integers(2, 9)),
            mask=pattern,
            states=i % 4 == 0,
        )


# -- error inputs (units 3, so gate blocks are 12 wide) --------------------------------------------

U = {"units": 3}
ERROR_INPUTS = (
    E("unknown_kind", {"units": 3}, ConfigError, r"unknown kind 'keras.layers.LSTMM'", kind="keras.layers.LSTMM"),
    E("config_typo", {"units": 3, "go_backward": True}, ConfigError, r"unknown config key\(s\) \['go_backward'\]"),
    E("units_zero", {"units": 0}, ConfigError, r"config\['units'\] must be a positive integer, got 0"),
    E("units_negative", {"units": -2}, ConfigError, r"config\['units'\].*-2"),
    E("units_float", {"units": 2.5}, ConfigError, r"config\['units'\]"),
    E("units_missing", {}, ConfigError, r"config\['units'\] is required"),
    E(
        "unknown_activation",
        {"units": 3, "activation": "tanhh"},
        ConfigError,
        r"config\['activation'\]='tanhh' is not a Keras 3 activation",
    ),
    E(
        "refused_activation",
        {"units": 3, "recurrent_activation": "glu"},
        ConfigError,
        r"recurrent_activation.*glu.*not supported",
    ),
    E("bad_dtype", {"units": 3, "dtype": "int8"}, ConfigError, r"config\['dtype'\]='int8'"),
    E("bfloat16_refused", {"units": 3, "dtype": "mixed_bfloat16"}, ConfigError, r"mixed_bfloat16.*not supported"),
    E("stateful_refused", {"units": 3, "stateful": True}, ConfigError, r"config\['stateful'\]=True is not supported"),
    E("use_cudnn_true_refused", {"units": 3, "use_cudnn": True}, ConfigError, r"use_cudnn"),
    E("bad_implementation", {"units": 3, "implementation": 3}, ConfigError, r"implementation"),
    E("go_backwards_not_bool", {"units": 3, "go_backwards": "yes"}, ConfigError, r"go_backwards"),
    E(
        "dropout_none",
        {"units": 3, "dropout": None},
        ConfigError,
        r"config\['dropout'\] must be a number in \[0, 1\], got None",
    ),
    E("recurrent_dropout_string", {"units": 3, "recurrent_dropout": "0.2"}, ConfigError, r"recurrent_dropout"),
    E("dropout_above_one", {"units": 3, "dropout": 1.5}, ConfigError, r"dropout.*1.5"),
    E("config_not_dict", [("units", 3)], ConfigError, r"config must be a dict"),
    E(
        "missing_weight",
        U,
        WeightError,
        r"missing weight\(s\) \['recurrent_kernel'\]",
        {"weights": {"recurrent_kernel": None}},
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
        "weight_typo",
        U,
        WeightError,
        r"unknown weight\(s\) \['kernal'\]",
        {"weights": {"kernel": None, "kernal": zeros(3, 12)}},
    ),
    E(
        "weight_scoped_name",
        U,
        WeightError,
        r"lstm/lstm_cell/kernel:0",
        {"weights": {"kernel": None, "lstm/lstm_cell/kernel:0": zeros(3, 12)}},
    ),
    E(
        "kernel_transposed",
        U,
        WeightError,
        r"weight 'kernel' has shape \(12, 3\), expected \(3, 12\)",
        {"weights": {"kernel": zeros(12, 3)}},
    ),
    E(
        "bias_wrong_length",
        U,
        WeightError,
        r"weight 'bias' has shape \(3,\), expected \(12,\)",
        {"weights": {"bias": zeros(3)}},
    ),
    E("weights_not_dict", U, WeightError, r"weights must be a dict", {"weights": [1, 2]}),
    E(
        "weight_not_numeric",
        U,
        WeightError,
        r"weight 'bias' must be a real numeric array",
        {"weights": {"bias": np.array(["a"] * 12)}},
    ),
    E(
        "x_2d",
        U,
        InputError,
        r"x must be 3-D \(batch, time, features\), got shape \(4, 3\)",
        {"x": zeros(TIME, FEATURES)},
    ),
    E("x_4d", U, InputError, r"x must be 3-D", {"x": zeros(BATCH, TIME, FEATURES, 1)}),
    E(
        "x_features_mismatch",
        U,
        WeightError,
        r"weight 'kernel' has shape \(3, 12\), expected \(4, 12\).*x features=4",
        {"x": zeros(BATCH, TIME, FEATURES + 1)},
    ),
    E("x_empty_time", U, InputError, r"at least one row and one step", {"x": zeros(BATCH, 0, FEATURES)}),
    E("x_complex", U, InputError, r"x must be a real numeric array", {"x": np.ones((BATCH, TIME, FEATURES), complex)}),
    E(
        "mask_wrong_shape",
        U,
        InputError,
        r"mask has shape \(2, 5\), expected \(batch, time\) = \(2, 4\)",
        {"mask": np.ones((BATCH, TIME + 1), bool)},
    ),
    E("mask_3d", U, InputError, r"mask has shape \(2, 4, 1\)", {"mask": np.ones((BATCH, TIME, 1), bool)}),
    E("mask_float", U, InputError, r"mask must be a bool array", {"mask": np.ones((BATCH, TIME), "float32")}),
    E("mask_non_binary_int", U, InputError, r"mask must be a bool array", {"mask": np.full((BATCH, TIME), 2)}),
    E("h0_wrong_shape", U, InputError, r"h0 has shape \(2, 4\), expected \(batch, 3\)", states(4, 3)),
    E("c0_wrong_batch", U, InputError, r"c0 has shape \(3, 3\)", {"h0": zeros(BATCH, 3), "c0": zeros(BATCH + 1, 3)}),
    E("h0_broadcastable_refused", U, InputError, r"h0 has shape \(1, 3\)", states(3, 3, batch=1)),
    E("h0_without_c0", U, InputError, r"give all of \['h0', 'c0'\] or none.*missing \['c0'\]", {"h0": zeros(BATCH, 3)}),
    E("backend_unknown", {"units": 3, "backend": "cntk"}, ConfigError, r"config\['backend'\] must be one of"),
    E(
        "use_cudnn_string",
        {"units": 3, "use_cudnn": "yes"},
        ConfigError,
        r"config\['use_cudnn'\] must be 'auto' or False",
    ),
    E("unroll_not_bool", {"units": 3, "unroll": "no"}, ConfigError, r"config\['unroll'\] must be True or False"),
    E(
        "torch_unrolled_backwards_mask",
        {"units": 3, "backend": "torch", "unroll": True, "go_backwards": True},
        InputError,
        r"torch backend fails on a mask with unroll=True and go_backwards=True",
        {"mask": np.ones((BATCH, TIME), bool)},
    ),
    E(
        "state_misnamed",
        U,
        InputError,
        r"unknown argument\(s\) \['m0'\]; the initial state is given as \['h0', 'c0'\]",
        {"m0": zeros(BATCH, 3)},
    ),
)


# -- golden cases ----------------------------------------------------------------------------------

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


@golden("keras_seed_the_mice_had")
def keras_seed_the_mice_had():
    return Case(
        KIND,
        {"units": 5, "return_sequences": True},
        one_hot_the_mice_had(),
        seed_weights(),
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
    return Case(
        KIND,
        {"units": 4},
        _x(rng, 2, 5, 3),
        _weights(rng, 3, 4),
        notes="Per-gate kernels and biases: a gate-order swap changes every step.",
    )


@golden("keras_initial_state")
def keras_initial_state():
    rng = np.random.default_rng(2)
    return Case(
        KIND,
        {"units": 3},
        _x(rng, 2, 4, 3),
        _weights(rng, 3, 3),
        h0=rng.standard_normal((2, 3)).astype("float32"),
        c0=rng.standard_normal((2, 3)).astype("float32"),
        notes="Non-zero h0 and c0 distinguish h0 from c0 and from zeros.",
    )


@golden("keras_go_backwards")
def keras_go_backwards():
    rng = np.random.default_rng(3)
    return Case(
        KIND,
        {"units": 3, "go_backwards": True},
        _x(rng, 2, 5, 2),
        _weights(rng, 2, 3),
        notes="Output stays in processing (reversed) order; a flip back changes every step.",
    )


@golden("keras_mask_patterns")
def keras_mask_patterns():
    rng = np.random.default_rng(4)
    mask = np.array(
        [
            [1, 1, 1, 0, 0, 0],  # right-padded
            [0, 0, 1, 1, 1, 1],  # left-padded
            [1, 0, 1, 0, 0, 1],  # holes
            [0, 0, 0, 0, 0, 0],  # fully masked
        ],
        dtype=bool,
    )
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
    return Case(
        KIND,
        {"units": 2, "go_backwards": True},
        _x(rng, 2, 5, 3),
        _weights(rng, 3, 2),
        mask=mask,
        notes="The mask is reversed with the input under go_backwards.",
    )


@golden("keras_zero_output_for_mask")
def keras_zero_output_for_mask():
    rng = np.random.default_rng(6)
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=bool)
    return Case(
        KIND,
        {"units": 3, "zero_output_for_mask": True},
        _x(rng, 2, 5, 2),
        _weights(rng, 2, 3),
        mask=mask,
        notes="zero_output_for_mask=True: masked steps output zeros instead of the previous output.",
    )


@golden("keras_no_bias")
def keras_no_bias():
    rng = np.random.default_rng(7)
    return Case(KIND, {"units": 3, "use_bias": False}, _x(rng, 2, 4, 3), _weights(rng, 3, 3, bias=False))


@golden("keras_unit_forget_bias_init")
def keras_unit_forget_bias_init():
    rng = np.random.default_rng(8)
    w = _weights(rng, 3, 4)
    w["bias"] = np.concatenate([np.zeros(4), np.ones(4), np.zeros(8)]).astype("float32")
    return Case(
        KIND,
        {"units": 4, "unit_forget_bias": True, "bias_initializer": "zeros"},
        _x(rng, 1, 4, 3),
        w,
        notes="The bias Keras initialises with unit_forget_bias=True ([0, 1, 0, 0] blocks); "
        "the option itself only shapes the initial bias.",
    )


@golden("keras_implementation_1")
def keras_implementation_1():
    rng = np.random.default_rng(9)
    return Case(KIND, {"units": 3, "implementation": 1}, _x(rng, 2, 4, 3), _weights(rng, 3, 3))


@golden("keras_saturated_gates")
def keras_saturated_gates():
    rng = np.random.default_rng(10)
    return Case(
        KIND,
        {"units": 4},
        _x(rng, 2, 6, 3, scale=3.0),
        _weights(rng, 3, 4, scales=(6.0, -8.0, 5.0, 7.0)),
        notes="Large pre-activations: sigmoid and tanh saturate.",
    )


@golden("keras_long_sequence")
def keras_long_sequence():
    rng = np.random.default_rng(11)
    return Case(
        KIND,
        {"units": 8},
        _x(rng, 2, 200, 4),
        _weights(rng, 4, 8, scales=(0.4, -0.3, 0.5, 0.35)),
        notes="200 steps: shows whether rounding error grows along the sequence.",
    )


def _activation_case(activation, recurrent_activation, seed):
    rng = np.random.default_rng(seed)
    # exp(c) turns c's rounding into relative error in h; keep c small there.
    k = 0.15 if activation == "exponential" else 1.0
    return Case(
        KIND,
        {"units": 3, "activation": activation, "recurrent_activation": recurrent_activation},
        _x(rng, 2, 4, 3, scale=k),
        _weights(rng, 3, 3, scales=(0.5 * k, -0.4 * k, 0.6 * k, 0.3 * k)),
        notes=f"activation={activation}, recurrent_activation={recurrent_activation} (Keras 3 definitions).",
    )


for _i, (_act, _rec) in enumerate(
    [
        ("relu", "hard_sigmoid"),
        ("gelu", "sigmoid"),
        ("selu", "hard_silu"),
        ("softsign", "sparse_sigmoid"),
        ("elu", "sigmoid"),
        ("silu", "hard_tanh"),
        ("mish", "log_sigmoid"),
        ("softplus", "relu6"),
        ("linear", "sigmoid"),
        ("celu", "softmax"),
        ("leaky_relu", "squareplus"),
        ("tanh_shrink", "hard_shrink"),
        ("soft_shrink", "sparse_plus"),
        ("exponential", "sigmoid"),
        ("log_softmax", "tanh"),
    ]
):
    golden(f"keras_activation_{_act}_{_rec}")(lambda a=_act, r=_rec, s=100 + _i: _activation_case(a, r, s))


def _dtype_case(dtype, seed, mask=False):
    rng = np.random.default_rng(seed)
    var = "float32" if dtype.startswith("mixed") else dtype
    return Case(
        KIND,
        {"units": 4, "dtype": dtype},
        _x(rng, 2, 6, 3, var),
        _weights(rng, 3, 4, dtype=var),
        h0=rng.standard_normal((2, 4)).astype(var),
        c0=rng.standard_normal((2, 4)).astype(var),
        mask=np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=bool) if mask else None,
    )


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


# -- the record -------------------------------------------------------------------------------------

# Per backend and compute dtype, joined with the kind's by taking the max
# (backends.tolerance); measured with `python -m tools.measure_backends`.
BACKEND_TOLERANCES = {
    "jax": {
        # XLA's half kernels are its own (tanh, logistic, fused FMAs; not
        # modelled): one step from JAX's state, 57-70% of values are not
        # bitwise, so no one-step claim.  Free-running worst t 1.8e-3 over the
        # goldens and 10 wide cases: 5e-3 is 2.7x.  One live draw of 45 (a
        # mixed_float16 softsign/hard_tanh layer over 33 steps, whose c grows)
        # reaches t 1.3e-2, where the reference's own rounding grows alike:
        # k 0.73 on it; 2.5 is 3.4x (`python -m tools.measure_backends 100 jax`).
        "float16": Tolerance(atol=5e-3, rtol=5e-3, rounding=2.5),
    },
    "torch": {},
}

RECORD = KindRecord(
    kind=KIND,
    id="keras3",
    label="LSTM (Keras 3)",
    reference=keras_lstm.KerasLSTM,
    oracle=ORACLES["keras3"],
    examples=examples,
    sweep=sweep,
    variants=keras_lstm.KERAS_LSTM_VARIANTS,
    error_inputs=ERROR_INPUTS,
    throughput_config=lambda rng: {
        "units": int(rng.integers(1, 7)),
        "go_backwards": bool(rng.integers(2)),
        "activation": str(rng.choice(["tanh", "relu", "gelu"])),
        "recurrent_activation": str(rng.choice(["sigmoid", "hard_sigmoid"])),
    },
    targets=(TFLITE,),
    # Keras 3 on its three backends (lstm_ref/keras_backends.py says what each
    # computes; lstm_ref/harness/backends.py runs a case on the one it names).
    backends=(
        Backend("tensorflow", ORACLES["keras3"]),
        Backend("jax", ORACLES["keras3_jax"], BACKEND_TOLERANCES["jax"]),
        Backend("torch", ORACLES["keras3_torch"], BACKEND_TOLERANCES["torch"]),
    ),
    tolerances={
        # float16 free-running: worst t 1.4e-3 over the wide draws (a 1-ulp
        # GEMM-order difference carried by the recurrence; tolerances.py),
        # 9.5e-4 live (log_softmax gates); 5e-3 is 3.5x.
        "float16": Tolerance(atol=5e-3, rtol=5e-3),
    },
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 2.2e-16,  # left 0 (129 arrays; worst t 7.7e-15, spread-covered): eps
        "float32": 1.2e-7,  # left 3.1e-8 (277 arrays; worst t 2.3e-6): eps
        "float16": 9.8e-4,  # left 0 (34 arrays; worst t 2.8e-3): eps
        "mixed_float16": 9.8e-4,  # left 1.2e-4 (90 arrays; worst t 2.6e-3): eps
    },
)
