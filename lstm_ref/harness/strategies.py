"""Hypothesis strategies, array-api-tests style: module-level strategies plus
``@st.composite`` builders for configs, weights, masks and states.  Every
example strategy draws a :class:`lstm_ref.case.Case`; each kind's record
names its strategy.

Size caps come from the environment (``LSTM_PARITY_MAX_BATCH``, ``_TIME``,
``_FEATURES``, ``_UNITS``, ``_LONG_TIME``).  Weights are drawn per gate block,
each block with its own scale and sign, so that a gate-order bug shows;
scales include saturating ones.
"""

import os

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lstm_ref import from_config
from lstm_ref.case import MASK_PATTERNS, Case, build_weights, make_mask, per_gate

MAX_BATCH = int(os.environ.get("LSTM_PARITY_MAX_BATCH", 4))
MAX_TIME = int(os.environ.get("LSTM_PARITY_MAX_TIME", 10))
LONG_TIME = int(os.environ.get("LSTM_PARITY_LONG_TIME", 80))
MAX_FEATURES = int(os.environ.get("LSTM_PARITY_MAX_FEATURES", 6))
MAX_UNITS = int(os.environ.get("LSTM_PARITY_MAX_UNITS", 6))

batches = st.integers(1, MAX_BATCH)
features = st.integers(1, MAX_FEATURES)
units = st.integers(1, MAX_UNITS)
# Long sequences as a range, so that a failing long case shrinks towards short.
times = st.one_of(st.integers(1, MAX_TIME), st.integers(MAX_TIME + 1, LONG_TIME))
seeds = st.integers(0, 2**32 - 1)
# Per-gate scale: small, moderate, and saturating (|z| of order 10).
gate_scales = st.sampled_from([0.05, 0.3, 0.7, 1.0, 1.5]).flatmap(lambda s: st.sampled_from([s, -s]))
saturating_scales = st.sampled_from([4.0, 8.0, -6.0])
mask_patterns = st.sampled_from(MASK_PATTERNS)

# With gates in [-1, 1] and a bounded activation the state stays bounded.
# Other activations let c grow geometrically and amplify rounding (exp(c),
# f > 1): that is conditioning, not semantics, so their draws use small
# weights and short sequences.
GATE_SAFE = ["sigmoid", "hard_sigmoid", "tanh", "hard_tanh", "softsign", "sparse_sigmoid", "softmax"]
BOUNDED = GATE_SAFE + ["relu6"]
UNBOUNDED = ["linear", "relu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish", "softplus",
             "leaky_relu", "hard_silu", "hard_swish", "sparse_plus", "squareplus", "exponential",
             "log_softmax", "log_sigmoid", "tanh_shrink", "soft_shrink", "hard_shrink"]


@st.composite
def gate_blocks(draw, n_gates=4, allow_saturation=True):
    """One scale per gate block."""
    scale = st.one_of(gate_scales, saturating_scales) if allow_saturation else gate_scales
    return [draw(scale, label=f"gate_scale[{g}]") for g in range(n_gates)]


@st.composite
def masks(draw, batch, time, right_padded_only=False):
    pattern = draw(st.just("right") | st.just("none") if right_padded_only else mask_patterns, label="mask_pattern")
    rng = np.random.default_rng(draw(seeds, label="mask_seed"))
    return make_mask(rng, pattern, batch, time)


@st.composite
def initial_states(draw, batch, h_width, c_width, dtype):
    if not draw(st.booleans(), label="has_initial_state"):
        return None, None
    rng = np.random.default_rng(draw(seeds, label="state_seed"))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]), label="state_scale")
    return ((scale * rng.standard_normal((batch, h_width))).astype(dtype),
            (scale * rng.standard_normal((batch, c_width))).astype(dtype))


dtypes = st.sampled_from(["float32", "float32", "float64", "float16", "mixed_float16"])


def variable_dtype(policy_name):
    return "float32" if policy_name.startswith("mixed") else policy_name


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


@st.composite
def keras_layer_run(draw, kind, config, tame, time_steps):
    """The arrays of a Keras-style LSTM layer (kernel, recurrent_kernel,
    bias) for ``config``: per-gate kernels (small ones when ``tame``),
    states and a mask of any pattern."""
    var = variable_dtype(config["dtype"])
    batch, feat = draw(batches, label="batch"), draw(features, label="features")
    time = draw(time_steps, label="time")
    u = config["units"]
    rng = np.random.default_rng(draw(seeds, label="weight_seed"))
    if tame:
        k_scales = [draw(st.sampled_from([0.05, 0.2, -0.3]), label=f"gate_scale[{g}]") for g in range(4)]
        r_scales = [s * 0.5 for s in k_scales[::-1]]
    else:
        k_scales = draw(gate_blocks(), label="kernel_scales")
        r_scales = draw(gate_blocks(allow_saturation=False), label="recurrent_scales")
    weights = {
        "kernel": per_gate(rng, (feat, 4 * u), k_scales, var),
        "recurrent_kernel": per_gate(rng, (u, 4 * u), r_scales, var),
    }
    if config["use_bias"]:
        weights["bias"] = per_gate(rng, (4 * u,), [0.5, 1.0, -0.5, 0.2], var)
    x = rng.standard_normal((batch, time, feat)).astype(var)
    h0, c0 = draw(initial_states(batch, u, u, var), label="initial_state")
    if tame and h0 is not None:
        h0, c0 = h0 * 0.1, c0 * 0.1
    mask = draw(masks(batch, time), label="mask")
    return Case(kind, config, x, weights, mask, h0=h0, c0=c0)


