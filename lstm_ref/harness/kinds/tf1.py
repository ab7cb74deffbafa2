"""The TF1 cells ``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` and ``LSTMCell``:
their records, the Hypothesis strategy of their cases, the report's
sweeps, their error inputs and their golden cases.
"""

import itertools
from functools import partial

import numpy as np

from ... import from_config, tf1_cells
from ...case import Case, one_hot_the_mice_had, per_gate
from ...errors import ConfigError, InputError, WeightError
from ..error_inputs import BATCH, HOLES, LEFT_PADDED, E, states, zeros
from ..golden.case import golden, wide_float16_case
from ..oracles.client import ORACLES
from ..sweep import RIGHT_PADDED, drawn_case
from .record import KindRecord

BASIC = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
FULL = "tf.compat.v1.nn.rnn_cell.LSTMCell"


# -- strategy: the option space the tests draw from ------------------------------------------------

# Bounded activations keep m bounded.  The others let m, and through the
# recurrence c, grow (exp(c) at c = 12 turns a 1-ulp difference in c into
# 130 ulp in m; linear c reaches |c| = 245 in 80 steps), which is
# conditioning, not semantics: their draws use small weights, biases and
# states and short sequences.  "exponential" is left out of the sweep: h =
# sig(o) exp(c) feeds back through the kernel's h rows, so even tame draws
# reach h ~ 1e5 in 5 steps (measured: 135 ulp, 1.3x the float32 tolerance);
# test_activation_matches_tf_keras covers it alone.
TF1_BOUNDED = [None, "tanh", "sigmoid", "hard_sigmoid", "softsign", "relu6"]

TF1_UNBOUNDED = ["linear", "relu", "elu", "selu", "gelu", "swish", "mish", "softplus", "leaky_relu"]


def examples(kind):
    """A Hypothesis strategy of a TF1 cell's :class:`~lstm_ref.case.Case` s, over the whole TF1 option space."""
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import (
        MAX_UNITS,
        batches,
        features,
        gate_blocks,
        initial_states,
        right_padded_masks,
        seeds,
        times,
        units,
    )

    tf1_dtypes = st.sampled_from(["float32", "float32", "float64", "float16"])

    @st.composite
    def tf1_examples(draw, kind=None):
        """A :class:`Case` of a TF1 cell, over the whole TF1 option space."""
        kind = kind or draw(st.sampled_from([BASIC, FULL]), label="kind")
        activation = draw(st.sampled_from(TF1_BOUNDED + TF1_UNBOUNDED), label="activation")
        tame = activation in TF1_UNBOUNDED
        u = draw(units, label="num_units")
        config = {"num_units": u, "dtype": draw(tf1_dtypes, label="dtype")}
        if activation is not None or draw(st.booleans(), label="explicit_activation_none"):
            config["activation"] = activation
        if draw(st.booleans(), label="set_forget_bias"):
            config["forget_bias"] = draw(st.sampled_from([0.0, 1.0, 2.5, -1.0, 0.3]), label="forget_bias")
        if kind == FULL:
            config["use_peepholes"] = draw(st.booleans(), label="use_peepholes")
            config["cell_clip"] = draw(st.none() | st.sampled_from([0.0, 0.2, 0.7, 3.0]), label="cell_clip")
            config["num_proj"] = draw(st.none() | st.integers(1, MAX_UNITS), label="num_proj")
            config["proj_clip"] = draw(st.none() | st.sampled_from([0.05, 0.3, 1.0]), label="proj_clip")
            if draw(st.booleans(), label="inert_keys"):
                config.update(initializer="zeros", num_unit_shards=1, num_proj_shards=None, reuse=None)
        ref = from_config(kind, config)
        var = ref.policy.variable.name
        out = ref.out_units
        batch, feat = draw(batches, label="batch"), draw(features, label="features")
        time = draw(st.integers(1, 6) if tame else times, label="time")
        rng = np.random.default_rng(draw(seeds, label="weight_seed"))
        if tame:
            x_scales = [draw(st.sampled_from([0.05, 0.2, -0.3]), label=f"gate_scale[{g}]") for g in range(4)]
            h_scales = [s * 0.5 for s in x_scales[::-1]]
        else:
            x_scales = draw(gate_blocks(), label="kernel_x_scales")  # i, j, f, o
            h_scales = draw(gate_blocks(allow_saturation=False), label="kernel_h_scales")
        weights = {
            "kernel": np.concatenate(
                [
                    per_gate(rng, (feat, 4 * u), x_scales, var),
                    per_gate(rng, (out, 4 * u), h_scales, var),
                ]
            ),
            "bias": per_gate(rng, (4 * u,), [s * (0.1 if tame else 1.0) for s in (0.5, -0.3, 1.0, 0.2)], var),
        }
        if kind == FULL and config["use_peepholes"]:
            p_scale = draw(st.sampled_from([0.1] if tame else [0.1, 0.5, 1.5]), label="peephole_scale")
            for name, sign in (("w_f_diag", 1), ("w_i_diag", -1), ("w_o_diag", 1)):
                weights[name] = (sign * p_scale * rng.standard_normal(u)).astype(var)
        if kind == FULL and config["num_proj"] is not None:
            weights["projection/kernel"] = (
                draw(st.sampled_from([0.3, 1.0]), label="proj_scale") * rng.standard_normal((u, out))
            ).astype(var)
        x = rng.standard_normal((batch, time, feat)).astype(var)
        h0, c0 = draw(initial_states(batch, out, u, var), label="initial_state")
        if tame and h0 is not None:
            h0, c0 = h0 * 0.1, c0 * 0.1
        mask = draw(right_padded_masks(batch, time), label="mask")
        return Case(kind, config, x, weights, mask, h0=h0, c0=c0)

    return tf1_examples(kind)


