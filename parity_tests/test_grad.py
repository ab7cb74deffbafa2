"""``Reference.grad`` against central differences of the reference's own
float64 forward (``run(oracle=True)``), no framework: every input, initial
state and weight, on small cases of every kind and configuration the
backward covers; its sequence rules (masks, go_backwards, directions); and
its bad input."""

import numpy as np
import pytest

from lstm_ref import from_config
from lstm_ref import grad as grad_module
from lstm_ref.case import build_weights
from lstm_ref.dtypes import resolve_policy
from lstm_ref.errors import ConfigError, InputError

from .pytest_helpers import central_difference_errors

# `make mutants` runs this module against every kind's mutants (the gradient ones in tools/mutants.py).
pytestmark = pytest.mark.kinds(
    "keras3", "tf_keras", "tf1_basic", "tf1_lstmcell", "contrib", "tfa", "torch", "nn_lstmcell", "onnx"
)

KERAS, LSTM, CELL = "keras.layers.LSTM", "torch.nn.LSTM", "torch.nn.LSTMCell"
HOLES = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], bool)  # a masked first step, holes, a masked last step
RIGHT = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
F64 = {"dtype": "float64"}

CASES = {
    "keras": (KERAS, {"units": 3}, None),
    "keras-mask": (KERAS, {"units": 3}, HOLES),
    "keras-backwards-mask": (KERAS, {"units": 3, "go_backwards": True}, HOLES),
    "keras-impl1-nobias-zero-output": (
        KERAS,
        {"units": 3, "implementation": 1, "use_bias": False, "zero_output_for_mask": True},
        HOLES,
    ),
    "cell": (CELL, {"input_size": 3, "hidden_size": 3}, None),
    "cell-nobias": (CELL, {"input_size": 3, "hidden_size": 2, "bias": False}, None),
    "lstm-2layer-bi-mask": (LSTM, {"input_size": 3, "hidden_size": 3, "num_layers": 2, "bidirectional": True}, RIGHT),
    "lstm-proj-bi-mask": (LSTM, {"input_size": 3, "hidden_size": 3, "proj_size": 2, "bidirectional": True}, RIGHT),
    "lstm-nobias": (LSTM, {"input_size": 3, "hidden_size": 2, "bias": False}, None),
}
TK, BASIC, TF1 = "tf_keras.layers.LSTM", "tf.compat.v1.nn.rnn_cell.BasicLSTMCell", "tf.compat.v1.nn.rnn_cell.LSTMCell"
CASES.update(
    {
        "tf_keras-standard-mask": (TK, {"units": 3}, HOLES),
        "tf_keras-impl1-cell-path": (TK, {"units": 3, "implementation": 1, "recurrent_activation": "tanh"}, None),
        "tf_keras-impl0-k2-hard_sigmoid-linear": (
            TK,
            {"units": 3, "implementation": 0, "activation": None, "recurrent_activation": "hard_sigmoid"},
            HOLES,
        ),
        "tf_keras-unroll-backwards-zero-output-bug": (
            TK,
            {"units": 3, "unroll": True, "go_backwards": True, "zero_output_for_mask": True},
            HOLES,
        ),
        "tf_keras-unroll-nobias": (TK, {"units": 2, "unroll": True, "use_bias": False}, HOLES),
        "basic": (BASIC, {"num_units": 3}, None),
        "basic-forget_bias-right": (BASIC, {"num_units": 3, "forget_bias": 0.7}, RIGHT),
        "basic-k2-hard_sigmoid": (BASIC, {"num_units": 2, "activation": "hard_sigmoid"}, RIGHT),
        "tf1-peepholes-right": (TF1, {"num_units": 3, "use_peepholes": True}, RIGHT),
        "tf1-cell_clip": (TF1, {"num_units": 3, "cell_clip": 0.4}, None),
        "tf1-proj-proj_clip-right": (TF1, {"num_units": 3, "num_proj": 2, "proj_clip": 0.15}, RIGHT),
        "tf1-all": (
            TF1,
            {
                "num_units": 3,
                "use_peepholes": True,
                "cell_clip": 0.8,
                "num_proj": 2,
                "proj_clip": 0.3,
                "forget_bias": 0.5,
            },
            RIGHT,
        ),
    }
)
CONTRIB, TFA = "tf.contrib.rnn.LayerNormBasicLSTMCell", "tfa.rnn.LayerNormLSTMCell"
CASES.update(
    {
        "contrib": (CONTRIB, {"num_units": 3}, None),
        "contrib-forget_bias-relu-right": (CONTRIB, {"num_units": 3, "forget_bias": -0.5, "activation": "relu"}, RIGHT),
        "contrib-no-layer_norm-right": (CONTRIB, {"num_units": 2, "layer_norm": False, "forget_bias": 0.7}, RIGHT),
        "tfa": (TFA, {"units": 3}, None),
        "tfa-backwards-mask-hard_sigmoid-nobias": (
            TFA,
            {"units": 2, "go_backwards": True, "recurrent_activation": "hard_sigmoid", "use_bias": False},
            HOLES,
        ),
        "tfa-zero-output-small-epsilon": (TFA, {"units": 3, "zero_output_for_mask": True, "norm_epsilon": 1e-5}, HOLES),
    }
)
ONNX = "onnx.LSTM"
EMPTY_ROW = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], bool)  # ONNX Runtime ends a row of length 0 with zeros
CASES.update(
    {
        "onnx": (ONNX, {"hidden_size": 3}, None),
        "onnx-reverse-right": (ONNX, {"hidden_size": 3, "direction": "reverse"}, RIGHT),
        "onnx-bidirectional-empty-row": (ONNX, {"hidden_size": 2, "direction": "bidirectional"}, EMPTY_ROW),
        "onnx-clip": (ONNX, {"hidden_size": 3, "clip": 0.5}, None),
        "onnx-clip-bidirectional-right": (ONNX, {"hidden_size": 2, "clip": 0.8, "direction": "bidirectional"}, RIGHT),
        "onnx-input_forget": (ONNX, {"hidden_size": 3, "input_forget": 1}, RIGHT),
        "onnx-hardsigmoid-leakyrelu-scaledtanh": (
            ONNX,
            {
                "hidden_size": 2,
                "activations": ["HardSigmoid", "LeakyRelu", "ScaledTanh"],
                "activation_alpha": [0.3, 0.1, 1.5],
                "activation_beta": [0.4, 0.8],
            },
            None,
        ),
        "onnx-elu-softsign-relu-bidirectional": (
            ONNX,
            {
                "hidden_size": 2,
                "direction": "bidirectional",
                "activations": ["Sigmoid", "Elu", "Softsign", "Sigmoid", "Relu", "Tanh"],
                "activation_alpha": [0.7],
            },
            RIGHT,
        ),
        "onnx-softplus-affine-thresholdedrelu": (
            ONNX,
            {
                "hidden_size": 2,
                "activations": ["Softplus", "Affine", "ThresholdedRelu"],
                "activation_alpha": [0.6, 0.2],
                "activation_beta": [0.1],
            },
            None,
        ),
    }
)
ACTIVATIONS = ["relu", "relu6", "leaky_relu", "elu", "selu", "softsign", "softplus", "silu", "linear", "exponential"]
for _act in ACTIVATIONS:
    CASES[f"keras-{_act}"] = (KERAS, {"units": 2, "activation": _act, "recurrent_activation": "hard_sigmoid"}, HOLES)