# -- tf_keras.layers.LSTM (Keras 2) ---------------------------------------------
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
TF_KERAS_UNBOUNDED = [None, "linear", "relu", "elu", "selu", "gelu", "silu", "swish", "mish", "softplus",
                      "leaky_relu", "exponential", "log_softmax"]
activations_ = st.one_of(st.just("tanh"), st.sampled_from(TF_KERAS_BOUNDED + TF_KERAS_UNBOUNDED))
recurrent_activations = st.one_of(st.just("sigmoid"),
                                  st.sampled_from(TF_KERAS_GATE_SAFE + ["relu6"] + TF_KERAS_UNBOUNDED))
tf_keras_times = times


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
        config["recurrent_dropout"] = 0.0 if standard else draw(st.sampled_from([0.0, 0.2]), label="recurrent_dropout")
    if draw(st.booleans(), label="inert_keys?"):
        config.update(unit_forget_bias=draw(st.booleans(), label="unit_forget_bias"), name="lstm_drawn",
                      trainable=True, return_sequences=True, stateful=False, bias_initializer="zeros",
                      kernel_regularizer=None, activity_regularizer=None)
    tame_time = st.integers(1, 4 if activation == "exponential" else 6)
    return draw(keras_layer_run("tf_keras.layers.LSTM", config, tame, tame_time if tame else tf_keras_times))


# -- TF1 cells ------------------------------------------------------------

BASIC = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
FULL = "tf.compat.v1.nn.rnn_cell.LSTMCell"

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
tf1_dtypes = st.sampled_from(["float32", "float32", "float64", "float16"])


@st.composite
def right_padded_masks(draw, batch, time):
    """None, or a right-padded mask whose rows may be empty (length 0)."""
    if not draw(st.booleans(), label="has_mask"):
        return None
    lengths = draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch), label="lengths")
    return np.arange(time)[None, :] < np.asarray(lengths)[:, None]


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
        "kernel": np.concatenate([
            per_gate(rng, (feat, 4 * u), x_scales, var),
            per_gate(rng, (out, 4 * u), h_scales, var),
        ]),
        "bias": per_gate(rng, (4 * u,), [s * (0.1 if tame else 1.0) for s in (0.5, -0.3, 1.0, 0.2)], var),
    }
    if kind == FULL and config["use_peepholes"]:
        p_scale = draw(st.sampled_from([0.1] if tame else [0.1, 0.5, 1.5]), label="peephole_scale")
        for name, sign in (("w_f_diag", 1), ("w_i_diag", -1), ("w_o_diag", 1)):
            weights[name] = (sign * p_scale * rng.standard_normal(u)).astype(var)
    if kind == FULL and config["num_proj"] is not None:
        weights["projection/kernel"] = (draw(st.sampled_from([0.3, 1.0]), label="proj_scale")
                                        * rng.standard_normal((u, out))).astype(var)
    x = rng.standard_normal((batch, time, feat)).astype(var)
    h0, c0 = draw(initial_states(batch, out, u, var), label="initial_state")
    if tame and h0 is not None:
        h0, c0 = h0 * 0.1, c0 * 0.1
    mask = draw(right_padded_masks(batch, time), label="mask")
    return Case(kind, config, x, weights, mask, h0=h0, c0=c0)


# -- layer-norm cells -----------------------------------------------------

CONTRIB = "tf.contrib.rnn.LayerNormBasicLSTMCell"
TFA = "tfa.rnn.LayerNormLSTMCell"

# Layer-norm cells: smaller caps (each contrib step runs five norms).
LN_MAX_UNITS = int(os.environ.get("LSTM_PARITY_MAX_UNITS", 5))
LN_MAX_TIME = int(os.environ.get("LSTM_PARITY_MAX_TIME", 8))
LN_MAX_BATCH = int(os.environ.get("LSTM_PARITY_MAX_BATCH", 3))
LN_MAX_FEATURES = int(os.environ.get("LSTM_PARITY_MAX_FEATURES", 4))