# -- sweeps: the report's seeded cases -------------------------------------------------------------


def basic_sweep(seed=0):
    rng = np.random.default_rng(seed + 1)
    kind = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
    for i, (dtype, fb) in enumerate(itertools.product(["float32", "float64", "float16"], [0.0, 1.0, 2.5])):
        pattern = RIGHT_PADDED[i % 2]
        yield drawn_case(
            rng,
            f"sweep_basic_{i:02d}_{dtype}_{pattern}",
            kind,
            {"num_units": int(rng.integers(2, 7)), "forget_bias": fb, "dtype": dtype},
            mask=pattern,
            scales=(0.7, -0.5, 1.1, 0.4),
        )


def lstmcell_sweep(seed=0):
    rng = np.random.default_rng(seed + 2)
    kind = "tf.compat.v1.nn.rnn_cell.LSTMCell"
    options = [
        {},
        {"use_peepholes": True},
        {"cell_clip": 0.5},
        {"num_proj": 2},
        {"num_proj": 3, "proj_clip": 0.2},
        {"use_peepholes": True, "cell_clip": 0.4, "num_proj": 2, "proj_clip": 0.3},
    ]
    for i, (dtype, extra) in enumerate(itertools.product(["float32", "float64", "float16"], options)):
        pattern = RIGHT_PADDED[i % 2]
        yield drawn_case(
            rng,
            f"sweep_lstmcell_{i:02d}_{dtype}_{pattern}",
            kind,
            {"num_units": int(rng.integers(2, 7)), "dtype": dtype, **extra},
            mask=pattern,
            scales=(0.7, -0.5, 1.1, 0.4),
            states=i % 3 == 0,
        )


# -- error inputs ----------------------------------------------------------------------------------

