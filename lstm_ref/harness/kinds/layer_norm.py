"""The layer-norm cells ``tf.contrib.rnn.LayerNormBasicLSTMCell`` and
``tfa.rnn.LayerNormLSTMCell``: their records, the Hypothesis strategy of
their cases, the report's sweeps, their error inputs and their golden cases.
"""

import itertools
from functools import partial

import numpy as np

from ... import from_config, layer_norm_cells
from ...case import Case, one_hot_the_mice_had, per_gate
from ...errors import ConfigError, InputError, WeightError
from ..error_inputs import BATCH, LEFT_PADDED, TIME, E, zeros
from ..golden.case import golden, wide_float16_case
from ..oracles.client import ORACLES
from ..sweep import ALL_MASKS, RIGHT_PADDED, drawn_case
from ..tolerances import OneStepBound, Tolerance
from .record import KindRecord

CONTRIB = "tf.contrib.rnn.LayerNormBasicLSTMCell"
TFA = "tfa.rnn.LayerNormLSTMCell"


# -- strategy: the option space the tests draw from ------------------------------------------------


def examples(kind):
    """A Hypothesis strategy of a layer-norm cell's :class:`~lstm_ref.case.Case` s."""
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import LN_MAX_UNITS, draw_run

    contrib_configs = st.fixed_dictionaries(
        # num_units=1 normalises single values: rounding noise, tested on its own
        # (test_layer_norm_cells.py::test_single_unit_contrib_layer_norm_is_rounding_noise)
        {"num_units": st.integers(2, LN_MAX_UNITS)},
        optional={
            "forget_bias": st.sampled_from([0.0, 1.0, -0.5, 2.5]),
            "activation": st.sampled_from(["tanh", "relu", "softsign", "sigmoid"]),
            "layer_norm": st.booleans(),
            "dtype": st.sampled_from(["float32", "float64", "float16"]),
        },
    )

    tfa_configs = st.fixed_dictionaries(
        {"units": st.integers(1, LN_MAX_UNITS)},
        optional={
            "activation": st.sampled_from(["tanh", "relu", "softsign"]),
            "recurrent_activation": st.sampled_from(["sigmoid", "hard_sigmoid"]),
            "use_bias": st.booleans(),
            "norm_epsilon": st.sampled_from([1e-3, 1e-5, 1e-2]),  # 1e-5 < 1.001e-5: non-fused
            "go_backwards": st.booleans(),
            "zero_output_for_mask": st.booleans(),
            "dtype": st.sampled_from(["float32", "float64", "float16", "mixed_float16"]),
        },
    ).filter(lambda c: not (c.get("dtype") == "mixed_float16" and c.get("norm_epsilon", 1e-3) < 1.001e-5))

    @st.composite
    def layer_norm_examples(draw, kind):
        """A :class:`Case` of a layer-norm kind."""
        config = draw(contrib_configs if "contrib" in kind else tfa_configs, label="config")
        data = draw(st.data())
        x, weights, h0, c0, mask = draw_run(data, from_config(kind, config), right_padded="contrib" in kind)
        return Case(kind, config, x, weights, mask, h0=h0, c0=c0)

    return layer_norm_examples(kind)


# -- sweeps: the report's seeded cases -------------------------------------------------------------


def contrib_sweep(seed=0):
    rng = np.random.default_rng(seed + 3)
    kind = "tf.contrib.rnn.LayerNormBasicLSTMCell"
    grid = itertools.product(["float32", "float64", "float16"], [True, False], [1.0, 0.0])
    for i, (dtype, layer_norm, fb) in enumerate(grid):
        pattern = RIGHT_PADDED[i % 2]
        yield drawn_case(
            rng,
            f"sweep_contrib_{i:02d}_{dtype}_{pattern}",
            kind,
            {"num_units": int(rng.integers(2, 7)), "layer_norm": layer_norm, "forget_bias": fb, "dtype": dtype},
            mask=pattern,
            scales=(0.8, -0.6, 1.2, 0.5),
        )


