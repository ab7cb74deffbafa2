"""``tf_keras.layers.LSTM`` (Keras 2) beyond the record-driven sweeps of
``test_kinds.py``: each activation name against tf_keras, configs taken
straight from a tf_keras layer's ``get_config()``, and TF's unrolled
go_backwards masking bug, which the reference reproduces."""

import numpy as np
import pytest

from lstm_ref import activations
from lstm_ref.case import Case, build_weights
from lstm_ref.harness.compare import assert_run_parity
from lstm_ref.harness.tolerances import activation_tolerance

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("tf_keras")

KIND = "tf_keras.layers.LSTM"


@pytest.mark.parametrize("name", (None,) + activations.TF_KERAS_NAMES)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_activation_matches_tf_keras(oracle_for, name, dtype):
    """Each name ``tf_keras.activations.get`` resolves (None: linear)."""
    x = np.concatenate([np.linspace(-12, 12, 481), [-0.5, 0.5, -1, 1, -3, 3, 6, 0]]).astype(dtype).reshape(-1, 3)
    ours = activations.get_keras2(name, role="activation")(x)
    _, out = oracle_for(KIND).request({"op": "activation", "name": name}, {"x": x})
    assert ours.dtype == out["y"].dtype
    tol = activation_tolerance(dtype)
    np.testing.assert_allclose(ours, out["y"], rtol=tol.rtol, atol=tol.atol, err_msg=f"activation {name} ({dtype})")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"units": 4},
        {
            "units": 3,
            "activation": "softsign",
            "recurrent_activation": "hard_sigmoid",
            "go_backwards": True,
            "dropout": 0.2,
            "recurrent_dropout": 0.1,
            "implementation": 1,
            "unit_forget_bias": False,
        },
        {"units": 3, "dtype": "mixed_float16", "return_state": True, "unroll": True},
        {"units": 2, "dtype": "float64", "use_bias": False, "time_major": True, "activation": None},
    ],
    ids=["defaults", "cell_path_options", "mixed_float16", "float64_time_major"],
)
def test_config_straight_from_get_config(oracle_for, kwargs):
    """The dict ``get_config()`` returns is the config, unedited, for the
    reference and for TF alike."""
    oracle = oracle_for(KIND)
    config = oracle.request({"op": "layer_config", "kwargs": kwargs, "input_dim": 3}, {})[0]["config"]
    assert "name" in config and "kernel_initializer" in config  # really the full dict
    rng = np.random.default_rng(7)
    ref = Case(KIND, config, None, {}).reference()
    x = rng.standard_normal((2, 5, 3)).astype(ref.policy.variable)
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 0, 1]], bool)
    case = Case(KIND, config, x, build_weights(ref, rng, 3), mask)
    assert_run_parity(case, oracle.run(case, cross_check=True))


def test_unrolled_go_backwards_zeroes_with_the_unreversed_mask(oracle_for):
    """tf_keras ``backend.rnn``, unrolled branch: with go_backwards and
    zero_output_for_mask, the outputs (in processing order) are zeroed with
    the mask in *input* order.  Measured in TF; the reference follows it, and
    the while-loop semantics would be far off."""
    config = {"units": 3, "unroll": True, "go_backwards": True, "zero_output_for_mask": True}
    rng = np.random.default_rng(3)
    ref = Case(KIND, config, None, {}).reference()
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)  # not palindromic: the bug shows
    case = Case(KIND, config, rng.standard_normal((2, 5, 3)).astype("float32"), build_weights(ref, rng, 3), mask)
    desired = oracle_for(KIND).run(case, cross_check=True)
    assert_run_parity(case, desired)
    loop = Case(KIND, {**config, "unroll": False}, case.x, case.weights, mask)  # TF's while loop: no bug
    assert not np.allclose(loop.run().h, desired["h"], atol=1e-3)
