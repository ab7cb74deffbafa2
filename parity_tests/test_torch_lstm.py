"""``torch.nn.LSTM``: what the record-driven tests do not say by themselves."""

import numpy as np
import pytest

from lstm_ref import from_config
from lstm_ref.case import build_weights

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("torch")

KIND = "torch.nn.LSTM"
CONFIGS = [
    {"input_size": 3, "hidden_size": 4},
    {"input_size": 2, "hidden_size": 5, "num_layers": 3, "bidirectional": True, "proj_size": 2},
    {"input_size": 4, "hidden_size": 3, "num_layers": 2, "bias": False},
]


@pytest.mark.parametrize("config", CONFIGS, ids=["plain", "deep_bidirectional_proj", "no_bias"])
def test_weight_names_and_shapes_are_torchs_state_dict(oracle_for, config):
    reply, _ = oracle_for(KIND).request({"op": "shapes", "config": config}, {})
    expected = {k: tuple(v) for k, v in from_config(KIND, config).weight_shapes(config["input_size"]).items()}
    assert {k: tuple(v) for k, v in reply["shapes"].items()} == expected


def test_a_packed_row_is_that_row_run_alone():
    """PackedSequence semantics in the reference: each row of a packed,
    bidirectional, two-layer run equals the row truncated to its length and
    run alone (zeros past the length, h_n at the last valid step), up to
    float64 rounding (BLAS may block another batch size differently)."""
    config = {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True, "dtype": "float64"}
    ref = from_config(KIND, config)
    rng = np.random.default_rng(5)
    weights = build_weights(ref, rng, 3)
    x = rng.standard_normal((3, 6, 3))
    lengths = [6, 2, 4]
    mask = np.arange(6)[None, :] < np.asarray(lengths)[:, None]
    packed = ref.run(x, weights, mask=mask)
    for row, length in enumerate(lengths):
        alone = ref.run(x[row : row + 1, :length], weights)
        close = {"rtol": 1e-13, "atol": 1e-14}
        np.testing.assert_allclose(packed.h[row, :length], alone.h[0], **close)
        np.testing.assert_array_equal(packed.h[row, length:], 0)
        np.testing.assert_allclose(packed.final_h[:, row], alone.final_h[:, 0], **close)
        np.testing.assert_allclose(packed.final_c[:, row], alone.final_c[:, 0], **close)