PEEP = {"num_units": 4, "use_peepholes": True}
PROJ = {"num_units": 4, "num_proj": 2}
STATE_IS_TUPLE = (r"state_is_tuple.*not supported",)
BASIC_ERROR_INPUTS = (
    E("state_is_tuple_false", {"num_units": 3, "state_is_tuple": False}, ConfigError, *STATE_IS_TUPLE),
    E(
        "use_peepholes_unknown",
        {"num_units": 3, "use_peepholes": True},
        ConfigError,
        r"unknown config key.*'use_peepholes'",
    ),
    E("num_units_missing", {}, ConfigError, r"num_units.*required"),
    E("forget_bias_string", {"num_units": 3, "forget_bias": "1"}, ConfigError, r"forget_bias.*real number"),
    E("keras3_only_activation", {"num_units": 3, "activation": "hard_tanh"}, ConfigError, r"'hard_tanh'.*tf_keras"),
    E(
        "kernel_rows_without_state",
        {"num_units": 4},
        WeightError,
        r"'kernel' has shape \(3, 16\), expected \(7, 16\)",
        {"weights": {"kernel": zeros(3, 16)}},
    ),
    E(
        "peephole_weight_unknown",
        {"num_units": 4},
        WeightError,
        r"unknown weight.*'w_f_diag'",
        {"weights": {"w_f_diag": zeros(4)}},
    ),
    E("mask_with_holes", {"num_units": 4}, InputError, r"row\(s\) \[0\] are not right-padded", {"mask": HOLES}),
)
LSTM_CELL_ERROR_INPUTS = (
    E("state_is_tuple_false", {"num_units": 3, "state_is_tuple": False}, ConfigError, *STATE_IS_TUPLE),
    E("cell_clip_negative", {"num_units": 3, "cell_clip": -1.0}, ConfigError, r"cell_clip.*>= 0"),
    E("proj_clip_negative", {"num_units": 3, "num_proj": 2, "proj_clip": -0.5}, ConfigError, r"proj_clip.*>= 0"),
    E("cell_clip_nan", {"num_units": 3, "cell_clip": float("nan")}, ConfigError, r"cell_clip"),
    E("keras_units_key", {"num_units": 3, "units": 3}, ConfigError, r"unknown config key.*'units'"),
    E("num_units_zero", {"num_units": 0}, ConfigError, r"num_units.*positive integer"),
    E("num_proj_zero", {"num_units": 3, "num_proj": 0}, ConfigError, r"num_proj.*positive integer"),
    E("unit_shards", {"num_units": 3, "num_unit_shards": 2}, ConfigError, r"num_unit_shards.*not supported"),
    E("proj_shards", {"num_units": 3, "num_proj": 2, "num_proj_shards": 3}, ConfigError, r"num_proj_shards"),
    E("use_peepholes_int", {"num_units": 3, "use_peepholes": 1}, ConfigError, r"use_peepholes.*True or False"),
    E("mixed_float16", {"num_units": 3, "dtype": "mixed_float16"}, ConfigError, r"mixed_float16.*not supported"),
    E("bfloat16", {"num_units": 3, "dtype": "bfloat16"}, ConfigError, r"bfloat16.*not supported"),
    E("peephole_missing", PEEP, WeightError, r"missing weight.*'w_o_diag'", {"weights": {"w_o_diag": None}}),
    E(
        "peephole_wrong_shape",
        PEEP,
        WeightError,
        r"'w_f_diag' has shape \(3,\), expected \(4,\)",
        {"weights": {"w_f_diag": zeros(3)}},
    ),
    E(
        "projection_missing",
        PROJ,
        WeightError,
        r"missing weight.*'projection/kernel'",
        {"weights": {"projection/kernel": None}},
    ),
    E(
        "projection_transposed",
        PROJ,
        WeightError,
        r"'projection/kernel' has shape \(2, 4\)",
        {"weights": {"projection/kernel": zeros(2, 4)}},
    ),
    # kernel rows are input_dim + num_proj, not input_dim + num_units
    E(
        "kernel_rows_num_units",
        PROJ,
        WeightError,
        r"'kernel' has shape \(7, 16\), expected \(5, 16\)",
        {"weights": {"kernel": zeros(3 + 4, 16)}},
    ),
    E(
        "keras_weight_names",
        {"num_units": 4},
        WeightError,
        r"unknown weight.*'recurrent_kernel'",
        {"weights": {"recurrent_kernel": zeros(4, 16)}},
    ),
    E("left_padded_mask", {"num_units": 4}, InputError, r"row\(s\) \[0\] are not right-padded", {"mask": LEFT_PADDED}),
    E("h0_is_num_units_wide", PROJ, InputError, r"h0 has shape \(2, 4\), expected.*\(2, 2\)", states(4, 4)),
    E("c0_without_h0", PROJ, InputError, r"give all of \['h0', 'c0'\] or none", {"c0": zeros(BATCH, 2)}),
)


# -- golden cases ----------------------------------------------------------------------------------

SCALES = (0.7, -0.5, 1.1, 0.4)  # i, j, f, o


