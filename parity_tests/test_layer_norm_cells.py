"""Layer-norm LSTMs: contrib's LayerNormBasicLSTMCell and tfa's LayerNormLSTMCell.

* live Hypothesis sweeps of each reference against its oracle;
* the two proofs that the contrib oracle (a port: tf.contrib cannot be
  installed) is faithful: bitwise BasicLSTMCell with layer_norm=False, and a
  normaliser equal to tf_keras' own non-fused LayerNormalization;
* the Keras 3 cells of ``lstm_ref.keras_layer_norm`` against the references;
* bad inputs as data.
"""

import re

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import lstm_ref
from lstm_ref.compare import assert_run_parity
from lstm_ref.errors import ConfigError, InputError, WeightError
from lstm_ref.tolerances import tolerance_for

from . import strategies as hh
from .strategies import CONTRIB, TFA

def _check(oracle_for, kind, config, data):
    ref = lstm_ref.from_config(kind, config)
    x, weights, h0, c0, mask = hh.draw_run(data, ref, right_padded=(kind == CONTRIB))
    out = oracle_for(kind).run(kind, config, x, weights, h0, c0, mask)
    result = assert_run_parity(
        ref, out, x, weights, h0, c0, mask,
        context=f"lstm_ref.from_config({kind!r}, {config!r}).run(x, weights, h0, c0, mask); x shape {x.shape}",
    )
    note(f"max |ref - tf|: {max(f.max_abs for f in result.fields.values()):.3g}")
    return result


# -- live sweeps ----------------------------------------------------------------


@given(config=hh.contrib_configs, data=st.data())
def test_contrib_matches_port(oracle_for, config, data):
    _check(oracle_for, CONTRIB, config, data)


@given(config=hh.tfa_configs, data=st.data())
def test_tfa_matches_tensorflow_addons(oracle_for, config, data):
    _check(oracle_for, TFA, config, data)


