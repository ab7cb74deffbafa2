"""``Reference.grad`` against the frameworks' own reverse mode: ``tf.GradientTape``
on the real ``keras.layers.LSTM`` (keras3 worker) and ``torch.autograd`` on
``nn.LSTM`` / ``nn.LSTMCell`` (torch worker), op ``grad``.

The reference's gradient is float64 (the float64 forward at the inputs
rounded as ``run`` rounds them); the framework's is computed in the layer's
dtype.  The error measure is ``max |d| / (tol + tol * |g_ref|)`` over every
array, which must stay <= 1; ``TOL`` is 3x the worst ``max |d| / (1 + |g|)``
measured on these cases (TF 2.21 / Keras 3.15, torch 2.13, x86 CPU).
"""

import numpy as np
import pytest

from lstm_ref import from_config
from lstm_ref.case import build_weights

# Measured worst max|d| / (1 + |g_ref|) over the cases below (both seeds,
# every array, steps included), TF 2.21 / Keras 3.15 and torch 2.13 on this
# x86 CPU, then x3:
#   keras.layers.LSTM  float64: 9.0e-16   float32: 7.6e-7 (steps 1.6e-7)
#   torch.nn.LSTM      float64: 1.1e-15   float32: 3.8e-7
#   torch.nn.LSTMCell  float64: 9.0e-16   float32: 3.6e-7 (steps 2.3e-7)
# float32: the framework's own float32 rounding against the float64 gradient
# at the same float32 inputs (a few float32 ulps), not a semantic gap.
TOL = {
    ("keras3", "float64"): 2.7e-15,
    ("keras3", "float32"): 2.3e-6,
    ("torch", "float64"): 3.4e-15,
    ("torch", "float32"): 1.1e-6,
}

KERAS = "keras.layers.LSTM"
LSTM, CELL = "torch.nn.LSTM", "torch.nn.LSTMCell"

MASK_HOLES = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 1, 1, 1]], bool)
MASK_RIGHT = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)

CASES = [
    (KERAS, {"units": 4}, None, True),
    (KERAS, {"units": 4, "go_backwards": True}, MASK_HOLES, True),
    (KERAS, {"units": 3, "implementation": 1, "use_bias": False, "zero_output_for_mask": True}, MASK_HOLES, False),
    (KERAS, {"units": 3, "activation": "softsign", "recurrent_activation": "hard_sigmoid"}, MASK_HOLES, True),
    (CELL, {"input_size": 3, "hidden_size": 4}, None, True),
    (CELL, {"input_size": 3, "hidden_size": 4, "bias": False}, None, False),
    (LSTM, {"input_size": 3, "hidden_size": 4}, None, True),
    (LSTM, {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True}, MASK_RIGHT, True),
    (LSTM, {"input_size": 3, "hidden_size": 4, "proj_size": 2, "bidirectional": True}, MASK_RIGHT, False),
]
ORACLE = {KERAS: "keras3", LSTM: "torch", CELL: "torch"}
# Fields each framework's grad takes upstream (the real Keras layer returns no per-step c).
LIVE_FIELDS = {
    KERAS: ("h", "final_h", "final_c"),
    LSTM: ("h", "final_h", "final_c"),
    CELL: ("h", "c", "final_h", "final_c"),
}


def _case(kind, config, mask, states, dtype, seed):
    config = {**config, "dtype": dtype}
    ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    features = config.get("input_size", 3)
    weights = {k: np.asarray(v).astype(dtype) for k, v in build_weights(ref, rng, features).items()}
    x = rng.standard_normal((3, 5, features)).astype(dtype)
    init = {}
    if states:
        init = {f"{s}0": (0.5 * rng.standard_normal(ref.state_shape(s, 3))).astype(dtype) for s in ref.STATE}
    trace = ref.run(x, weights, mask=mask, **init)
    up = {f: rng.standard_normal(np.shape(trace[f])).astype(dtype) for f in LIVE_FIELDS[kind]}
    return ref, config, x, weights, init, up


def _arrays(x, weights, init, mask, up):
    arrays = {"x": x, **{f"w:{k}": v for k, v in weights.items()}, **init, **{f"up:{k}": v for k, v in up.items()}}
    if mask is not None:
        arrays["mask"] = mask
    return arrays


def worst_ratio(ours, theirs):
    """``max |d| / (1 + |g_ref|)`` over every array of both, by name."""
    return {
        name: float(np.max(np.abs(np.asarray(theirs[name], np.float64) - ours[name]) / (1 + np.abs(ours[name]))))
        for name in ours
    }


@pytest.mark.live
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("kind", "config", "mask", "states"),
    CASES,
    ids=[f"{k.split('.')[0]}.{k.split('.')[-1]}-{i}" for i, (k, *_) in enumerate(CASES)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_grad_matches_the_framework(oracle_for, kind, config, mask, states, dtype, seed):
    ref, config, x, weights, init, up = _case(kind, config, mask, states, dtype, seed)
    g = ref.grad(x, weights, up, mask=mask, **init)
    _, theirs = oracle_for(kind).request(
        {"op": "grad", "kind": kind, "config": config}, _arrays(x, weights, init, mask, up)
    )
    ours = {"x": g.x, **{k: g.initial[k] for k in init}, **{f"w:{k}": v for k, v in g.weights.items()}}
    ours.update({f"steps:{k}": v for k, v in g.steps.items() if f"steps:{k}" in theirs})
    assert set(theirs) == set(ours)
    ratios = worst_ratio(ours, theirs)
    print(f"MEASURE {ORACLE[kind]} {dtype} {kind} {config} {max(ratios.values()):.3g} {ratios}")
    tol = TOL[ORACLE[kind], dtype]
    bad = {k: r for k, r in ratios.items() if r > tol}
    assert not bad, f"{kind} {dtype}: |d| / (tol + tol |g|) > 1 with tol={tol:g}: {bad}"
