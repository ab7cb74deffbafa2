"""``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` and ``LSTMCell`` beyond the
record-driven sweeps of ``test_kinds.py``: one step against an eager cell
call (no dynamic_rnn in between), each activation name against tf_keras."""

import numpy as np
import pytest

import lstm_ref
from lstm_ref.activations import TF_KERAS_NAMES
from lstm_ref.harness.tolerances import activation_tolerance, tolerance_for
from lstm_ref.tf1_cells import tf_keras_activation

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("tf1_basic", "tf1_lstmcell")

BASIC = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
FULL = "tf.compat.v1.nn.rnn_cell.LSTMCell"


@pytest.mark.parametrize(
    "kind, config",
    [
        (BASIC, {"num_units": 3, "forget_bias": 2.5}),
        (FULL, {"num_units": 4, "use_peepholes": True, "cell_clip": 0.4, "num_proj": 2, "proj_clip": 0.2}),
    ],
)
def test_one_step_matches_an_eager_cell_call(oracle_for, kind, config):
    """``Reference.step`` against one eager ``cell(x_t, LSTMStateTuple(c, h))``,
    without dynamic_rnn in between."""
    ref = lstm_ref.from_config(kind, config)
    rng = np.random.default_rng(0)
    weights = {k: (1.5 * rng.standard_normal(s)).astype("float32") for k, s in ref.weight_shapes(3).items()}
    x = rng.standard_normal((2, 3)).astype("float32")
    h0 = rng.standard_normal((2, ref.out_units)).astype("float32")
    c0 = rng.standard_normal((2, ref.units)).astype("float32")
    params = ref.params(weights, 3, np.float32)
    m, (h, c) = ref.step(params, x, (h0, c0))
    arrays = {"x": x, "h0": h0, "c0": c0, **{f"w:{k}": v for k, v in weights.items()}}
    _, out = oracle_for(kind).request({"op": "step", "kind": kind, "config": config}, arrays)
    tol = tolerance_for("float32")
    np.testing.assert_allclose(m, out["m"], rtol=tol.rtol, atol=tol.atol, strict=True)
    np.testing.assert_allclose(c, out["c"], rtol=tol.rtol, atol=tol.atol, strict=True)
    assert h is m


@pytest.mark.parametrize("name", TF_KERAS_NAMES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_activation_matches_tf_keras(oracle_for, name, dtype):
    """Each name a TF1 cell accepts, against ``tf_keras.activations.get``."""
    x = np.concatenate([np.linspace(-12, 12, 481), [-0.5, 0.5, -1, 1, -3, 3, 6, 0]]).astype(dtype).reshape(-1, 3)
    ours = tf_keras_activation(name)(x)
    _, out = oracle_for(FULL).request({"op": "activation", "name": name}, {"x": x})
    assert ours.dtype == out["y"].dtype
    tol = activation_tolerance(dtype)
    np.testing.assert_allclose(ours, out["y"], rtol=tol.rtol, atol=tol.atol, err_msg=f"activation {name} ({dtype})")


def test_falsy_activation_is_tanh_not_linear():
    """legacy_cells.py: ``if activation: ... else: tf.tanh``."""
    for kind in (BASIC, FULL):
        assert lstm_ref.from_config(kind, {"num_units": 2, "activation": None}).activation is lstm_ref.activations.tanh