def _setup(kind, config, mask, seed=0):
    if kind == ONNX:  # float32 only (ONNX Runtime's kernel): its float64 twin, the policy swapped in
        ref = from_config(kind, config)
        ref.policy = resolve_policy("float64")
    else:
        config = {**F64, **config}
        ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    weights = build_weights(ref, rng, 3)
    if config.get("activation") == "exponential":  # keep exp(exp(...)) small enough for differences
        weights = {k: 0.3 * np.asarray(v) for k, v in weights.items()}
    x = rng.standard_normal((2, 4, 3))
    init = {f"{s}0": 0.5 * rng.standard_normal(ref.state_shape(s, 2)) for s in ref.STATE}
    trace = ref.run(x, weights, mask=mask, **init)
    up = {f: rng.standard_normal(np.shape(trace[f])) for f in ref.fields()}
    return ref, x, weights, init, up


def _loss(ref, x, weights, init, up, mask):
    trace = ref.run(x, weights, mask=mask, oracle=True, **init)
    return sum(float(np.sum(trace[f] * u)) for f, u in up.items())


def fd_errors(kind, config, mask, eps=1e-6):
    """``{array: max |grad - central difference| / max(1, max |central difference|)}``."""
    ref, x, weights, init, up = _setup(kind, config, mask)
    g = ref.grad(x, weights, up, mask=mask, **init)
    wrt = {"x": (x, g.x), **{k: (v, g.initial[k]) for k, v in init.items()}}
    wrt.update((f"w:{k}", (np.asarray(v, np.float64), g.weights[k])) for k, v in weights.items())

    def loss_with(name, value):
        if name == "x":
            return _loss(ref, value, weights, init, up, mask)
        if name.startswith("w:"):
            return _loss(ref, x, {**weights, name[2:]: value}, init, up, mask)
        return _loss(ref, x, weights, {**init, name: value}, up, mask)

    return central_difference_errors(wrt, loss_with, eps)