def tfa_sweep(seed=0):
    rng = np.random.default_rng(seed + 4)
    kind = "tfa.rnn.LayerNormLSTMCell"
    grid = itertools.product(
        ["float32", "float64", "float16", "mixed_float16"],
        [
            {},
            {"go_backwards": True},
            {"recurrent_activation": "hard_sigmoid", "use_bias": False},
            {"norm_epsilon": 1e-5},
        ],
    )
    for i, (dtype, extra) in enumerate(grid):
        if dtype == "mixed_float16" and "norm_epsilon" in extra:
            continue  # refused by the reference: Keras' third layer-norm path
        pattern = ALL_MASKS[i % len(ALL_MASKS)]
        yield drawn_case(
            rng,
            f"sweep_tfa_{i:02d}_{dtype}_{pattern}",
            kind,
            {"units": int(rng.integers(2, 7)), "dtype": dtype, **extra},
            mask=pattern,
            scales=(0.7, -0.5, 1.1, 0.4),
        )


# -- error inputs ----------------------------------------------------------------------------------

C2 = {"num_units": 2}
MIXED_POLICY = {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
CONTRIB_ERROR_INPUTS = (
    E("num_units_missing", {}, ConfigError, "num_units.*required"),
    E("dropout", {"num_units": 2, "dropout_keep_prob": 0.9}, ConfigError, "dropout on every call"),
    E("mixed", {"num_units": 2, "dtype": "mixed_float16"}, ConfigError, "no mixed-precision"),
    E("mixed_as_a_serialized_policy", {"num_units": 2, "dtype": MIXED_POLICY}, ConfigError, "no mixed-precision"),
    E("go_backwards", {"num_units": 2, "go_backwards": True}, ConfigError, "unknown config key"),
    E("activation", {"num_units": 2, "activation": "gelu"}, ConfigError, "activation"),
    E("forget_bias", {"num_units": 2, "forget_bias": "1"}, ConfigError, "forget_bias"),
    E("left_padded_mask", C2, InputError, "right-padded", {"mask": LEFT_PADDED}),
    E("bias_with_layer_norm", C2, WeightError, "unknown weight", {"weights": {"bias": zeros(8)}}),
    E(
        "bias_missing_without_layer_norm",
        {"num_units": 2, "layer_norm": False},
        WeightError,
        "missing weight.*bias",
        {"weights": {"bias": None}},
    ),
    E("kernel_shape", C2, WeightError, "shape", {"weights": {"kernel": zeros(3, 8)}}),
)
T2 = {"units": 2}
TFA_ERROR_INPUTS = (
    E("units_missing", {}, ConfigError, "units.*required"),
    E("epsilon", {"units": 2, "norm_epsilon": -1.0}, ConfigError, "norm_epsilon"),
    E("mixed_non_fused", {"units": 2, "dtype": "mixed_float16", "norm_epsilon": 1e-6}, ConfigError, "non-fused"),
    E("keras3_activation", {"units": 2, "activation": "gelu"}, ConfigError, "Keras 2.15"),
    E("dropout_range", {"units": 2, "dropout": 1.5}, ConfigError, "dropout"),
    E("norm_weight_shape", T2, WeightError, "state_norm/gamma.*shape", {"weights": {"state_norm/gamma": zeros(8)}}),
    E("contrib_names", T2, WeightError, "unknown weight", {"weights": {"input/gamma": zeros(2)}}),
    E("c0_without_h0", T2, InputError, r"give all of \['h0', 'c0'\] or none", {"c0": zeros(BATCH, 2)}),
    E("mask_of_floats", T2, InputError, "mask must be a bool array", {"mask": np.ones((BATCH, TIME), "float32")}),
)


# -- golden cases ----------------------------------------------------------------------------------

CONTRIB_NORMS = ("input", "transform", "forget", "output", "state")


def _x(rng, batch, time, features, dtype="float32", scale=1.0):
    return (scale * rng.standard_normal((batch, time, features))).astype(dtype)


def _gamma_beta(rng, width, dtype, gamma_scale=0.5, beta_scale=0.3):
    gamma = (1.0 + gamma_scale * rng.standard_normal(width)).astype(dtype)
    beta = (beta_scale * rng.standard_normal(width)).astype(dtype)
    return gamma, beta


def _contrib_weights(rng, input_dim, units, dtype="float32", layer_norm=True, scales=(0.8, -0.6, 1.2, 0.5)):
    w = {"kernel": per_gate(rng, (input_dim + units, 4 * units), scales, dtype)}
    if layer_norm:
        for scope in CONTRIB_NORMS:
            w[f"{scope}/gamma"], w[f"{scope}/beta"] = _gamma_beta(rng, units, dtype)
    else:
        w["bias"] = (np.repeat([0.1, -0.2, 1.0, 0.3], units) + 0.05 * rng.standard_normal(4 * units)).astype(dtype)
    return w


def _tfa_weights(rng, input_dim, units, dtype="float32", bias=True, scales=(0.7, -0.5, 1.1, 0.4)):
    w = {
        "kernel": per_gate(rng, (input_dim, 4 * units), scales, dtype),
        "recurrent_kernel": per_gate(rng, (units, 4 * units), [s * 0.6 for s in scales[::-1]], dtype),
    }
    if bias:
        w["bias"] = (np.repeat([0.1, 1.0, -0.2, 0.3], units) + 0.05 * rng.standard_normal(4 * units)).astype(dtype)
    for name, width in (("kernel_norm", 4 * units), ("recurrent_norm", 4 * units), ("state_norm", units)):
        w[f"{name}/gamma"], w[f"{name}/beta"] = _gamma_beta(rng, width, dtype)
    return w


# -- contrib ------------------------------------------------------------------


@golden("ln_contrib_seed_the_mice_had")
def ln_contrib_seed_the_mice_had():
    x = one_hot_the_mice_had()
    w = {"kernel": np.full((15, 20), 0.1, "float32")}
    for scope in CONTRIB_NORMS:
        w[f"{scope}/gamma"] = np.ones(5, "float32")
        w[f"{scope}/beta"] = np.zeros(5, "float32")
    return Case(
        CONTRIB,
        {"num_units": 5},
        x,
        w,
        notes=(
            "The seed: one-hot 'the mice had', batch 1, 5 units, kernel all 0.1, gamma 1, beta 0. "
            "Every output and state is exactly zero: a constant kernel makes each gate block constant "
            "across units, layer norm maps a constant block to beta = 0, so i, f, o = sigmoid(0 or 1), "
            "g = tanh(0) = 0, c = LN(0) = 0, h = 0, forever. It pins only that degenerate fixed point "
            "(and that no bias is added under layer_norm=True); it cannot see gate order, gamma, "
            "epsilon or the recurrence."
        ),
        meta={"all_zero": True},
    )


@golden("ln_contrib_seed_no_layer_norm")
def ln_contrib_seed_no_layer_norm():
    x = one_hot_the_mice_had()
    w = {"kernel": np.full((15, 20), 0.1, "float32"), "bias": np.full((20,), 0.1, "float32")}
    return Case(
        CONTRIB,
        {"num_units": 5, "layer_norm": False},
        x,
        w,
        notes=(
            "The seed's own comparison: layer_norm=False, every weight and bias 0.1 (the cell is then "
            "BasicLSTMCell with its bias). All four gates see the same pre-activation and all units are "
            "equal, so gate order (i, j, f, o) and unit permutations are invisible; it pins the forget "
            "bias (f + 1.0), the presence of the bias and the recurrence. No normalisation runs."
        ),
    )


@golden("ln_contrib_per_gate")
def ln_contrib_per_gate():
    rng = np.random.default_rng(101)
    return Case(
        CONTRIB,
        {"num_units": 4},
        _x(rng, 2, 6, 3),
        _contrib_weights(rng, 3, 4),
        notes="Per-gate kernels, gamma/beta drawn per scope: gate order, per-gate (not joint) "
        "normalisation and the five gamma/beta pairs all change the numbers.",
    )


@golden("ln_contrib_forget_bias_relu")
def ln_contrib_forget_bias_relu():
    rng = np.random.default_rng(102)
    return Case(
        CONTRIB,
        {"num_units": 3, "forget_bias": -0.5, "activation": "relu"},
        _x(rng, 2, 5, 4),
        _contrib_weights(rng, 4, 3),
        notes="Non-default forget_bias and activation (applied to j and to the normalised c).",
    )


@golden("ln_contrib_small_variance")
def ln_contrib_small_variance():
    rng = np.random.default_rng(103)
    units, features = 4, 3
    w = _contrib_weights(rng, features, units, scales=(1e-4, 0.8, 1e-4, 0.6))
    return Case(
        CONTRIB,
        {"num_units": units, "dtype": "float64"},
        _x(rng, 2, 5, features, "float64"),
        {k: v.astype("float64") for k, v in w.items()},
        notes="float64, i and f kernel blocks at scale 1e-4: their blocks have variance ~1e-8, "
        "far above 1e-12, and are normalised to O(1) anyway (layer norm is scale-free). "
        "Pins that the epsilon is tiny (1e-12): with tfa's 1e-3 these gates would collapse "
        "towards beta.",
    )


@golden("ln_contrib_epsilon_dominates")
def ln_contrib_epsilon_dominates():
    rng = np.random.default_rng(104)
    units, features = 4, 3
    w = _contrib_weights(rng, features, units, scales=(1e-7, 0.8, 1e-7, 0.6))
    return Case(
        CONTRIB,
        {"num_units": units, "dtype": "float64"},
        _x(rng, 1, 4, features, "float64"),
        {k: v.astype("float64") for k, v in w.items()},
        notes="float64, i and f blocks at scale 1e-7 (variance ~1e-14 < epsilon 1e-12): there "
        "epsilon dominates and the normalised gates shrink towards beta; pins the value "
        "1e-12 and that it sits inside the rsqrt.",
    )


@golden("ln_contrib_long_initial_state")
def ln_contrib_long_initial_state():
    rng = np.random.default_rng(105)
    return Case(
        CONTRIB,
        {"num_units": 3},
        _x(rng, 2, 50, 2),
        _contrib_weights(rng, 2, 3),
        h0=rng.standard_normal((2, 3)).astype("float32"),
        c0=rng.standard_normal((2, 3)).astype("float32"),
        notes="50 steps from non-zero h0, c0 (state tuple order: TF holds (c, h)).",
    )


@golden("ln_contrib_mask_right_padded")
def ln_contrib_mask_right_padded():
    rng = np.random.default_rng(106)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
    return Case(
        CONTRIB,
        {"num_units": 3},
        _x(rng, 3, 5, 2),
        _contrib_weights(rng, 2, 3),
        mask=mask,
        h0=rng.standard_normal((3, 3)).astype("float32"),
        c0=rng.standard_normal((3, 3)).astype("float32"),
        notes="dynamic_rnn sequence_length 5, 3, 0: zero outputs past the length, state copied "
        "through; a zero-length row returns its initial state.",
    )


@golden("ln_contrib_float64")
def ln_contrib_float64():
    rng = np.random.default_rng(107)
    w = _contrib_weights(rng, 3, 4, dtype="float64")
    return Case(
        CONTRIB,
        {"num_units": 4, "dtype": "float64"},
        _x(rng, 2, 8, 3, "float64"),
        w,
        notes="float64 inputs and variables (epsilon 1e-12).",
    )


@golden("ln_contrib_float16")
def ln_contrib_float16():
    rng = np.random.default_rng(108)
    w = _contrib_weights(rng, 3, 4, dtype="float16")
    return Case(
        CONTRIB,
        {"num_units": 4, "dtype": "float16"},
        _x(rng, 2, 6, 3, "float16"),
        w,
        notes="float16: epsilon 1e-3 (contrib's float16 special case), statistics in float32.",
    )


# -- tfa ----------------------------------------------------------------------


@golden("ln_tfa_per_gate")
def ln_tfa_per_gate():
    rng = np.random.default_rng(201)
    return Case(
        TFA,
        {"units": 4},
        _x(rng, 2, 6, 3),
        _tfa_weights(rng, 3, 4),
        notes="Per-gate kernels; 4u-wide kernel_norm/recurrent_norm gamma/beta: a per-gate "
        "(contrib-style) normalisation, a gate-order or a norm mix-up changes the numbers. "
        "float32, default epsilon 1e-3: Keras' fused path.",
    )


@golden("ln_tfa_seed_constant")
def ln_tfa_seed_constant():
    x = one_hot_the_mice_had()
    w = {
        "kernel": np.full((10, 20), 0.1, "float32"),
        "recurrent_kernel": np.full((5, 20), 0.1, "float32"),
        "bias": np.full((20,), 0.1, "float32"),
    }
    for name, width in (("kernel_norm", 20), ("recurrent_norm", 20), ("state_norm", 5)):
        w[f"{name}/gamma"] = np.ones(width, "float32")
        w[f"{name}/beta"] = np.zeros(width, "float32")
    return Case(
        TFA,
        {"units": 5},
        x,
        w,
        notes="The seed's constant weights on tfa: both joint norms see a constant 20-wide row and "
        "return beta = 0, so z = bias = 0.1 everywhere; c = LN(constant) = 0, h = 0. Like "
        "the contrib seed it pins only a degenerate fixed point.",
    )


@golden("ln_tfa_no_bias_hard_sigmoid")
def ln_tfa_no_bias_hard_sigmoid():
    rng = np.random.default_rng(202)
    return Case(
        TFA,
        {"units": 3, "use_bias": False, "recurrent_activation": "hard_sigmoid"},
        _x(rng, 2, 5, 4),
        _tfa_weights(rng, 4, 3, bias=False),
        notes="use_bias=False and Keras 2's hard_sigmoid clip(0.2 x + 0.5, 0, 1) (Keras 3's relu6(x + 3) / 6 differs).",
    )


@golden("ln_tfa_small_epsilon_nonfused")
def ln_tfa_small_epsilon_nonfused():
    rng = np.random.default_rng(203)
    return Case(
        TFA,
        {"units": 4, "norm_epsilon": 1e-6},
        _x(rng, 2, 5, 3),
        _tfa_weights(rng, 3, 4, scales=(1e-3, 0.7, 1e-3, 0.5)),
        notes="norm_epsilon 1e-6 < 1.001e-5: Keras leaves the fused path for moments + "
        "batch_normalization; small i/f kernel blocks keep the rows' variance near epsilon.",
    )


@golden("ln_tfa_epsilon_matters")
def ln_tfa_epsilon_matters():
    rng = np.random.default_rng(204)
    return Case(
        TFA,
        {"units": 4, "dtype": "float64"},
        _x(rng, 2, 5, 3, "float64", scale=0.02),
        _tfa_weights(rng, 3, 4, dtype="float64", scales=(0.05, 0.04, 0.06, 0.03)),
        notes="float64 (non-fused path), small inputs and kernels: the joint rows' variance is "
        "~1e-5..1e-4, comparable to epsilon 1e-3, so the value of epsilon shows.",
    )


@golden("ln_tfa_long_initial_state")
def ln_tfa_long_initial_state():
    rng = np.random.default_rng(205)
    return Case(
        TFA,
        {"units": 3},
        _x(rng, 2, 50, 2),
        _tfa_weights(rng, 2, 3),
        h0=rng.standard_normal((2, 3)).astype("float32"),
        c0=rng.standard_normal((2, 3)).astype("float32"),
        notes="50 steps from non-zero h0, c0.",
    )


@golden("ln_tfa_mask_backwards")
def ln_tfa_mask_backwards():
    rng = np.random.default_rng(206)
    mask = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], bool)
    return Case(
        TFA,
        {"units": 3, "go_backwards": True},
        _x(rng, 2, 5, 3),
        _tfa_weights(rng, 3, 3),
        mask=mask,
        h0=rng.standard_normal((2, 3)).astype("float32"),
        c0=rng.standard_normal((2, 3)).astype("float32"),
        notes="keras.layers.RNN(go_backwards=True) with a gappy mask: masked steps repeat the "
        "previous output (zeros before the first valid one), states carry.",
    )


