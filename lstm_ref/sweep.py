"""The seeded live sweep the report runs: deterministic cases per kind,
drawn with NumPy (no Hypothesis), covering each kind's option space."""

import itertools

import numpy as np

from .golden.case import Case, per_gate

SWEEPS = {}


def sweep(kind):
    def register(fn):
        SWEEPS[kind] = fn
        return fn

    return register


def mask_of(rng, pattern, batch, time):
    steps = np.arange(time)
    lengths = rng.integers(1, time + 1, size=batch)
    if pattern == "none":
        return None
    if pattern == "right":
        return steps[None] < lengths[:, None]
    if pattern == "left":
        return steps[None] >= (time - lengths)[:, None]
    mask = rng.random((batch, time)) < 0.6
    if pattern == "fully_masked_row":
        mask[0] = False
    return mask


@sweep("keras.layers.LSTM")
def keras_sweep(seed=0):
    rng = np.random.default_rng(seed)
    grid = itertools.product(
        ["float32", "float64", "float16", "mixed_float16"],
        [False, True],  # go_backwards
        ["none", "right", "left", "holes", "fully_masked_row"],
    )
    for i, (dtype, backwards, pattern) in enumerate(grid):
        if i % 2:  # half the grid keeps the sweep quick; the seed picks which half
            continue
        var = "float32" if dtype.startswith("mixed") else dtype
        batch, time, feat, units = 3, int(rng.choice([5, 12, 40])), int(rng.integers(2, 9)), int(rng.integers(2, 9))
        scales = rng.choice([0.3, 0.7, 1.2, -0.8, 3.0], size=4)
        weights = {
            "kernel": per_gate(rng, (feat, 4 * units), scales, var),
            "recurrent_kernel": per_gate(rng, (units, 4 * units), scales[::-1] * 0.5, var),
            "bias": per_gate(rng, (4 * units,), [0.2, 1.0, -0.3, 0.4], var),
        }
        config = {"units": units, "go_backwards": backwards, "dtype": dtype}
        state = rng.standard_normal((2, batch, units)).astype(var) if i % 4 == 0 else (None, None)
        yield f"sweep_keras_{i:02d}_{dtype}_{'bw' if backwards else 'fw'}_{pattern}", Case(
            "keras.layers.LSTM", config, rng.standard_normal((batch, time, feat)).astype(var), weights,
            h0=state[0], c0=state[1], mask=mask_of(rng, pattern, batch, time),
        )


def _common(rng, i, dtype, kind_tag, right_padded_only):
    patterns = ["none", "right"] if right_padded_only else ["none", "right", "left", "holes", "fully_masked_row"]
    pattern = patterns[i % len(patterns)]
    batch, time, feat = 3, int(rng.choice([4, 10, 30])), int(rng.integers(2, 6))
    x = rng.standard_normal((batch, time, feat)).astype(dtype)
    mask = mask_of(rng, pattern, batch, time)
    return f"sweep_{kind_tag}_{i:02d}_{dtype}_{pattern}", x, mask, batch, feat


@sweep("tf.compat.v1.nn.rnn_cell.BasicLSTMCell")
def basic_sweep(seed=0):
    from .golden.tf1_cases import _weights

    rng = np.random.default_rng(seed + 1)
    for i, (dtype, fb) in enumerate(itertools.product(["float32", "float64", "float16"], [0.0, 1.0, 2.5])):
        name, x, mask, batch, feat = _common(rng, i, dtype, "basic", True)
        units = int(rng.integers(2, 7))
        yield name, Case("tf.compat.v1.nn.rnn_cell.BasicLSTMCell", {"num_units": units, "forget_bias": fb, "dtype": dtype},
                         x, _weights(rng, feat, units, dtype=dtype), mask=mask)


@sweep("tf.compat.v1.nn.rnn_cell.LSTMCell")
def lstmcell_sweep(seed=0):
    from .golden.tf1_cases import _weights

    rng = np.random.default_rng(seed + 2)
    options = [{}, {"use_peepholes": True}, {"cell_clip": 0.5}, {"num_proj": 2}, {"num_proj": 3, "proj_clip": 0.2},
               {"use_peepholes": True, "cell_clip": 0.4, "num_proj": 2, "proj_clip": 0.3}]
    for i, (dtype, extra) in enumerate(itertools.product(["float32", "float64", "float16"], options)):
        name, x, mask, batch, feat = _common(rng, i, dtype, "lstmcell", True)
        units = int(rng.integers(2, 7))
        config = {"num_units": units, "dtype": dtype, **extra}
        w = _weights(rng, feat, units, num_proj=extra.get("num_proj"), peepholes=extra.get("use_peepholes", False), dtype=dtype)
        out = extra.get("num_proj") or units
        h0, c0 = (rng.standard_normal((batch, out)).astype(dtype), rng.standard_normal((batch, units)).astype(dtype)) \
            if i % 3 == 0 else (None, None)
        yield name, Case("tf.compat.v1.nn.rnn_cell.LSTMCell", config, x, w, h0=h0, c0=c0, mask=mask)


@sweep("tf.contrib.rnn.LayerNormBasicLSTMCell")
def contrib_sweep(seed=0):
    from .golden.layer_norm_cases import _contrib_weights

    rng = np.random.default_rng(seed + 3)
    for i, (dtype, layer_norm, fb) in enumerate(itertools.product(["float32", "float64", "float16"], [True, False], [1.0, 0.0])):
        name, x, mask, batch, feat = _common(rng, i, dtype, "contrib", True)
        units = int(rng.integers(2, 7))
        yield name, Case("tf.contrib.rnn.LayerNormBasicLSTMCell",
                         {"num_units": units, "layer_norm": layer_norm, "forget_bias": fb, "dtype": dtype},
                         x, _contrib_weights(rng, feat, units, dtype=dtype, layer_norm=layer_norm), mask=mask)


@sweep("tfa.rnn.LayerNormLSTMCell")
def tfa_sweep(seed=0):
    from .golden.layer_norm_cases import _tfa_weights

    rng = np.random.default_rng(seed + 4)
    for i, (dtype, extra) in enumerate(itertools.product(
            ["float32", "float64", "float16", "mixed_float16"],
            [{}, {"go_backwards": True}, {"recurrent_activation": "hard_sigmoid", "use_bias": False}, {"norm_epsilon": 1e-5}])):
        if dtype == "mixed_float16" and "norm_epsilon" in extra:
            continue  # refused by the reference: Keras' third layer-norm path
        var = "float32" if dtype.startswith("mixed") else dtype
        name, x, mask, batch, feat = _common(rng, i, var, "tfa", False)
        units = int(rng.integers(2, 7))
        yield name, Case("tfa.rnn.LayerNormLSTMCell", {"units": units, "dtype": dtype, **extra}, x,
                         _tfa_weights(rng, feat, units, dtype=var, bias=extra.get("use_bias", True)), mask=mask)