# Measured worst over CASES: 1.9e-9 (basic; phase 1's cases 1.6e-9, lstm-2layer-bi-mask)
# (central differences at eps=1e-6 carry
# ~1e-10..1e-9 of truncation and cancellation error); a missing path
# (truncated BPTT, gradient leaking through a masked step) is >= 1e-2.
FD_TOL = 1e-7


@pytest.mark.parametrize("name", list(CASES))
def test_grad_is_the_derivative_of_the_forward(name):
    errors = fd_errors(*CASES[name])
    assert max(errors.values()) < FD_TOL, errors


def test_the_finite_difference_check_catches_truncated_bptt(monkeypatch):
    """The check can fail: a backward that stops the gradient at the
    previous step's c (a detached c) is caught (h detached between steps is
    a mutant of ``tools/mutants.py``)."""
    real = grad_module._cell_vjp

    def truncated(*args):
        dc_prev, dc = real(*args)
        return 0 * dc_prev, dc

    monkeypatch.setattr(grad_module, "_cell_vjp", truncated)
    assert max(fd_errors(*CASES["keras"]).values()) > 1e-2


def test_the_finite_difference_check_catches_a_gradient_into_a_masked_step(monkeypatch):
    """... and a backward that lets the gradient into a masked step's cell
    (the mask ignored on the way back)."""
    real = grad_module.backward

    def unmasked(cell, tape, *args):
        tape.mask = None
        return real(cell, tape, *args)

    monkeypatch.setattr(grad_module, "backward", unmasked)
    assert max(fd_errors(*CASES["keras-mask"]).values()) > 1e-2


@pytest.mark.parametrize("name", ["contrib", "tfa"])
def test_the_finite_difference_check_catches_a_constant_variance(monkeypatch, name):
    """... and a layer norm differentiated as if its variance were a
    constant (only the centring differentiated): contrib's epsilon 1e-12
    makes the variance path as large as the rest."""

    def constant_variance(self, d_out, cache):
        xhat, inv = cache
        rows = tuple(range(d_out.ndim - 1))
        dxhat = (d_out * self.gamma).reshape(xhat.shape)
        dv = inv * (dxhat - np.mean(dxhat, axis=-1, keepdims=True))
        return dv.reshape(d_out.shape), np.sum(d_out * xhat.reshape(d_out.shape), axis=rows), np.sum(d_out, axis=rows)

    monkeypatch.setattr(grad_module.LayerNorm, "vjp", constant_variance)
    assert max(fd_errors(*CASES[name]).values()) > 1e-2


def test_masked_steps_get_no_gradient():
    ref, x, weights, init, up = _setup(KERAS, {"units": 3}, HOLES)
    g = ref.grad(x, weights, up, mask=HOLES, **init)
    assert not g.x[~HOLES].any()
    for name in ("h", "c", "c_carried"):
        assert not g.steps[name][~HOLES].any(), name
        assert g.steps[name][HOLES].all(), name


def test_steps_at_the_last_step_are_the_upstream_there():
    """Unmasked, nothing after the last step: dL/dh_T is what reaches it
    directly (the output and final_h), the carried c's likewise."""
    ref, x, weights, init, up = _setup(KERAS, {"units": 3}, None)
    g = ref.grad(x, weights, up, **init)
    np.testing.assert_array_equal(g.steps["h"][:, -1], up["h"][:, -1] + up["final_h"])
    np.testing.assert_array_equal(g.steps["c_carried"][:, -1], up["c"][:, -1] + up["final_c"])


