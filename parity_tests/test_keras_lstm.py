"""``keras.layers.LSTM`` (Keras 3) beyond the record-driven sweeps of
``test_kinds.py``: each activation alone against Keras, and NaN weights."""

import numpy as np
import pytest

from lstm_ref import activations
from lstm_ref.case import Case
from lstm_ref.harness.compare import assert_parity
from lstm_ref.harness.tolerances import activation_tolerance

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("keras3")

KIND = "keras.layers.LSTM"


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
    tol = activation_tolerance(dtype)
    np.testing.assert_allclose(ours, theirs, rtol=tol.rtol, atol=tol.atol, err_msg=f"activation {name} ({dtype})")


def test_keras2_hard_sigmoid_is_not_keras3():
    """Keras 2's clip(0.2x + 0.5) must not pass for Keras 3's relu6(x + 3) / 6."""
    x = np.array([-2.0, 1.0, 2.0], "float32")
    assert not np.allclose(activations.hard_sigmoid(x), activations.keras2_hard_sigmoid(x), atol=1e-3)


def test_nan_weights_propagate_exactly_like_tf(oracle_for):
    """NaN in one gate column: the reference's NaN pattern equals TF's."""
    rng = np.random.default_rng(0)
    config = {"units": 3}
    w = {
        "kernel": rng.standard_normal((2, 12)).astype("float32"),
        "recurrent_kernel": rng.standard_normal((3, 12)).astype("float32"),
        "bias": np.zeros(12, "float32"),
    }
    w["kernel"][0, 0] = np.nan
    x = rng.standard_normal((2, 4, 2)).astype("float32")
    case = Case(KIND, config, x, w)
    trace = case.run()
    desired = oracle_for(KIND).run(case)
    assert np.isnan(desired["h"]).any()
    for name in ("h", "c"):
        np.testing.assert_array_equal(np.isnan(getattr(trace, name)), np.isnan(desired[name]))
    assert_parity(trace, desired, "float32", context="NaN weights")