def _weights(rng, input_dim, units, *, num_proj=None, peepholes=False, scales=SCALES, dtype="float32"):
    out = num_proj or units
    w = {
        # concat([x, h]) rows: the x rows and the h rows get different scales
        "kernel": np.concatenate(
            [
                per_gate(rng, (input_dim, 4 * units), scales, dtype),
                per_gate(rng, (out, 4 * units), [0.6 * s for s in scales[::-1]], dtype),
            ]
        ),
        "bias": (np.repeat([0.1, -0.2, 0.5, 0.3], units) + 0.05 * rng.standard_normal(4 * units)).astype(dtype),
    }
    if peepholes:
        for name, s in (("w_f_diag", 0.8), ("w_i_diag", -0.6), ("w_o_diag", 1.2)):
            w[name] = (s * rng.standard_normal(units)).astype(dtype)
    if num_proj:
        w["projection/kernel"] = (0.8 * rng.standard_normal((units, num_proj))).astype(dtype)
    return w


def _x(rng, batch, time, features, dtype="float32", scale=1.0):
    return (scale * rng.standard_normal((batch, time, features))).astype(dtype)


def _state(rng, batch, width, dtype="float32", scale=1.0):
    return (scale * rng.standard_normal((batch, width))).astype(dtype)


def _right_padded(lengths, time):
    return np.arange(time)[None, :] < np.asarray(lengths)[:, None]


def _clip_shares(case):
    """Share of c / m values on the clip bound, from the float64 reference."""
    ref = case.reference()
    trace = case.run(ref, oracle=True)
    valid = np.ones(trace.c.shape[:2], bool) if case.mask is None else case.mask.astype(bool)
    meta = {}
    if getattr(ref, "cell_clip", None) is not None:
        c = np.abs(trace.c[valid])
        meta["share_c_clipped"] = round(float(np.mean(c >= ref.cell_clip)), 4)
    if getattr(ref, "proj_clip", None) is not None:
        m = np.abs(trace.h[valid])
        meta["share_m_clipped"] = round(float(np.mean(m >= ref.proj_clip)), 4)
    case.meta.update(meta)
    return case


# -- the seed scenario ---------------------------------------------------------


def _seed(kind):
    x = one_hot_the_mice_had()
    w = {"kernel": np.full((10 + 5, 20), 0.1, "float32"), "bias": np.full((20,), 0.1, "float32")}
    return Case(
        kind,
        {"num_units": 5},
        x,
        w,
        notes=(
            "The project's seed: one-hot 'the mice had', batch 1, 5 units, every weight and bias 0.1, "
            "forget_bias=1.0 added on top. All gates see the same pre-activation, so it cannot tell gate "
            "orders apart; it pins forget_bias, the activations and the recurrence."
        ),
    )


@golden("tf1_basic_seed_the_mice_had")
def tf1_basic_seed_the_mice_had():
    return _seed(BASIC)


@golden("tf1_lstmcell_seed_the_mice_had")
def tf1_lstmcell_seed_the_mice_had():
    return _seed(FULL)


# -- BasicLSTMCell ---------------------------------------------------------------


def _basic_forget_bias(forget_bias, seed):
    rng = np.random.default_rng(seed)
    return Case(
        BASIC,
        {"num_units": 4, "forget_bias": forget_bias},
        _x(rng, 2, 5, 3),
        _weights(rng, 3, 4),
        notes=f"forget_bias={forget_bias} is added inside sigmoid(f + forget_bias) at every step.",
    )


for _fb, _seed_ in ((0.0, 30), (1.0, 31), (2.5, 32)):
    golden(f"tf1_basic_forget_bias_{str(_fb).replace('.', '_')}")(lambda fb=_fb, s=_seed_: _basic_forget_bias(fb, s))


@golden("tf1_basic_initial_state_mask")
def tf1_basic_initial_state_mask():
    rng = np.random.default_rng(33)
    return Case(
        BASIC,
        {"num_units": 3},
        _x(rng, 3, 5, 2),
        _weights(rng, 2, 3),
        h0=_state(rng, 3, 3),
        c0=_state(rng, 3, 3),
        mask=_right_padded([5, 2, 0], 5),
        notes="Right-padded rows of length 5, 2 and 0 with non-zero h0/c0: outputs past the "
        "length are zeros, the state is carried; the empty row keeps (c0, h0).",
    )


@golden("tf1_basic_activation_hard_sigmoid")
def tf1_basic_activation_hard_sigmoid():
    rng = np.random.default_rng(34)
    return Case(
        BASIC,
        {"num_units": 3, "activation": "hard_sigmoid"},
        _x(rng, 2, 4, 3, scale=2.0),
        _weights(rng, 3, 3, scales=(1.5, -2.0, 1.0, 0.8)),
        notes="String activations resolve through tf_keras (Keras 2): hard_sigmoid is "
        "clip(0.2 x + 0.5, 0, 1), not Keras 3's relu6(x + 3) / 6.",
    )