@pytest.mark.parametrize("name", ["keras-backwards-mask", "lstm-2layer-bi-mask"])
def test_the_forward_it_differentiates_is_oracle_mode(name):
    kind, config, mask = CASES[name]
    ref, x, weights, init, up = _setup(kind, config, mask)
    trace = ref.run(x, weights, mask=mask, oracle=True, **init)
    g = ref.grad(x, weights, up, mask=mask, **init)
    assert list(g.trace.fields) == list(trace.fields)
    for field in trace.fields:
        np.testing.assert_allclose(g.trace[field], trace[field], rtol=1e-14, atol=1e-15, err_msg=field)


@pytest.mark.parametrize(("kind", "config"), [(KERAS, {"units": 2}), (LSTM, {"input_size": 3, "hidden_size": 2})])
def test_a_float32_layer_is_differentiated_at_its_rounded_inputs(kind, config):
    """float32 (no central differences: its inputs are rounded to float32
    first): the float64 gradient at the float32-rounded inputs, i.e. the
    float64 layer's gradient there, bitwise."""
    ref, x, weights, init, up = _setup(kind, {**config, "dtype": "float32"}, None)
    g = ref.grad(x, weights, up, **init)
    r32 = lambda a: np.asarray(a).astype(np.float32).astype(np.float64)  # noqa: E731
    g64 = from_config(kind, {**config, **F64}).grad(
        r32(x), {k: r32(v) for k, v in weights.items()}, up, **{k: r32(v) for k, v in init.items()}
    )
    np.testing.assert_array_equal(g.x, g64.x)
    for name in weights:
        np.testing.assert_array_equal(g.weights[name], g64.weights[name])


def test_contribs_float16_gradient_uses_its_float16_epsilon(monkeypatch):
    """contrib's norms take epsilon 1e-3 in float16 (1e-12 otherwise): a
    float16 cell is differentiated with 1e-3, at its rounded inputs -- the
    float64 cell's gradient there with its epsilon set to 1e-3, bitwise, and
    not the one with 1e-12 -- and that gradient is the derivative (central
    differences in float64)."""
    from lstm_ref import layer_norm_cells

    config = {"num_units": 3, "forget_bias": 0.5}
    ref, x, weights, init, up = _setup(CONTRIB, {**config, "dtype": "float16"}, RIGHT)
    g = ref.grad(x, weights, up, mask=RIGHT, **init)
    r16 = lambda a: np.asarray(a).astype(np.float16).astype(np.float64)  # noqa: E731
    args = (r16(x), {k: r16(v) for k, v in weights.items()}, up)
    rounded = {"mask": RIGHT, **{k: r16(v) for k, v in init.items()}}
    g_tiny = from_config(CONTRIB, {**config, **F64}).grad(*args, **rounded)
    monkeypatch.setattr(layer_norm_cells, "CONTRIB_EPSILON", {"float64": 1e-3})
    g64 = from_config(CONTRIB, {**config, **F64}).grad(*args, **rounded)
    np.testing.assert_array_equal(g.x, g64.x)
    for name in weights:
        np.testing.assert_array_equal(g.weights[name], g64.weights[name], err_msg=name)
    assert np.abs(g.weights["kernel"] - g_tiny.weights["kernel"]).max() > 1e-6
    assert max(fd_errors(CONTRIB, config, RIGHT).values()) < FD_TOL


def test_no_upstream_field_gives_a_zero_gradient_of_that_field():
    ref, x, weights, init, up = _setup(KERAS, {"units": 3}, None)
    only_h = ref.grad(x, weights, {"h": up["h"]}, **init)
    all_but = ref.grad(x, weights, {k: v for k, v in up.items() if k != "h"}, **init)
    both = ref.grad(x, weights, up, **init)
    np.testing.assert_allclose(only_h.x + all_but.x, both.x, rtol=1e-12, atol=1e-14)


# -- clips and Keras 2's hard_sigmoid: near their kinks, and exactly at them ------


def _first_value(kind, config, mask, field):
    """``field`` at row 0, step 0, unit 0 of the float64 forward: with the
    clip under test left out of ``config``, the unclipped value there (c and
    the projected m of step 0 do not depend on a clip)."""
    ref, x, weights, init, _ = _setup(kind, config, mask)
    return float(ref.run(x, weights, mask=mask, oracle=True, **init)[field][0, 0, 0])