ln_gate_scales = st.tuples(*[st.sampled_from([0.05, 0.3, 1.0, -0.7, 2.0])] * 4)


def _array(data, shape, dtype, label, scale=1.0):
    arr = data.draw(
        hnp.arrays(np.float32, shape, elements=st.floats(-1, 1, width=32)) | hnp.arrays(
            np.float64, shape, elements=st.floats(-1, 1)).map(lambda a: a.astype(np.float32)),
        label=label,
    )
    return (arr * np.float32(scale)).astype(dtype)


def _per_gate(data, shape, dtype, label):
    """Kernel blocks at different scales.  A fixed pattern that differs per
    unit is added, so that no gate block is constant across units: layer norm
    of a (near-)constant block amplifies 1-ulp differences in its input by
    up to 1/sqrt(epsilon) (1e6 for contrib), which is TF's ill-conditioning,
    not a semantic difference (see test_contrib_port_norm_is_tf_layer_norm)."""
    scales = data.draw(ln_gate_scales, label=f"{label} gate scales")
    width = shape[-1] // 4
    k, j = np.meshgrid(np.arange(shape[0]), np.arange(width), indexing="ij")
    pattern = 0.4 * np.sin(1.0 + 1.7 * k + 2.3 * j)
    blocks = [_array(data, (shape[0], width), np.float64, f"{label} block {g}", s) + s * pattern
              for g, s in enumerate(scales)]
    return np.concatenate(blocks, axis=-1).astype(dtype)


def draw_weights(data, ref, input_dim):
    """Like the kernels, gamma and beta get a fixed per-unit pattern: with
    x = 0 every gate block is constant, layer norm returns beta, and constant
    betas would make the state block constant too -- the 1e6 amplification of
    contrib's epsilon, where TF's result depends on its graph rewrites
    (oneDNN fusion), not on semantics."""
    out = {}
    var = ref.policy.variable
    for name, shape in ref.weight_shapes(input_dim).items():
        pattern = 0.3 * np.sin(0.7 + 1.9 * np.arange(shape[-1]))
        if name.endswith("/gamma"):
            out[name] = (1 + pattern + _array(data, shape, np.float64, name, 0.8)).astype(var)
        elif name.endswith("/beta") or name == "bias":
            out[name] = (pattern + _array(data, shape, np.float64, name, 0.5)).astype(var)
        else:  # kernels: different scale per gate block
            out[name] = _per_gate(data, shape, var, name)
    return out


def draw_mask(data, batch, time, right_padded):
    if not data.draw(st.booleans(), label="use mask"):
        return None
    if right_padded:
        lengths = data.draw(hnp.arrays(np.int64, batch, elements=st.integers(0, time)), label="sequence lengths")
        return np.arange(time)[None, :] < lengths[:, None]
    return data.draw(hnp.arrays(np.bool_, (batch, time)), label="mask")


def draw_run(data, ref, right_padded=False):
    batch = data.draw(st.integers(1, LN_MAX_BATCH), label="batch")
    time = data.draw(st.integers(1, LN_MAX_TIME), label="time")
    features = data.draw(st.integers(1, LN_MAX_FEATURES), label="features")
    compute = ref.policy.compute
    x = _array(
        data, (batch, time, features), compute, "x", data.draw(st.sampled_from([0.1, 1.0, 3.0]), label="x scale")
    )
    weights = draw_weights(data, ref, features)
    h0 = c0 = None
    if data.draw(st.booleans(), label="initial state"):
        h0 = _array(data, (batch, ref.units), compute, "h0")
        c0 = _array(data, (batch, ref.units), compute, "c0", 2.0)
    return x, weights, h0, c0, draw_mask(data, batch, time, right_padded)


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


# -- torch.nn.LSTM and onnx.LSTM: layers, directions, stacked states -----------------

torch_dtypes = st.sampled_from(["float32", "float32", "float32", "float64"])


@st.composite
def stacked_run(draw, ref, min_length=1, tame=False):
    """x, weights (the one builder, per-gate scales drawn), a right-padded
    mask (rows as short as ``min_length``) and stacked initial states for a
    layered kind."""
    dtype = ref.policy.variable.name
    batch, feat = draw(batches, label="batch"), draw(features, label="features")
    if ref.kind == "torch.nn.LSTM":
        feat = ref.input_size
    time = draw(st.integers(1, 6) if tame else times, label="time")
    rng = np.random.default_rng(draw(seeds, label="weight_seed"))
    if tame:
        scales = [draw(st.sampled_from([0.05, 0.2, -0.3]), label=f"gate_scale[{g}]") for g in range(4)]
    else:
        scales = draw(gate_blocks(), label="gate_scales")
    recurrent = draw(st.sampled_from([0.3, 0.5, 1.0]), label="recurrent_scale")
    weights = build_weights(ref, rng, feat, scales=scales, recurrent_scale=recurrent * (0.3 if tame else 1.0))
    x = rng.standard_normal((batch, time, feat)).astype(dtype)
    mask = None
    if draw(st.booleans(), label="has_mask"):
        lengths = draw(st.lists(st.integers(min_length, time), min_size=batch, max_size=batch), label="lengths")
        mask = np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    states = {}
    if draw(st.booleans(), label="has_initial_state"):
        scale = draw(st.sampled_from([0.1, 1.0, 3.0]), label="state_scale") * (0.1 if tame else 1.0)
        states = {f"{s}0": (scale * rng.standard_normal(ref.state_shape(s, batch))).astype(dtype) for s in ref.STATE}
    return x, weights, mask, states