@golden("ln_tfa_float64")
def ln_tfa_float64():
    rng = np.random.default_rng(207)
    return Case(
        TFA,
        {"units": 4, "dtype": "float64"},
        _x(rng, 2, 8, 3, "float64"),
        _tfa_weights(rng, 3, 4, dtype="float64"),
        notes="float64 (global policy float64): Keras' non-fused layer norm.",
    )


@golden("ln_tfa_mixed_float16")
def ln_tfa_mixed_float16():
    rng = np.random.default_rng(208)
    return Case(
        TFA,
        {"units": 4, "dtype": "mixed_float16"},
        _x(rng, 2, 6, 3, "float16"),
        _tfa_weights(rng, 3, 4),
        notes="mixed_float16: float32 variables, so the fused layer norm (statistics in float32), the rest in float16.",
    )


@golden("ln_tfa_float16")
def ln_tfa_float16():
    rng = np.random.default_rng(209)
    return Case(
        TFA,
        {"units": 4, "dtype": "float16"},
        _x(rng, 2, 6, 3, "float16"),
        _tfa_weights(rng, 3, 4, dtype="float16"),
        notes="float16 everywhere: non-fused layer norm in float16 (moments in float32).",
    )


@golden("ln_contrib_float16_wide")
def ln_contrib_float16_wide():
    return wide_float16_case(
        CONTRIB,
        {"num_units": 64, "dtype": "float16"},
        46,
        notes=(
            "concat([x, h]) @ kernel is one float32-accumulated MatMul (the x half stays float32 until the h "
            "half is added); batch 3 < 8 puts every rsqrt on Eigen's scalar path (two roundings)."
        ),
    )


