"""Golden cases for ``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` and ``LSTMCell``
run by ``tf.compat.v1.nn.dynamic_rnn``.

Each case is seeded and tiny.  Except for the seed scenario, kernels differ
per gate block (``per_gate``; TF1 blocks are i, j, f, o), so that a gate-order
bug cannot hide.  Clipping cases record in ``meta`` the share of c (cell_clip)
or m (proj_clip) values that sit on the clip bound, measured with the float64
reference, so that a reader can see the clip is really active.
"""

import numpy as np

from .case import Case, golden, one_hot_the_mice_had, per_gate, wide_float16_case

BASIC = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
FULL = "tf.compat.v1.nn.rnn_cell.LSTMCell"
SCALES = (0.7, -0.5, 1.1, 0.4)  # i, j, f, o


def _weights(rng, input_dim, units, *, num_proj=None, peepholes=False, scales=SCALES, dtype="float32"):
    out = num_proj or units
    w = {
        # concat([x, h]) rows: the x rows and the h rows get different scales
        "kernel": np.concatenate([
            per_gate(rng, (input_dim, 4 * units), scales, dtype),
            per_gate(rng, (out, 4 * units), [0.6 * s for s in scales[::-1]], dtype),
        ]),
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
        kind, {"num_units": 5}, x, w,
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
    return Case(BASIC, {"num_units": 4, "forget_bias": forget_bias}, _x(rng, 2, 5, 3), _weights(rng, 3, 4),
                notes=f"forget_bias={forget_bias} is added inside sigmoid(f + forget_bias) at every step.")


for _fb, _seed_ in ((0.0, 30), (1.0, 31), (2.5, 32)):
    golden(f"tf1_basic_forget_bias_{str(_fb).replace('.', '_')}")(
        lambda fb=_fb, s=_seed_: _basic_forget_bias(fb, s))


@golden("tf1_basic_initial_state_mask")
def tf1_basic_initial_state_mask():
    rng = np.random.default_rng(33)
    return Case(BASIC, {"num_units": 3}, _x(rng, 3, 5, 2), _weights(rng, 2, 3),
                h0=_state(rng, 3, 3), c0=_state(rng, 3, 3), mask=_right_padded([5, 2, 0], 5),
                notes="Right-padded rows of length 5, 2 and 0 with non-zero h0/c0: outputs past the "
                      "length are zeros, the state is carried; the empty row keeps (c0, h0).")


@golden("tf1_basic_activation_hard_sigmoid")
def tf1_basic_activation_hard_sigmoid():
    rng = np.random.default_rng(34)
    return Case(BASIC, {"num_units": 3, "activation": "hard_sigmoid"}, _x(rng, 2, 4, 3, scale=2.0),
                _weights(rng, 3, 3, scales=(1.5, -2.0, 1.0, 0.8)),
                notes="String activations resolve through tf_keras (Keras 2): hard_sigmoid is "
                      "clip(0.2 x + 0.5, 0, 1), not Keras 3's relu6(x + 3) / 6.")


@golden("tf1_basic_activation_relu")
def tf1_basic_activation_relu():
    rng = np.random.default_rng(35)
    return Case(BASIC, {"num_units": 3, "activation": "relu"}, _x(rng, 2, 4, 3), _weights(rng, 3, 3),
                notes="activation='relu' replaces tanh on both j and c; the gates stay sigmoid.")


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
    return Case(BASIC, {"num_units": 4, "dtype": "float64", "forget_bias": 0.5}, _x(rng, 2, 6, 3, "float64"),
                _weights(rng, 3, 4, dtype="float64"), h0=_state(rng, 2, 4, "float64"), c0=_state(rng, 2, 4, "float64"),
                mask=_right_padded([6, 3], 6))


@golden("tf1_basic_float16")
def tf1_basic_float16():
    rng = np.random.default_rng(38)
    return Case(BASIC, {"num_units": 4, "dtype": "float16", "forget_bias": 0.3}, _x(rng, 2, 6, 3, "float16"),
                _weights(rng, 3, 4, dtype="float16"), h0=_state(rng, 2, 4, "float16"), c0=_state(rng, 2, 4, "float16"),
                mask=_right_padded([6, 4], 6),
                notes="float16 end to end; forget_bias=0.3 is rounded to float16 before it is added.")


# -- LSTMCell --------------------------------------------------------------------

@golden("tf1_lstmcell_plain")
def tf1_lstmcell_plain():
    rng = np.random.default_rng(40)
    return Case(FULL, {"num_units": 4}, _x(rng, 2, 5, 3), _weights(rng, 3, 4),
                notes="No options: the same equations as BasicLSTMCell, written differently.")


@golden("tf1_lstmcell_forget_bias_0")
def tf1_lstmcell_forget_bias_0():
    rng = np.random.default_rng(41)
    return Case(FULL, {"num_units": 4, "forget_bias": 0.0}, _x(rng, 2, 5, 3), _weights(rng, 3, 4))


@golden("tf1_lstmcell_peepholes")
def tf1_lstmcell_peepholes():
    rng = np.random.default_rng(42)
    return Case(FULL, {"num_units": 4, "use_peepholes": True}, _x(rng, 2, 5, 3), _weights(rng, 3, 4, peepholes=True),
                h0=_state(rng, 2, 4), c0=_state(rng, 2, 4),
                notes="Distinct w_f/w_i/w_o_diag: f and i peek at c_prev, o at the new c.")


@golden("tf1_lstmcell_cell_clip")
def tf1_lstmcell_cell_clip():
    rng = np.random.default_rng(43)
    case = Case(FULL, {"num_units": 4, "cell_clip": 0.6}, _x(rng, 2, 6, 3, scale=1.5),
                _weights(rng, 3, 4, scales=(2.0, -2.5, 2.0, 1.0)),
                notes="cell_clip active: the carried c is the clipped one.")
    return _clip_shares(case)


@golden("tf1_lstmcell_cell_clip_peepholes")
def tf1_lstmcell_cell_clip_peepholes():
    rng = np.random.default_rng(44)
    case = Case(FULL, {"num_units": 4, "cell_clip": 0.5, "use_peepholes": True}, _x(rng, 2, 6, 3, scale=1.5),
                _weights(rng, 3, 4, peepholes=True, scales=(2.0, -2.5, 2.0, 1.0)),
                notes="The output peephole sees the clipped c (w_o_diag * clip(c)).")
    return _clip_shares(case)


@golden("tf1_lstmcell_cell_clip_zero")
def tf1_lstmcell_cell_clip_zero():
    rng = np.random.default_rng(45)
    case = Case(FULL, {"num_units": 3, "cell_clip": 0.0}, _x(rng, 2, 4, 3), _weights(rng, 3, 3),
                notes="cell_clip=0 is honoured (`is not None`): c and m are all zeros.")
    return _clip_shares(case)


@golden("tf1_lstmcell_num_proj")
def tf1_lstmcell_num_proj():
    rng = np.random.default_rng(46)
    return Case(FULL, {"num_units": 5, "num_proj": 3}, _x(rng, 2, 5, 3), _weights(rng, 3, 5, num_proj=3),
                h0=_state(rng, 2, 3), c0=_state(rng, 2, 5),
                notes="The projected m (3 columns) is the output and what the kernel's h rows see.")


@golden("tf1_lstmcell_proj_clip")
def tf1_lstmcell_proj_clip():
    rng = np.random.default_rng(47)
    case = Case(FULL, {"num_units": 5, "num_proj": 3, "proj_clip": 0.25}, _x(rng, 2, 6, 3, scale=1.5),
                _weights(rng, 3, 5, num_proj=3, scales=(1.5, -2.0, 1.5, 1.0)),
                notes="proj_clip active: the clipped projection is output and fed back.")
    return _clip_shares(case)


@golden("tf1_lstmcell_proj_clip_without_num_proj")
def tf1_lstmcell_proj_clip_without_num_proj():
    rng = np.random.default_rng(48)
    return Case(FULL, {"num_units": 4, "proj_clip": 0.01}, _x(rng, 2, 4, 3), _weights(rng, 3, 4),
                notes="TF reads proj_clip only under num_proj: here it changes nothing.")


@golden("tf1_lstmcell_all_options")
def tf1_lstmcell_all_options():
    rng = np.random.default_rng(49)
    config = {"num_units": 5, "num_proj": 3, "use_peepholes": True, "cell_clip": 0.7, "proj_clip": 0.3,
              "forget_bias": 0.5, "activation": "softsign"}
    case = Case(FULL, config, _x(rng, 3, 6, 4, scale=1.5),
                _weights(rng, 4, 5, num_proj=3, peepholes=True, scales=(2.0, -2.5, 1.5, 1.2)),
                h0=_state(rng, 3, 3), c0=_state(rng, 3, 5), mask=_right_padded([6, 3, 0], 6),
                notes="Every option at once, with initial states and a right-padded mask.")
    return _clip_shares(case)


@golden("tf1_lstmcell_initial_state_mask")
def tf1_lstmcell_initial_state_mask():
    rng = np.random.default_rng(50)
    return Case(FULL, {"num_units": 3}, _x(rng, 4, 5, 2), _weights(rng, 2, 3),
                h0=_state(rng, 4, 3), c0=_state(rng, 4, 3), mask=_right_padded([5, 1, 3, 0], 5),
                notes="Right padding of every length with non-zero h0/c0.")


@golden("tf1_lstmcell_activation_hard_sigmoid")
def tf1_lstmcell_activation_hard_sigmoid():
    rng = np.random.default_rng(51)
    return Case(FULL, {"num_units": 3, "activation": "hard_sigmoid", "use_peepholes": True},
                _x(rng, 2, 4, 3, scale=2.0), _weights(rng, 3, 3, peepholes=True, scales=(1.5, -2.0, 1.0, 0.8)),
                notes="Keras 2 hard_sigmoid as the cell activation.")


@golden("tf1_lstmcell_saturated")
def tf1_lstmcell_saturated():
    rng = np.random.default_rng(52)
    return Case(FULL, {"num_units": 4, "use_peepholes": True, "num_proj": 2}, _x(rng, 2, 8, 3, scale=3.0),
                _weights(rng, 3, 4, num_proj=2, peepholes=True, scales=(6.0, -8.0, 5.0, 7.0)),
                notes="Large pre-activations: sigmoid and tanh saturate.")


@golden("tf1_lstmcell_float64_all_options")
def tf1_lstmcell_float64_all_options():
    rng = np.random.default_rng(53)
    config = {"num_units": 4, "num_proj": 3, "use_peepholes": True, "cell_clip": 0.6, "proj_clip": 0.3,
              "dtype": "float64"}
    case = Case(FULL, config, _x(rng, 2, 6, 3, "float64", scale=1.5),
                _weights(rng, 3, 4, num_proj=3, peepholes=True, scales=(2.0, -2.5, 1.5, 1.2), dtype="float64"),
                h0=_state(rng, 2, 3, "float64"), c0=_state(rng, 2, 4, "float64"), mask=_right_padded([6, 4], 6))
    return _clip_shares(case)


@golden("tf1_lstmcell_float16_all_options")
def tf1_lstmcell_float16_all_options():
    rng = np.random.default_rng(54)
    config = {"num_units": 4, "num_proj": 3, "use_peepholes": True, "cell_clip": 0.6, "proj_clip": 0.3,
              "forget_bias": 0.3, "dtype": "float16"}
    case = Case(FULL, config, _x(rng, 2, 6, 3, "float16", scale=1.5),
                _weights(rng, 3, 4, num_proj=3, peepholes=True, scales=(2.0, -2.5, 1.5, 1.2), dtype="float16"),
                h0=_state(rng, 2, 3, "float16"), c0=_state(rng, 2, 4, "float16"), mask=_right_padded([6, 4], 6),
                notes="float16 end to end; the clip bounds and forget_bias are rounded to float16.")
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
