"""``Reference.grad`` against the frameworks' own reverse mode: ``tf.GradientTape``
on the real ``keras.layers.LSTM`` (keras3 worker) and ``torch.autograd`` on
``nn.LSTM`` / ``nn.LSTMCell`` (torch worker), ``tf.GradientTape`` on the real
``tf_keras.layers.LSTM`` (tf_keras worker) and on ``dynamic_rnn`` over the
real TF1 cells (tf1 worker), op ``grad``.

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
#   tf_keras.layers.LSTM (tf_keras 2.21, TF_USE_LEGACY_KERAS=1)
#                      float64: 2.7e-15   float32: 1.1e-6 (x3: 8.2e-15 / 3.4e-6)
#   TF1 BasicLSTMCell/LSTMCell through dynamic_rnn (clip-boundary cases included)
#                      float64: 5.4e-16   float32: 3.5e-7 (x3: 1.6e-15 / 1.0e-6)
# float32: the framework's own float32 rounding against the float64 gradient
# at the same float32 inputs (a few float32 ulps), not a semantic gap.
TOL = {
    ("keras3", "float64"): 2.7e-15,
    ("keras3", "float32"): 2.3e-6,
    ("torch", "float64"): 3.4e-15,
    ("torch", "float32"): 1.1e-6,
    ("tf_keras", "float64"): 8.2e-15,  # 3 x 2.73e-15 measured
    ("tf_keras", "float32"): 3.4e-6,  # 3 x 1.14e-6 measured
    ("tf1", "float64"): 1.6e-15,  # 3 x 5.37e-16 measured
    ("tf1", "float32"): 1.0e-6,  # 3 x 3.47e-7 measured
}

KERAS = "keras.layers.LSTM"
LSTM, CELL = "torch.nn.LSTM", "torch.nn.LSTMCell"
TK, BASIC, TF1 = "tf_keras.layers.LSTM", "tf.compat.v1.nn.rnn_cell.BasicLSTMCell", "tf.compat.v1.nn.rnn_cell.LSTMCell"

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
    (TK, {"units": 4}, MASK_HOLES, True),
    (
        TK,
        {"units": 3, "implementation": 1, "go_backwards": True, "recurrent_activation": "hard_sigmoid"},
        MASK_HOLES,
        True,
    ),
    (TK, {"units": 3, "implementation": 0, "activation": None, "use_bias": False}, None, False),
    (TK, {"units": 3, "unroll": True, "go_backwards": True, "zero_output_for_mask": True}, MASK_HOLES, True),
    (BASIC, {"num_units": 4, "forget_bias": 0.7}, MASK_RIGHT, True),
    (BASIC, {"num_units": 3, "activation": "hard_sigmoid"}, None, False),
    (TF1, {"num_units": 4, "use_peepholes": True}, MASK_RIGHT, True),
    (
        TF1,
        {"num_units": 4, "use_peepholes": True, "cell_clip": 0.4, "num_proj": 3, "proj_clip": 0.15},
        MASK_RIGHT,
        True,
    ),
    (TF1, {"num_units": 3, "num_proj": 2, "activation": "hard_sigmoid", "forget_bias": 0.0}, None, False),
]
ORACLE = {KERAS: "keras3", LSTM: "torch", CELL: "torch", TK: "tf_keras", BASIC: "tf1", TF1: "tf1"}
# Fields each framework's grad takes upstream (the real Keras layer returns no per-step c).
LIVE_FIELDS = {
    KERAS: ("h", "final_h", "final_c"),
    LSTM: ("h", "final_h", "final_c"),
    CELL: ("h", "c", "final_h", "final_c"),
    TK: ("h", "final_h", "final_c"),
    BASIC: ("h", "final_h", "final_c"),  # dynamic_rnn returns no per-step c
    TF1: ("h", "final_h", "final_c"),
}


def _case(kind, config, mask, states, dtype, seed, weights_for=build_weights):
    config = {**config, "dtype": dtype}
    ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    features = config.get("input_size", 3)
    weights = {k: np.asarray(v).astype(dtype) for k, v in weights_for(ref, rng, features).items()}
    x = rng.standard_normal((3, 5, features)).astype(dtype)
    init = {}
    if states:
        init = {f"{s}0": (0.5 * rng.standard_normal(ref.state_shape(s, 3))).astype(dtype) for s in ref.STATE}
        if states == "c0=0":
            init["c0"] = np.zeros_like(init["c0"])
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


def _tf1_c_stays_zero(ref, rng, features):
    """TF1 weights under which every c is exactly 0 (from c0 = 0): the
    candidate block j (columns units:2 units) has zero kernel and bias, so
    ``j = tanh(0) = 0``; then m and its projection are 0 too."""
    weights = build_weights(ref, rng, features)
    n = ref.units
    weights["kernel"] = np.array(weights["kernel"])
    weights["kernel"][:, n : 2 * n] = 0
    weights["bias"] = np.array(weights["bias"])
    weights["bias"][n : 2 * n] = 0
    return weights


def _keras2_corners(ref, rng, features):
    """tf_keras weights with every gate pre-activation exactly at Keras 2
    hard_sigmoid's corners: zero kernels, the bias +-2.5 (0.2 z + 0.5 is
    exactly 1 or 0 in float32 and float64 alike)."""
    weights = build_weights(ref, rng, features)
    bias = np.where(np.arange(weights["bias"].size) % 2 == 0, 2.5, -2.5)
    return {"kernel": 0 * weights["kernel"], "recurrent_kernel": 0 * weights["recurrent_kernel"], "bias": bias}


BOUNDARY_CASES = {
    "tf1-cell_clip-proj_clip-0": (
        TF1,
        {"num_units": 4, "use_peepholes": True, "cell_clip": 0.0, "num_proj": 3, "proj_clip": 0.0},
        _tf1_c_stays_zero,
    ),
    "tf_keras-hard_sigmoid-corners": (
        TK,
        {"units": 4, "activation": "hard_sigmoid", "recurrent_activation": "hard_sigmoid"},
        _keras2_corners,
    ),
}


@pytest.mark.live
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(BOUNDARY_CASES))
def test_the_subgradient_at_exact_clip_boundaries_is_tfs(oracle_for, name, dtype):
    """Every clipped value exactly on its bound, at every step: TF's
    ``clip_by_value`` gradient (passing on the closed interval) against the
    reference's, and not a zero gradient (which a strict-interior
    subgradient would give the kernels here)."""
    kind, config, weights_for = BOUNDARY_CASES[name]
    ref, config, x, weights, init, up = _case(kind, config, MASK_RIGHT, "c0=0", dtype, 0, weights_for)
    g = ref.grad(x, weights, up, mask=MASK_RIGHT, **init)
    trace = ref.run(x, weights, mask=MASK_RIGHT, **init)
    if kind == TF1:
        assert not np.asarray(trace.c).any()
    _, theirs = oracle_for(kind).request(
        {"op": "grad", "kind": kind, "config": config}, _arrays(x, weights, init, MASK_RIGHT, up)
    )
    ours = {"x": g.x, **{k: g.initial[k] for k in init}, **{f"w:{k}": v for k, v in g.weights.items()}}
    assert np.abs(ours["w:kernel"]).max() > 0.1
    ratios = worst_ratio(ours, theirs)
    print(f"MEASURE boundary {name} {dtype} {max(ratios.values()):.3g} {ratios}")
    tol = TOL[ORACLE[kind], dtype]
    bad = {k: r for k, r in ratios.items() if r > tol}
    assert not bad, f"{name} {dtype}: |d| / (tol + tol |g|) > 1 with tol={tol:g}: {bad}"