NEAR = 1e-4  # 100x central differences' eps: no difference straddles the kink


@pytest.mark.parametrize("side", [-1, 1], ids=["just-clipped", "just-inside"])
@pytest.mark.parametrize(
    ("config", "key", "field"),
    [
        ({"num_units": 3, "use_peepholes": True}, "cell_clip", "c"),
        ({"num_units": 3, "num_proj": 2, "cell_clip": 0.4}, "proj_clip", "h"),
    ],
)
def test_grad_near_a_clip_boundary_is_the_derivative(config, key, field, side):
    """A value NEAR on either side of ``cell_clip``/``proj_clip``: row 0's
    first c (or projected m) is clipped by a hair, or passes by a hair."""
    bound = abs(_first_value(TF1, config, RIGHT, field)) + side * NEAR
    errors = fd_errors(TF1, {**config, key: bound}, RIGHT)
    assert max(errors.values()) < FD_TOL, errors


@pytest.mark.parametrize("z", [-2.5 - NEAR, -2.5 + NEAR, 2.5 - NEAR, 2.5 + NEAR])
def test_grad_near_keras2_hard_sigmoids_corners_is_the_derivative(z, monkeypatch):
    """Keras 2's hard_sigmoid gates with every pre-activation NEAR a corner
    (+-2.5): tiny kernels, the bias there; flat on one side, slope 0.2 on
    the other."""
    real = build_weights

    def at_corner(ref, rng, features):
        weights = real(ref, rng, features)
        return {
            "kernel": 1e-5 * weights["kernel"],  # z within 1e-5 of the bias: all on one side
            "recurrent_kernel": 1e-5 * weights["recurrent_kernel"],
            "bias": np.full_like(weights["bias"], z),
        }

    monkeypatch.setitem(globals(), "build_weights", at_corner)
    config = {"units": 2, "activation": "hard_sigmoid", "recurrent_activation": "hard_sigmoid"}
    errors = fd_errors(TK, config, HOLES)
    assert max(errors.values()) < FD_TOL, errors


def test_keras2_hard_sigmoids_subgradient_at_the_corners_is_tfs():
    """``tf.clip_by_value(0.2 x + 0.5, 0, 1)``'s gradient (``maximum(minimum(t,
    1), 0)``: ``_MinimumGrad``/``_MaximumGrad`` pass it where ``t <= 1`` and
    ``t >= 0``): the slope 0.2 at exactly +-2.5, 0 beyond."""
    from lstm_ref import activations

    d = activations.derivative(activations.keras2_hard_sigmoid)
    x = np.array([-2.5, 2.5, -2.5 - 1e-9, 2.5 + 1e-9, 0.0, -7.0])
    np.testing.assert_array_equal(d(x), [0.2, 0.2, 0.0, 0.0, 0.2, 0.0])
    # The bound is on the rounded 0.2 x + 0.5, as TF's clip sees it: the float64
    # after 2.5 still gives exactly 1.0 there, so the gradient still passes.
    assert 0.2 * np.nextafter(2.5, 3) + 0.5 == 1.0 and d(np.array([np.nextafter(2.5, 3)]))[0] == 0.2


def _c_stays_zero(ref, rng, features, *, num_proj=None):
    """Weights under which every c is exactly 0: the candidate block j (TF1
    order i, j, f, o) has zero kernel columns and bias, so ``j = tanh(0) =
    0`` and, from ``c0 = 0``, ``c = f * 0 + i * 0``; then ``m = o * tanh(0) =
    0`` and the projection is 0 as well.  Every clip sits exactly on its
    boundary (``cell_clip = proj_clip = 0``) at every step."""
    weights = build_weights(ref, rng, features)
    n = ref.units
    weights["kernel"] = np.array(weights["kernel"], np.float64)
    weights["kernel"][:, n : 2 * n] = 0.0
    weights["bias"] = np.array(weights["bias"], np.float64)
    weights["bias"][n : 2 * n] = 0.0
    return weights


