"""Layer-norm LSTMs: contrib's LayerNormBasicLSTMCell and tfa's LayerNormLSTMCell,
beyond the record-driven sweeps of ``test_kinds.py`` and the bad-input rows
of their records:

* the two proofs that the contrib oracle (a port: tf.contrib cannot be
  installed) is faithful: bitwise BasicLSTMCell with layer_norm=False, and a
  normaliser equal to tf_keras' own non-fused LayerNormalization;
* the Keras 3 cells of ``lstm_ref.harness.keras_layer_norm`` against the references;
* the degenerate cases (the seed's fixed point, one unit) measured.
"""

import numpy as np
import pytest

import lstm_ref
from lstm_ref.case import Case
from lstm_ref.harness.compare import assert_run_parity
from lstm_ref.harness.records import tolerance_of

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("contrib", "tfa")

CONTRIB = "tf.contrib.rnn.LayerNormBasicLSTMCell"
TFA = "tfa.rnn.LayerNormLSTMCell"

# -- the contrib port is faithful ---------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("forget_bias,activation,masked", [(1.0, "tanh", False), (-0.5, "relu", True)])
def test_contrib_port_without_layer_norm_is_basic_lstm_cell_bitwise(oracle_for, dtype, forget_bias, activation, masked):
    """Proof 1: with layer_norm=False the port runs the same ops as the real
    tf.compat.v1.nn.rnn_cell.BasicLSTMCell (concat, matmul, bias_add, split,
    sigmoid(f + forget_bias)), so every output and state is bitwise equal."""
    rng = np.random.default_rng(7)
    units, features = 4, 3
    config = {
        "num_units": units,
        "layer_norm": False,
        "forget_bias": forget_bias,
        "activation": activation,
        "dtype": dtype,
    }
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
    tol = tolerance_of(CONTRIB, dtype)
    np.testing.assert_allclose(out["port"][rows], want[rows], atol=tol.atol, rtol=tol.rtol)


# -- the Keras 3 cells -------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,config",
    [
        (CONTRIB, {"num_units": 4}),
        (CONTRIB, {"num_units": 3, "forget_bias": -0.5, "activation": "relu", "dtype": "float64"}),
        (TFA, {"units": 4}),
        (TFA, {"units": 3, "use_bias": False, "norm_epsilon": 1e-2, "dtype": "float64"}),
    ],
)
def test_keras3_layer_norm_cells_match_references(tensorflow_process, kind, config):
    import keras

    from lstm_ref.harness import keras_layer_norm as kln
    from lstm_ref.harness.oracles.keras3_worker import _EmitCarry

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
    probe = keras.layers.RNN(
        _EmitCarry(cell, dtype=cell.dtype_policy), return_sequences=True, return_state=True, dtype=dtype
    )
    probe.build((None, None, features))
    kln.assign_weights(cell, weights)
    hc, final_h, final_c = (np.asarray(t) for t in probe(x))
    u = ref.units
    out = {"h": hc[..., :u], "c": hc[..., u:], "final_h": final_h, "final_c": final_c}
    assert_run_parity(Case(kind, config, x, weights), out, ref, context=f"keras_layer_norm cell for {kind} {config}")


def test_seed_scenario_is_all_zero():
    """The seed (kernel 0.1, gamma 1, beta 0) is a degenerate fixed point."""
    from lstm_ref.case import one_hot_the_mice_had

    ref = lstm_ref.from_config(CONTRIB, {"num_units": 5})
    w = {
        k: np.full(s, 0.1 if k == "kernel" else float(k.endswith("gamma")), np.float32)
        for k, s in ref.weight_shapes(10).items()
    }
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
    w = {
        k: (0.5 * rng.standard_normal(s) + (1.0 if k.endswith("gamma") else 0.0)).astype(np.float32)
        for k, s in ref.weight_shapes(5).items()
    }
    out = oracle_for(CONTRIB).run(Case(CONTRIB, config, x, w))
    trace = ref.run(x, w)
    exact = ref.run(x, w, oracle=True)
    # |x * inv| is about 2e5 here, where a float32 ulp is 2**-6: measured
    # noise 0.015 (h) and 0.0135 (c) on both sides.  Bound: 2 ulp, against
    # exact values of 0.39 (h) and 0.83 (c), so a zeroed or flipped output fails.
    for name in ("h", "c"):
        exact_values = getattr(exact, name)
        assert np.abs(exact_values).max() > 0.3
        for got in (getattr(trace, name), out[name]):
            assert np.abs(got - exact_values).max() <= 2 * 2.0**-6