@golden("ln_tfa_float16_wide_one_row")
def ln_tfa_float16_wide_one_row():
    return wide_float16_case(
        TFA,
        {"units": 64, "dtype": "float16"},
        47,
        batch=1,
        notes=(
            "TF 2.15 accumulates in half; one row takes Eigen's GEMV, which sums x @ kernel's 256 products "
            "in blocks of 16 (tf215_matmul)."
        ),
    )


@golden("ln_tfa_float16_split_accumulators")
def ln_tfa_float16_split_accumulators():
    return wide_float16_case(
        TFA,
        {"units": 6, "dtype": "float16"},
        48,
        batch=5,
        features=40,
        notes=(
            "TF 2.15's half GEBP kernel: 4 * 6 = 24 outputs leave columns 16-23 to the one-packet kernel, "
            "which sums even and odd k apart for the 4 rows of a full panel (tf215_matmul); row 5 sums in order."
        ),
    )


# -- the record -------------------------------------------------------------------------------------

CONTRIB_RECORD = KindRecord(
    kind=CONTRIB,
    id="contrib",
    label="LayerNormBasicLSTMCell (contrib)",
    reference=layer_norm_cells.LayerNormBasicLSTMCell,
    oracle=ORACLES["contrib"],
    examples=partial(examples, CONTRIB),
    sweep=contrib_sweep,
    variants=layer_norm_cells.CONTRIB_VARIANTS,
    error_inputs=CONTRIB_ERROR_INPUTS,
    throughput_config=lambda rng: {"num_units": int(rng.integers(2, 7))},  # 1 unit: rounding noise
    tolerances={
        # Layer norm divides by sqrt(var + eps): rounding in a gate block is
        # amplified by gamma / sigma, up to 1e6 with contrib's eps = 1e-12.
        # Worst float32 measured: 7.1e-6 (golden ln_contrib_per_gate: 3.7e-6 in h,
        # 7.1e-6 in c; oracle mode 9.9e-6), 1.4e-6 over 194 live draws; 2e-5 is 2.8x.
        "float32": Tolerance(atol=2e-5, rtol=2e-5),
        # float16: every live draw bitwise (48); on the wide draws
        # (tolerances.py) a 1-ulp difference in z (TF 2.21's float32 GEMM
        # order) is spread by the layer norm over its gate block: one step
        # 96.65% bitwise at worst, t 8.9e-4; free-running t 4.7e-3.
        # >= 90% (3x the inexact share), 3e-3 (3.4x); 1.5e-2 (3.2x).
        "float16": Tolerance(atol=1.5e-2, rtol=1.5e-2, one_step=OneStepBound(exact=0.90, atol=3e-3)),
    },
    # contrib's layer-norm epsilon is 1e-3 in float16 but 1e-12 in float64.
    float64_twin=lambda case: case.config.get("dtype") != "float16",
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 6.5e-15,  # left 2.2e-15 (343 arrays; worst t 3.0e-13)
        # float32: left 3.3e-4 (1,840 arrays; worst t 3.3e-4): 2 units, where a per-gate norm of 2 values
        # a, b is +-1 and its gradient ~1e-12 / |a - b|^3, which float32 gets by cancelling O(1) terms
        "float32": 9.8e-4,
        "float16": 5.0e-3,  # left 1.7e-3 (201 arrays; 2 units, as float32; worst t 1.9e-2)
    },
)

