"""Hypothesis building blocks, array-api-tests style: module-level strategies
plus ``@st.composite`` builders for weights, masks, states and whole runs.
Each kind's slice (``lstm_ref/harness/kinds/<id>.py``) composes them into
its ``examples()``, a strategy of :class:`lstm_ref.case.Case`.

Size caps come from the environment (``LSTM_PARITY_MAX_BATCH``, ``_TIME``,
``_FEATURES``, ``_UNITS``, ``_LONG_TIME``).  Weights are drawn per gate block,
each block with its own scale and sign, so that a gate-order bug shows;
scales include saturating ones.
"""

import os

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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
UNBOUNDED = [
    "linear",
    "relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "leaky_relu",
    "hard_silu",
    "hard_swish",
    "sparse_plus",
    "squareplus",
    "exponential",
    "log_softmax",
    "log_sigmoid",
    "tanh_shrink",
    "soft_shrink",
    "hard_shrink",
]


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
    return (
        (scale * rng.standard_normal((batch, h_width))).astype(dtype),
        (scale * rng.standard_normal((batch, c_width))).astype(dtype),
    )


dtypes = st.sampled_from(["float32", "float32", "float64", "float16", "mixed_float16"])


def variable_dtype(policy_name):
    return "float32" if policy_name.startswith("mixed") else policy_name


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


# -- right-padded masks (sequence lengths, rows of length 0 included) -------------


@st.composite
def right_padded_masks(draw, batch, time):
    """None, or a right-padded mask whose rows may be empty (length 0)."""
    if not draw(st.booleans(), label="has_mask"):
        return None
    lengths = draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch), label="lengths")
    return np.arange(time)[None, :] < np.asarray(lengths)[:, None]


# -- runs drawn array by array (the layer-norm cells' strategies) ---------------

# Layer-norm cells: smaller caps (each contrib step runs five norms).
LN_MAX_UNITS = int(os.environ.get("LSTM_PARITY_MAX_UNITS", 5))
LN_MAX_TIME = int(os.environ.get("LSTM_PARITY_MAX_TIME", 8))
LN_MAX_BATCH = int(os.environ.get("LSTM_PARITY_MAX_BATCH", 3))
LN_MAX_FEATURES = int(os.environ.get("LSTM_PARITY_MAX_FEATURES", 4))


ln_gate_scales = st.tuples(*[st.sampled_from([0.05, 0.3, 1.0, -0.7, 2.0])] * 4)


def _array(data, shape, dtype, label, scale=1.0):
    arr = data.draw(
        hnp.arrays(np.float32, shape, elements=st.floats(-1, 1, width=32))
        | hnp.arrays(np.float64, shape, elements=st.floats(-1, 1)).map(lambda a: a.astype(np.float32)),
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
    blocks = [
        _array(data, (shape[0], width), np.float64, f"{label} block {g}", s) + s * pattern for g, s in enumerate(scales)
    ]
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


# -- layered kinds (torch.nn.LSTM, onnx.LSTM): layers, directions, stacked states -----


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
