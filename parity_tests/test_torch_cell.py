"""``torch.nn.LSTMCell``: what the record-driven tests do not say by themselves."""

import numpy as np
import pytest

from lstm_ref import from_config
from lstm_ref.case import build_weights

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("nn_lstmcell")

KIND = "torch.nn.LSTMCell"


@pytest.mark.live
@pytest.mark.parametrize(
    "config",
    [{"input_size": 3, "hidden_size": 4}, {"input_size": 2, "hidden_size": 5, "bias": False}],
    ids=["bias", "no_bias"],
)
def test_weight_names_and_shapes_are_torchs_state_dict(oracle_for, config):
    reply, _ = oracle_for(KIND).request({"op": "shapes", "kind": KIND, "config": config}, {})
    expected = {k: tuple(v) for k, v in from_config(KIND, config).weight_shapes(config["input_size"]).items()}
    assert {k: tuple(v) for k, v in reply["shapes"].items()} == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_cell_stepped_is_one_layer_of_nn_lstm(dtype):
    """LSTMCell::operator() is the cell nn.LSTM's layers step (RNN.cpp): the
    same weights, named with _l0, give the same bits in both references."""
    config = {"input_size": 3, "hidden_size": 4, "dtype": dtype}
    cell = from_config(KIND, config)
    rng = np.random.default_rng(5)
    weights = build_weights(cell, rng, 3)
    x = rng.standard_normal((2, 7, 3)).astype(dtype)
    h0, c0 = rng.standard_normal((2, 2, 4)).astype(dtype)
    stepped = cell.run(x, weights, h0=h0, c0=c0)
    layer = from_config("torch.nn.LSTM", config).run(
        x, {f"{k}_l0": v for k, v in weights.items()}, h0=h0[None], c0=c0[None]
    )
    np.testing.assert_array_equal(stepped.h, layer.h, strict=True)
    np.testing.assert_array_equal(stepped.final_c, layer.final_c[0], strict=True)
