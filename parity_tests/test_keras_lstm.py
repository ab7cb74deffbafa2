"""Live parity: lstm_ref against ``keras.layers.LSTM`` (Keras 3), every step."""

import numpy as np
import pytest
from hypothesis import given, note

import lstm_ref
from lstm_ref import activations
from lstm_ref.compare import assert_parity, assert_run_parity

from . import pytest_helpers as ph
from . import strategies as hh

KIND = "keras.layers.LSTM"
pytestmark = pytest.mark.live


@given(example=hh.keras_lstm_examples())
def test_keras_lstm_matches_tf_every_step(oracle_for, example):
    config, x, weights, h0, c0, mask = example
    note(f"config={config} x.shape={x.shape} mask={None if mask is None else mask.astype(int).tolist()}")
    ref = lstm_ref.from_config(KIND, config)
    desired = oracle_for(KIND).run(KIND, config, x, weights, h0, c0, mask)
    assert_run_parity(ref, desired, x, weights, h0, c0, mask, context=f"{KIND} {config}, x.shape={x.shape}")


@given(example=hh.keras_lstm_examples())
def test_keras_lstm_oracle_mode_is_tf_in_float64(oracle_for, example):
    """Oracle mode is float64 arithmetic on the inputs as TF holds them."""
    config, x, weights, h0, c0, mask = example
    ref = lstm_ref.from_config(KIND, config)
    ph.assert_oracle_mode_is_tf_float64(oracle_for(KIND), ref, x, weights, h0, c0, mask,
                                        context=f"{KIND} {config}, x.shape={x.shape}")


ACTIVATION_NAMES = sorted(activations.KERAS3)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_activation_matches_keras(oracle_for, name, dtype):
    """Each activation, alone, against ``keras.activations.get(name)``."""
    x = np.concatenate([np.linspace(-12, 12, 475), [-0.5, 0.5, -1, 1, -3, 3, 6, 0]]).astype(dtype).reshape(-1, 7)
    ours = activations.get(name, role="activation")(x)
    meta, out = oracle_for(KIND).request({"op": "activation", "name": name}, {"x": x})
    theirs = out["y"]
    assert ours.dtype == theirs.dtype
    tol = lstm_ref.tolerances.activation_tolerance(dtype)
    np.testing.assert_allclose(ours, theirs, rtol=tol.rtol, atol=tol.atol, err_msg=f"activation {name} ({dtype})")


def test_keras2_hard_sigmoid_is_not_keras3():
    """Keras 2's clip(0.2x + 0.5) must not pass for Keras 3's relu6(x + 3) / 6."""
    x = np.array([-2.0, 1.0, 2.0], "float32")
    keras2 = np.clip(0.2 * x + 0.5, 0, 1)
    assert not np.allclose(activations.hard_sigmoid(x), keras2, atol=1e-3)


def test_nan_weights_propagate_exactly_like_tf(oracle_for):
    """NaN in one gate column: the reference's NaN pattern equals TF's."""
    rng = np.random.default_rng(0)
    config = {"units": 3}
    w = {"kernel": rng.standard_normal((2, 12)).astype("float32"),
         "recurrent_kernel": rng.standard_normal((3, 12)).astype("float32"),
         "bias": np.zeros(12, "float32")}
    w["kernel"][0, 0] = np.nan
    x = rng.standard_normal((2, 4, 2)).astype("float32")
    trace = lstm_ref.from_config(KIND, config).run(x, w)
    desired = oracle_for(KIND).run(KIND, config, x, w)
    assert np.isnan(desired["h"]).any()
    for name in ("h", "c"):
        np.testing.assert_array_equal(np.isnan(getattr(trace, name)), np.isnan(desired[name]))
    assert_parity(trace, desired, "float32", context="NaN weights")