def test_the_subgradient_at_an_exact_clip_boundary_is_tfs():
    """c and the projection exactly on their clip bounds (``cell_clip =
    proj_clip = 0``, c kept at 0): ``tf.clip_by_value`` passes the gradient
    on the closed interval, so the gradient is that of the same cell without
    the clips, bitwise, and j's kernel columns get a non-zero gradient (a
    strict-interior subgradient would give them none, and with upstream on
    the outputs only, nothing at all)."""
    base = {"num_units": 3, "num_proj": 2, "use_peepholes": True, **F64}
    clipped = from_config(TF1, {**base, "cell_clip": 0.0, "proj_clip": 0.0})
    free = from_config(TF1, base)
    rng = np.random.default_rng(0)
    weights = _c_stays_zero(clipped, rng, 3)
    x = rng.standard_normal((2, 4, 3))
    init = {"h0": 0.5 * rng.standard_normal((2, 2)), "c0": np.zeros((2, 3))}
    trace = clipped.run(x, weights, mask=RIGHT, oracle=True, **init)
    assert not trace.c.any() and not trace.h.any()
    up = {f: rng.standard_normal(np.shape(trace[f])) for f in clipped.fields()}
    g, g_free = (r.grad(x, weights, up, mask=RIGHT, **init) for r in (clipped, free))
    np.testing.assert_array_equal(g.x, g_free.x)
    for name in weights:
        np.testing.assert_array_equal(g.weights[name], g_free.weights[name], err_msg=name)
    assert np.abs(g.weights["kernel"][:, 3:6]).min() > 0
    # Upstream on the outputs only: every gradient crosses proj_clip's boundary, then cell_clip's.
    h_only = clipped.grad(x, weights, {"h": up["h"], "final_h": up["final_h"]}, mask=RIGHT, **init)
    assert np.abs(h_only.weights["kernel"][:, 3:6]).min() > 0
    np.testing.assert_array_equal(grad_module.clip_passes(np.array([-1.0, 1.0, 1.5, -1.5]), 1.0), [1, 1, 0, 0])


# -- ONNX: what its config changes ----------------------------------------------


@pytest.mark.parametrize("name", ["onnx-clip", "onnx-clip-bidirectional-right"])
def test_the_onnx_clip_cases_clip(name):
    """The clip cases' gradients differ from the unclipped cell's: their
    gates are clipped (the finite differences check the clip's derivative)."""
    kind, config, mask = CASES[name]
    ref, x, weights, init, up = _setup(kind, config, mask)
    free, *_ = _setup(kind, {k: v for k, v in config.items() if k != "clip"}, mask)
    g, g_free = (r.grad(x, weights, up, mask=mask, **init) for r in (ref, free))
    assert np.abs(g.weights["W"] - g_free.weights["W"]).max() > 1e-2


@pytest.mark.parametrize("where", ["on", "past"])
def test_the_onnx_gate_clip_passes_the_gradient_on_its_bound(where):
    """Every gate input exactly on ``clip`` (zero W, R and P, each bias half
    ``clip / 2``): the clip passes the gradient there (the closed interval,
    as tf.clip_by_value and torch.clamp), so the gradient is the unclipped
    cell's, bitwise; a hair past it, none reaches W."""
    clip = 0.5
    ref, x, weights, init, up = _setup(ONNX, {"hidden_size": 2, "clip": clip}, None)
    free, *_ = _setup(ONNX, {"hidden_size": 2}, None)
    half = clip / 2 if where == "on" else np.nextafter(clip / 2, 1)
    weights = {"W": 0 * weights["W"], "R": 0 * weights["R"], "B": np.full_like(weights["B"], half)}
    g, g_free = (r.grad(x, weights, up, **init) for r in (ref, free))
    if where == "on":
        for name in weights:
            np.testing.assert_array_equal(g.weights[name], g_free.weights[name], err_msg=name)
    else:
        assert not g.weights["W"].any() and np.abs(g_free.weights["W"]).max() > 0.1


def test_onnx_optional_weights_get_a_gradient_only_when_given():
    """``B`` and ``P`` are optional inputs (zeros when absent): the gradient
    is keyed as the weights were given, and equals the one with explicit
    zeros there."""
    ref, x, weights, init, up = _setup(ONNX, {"hidden_size": 3, "direction": "bidirectional"}, RIGHT)
    bare = {"W": weights["W"], "R": weights["R"]}
    zeros = {**bare, "B": np.zeros_like(weights["B"]), "P": np.zeros_like(weights["P"])}
    g, g_zeros = (ref.grad(x, w, up, mask=RIGHT, **init) for w in (bare, zeros))
    assert list(g.weights) == ["W", "R"] and list(g_zeros.weights) == ["W", "R", "B", "P"]
    np.testing.assert_array_equal(g.weights["W"], g_zeros.weights["W"])
    np.testing.assert_array_equal(g.x, g_zeros.x)