TFA_RECORD = KindRecord(
    kind=TFA,
    id="tfa",
    label="LayerNormLSTMCell (tfa)",
    reference=layer_norm_cells.LayerNormLSTMCell,
    oracle=ORACLES["tfa"],
    examples=partial(examples, TFA),
    sweep=tfa_sweep,
    variants=layer_norm_cells.TFA_VARIANTS,
    error_inputs=TFA_ERROR_INPUTS,
    throughput_config=lambda rng: {"units": int(rng.integers(1, 7))},
    tolerances={
        # Worst float32 over 209 live draws: 3.0e-6 (oracle mode 3.8e-6); 1e-5 is 3.3x.
        "float32": Tolerance(atol=1e-5, rtol=1e-5),
        # float16: bitwise TF on every live draw (42) since tf215_matmul
        # follows Eigen's orders; on the wide draws (tolerances.py) some
        # shapes sum in orders not modelled: one step 0.55% of values not
        # bitwise at worst, t 1.1e-3; free-running t 2.4e-3.  3.5e-3
        # (3.1x), 7.5e-3 (3.1x); the 98% share stands.
        "float16": Tolerance(atol=7.5e-3, rtol=7.5e-3, one_step=OneStepBound(exact=0.98, atol=3.5e-3)),
    },
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 2.2e-16,  # left 0 (208 arrays; worst t 3.1e-14): eps
        "float32": 1.6e-6,  # left 5.3e-7 (1,740 arrays; 2 units, norm_epsilon 1e-5; worst t 5.0e-5)
        "float16": 3.1e-3,  # left 1.0e-3 (252 arrays; worst t 3.4e-2)
        "mixed_float16": 2.6e-3,  # left 8.6e-4 (194 arrays; worst t 2.8e-2)
    },
)