# -- the contrib port is faithful ---------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("forget_bias,activation,masked", [(1.0, "tanh", False), (-0.5, "relu", True)])
def test_contrib_port_without_layer_norm_is_basic_lstm_cell_bitwise(oracle_for, dtype, forget_bias, activation, masked):
    """Proof 1: with layer_norm=False the port runs the same ops as the real
    tf.compat.v1.nn.rnn_cell.BasicLSTMCell (concat, matmul, bias_add, split,
    sigmoid(f + forget_bias)), so every output and state is bitwise equal."""
    rng = np.random.default_rng(7)
    units, features = 4, 3
    config = {"num_units": units, "layer_norm": False, "forget_bias": forget_bias, "activation": activation, "dtype": dtype}
    arrays = {
        "x": rng.standard_normal((3, 6, features)).astype(dtype),
        "w:kernel": (0.6 * rng.standard_normal((features + units, 4 * units))).astype(dtype),
        "w:bias": rng.standard_normal(4 * units).astype(dtype),
        "h0": rng.standard_normal((3, units)).astype(dtype),
        "c0": rng.standard_normal((3, units)).astype(dtype),
    }
    if masked:
        arrays["mask"] = np.arange(6)[None, :] < np.array([6, 2, 0])[:, None]
    meta, out = oracle_for(CONTRIB).request({"op": "basic_lstm_proof", "kind": CONTRIB, "config": config}, arrays)
    assert "BasicLSTMCell" in meta["real_class"]
    for name in ("h", "final_h", "final_c"):
        np.testing.assert_array_equal(out[f"port:{name}"], out[f"real:{name}"], strict=True, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_contrib_port_norm_is_tf_layer_norm(oracle_for, dtype):
    """Proof 2: the port's normaliser is bitwise tf_keras' non-fused
    LayerNormalization at contrib's epsilon (the same nn.moments +
    nn.batch_normalization pair), and close to a float64 evaluation of the
    TF 1.x formula ``x * inv + (beta - mean * inv)``,
    ``inv = gamma / sqrt(var + eps)``, biased variance, eps 1e-12 (1e-3 f16)."""
    rng = np.random.default_rng(11)
    width = 6
    x = rng.standard_normal((5, width)) * np.array([[1.0], [1e-3], [1e-5], [30.0], [0.0]])
    # A constant row: variance 0 exactly, so inv = gamma / sqrt(1e-12) ~ 1e6
    # and ``x * inv + (beta - mean * inv)`` cancels two ~5e5 terms: TF returns
    # beta only to within ulp(mean * inv) -- 0.03 in float32.  A surprise of
    # the batch_normalization form with contrib's tiny epsilon.
    x[4] = 0.5
    x = x.astype(dtype)
    gamma = (1 + 0.5 * rng.standard_normal(width)).astype(dtype)
    beta = (0.3 * rng.standard_normal(width)).astype(dtype)
    meta, out = oracle_for(CONTRIB).request({"op": "norm"}, {"x": x, "gamma": gamma, "beta": beta})
    assert meta["keras_fused"] is False
    np.testing.assert_array_equal(out["port"], out["keras"], strict=True)
    eps = 1e-3 if dtype == "float16" else 1e-12
    x64 = x.astype(np.float64)
    mean = x64.mean(-1, keepdims=True)
    var = np.square(x64 - mean).mean(-1, keepdims=True)
    inv = gamma.astype(np.float64) / np.sqrt(var + eps)
    want = x64 * inv + (beta.astype(np.float64) - mean * inv)
    big = np.abs(0.5 * gamma.astype(np.float64) / np.sqrt(eps))
    assert (np.abs(out["port"][4] - beta.astype(np.float64)) <= 2 * np.spacing(big.astype(dtype))).all()
    rows = slice(0, 2) if dtype == "float16" else slice(0, 4)  # float16: tiny rows lose all digits
    tol = tolerance_for(dtype, CONTRIB)
    np.testing.assert_allclose(out["port"][rows], want[rows], atol=tol.atol, rtol=tol.rtol)


# -- the Keras 3 cells -------------------------------------------------------------


@pytest.mark.parametrize("kind,config", [
    (CONTRIB, {"num_units": 4}),
    (CONTRIB, {"num_units": 3, "forget_bias": -0.5, "activation": "relu", "dtype": "float64"}),
    (TFA, {"units": 4}),
    (TFA, {"units": 3, "use_bias": False, "norm_epsilon": 1e-2, "dtype": "float64"}),
])
def test_keras3_layer_norm_cells_match_references(kind, config):
    import keras

    from lstm_ref.oracles.keras3_worker import _EmitCarry

    from lstm_ref import keras_layer_norm as kln

    ref = lstm_ref.from_config(kind, config)
    dtype = ref.policy.name
    if kind == CONTRIB:
        cfg = {k: v for k, v in config.items() if k != "dtype"}
        cell = kln.ContribLayerNormLSTMCell(cfg.pop("num_units"), dtype=dtype, **cfg)
    else:
        cfg = {k: v for k, v in config.items() if k != "dtype"}
        cell = kln.TfaLayerNormLSTMCell(cfg.pop("units"), dtype=dtype, **cfg)
    rng = np.random.default_rng(5)
    features = 3
    x = rng.standard_normal((2, 7, features)).astype(dtype)
    weights = {}
    for name, shape in ref.weight_shapes(features).items():
        scale = 0.6 if "kernel" in name else 0.3
        weights[name] = ((1.0 if name.endswith("gamma") else 0.0) + scale * rng.standard_normal(shape)).astype(dtype)
    probe = keras.layers.RNN(_EmitCarry(cell, dtype=cell.dtype_policy), return_sequences=True, return_state=True, dtype=dtype)
    probe.build((None, None, features))
    kln.assign_weights(cell, weights)
    hc, final_h, final_c = (np.asarray(t) for t in probe(x))
    u = ref.units
    out = {"h": hc[..., :u], "c": hc[..., u:], "final_h": final_h, "final_c": final_c}
    assert_run_parity(ref, out, x, weights, context=f"keras_layer_norm cell for {kind} {config}")


# -- bad inputs are data -------------------------------------------------------------

_OK_X = np.zeros((1, 2, 3), np.float32)


def _contrib_w(units=2, features=3, layer_norm=True):
    ref = lstm_ref.from_config(CONTRIB, {"num_units": units, "layer_norm": layer_norm})
    return {k: np.ones(s, np.float32) for k, s in ref.weight_shapes(features).items()}


def _tfa_w(units=2, features=3):
    ref = lstm_ref.from_config(TFA, {"units": units})
    return {k: np.ones(s, np.float32) for k, s in ref.weight_shapes(features).items()}


BAD = [
    # (id, call, exception, message pattern)
    ("contrib no units", lambda: lstm_ref.from_config(CONTRIB, {}), ConfigError, "num_units.*required"),
    ("contrib dropout", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2, "dropout_keep_prob": 0.9}),
     ConfigError, "dropout on every call"),
    ("contrib mixed", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2, "dtype": "mixed_float16"}),
     ConfigError, "no mixed-precision"),
    ("contrib mixed as a serialized policy", lambda: lstm_ref.from_config(
        CONTRIB, {"num_units": 2, "dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}}),
     ConfigError, "no mixed-precision"),
    ("contrib go_backwards", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2, "go_backwards": True}),
     ConfigError, "unknown config key"),
    ("contrib activation", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2, "activation": "gelu"}),
     ConfigError, "activation"),
    ("contrib forget_bias", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2, "forget_bias": "1"}),
     ConfigError, "forget_bias"),
    ("contrib left-padded mask", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2}).run(
        _OK_X, _contrib_w(), mask=np.array([[False, True]])), InputError, "right-padded"),
    ("contrib bias with layer_norm", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2}).run(
        _OK_X, {**_contrib_w(), "bias": np.ones(8, np.float32)}), WeightError, "unknown weight"),
    ("contrib gamma missing without layer_norm is fine, bias missing is not",
     lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2, "layer_norm": False}).run(
         _OK_X, {"kernel": np.ones((5, 8), np.float32)}), WeightError, "missing weight.*bias"),
    ("contrib kernel shape", lambda: lstm_ref.from_config(CONTRIB, {"num_units": 2}).run(
        _OK_X, {**_contrib_w(), "kernel": np.ones((3, 8), np.float32)}), WeightError, "shape"),
    ("tfa no units", lambda: lstm_ref.from_config(TFA, {}), ConfigError, "units.*required"),
    ("tfa epsilon", lambda: lstm_ref.from_config(TFA, {"units": 2, "norm_epsilon": -1.0}), ConfigError, "norm_epsilon"),
    ("tfa mixed non-fused", lambda: lstm_ref.from_config(TFA, {"units": 2, "dtype": "mixed_float16", "norm_epsilon": 1e-6}),
     ConfigError, "non-fused"),
    ("tfa keras3 activation", lambda: lstm_ref.from_config(TFA, {"units": 2, "activation": "gelu"}),
     ConfigError, "Keras 2.15"),
    ("tfa dropout range", lambda: lstm_ref.from_config(TFA, {"units": 2, "dropout": 1.5}), ConfigError, "dropout"),
    ("tfa norm weight shape", lambda: lstm_ref.from_config(TFA, {"units": 2}).run(
        _OK_X, {**_tfa_w(), "state_norm/gamma": np.ones(8, np.float32)}), WeightError, "state_norm/gamma.*shape"),
    ("tfa contrib names", lambda: lstm_ref.from_config(TFA, {"units": 2}).run(_OK_X, _contrib_w()),
     WeightError, "unknown weight"),
]