@golden("tf1_basic_activation_relu")
def tf1_basic_activation_relu():
    rng = np.random.default_rng(35)
    return Case(
        BASIC,
        {"num_units": 3, "activation": "relu"},
        _x(rng, 2, 4, 3),
        _weights(rng, 3, 3),
        notes="activation='relu' replaces tanh on both j and c; the gates stay sigmoid.",
    )


@golden("tf1_basic_saturated_long")
def tf1_basic_saturated_long():
    rng = np.random.default_rng(36)
    return Case(
        BASIC,
        {"num_units": 4},
        _x(rng, 2, 120, 3, scale=2.0),
        _weights(rng, 3, 4, scales=(6.0, -5.0, 4.0, 7.0)),
        notes="Saturating gates over 120 steps: error growth along the sequence.",
    )


@golden("tf1_basic_float64")
def tf1_basic_float64():
    rng = np.random.default_rng(37)
    return Case(
        BASIC,
        {"num_units": 4, "dtype": "float64", "forget_bias": 0.5},
        _x(rng, 2, 6, 3, "float64"),
        _weights(rng, 3, 4, dtype="float64"),
        h0=_state(rng, 2, 4, "float64"),
        c0=_state(rng, 2, 4, "float64"),
        mask=_right_padded([6, 3], 6),
    )


@golden("tf1_basic_float16")
def tf1_basic_float16():
    rng = np.random.default_rng(38)
    return Case(
        BASIC,
        {"num_units": 4, "dtype": "float16", "forget_bias": 0.3},
        _x(rng, 2, 6, 3, "float16"),
        _weights(rng, 3, 4, dtype="float16"),
        h0=_state(rng, 2, 4, "float16"),
        c0=_state(rng, 2, 4, "float16"),
        mask=_right_padded([6, 4], 6),
        notes="float16 end to end; forget_bias=0.3 is rounded to float16 before it is added.",
    )


# -- LSTMCell --------------------------------------------------------------------


@golden("tf1_lstmcell_plain")
def tf1_lstmcell_plain():
    rng = np.random.default_rng(40)
    return Case(
        FULL,
        {"num_units": 4},
        _x(rng, 2, 5, 3),
        _weights(rng, 3, 4),
        notes="No options: the same equations as BasicLSTMCell, written differently.",
    )


@golden("tf1_lstmcell_forget_bias_0")
def tf1_lstmcell_forget_bias_0():
    rng = np.random.default_rng(41)
    return Case(FULL, {"num_units": 4, "forget_bias": 0.0}, _x(rng, 2, 5, 3), _weights(rng, 3, 4))


@golden("tf1_lstmcell_peepholes")
def tf1_lstmcell_peepholes():
    rng = np.random.default_rng(42)
    return Case(
        FULL,
        {"num_units": 4, "use_peepholes": True},
        _x(rng, 2, 5, 3),
        _weights(rng, 3, 4, peepholes=True),
        h0=_state(rng, 2, 4),
        c0=_state(rng, 2, 4),
        notes="Distinct w_f/w_i/w_o_diag: f and i peek at c_prev, o at the new c.",
    )


@golden("tf1_lstmcell_cell_clip")
def tf1_lstmcell_cell_clip():
    rng = np.random.default_rng(43)
    case = Case(
        FULL,
        {"num_units": 4, "cell_clip": 0.6},
        _x(rng, 2, 6, 3, scale=1.5),
        _weights(rng, 3, 4, scales=(2.0, -2.5, 2.0, 1.0)),
        notes="cell_clip active: the carried c is the clipped one.",
    )
    return _clip_shares(case)


@golden("tf1_lstmcell_cell_clip_peepholes")
def tf1_lstmcell_cell_clip_peepholes():
    rng = np.random.default_rng(44)
    case = Case(
        FULL,
        {"num_units": 4, "cell_clip": 0.5, "use_peepholes": True},
        _x(rng, 2, 6, 3, scale=1.5),
        _weights(rng, 3, 4, peepholes=True, scales=(2.0, -2.5, 2.0, 1.0)),
        notes="The output peephole sees the clipped c (w_o_diag * clip(c)).",
    )
    return _clip_shares(case)


