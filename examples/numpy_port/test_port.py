"""The port in ``port.py`` tested against lstm_ref's ``keras.layers.LSTM``
with the lstm_ref pytest plugin (installed with lstm-parity: nothing to
import or register, and no TensorFlow needed).

The strategy draws exactly the port's scope, no more: the config is fixed
where the port is (float32, tanh/sigmoid, forward in time), drawn where it
is general (units, use_bias), and cases with a mask are filtered out.
Shapes, per-gate weights and initial states are drawn by the plugin.

Both versions of the port are tested, to show a failure and a pass; a
real suite tests its one port.
"""

import port
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_ref.harness.pytest_plugin import cases

PORT_SCOPE = cases(
    "keras3",
    config={
        "units": st.integers(1, 6),
        "use_bias": st.booleans(),
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "go_backwards": False,
        "dtype": "float32",
    },
    masked=False,
)


@pytest.mark.lstm_parity(kind="keras3")
@pytest.mark.parametrize("forward", [port.lstm_forward, port.lstm_forward_fixed], ids=["buggy", "fixed"])
@settings(deadline=None)  # the first example loads the reference
@given(case=PORT_SCOPE)
def test_port_matches_keras_lstm(forward, case, assert_lstm_parity):
    outputs = forward(case.x, **case.weights, **case.initial_state)
    assert_lstm_parity(case, outputs)