@pytest.mark.parametrize("call,exc,pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs(call, exc, pattern):
    with pytest.raises(exc, match=re.compile(pattern, re.S)):
        call()


def test_seed_scenario_is_all_zero():
    """The seed (kernel 0.1, gamma 1, beta 0) is a degenerate fixed point."""
    from lstm_ref.golden.case import one_hot_the_mice_had

    ref = lstm_ref.from_config(CONTRIB, {"num_units": 5})
    w = {k: np.full(s, 0.1 if k == "kernel" else float(k.endswith("gamma")), np.float32)
         for k, s in ref.weight_shapes(10).items()}
    trace = ref.run(one_hot_the_mice_had(), w)
    assert not trace.h.any() and not trace.c.any()


def test_single_unit_contrib_layer_norm_is_rounding_noise(oracle_for):
    """A known divergence, measured rather than skipped: with num_units=1 each
    per-gate norm sees one value, so var = 0 and the output is beta plus
    rounding noise of size ulp(x / sqrt(1e-12)) -- 1/32 for c near 0.66 in
    float32.  TF and the reference both produce such noise, not the same
    noise; both stay within a few noise quanta of the exact float64 value."""
    rng = np.random.default_rng(1210)
    config = {"num_units": 1}
    with pytest.warns(UserWarning, match="rounding noise"):
        ref = lstm_ref.from_config(CONTRIB, config)
    x = rng.standard_normal((3, 8, 5)).astype(np.float32)
    w = {k: (0.5 * rng.standard_normal(s) + (1.0 if k.endswith("gamma") else 0.0)).astype(np.float32)
         for k, s in ref.weight_shapes(5).items()}
    out = oracle_for(CONTRIB).run(CONTRIB, config, x, w)
    trace = ref.run(x, w)
    exact = ref.run(x, w, oracle=True)
    # |x * inv| is about 2e5 here, where a float32 ulp is 2**-6: measured
    # noise 0.015 (h) and 0.0135 (c) on both sides.  Bound: 2 ulp, against
    # exact values of 0.39 (h) and 0.83 (c), so a zeroed or flipped output fails.
    for name in ("h", "c"):
        exact_values = getattr(exact, name)
        assert np.abs(exact_values).max() > 0.3
        for got in (getattr(trace, name), out[name]):
            assert np.abs(got - exact_values).max() <= 2 * 2.0 ** -6