@golden("tf1_lstmcell_cell_clip_zero")
def tf1_lstmcell_cell_clip_zero():
    rng = np.random.default_rng(45)
    case = Case(
        FULL,
        {"num_units": 3, "cell_clip": 0.0},
        _x(rng, 2, 4, 3),
        _weights(rng, 3, 3),
        notes="cell_clip=0 is honoured (`is not None`): c and m are all zeros.",
    )
    return _clip_shares(case)


@golden("tf1_lstmcell_num_proj")
def tf1_lstmcell_num_proj():
    rng = np.random.default_rng(46)
    return Case(
        FULL,
        {"num_units": 5, "num_proj": 3},
        _x(rng, 2, 5, 3),
        _weights(rng, 3, 5, num_proj=3),
        h0=_state(rng, 2, 3),
        c0=_state(rng, 2, 5),
        notes="The projected m (3 columns) is the output and what the kernel's h rows see.",
    )


@golden("tf1_lstmcell_proj_clip")
def tf1_lstmcell_proj_clip():
    rng = np.random.default_rng(47)
    case = Case(
        FULL,
        {"num_units": 5, "num_proj": 3, "proj_clip": 0.25},
        _x(rng, 2, 6, 3, scale=1.5),
        _weights(rng, 3, 5, num_proj=3, scales=(1.5, -2.0, 1.5, 1.0)),
        notes="proj_clip active: the clipped projection is output and fed back.",
    )
    return _clip_shares(case)


@golden("tf1_lstmcell_proj_clip_without_num_proj")
def tf1_lstmcell_proj_clip_without_num_proj():
    rng = np.random.default_rng(48)
    return Case(
        FULL,
        {"num_units": 4, "proj_clip": 0.01},
        _x(rng, 2, 4, 3),
        _weights(rng, 3, 4),
        notes="TF reads proj_clip only under num_proj: here it changes nothing.",
    )


@golden("tf1_lstmcell_all_options")
def tf1_lstmcell_all_options():
    rng = np.random.default_rng(49)
    config = {
        "num_units": 5,
        "num_proj": 3,
        "use_peepholes": True,
        "cell_clip": 0.7,
        "proj_clip": 0.3,
        "forget_bias": 0.5,
        "activation": "softsign",
    }
    case = Case(
        FULL,
        config,
        _x(rng, 3, 6, 4, scale=1.5),
        _weights(rng, 4, 5, num_proj=3, peepholes=True, scales=(2.0, -2.5, 1.5, 1.2)),
        h0=_state(rng, 3, 3),
        c0=_state(rng, 3, 5),
        mask=_right_padded([6, 3, 0], 6),
        notes="Every option at once, with initial states and a right-padded mask.",
    )
    return _clip_shares(case)


@golden("tf1_lstmcell_initial_state_mask")
def tf1_lstmcell_initial_state_mask():
    rng = np.random.default_rng(50)
    return Case(
        FULL,
        {"num_units": 3},
        _x(rng, 4, 5, 2),
        _weights(rng, 2, 3),
        h0=_state(rng, 4, 3),
        c0=_state(rng, 4, 3),
        mask=_right_padded([5, 1, 3, 0], 5),
        notes="Right padding of every length with non-zero h0/c0.",
    )


@golden("tf1_lstmcell_activation_hard_sigmoid")
def tf1_lstmcell_activation_hard_sigmoid():
    rng = np.random.default_rng(51)
    return Case(
        FULL,
        {"num_units": 3, "activation": "hard_sigmoid", "use_peepholes": True},
        _x(rng, 2, 4, 3, scale=2.0),
        _weights(rng, 3, 3, peepholes=True, scales=(1.5, -2.0, 1.0, 0.8)),
        notes="Keras 2 hard_sigmoid as the cell activation.",
    )


@golden("tf1_lstmcell_saturated")
def tf1_lstmcell_saturated():
    rng = np.random.default_rng(52)
    return Case(
        FULL,
        {"num_units": 4, "use_peepholes": True, "num_proj": 2},
        _x(rng, 2, 8, 3, scale=3.0),
        _weights(rng, 3, 4, num_proj=2, peepholes=True, scales=(6.0, -8.0, 5.0, 7.0)),
        notes="Large pre-activations: sigmoid and tanh saturate.",
    )


