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
