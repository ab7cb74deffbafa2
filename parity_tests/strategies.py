"""Hypothesis strategies, array-api-tests style: module-level strategies plus
``@st.composite`` builders for configs, weights, masks and states.

Size caps come from the environment (``LSTM_PARITY_MAX_BATCH``, ``_TIME``,
``_FEATURES``, ``_UNITS``, ``_LONG_TIME``).  Weights are drawn per gate block,
each block with its own scale and sign, so that a gate-order bug shows;
scales include saturating ones.
"""

import os

import numpy as np
from hypothesis import strategies as st

MAX_BATCH = int(os.environ.get("LSTM_PARITY_MAX_BATCH", 4))
MAX_TIME = int(os.environ.get("LSTM_PARITY_MAX_TIME", 10))
LONG_TIME = int(os.environ.get("LSTM_PARITY_LONG_TIME", 80))
MAX_FEATURES = int(os.environ.get("LSTM_PARITY_MAX_FEATURES", 6))
MAX_UNITS = int(os.environ.get("LSTM_PARITY_MAX_UNITS", 6))

batches = st.integers(1, MAX_BATCH)
features = st.integers(1, MAX_FEATURES)
units = st.integers(1, MAX_UNITS)
times = st.one_of(st.integers(1, MAX_TIME), st.just(LONG_TIME))
seeds = st.integers(0, 2**32 - 1)
# Per-gate scale: small, moderate, and saturating (|z| of order 10).
gate_scales = st.sampled_from([0.05, 0.3, 0.7, 1.0, 1.5]).flatmap(lambda s: st.sampled_from([s, -s]))
saturating_scales = st.sampled_from([4.0, 8.0, -6.0])
mask_patterns = st.sampled_from(["none", "right", "left", "holes", "fully_masked_row", "random"])

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


def per_gate_array(rng, shape, scales, dtype):
    blocks = np.split(rng.standard_normal(shape), len(scales), axis=-1)
    return np.concatenate([b * s for b, s in zip(blocks, scales)], axis=-1).astype(dtype)


def make_mask(rng, pattern, batch, time):
    """A (batch, time) bool mask of the named pattern (None for "none")."""
    if pattern == "none":
        return None
    lengths = rng.integers(1, time + 1, size=batch)
    steps = np.arange(time)
    if pattern == "right":
        mask = steps[None] < lengths[:, None]
    elif pattern == "left":
        mask = steps[None] >= (time - lengths)[:, None]
    elif pattern == "holes":
        mask = rng.random((batch, time)) < 0.6
        mask[:, 0] = True
    elif pattern == "fully_masked_row":
        mask = rng.random((batch, time)) < 0.6
        mask[rng.integers(batch)] = False
    else:
        mask = rng.random((batch, time)) < 0.5
    return mask


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
    """(config, x, weights, h0, c0, mask) for ``keras.layers.LSTM``."""
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
    var = variable_dtype(config["dtype"])
    batch, feat = draw(batches, label="batch"), draw(features, label="features")
    time = draw(st.integers(1, 6) if tame else times, label="time")
    u = config["units"]
    rng = np.random.default_rng(draw(seeds, label="weight_seed"))
    if tame:
        k_scales = [draw(st.sampled_from([0.05, 0.2, -0.3]), label=f"gate_scale[{g}]") for g in range(4)]
        r_scales = [s * 0.5 for s in k_scales[::-1]]
    else:
        k_scales = draw(gate_blocks(), label="kernel_scales")
        r_scales = draw(gate_blocks(allow_saturation=False), label="recurrent_scales")
    weights = {
        "kernel": per_gate_array(rng, (feat, 4 * u), k_scales, var),
        "recurrent_kernel": per_gate_array(rng, (u, 4 * u), r_scales, var),
    }
    if config["use_bias"]:
        weights["bias"] = per_gate_array(rng, (4 * u,), [0.5, 1.0, -0.5, 0.2], var)
    x = rng.standard_normal((batch, time, feat)).astype(var)
    h0, c0 = draw(initial_states(batch, u, u, var), label="initial_state")
    if tame and h0 is not None:
        h0, c0 = h0 * 0.1, c0 * 0.1
    mask = draw(masks(batch, time), label="mask")
    return config, x, weights, h0, c0, mask
