"""Error inputs are data: every kind's record lists (bad call, expected
exception, message pattern) rows (each kind's slice's ``ERROR_INPUTS``, built with
``lstm_ref/harness/error_inputs.py``), and
one parametrized test runs them all.

Every malformed call must raise a ``ValueError`` subclass exported by
``lstm_ref`` whose message names the culprit.  NaN/Inf weights are *not*
errors: TF propagates them, and so does the reference.
"""

import re

import numpy as np
import pytest

import lstm_ref
from lstm_ref.harness.error_inputs import valid_call
from lstm_ref.harness.records import RECORDS

ROWS = [(record, row) for record in RECORDS for row in record.error_inputs]


@pytest.mark.parametrize("record, row", ROWS, ids=[f"{record.id}-{row.id}" for record, row in ROWS])
def test_bad_input_is_refused(record, row):
    with pytest.raises(row.exception, match=re.compile(row.pattern, re.S)) as info:
        row.call(record.kind)
    assert isinstance(info.value, lstm_ref.LstmRefError)


def test_every_error_is_a_lstm_ref_error():
    for exc in (lstm_ref.ConfigError, lstm_ref.WeightError, lstm_ref.InputError, lstm_ref.FixtureError):
        assert issubclass(exc, lstm_ref.LstmRefError) and issubclass(exc, ValueError)


KERAS = "keras.layers.LSTM"


def test_nan_and_inf_weights_propagate_like_tf():
    """TF does not validate weights; NaN flows through.  So does the reference:
    a NaN in one gate column poisons exactly the units TF's would."""
    ref = lstm_ref.from_config(KERAS, {"units": 3})
    call = valid_call(ref)
    call["weights"]["kernel"][0, 0] = np.nan  # input gate of unit 0
    trace = ref.run(**call)
    assert np.isnan(trace.h[:, :, 0]).all()
    assert not np.isnan(trace.h[:, 0, 1:]).any()
    call = valid_call(ref)
    call["weights"]["bias"][3] = np.inf  # forget gate of unit 0 -> sigmoid(inf) = 1, still finite
    assert np.isfinite(ref.run(**call).h).all()


def test_inert_keys_are_accepted():
    config = {
        "units": 3,
        "name": "lstm",
        "return_sequences": True,
        "return_state": True,
        "dropout": 0.3,
        "recurrent_dropout": 0.0,
        "kernel_initializer": "glorot_uniform",
        "unroll": True,
        "trainable": True,
        "seed": 3,
        "unit_forget_bias": False,
        "stateful": False,
    }
    baseline = lstm_ref.from_config(KERAS, {"units": 3})
    np.testing.assert_array_equal(
        lstm_ref.from_config(KERAS, config).run(**valid_call(baseline)).h, baseline.run(**valid_call(baseline)).h
    )