def test_onnx_layout_changes_no_gradient():
    """``layout`` is the layout ONNX Runtime reads, not a number: the
    gradient (batch-major, as ``run``) is the same for 0 and 1."""
    ref, x, weights, init, up = _setup(ONNX, {"hidden_size": 2}, RIGHT)
    ref1, *_ = _setup(ONNX, {"hidden_size": 2, "layout": 1}, RIGHT)
    g, g1 = (r.grad(x, weights, up, mask=RIGHT, **init) for r in (ref, ref1))
    np.testing.assert_array_equal(g.x, g1.x)
    for name in weights:
        np.testing.assert_array_equal(g.weights[name], g1.weights[name])


def test_a_row_of_length_0_takes_no_gradient_from_its_final_state():
    """ONNX Runtime ends a row of length 0 with zeros, not its initial
    state: upstream on that row's final h and c reaches nothing."""
    ref, x, weights, init, up = _setup(ONNX, {"hidden_size": 2, "direction": "bidirectional"}, EMPTY_ROW)
    g = ref.grad(x, weights, {"final_h": up["final_h"], "final_c": up["final_c"]}, mask=EMPTY_ROW, **init)
    assert not g.h0[:, 1].any() and not g.c0[:, 1].any() and not g.x[1].any()
    assert np.abs(g.h0[:, 0]).min() > 0


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "config", "field", "value", "message"),
    [
        (KERAS, {"units": 3}, "y", np.zeros((2, 4, 3)), r"upstream field\(s\) \['y'\]"),
        (LSTM, {"input_size": 3, "hidden_size": 3}, "c", np.zeros((2, 4, 3)), r"upstream field\(s\) \['c'\]"),
        (KERAS, {"units": 3}, "h", np.zeros((2, 4, 2)), r"upstream\['h'\] has shape \(2, 4, 2\)"),
        (KERAS, {"units": 3}, "final_c", np.zeros((2, 3), np.int64), r"upstream\['final_c'\] must be a floating"),
        (CELL, {"input_size": 3, "hidden_size": 3}, "final_h", np.zeros((1, 2, 3)), r"upstream\['final_h'\] has shape"),
    ],
)
def test_bad_upstream_is_a_value_error_naming_it(kind, config, field, value, message):
    ref, x, weights, init, _ = _setup(kind, config, None)
    with pytest.raises(InputError, match=message):
        ref.grad(x, weights, {field: value}, **init)
    assert issubclass(InputError, ValueError)


def test_upstream_must_be_a_dict():
    ref, x, weights, init, up = _setup(KERAS, {"units": 3}, None)
    with pytest.raises(InputError, match="upstream must be a dict"):
        ref.grad(x, weights, up["h"], **init)


@pytest.mark.parametrize("activation", ["gelu", "hard_silu", "softmax"])
def test_an_activation_without_an_exact_derivative_is_refused_by_name(activation):
    ref, x, weights, init, up = _setup(KERAS, {"units": 2, "activation": activation}, None)
    with pytest.raises(ConfigError, match=f"activation '{activation}' has no derivative"):
        ref.grad(x, weights, up, **init)


def test_a_reference_without_a_backward_is_refused():
    """``GRAD`` is read from the class itself: a wrong port (a variant
    subclass that changes the forward) does not inherit its kind's backward."""
    from lstm_ref.layer_norm_cells import _ContribJointNorm

    ref = _ContribJointNorm({"num_units": 2})
    with pytest.raises(ConfigError, match="grad is not implemented"):
        ref.grad(np.zeros((1, 2, 3)), build_weights(ref, np.random.default_rng(0), 3), {})


def test_bad_inputs_fail_as_run_fails():
    ref, x, weights, init, up = _setup(CELL, {"input_size": 3, "hidden_size": 3}, None)
    with pytest.raises(InputError, match="takes no mask"):
        ref.grad(x, weights, up, mask=np.ones((2, 4), bool), **init)
    with pytest.raises(InputError, match="give all of"):
        ref.grad(x, weights, up, h0=init["h0"])
