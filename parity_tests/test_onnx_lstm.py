"""ONNX's ``LSTM`` run by ONNX Runtime: what the record-driven tests do not say by themselves."""

import numpy as np
import pytest

from lstm_ref import from_config
from lstm_ref.case import Case, build_weights
from lstm_ref.harness.oracles.client import OracleInputError
from lstm_ref.stacked import reverse_within

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("onnx")

KIND = "onnx.LSTM"


def _case(config, batch=2, time=5, **changes):
    ref = from_config(KIND, config)
    rng = np.random.default_rng(9)
    return Case(
        KIND, config, rng.standard_normal((batch, time, 3)).astype("float32"), build_weights(ref, rng, 3), **changes
    )


def test_onnxruntime_refuses_layout_1(oracle_for):
    """A finding pinned: ONNX allows layout=1 (batch-major), ONNX Runtime
    1.32's CPU kernel refuses it (lstm_base.h).  The refusal reaches the
    user as ONNX Runtime's own words; the reference computes the numbers
    layout 0 gives."""
    with pytest.raises(OracleInputError, match=r"layout == 1\) are not supported"):
        oracle_for(KIND).run(_case({"hidden_size": 3, "layout": 1}))


def test_layout_changes_no_number():
    case = _case({"hidden_size": 3, "direction": "bidirectional"})
    a, b = case.run(), case.replace(config={**case.config, "layout": 1}).run()
    for name in a.fields:
        np.testing.assert_array_equal(a[name], b[name])


def test_a_row_of_length_0_ends_with_zeros_not_its_initial_state(oracle_for):
    """ComputeImpl zeroes Y_h and Y_c of an empty row; TF's dynamic_rnn
    would return the initial state."""
    ref = from_config(KIND, {"hidden_size": 3})
    states = {f"{s}0": np.ones(ref.state_shape(s, 2), "float32") for s in ref.STATE}
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
    case = _case({"hidden_size": 3}, mask=mask, **states)
    out = oracle_for(KIND).run(case)
    np.testing.assert_array_equal(out["final_h"][:, 1], 0)
    np.testing.assert_array_equal(out["final_c"][:, 1], 0)
    np.testing.assert_array_equal(case.run().final_h[:, 1], 0)


def test_reverse_within_is_its_own_inverse_and_reverses_each_row():
    a = np.arange(2 * 5).reshape(2, 5, 1)
    lengths = np.array([3, 5])
    r = reverse_within(a, lengths)
    assert r[0, :, 0].tolist() == [2, 1, 0, 3, 4]
    assert r[1, :, 0].tolist() == [9, 8, 7, 6, 5]
    np.testing.assert_array_equal(reverse_within(r, lengths), a)


@pytest.mark.parametrize("with_bias", [True, False], ids=["B_given", "no_B"])
def test_infinite_and_nan_gate_inputs_meet_onnxruntimes_clamp(oracle_for, with_bias):
    """Without ``clip`` the bound is FLT_MAX and the clamp still runs: +-inf
    becomes +-FLT_MAX; a NaN becomes +FLT_MAX when ``B`` is given
    (min/max), and stays NaN without it (comparisons)."""
    case = _case({"hidden_size": 3}, batch=3, time=2)
    x = case.x.copy()
    x[0, 0, 0], x[1, 0, 0] = np.inf, -np.inf
    x[2, 1, 1] = np.nan
    weights = {k: v for k, v in case.weights.items() if k != "P" and (with_bias or k != "B")}
    case = case.replace(x=x, weights=weights)
    desired = oracle_for(KIND).run(case)
    trace = case.run()
    assert np.isnan(desired["h"]).any() != with_bias  # the two clamps really differ here
    for name in trace.fields:
        np.testing.assert_allclose(trace[name], desired[name], rtol=2e-6, atol=2e-6, equal_nan=True)