@st.composite
def torch_lstm_examples(draw):
    """A :class:`Case` of ``torch.nn.LSTM``: layers, directions, projection,
    both biases or none, packed lengths, stacked initial states."""
    hidden = draw(units, label="hidden_size")
    config = {
        "input_size": draw(features, label="input_size"),
        "hidden_size": hidden,
        "num_layers": draw(st.integers(1, 3), label="num_layers"),
        "bias": draw(st.booleans(), label="bias"),
        "bidirectional": draw(st.booleans(), label="bidirectional"),
        "proj_size": draw(st.integers(0, hidden - 1) if hidden > 1 else st.just(0), label="proj_size"),
        "dtype": draw(torch_dtypes, label="dtype"),
    }
    if draw(st.booleans(), label="layout_kwargs"):
        config.update(batch_first=draw(st.booleans(), label="batch_first"),
                      dropout=draw(st.sampled_from([0.0, 0.3]), label="dropout"))
    ref = from_config("torch.nn.LSTM", config)
    x, weights, mask, states = draw(stacked_run(ref), label="run")
    return Case("torch.nn.LSTM", config, x, weights, mask, **states)


ONNX_GATES = ["Sigmoid", "Sigmoid", "HardSigmoid", "Tanh", "Softsign"]
ONNX_BOUNDED = ["Tanh", "Tanh", "Softsign", "ScaledTanh", "Sigmoid"]
ONNX_UNBOUNDED = ["Relu", "LeakyRelu", "Elu", "Affine", "ThresholdedRelu", "Softplus"]


@st.composite
def onnx_activations(draw, directions):
    """``activations`` (f, g, h per direction) with ``activation_alpha`` and
    ``activation_beta`` for the functions that take them, in order."""
    from lstm_ref.onnx_lstm import ACTIVATIONS

    names, alphas, betas = [], [], []
    for _ in range(directions):
        names += [draw(st.sampled_from(ONNX_GATES), label="f"), draw(st.sampled_from(ONNX_BOUNDED + ONNX_UNBOUNDED),
                                                                    label="g"),
                  draw(st.sampled_from(ONNX_BOUNDED + ONNX_UNBOUNDED), label="h")]
    for name in names:
        _, alpha, beta = ACTIVATIONS[name]
        if alpha is not None:
            alphas.append(draw(st.sampled_from([alpha, 0.3, 1.5]), label=f"{name}_alpha"))
        if beta is not None:
            betas.append(draw(st.sampled_from([beta, 0.1, 0.7]), label=f"{name}_beta"))
    config = {"activations": names}
    given = draw(st.booleans(), label="give_alpha_beta")
    if given and alphas:
        config["activation_alpha"] = alphas
    if given and betas:
        config["activation_beta"] = betas
    return config


@st.composite
def onnx_lstm_examples(draw):
    """A :class:`Case` of ONNX's ``LSTM`` as ONNX Runtime runs it: every
    direction, clip, input_forget, activations with alpha/beta, optional B
    and P, sequence_lens (rows of length 0 included) and initial states.
    ``layout`` is 0: ONNX Runtime's CPU kernel refuses 1."""
    direction = draw(st.sampled_from(["forward", "reverse", "bidirectional"]), label="direction")
    config = {"hidden_size": draw(units, label="hidden_size"), "direction": direction}
    if draw(st.booleans(), label="clip?"):
        config["clip"] = draw(st.sampled_from([0.3, 1.0, 3.0]), label="clip")
    if draw(st.integers(0, 4), label="input_forget?") == 0:
        config["input_forget"] = 1
    tame = False
    if draw(st.booleans(), label="activations?"):
        config.update(draw(onnx_activations(2 if direction == "bidirectional" else 1), label="activations"))
        tame = any(n in ONNX_UNBOUNDED for n in config["activations"])
    ref = from_config("onnx.LSTM", config)
    x, weights, mask, states = draw(stacked_run(ref, min_length=0, tame=tame), label="run")
    for name in ("B", "P"):
        if draw(st.integers(0, 3), label=f"drop_{name}") == 0:
            del weights[name]
    return Case("onnx.LSTM", config, x, weights, mask, **states)