@golden("tf1_lstmcell_float64_all_options")
def tf1_lstmcell_float64_all_options():
    rng = np.random.default_rng(53)
    config = {
        "num_units": 4,
        "num_proj": 3,
        "use_peepholes": True,
        "cell_clip": 0.6,
        "proj_clip": 0.3,
        "dtype": "float64",
    }
    case = Case(
        FULL,
        config,
        _x(rng, 2, 6, 3, "float64", scale=1.5),
        _weights(rng, 3, 4, num_proj=3, peepholes=True, scales=(2.0, -2.5, 1.5, 1.2), dtype="float64"),
        h0=_state(rng, 2, 3, "float64"),
        c0=_state(rng, 2, 4, "float64"),
        mask=_right_padded([6, 4], 6),
    )
    return _clip_shares(case)


@golden("tf1_lstmcell_float16_all_options")
def tf1_lstmcell_float16_all_options():
    rng = np.random.default_rng(54)
    config = {
        "num_units": 4,
        "num_proj": 3,
        "use_peepholes": True,
        "cell_clip": 0.6,
        "proj_clip": 0.3,
        "forget_bias": 0.3,
        "dtype": "float16",
    }
    case = Case(
        FULL,
        config,
        _x(rng, 2, 6, 3, "float16", scale=1.5),
        _weights(rng, 3, 4, num_proj=3, peepholes=True, scales=(2.0, -2.5, 1.5, 1.2), dtype="float16"),
        h0=_state(rng, 2, 3, "float16"),
        c0=_state(rng, 2, 4, "float16"),
        mask=_right_padded([6, 4], 6),
        notes="float16 end to end; the clip bounds and forget_bias are rounded to float16.",
    )
    return _clip_shares(case)


@golden("tf1_basic_float16_wide")
def tf1_basic_float16_wide():
    return wide_float16_case(
        BASIC,
        {"num_units": 64, "dtype": "float16"},
        44,
        notes="concat([x, h]) @ kernel is one MatMul: the x half stays float32 until the h half is added.",
    )


@golden("tf1_lstmcell_float16_wide")
def tf1_lstmcell_float16_wide():
    return wide_float16_case(
        FULL,
        {"num_units": 64, "use_peepholes": True, "dtype": "float16"},
        45,
        notes="one MatMul over concat([x, h]), peepholes in float16.",
    )


# -- the record -------------------------------------------------------------------------------------

BASIC_RECORD = KindRecord(
    kind=BASIC,
    id="tf1_basic",
    label="BasicLSTMCell (TF1)",
    reference=tf1_cells.BasicLSTMCell,
    oracle=ORACLES["tf1"],
    examples=partial(examples, BASIC),
    sweep=basic_sweep,
    variants=tf1_cells.BASIC_LSTM_CELL_VARIANTS,
    error_inputs=BASIC_ERROR_INPUTS,
    throughput_config=lambda rng: {"num_units": int(rng.integers(1, 7)), "forget_bias": float(rng.choice([0.0, 1.0]))},
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 2.2e-16,  # left 0 (428 arrays; worst t 5.2e-15): eps
        "float32": 1.2e-7,  # left 3.7e-8 (430 arrays; worst t 4.0e-6): eps
        "float16": 9.8e-4,  # left 2.3e-4 (101 arrays; worst t 2.3e-3): eps
    },
)

LSTM_CELL_RECORD = KindRecord(
    kind=FULL,
    id="tf1_lstmcell",
    label="LSTMCell (TF1)",
    reference=tf1_cells.LSTMCell,
    oracle=ORACLES["tf1"],
    examples=partial(examples, FULL),
    sweep=lstmcell_sweep,
    variants=tf1_cells.LSTM_CELL_VARIANTS,
    error_inputs=LSTM_CELL_ERROR_INPUTS,
    throughput_config=lambda rng: {
        "num_units": int(rng.integers(1, 7)),
        "use_peepholes": bool(rng.integers(2)),
        "cell_clip": float(rng.choice([0.5, 3.0])),
    },
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 2.2e-16,  # left 0 (355 arrays; worst t 3.5e-15; clip bounds included): eps
        "float32": 1.2e-7,  # left 4.0e-8 (837 arrays; worst t 3.0e-6): eps
        "float16": 9.8e-4,  # left 1.7e-4 (186 arrays; worst t 2.9e-3): eps
    },
)
