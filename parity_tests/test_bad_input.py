"""Error inputs are data: (bad call, expected exception, message pattern).

Every malformed call must raise a ``ValueError`` subclass exported by
``lstm_ref`` whose message names the culprit.  NaN/Inf weights are *not*
errors: TF propagates them, and so does the reference (last test).
"""

import numpy as np
import pytest

import lstm_ref

KERAS = "keras.layers.LSTM"
U, D, B, T = 3, 2, 2, 4


def good_weights(units=U, features=D, bias=True):
    rng = np.random.default_rng(0)
    w = {"kernel": rng.standard_normal((features, 4 * units)).astype("float32"),
         "recurrent_kernel": rng.standard_normal((units, 4 * units)).astype("float32")}
    if bias:
        w["bias"] = np.zeros(4 * units, "float32")
    return w


def x_of(shape=(B, T, D)):
    return np.ones(shape, "float32")


def run(config=None, x=None, weights=None, **kwargs):
    ref = lstm_ref.from_config(KERAS, {"units": U} if config is None else config)
    return ref.run(x_of() if x is None else x, good_weights() if weights is None else weights, **kwargs)


def drop(d, key):
    return {k: v for k, v in d.items() if k != key}


ERROR_CASES = [
    ("unknown_kind", lambda: lstm_ref.from_config("keras.layers.LSTMM", {"units": 3}), lstm_ref.ConfigError, r"unknown kind 'keras.layers.LSTMM'"),
    ("config_typo", lambda: run({"units": 3, "go_backward": True}), lstm_ref.ConfigError, r"unknown config key\(s\) \['go_backward'\]"),
    ("units_zero", lambda: run({"units": 0}), lstm_ref.ConfigError, r"config\['units'\] must be a positive integer, got 0"),
    ("units_negative", lambda: run({"units": -2}), lstm_ref.ConfigError, r"config\['units'\].*-2"),
    ("units_float", lambda: run({"units": 2.5}), lstm_ref.ConfigError, r"config\['units'\]"),
    ("units_missing", lambda: run({}), lstm_ref.ConfigError, r"config\['units'\] is required"),
    ("unknown_activation", lambda: run({"units": 3, "activation": "tanhh"}), lstm_ref.ConfigError, r"config\['activation'\]='tanhh' is not a Keras 3 activation"),
    ("refused_activation", lambda: run({"units": 3, "recurrent_activation": "glu"}), lstm_ref.ConfigError, r"recurrent_activation.*glu.*not supported"),
    ("bad_dtype", lambda: run({"units": 3, "dtype": "int8"}), lstm_ref.ConfigError, r"config\['dtype'\]='int8'"),
    ("bfloat16_refused", lambda: run({"units": 3, "dtype": "mixed_bfloat16"}), lstm_ref.ConfigError, r"mixed_bfloat16.*not supported"),
    ("stateful_refused", lambda: run({"units": 3, "stateful": True}), lstm_ref.ConfigError, r"config\['stateful'\]=True is not supported"),
    ("use_cudnn_true_refused", lambda: run({"units": 3, "use_cudnn": True}), lstm_ref.ConfigError, r"use_cudnn"),
    ("bad_implementation", lambda: run({"units": 3, "implementation": 3}), lstm_ref.ConfigError, r"implementation"),
    ("go_backwards_not_bool", lambda: run({"units": 3, "go_backwards": "yes"}), lstm_ref.ConfigError, r"go_backwards"),
    ("dropout_none", lambda: run({"units": 3, "dropout": None}), lstm_ref.ConfigError, r"config\['dropout'\] must be a number in \[0, 1\], got None"),
    ("recurrent_dropout_string", lambda: run({"units": 3, "recurrent_dropout": "0.2"}), lstm_ref.ConfigError, r"recurrent_dropout"),
    ("dropout_above_one", lambda: run({"units": 3, "dropout": 1.5}), lstm_ref.ConfigError, r"dropout.*1.5"),
    ("config_not_dict", lambda: lstm_ref.from_config(KERAS, [("units", 3)]), lstm_ref.ConfigError, r"config must be a dict"),
    ("missing_weight", lambda: run(weights=drop(good_weights(), "recurrent_kernel")), lstm_ref.WeightError, r"missing weight\(s\) \['recurrent_kernel'\]"),
    ("missing_bias", lambda: run(weights=drop(good_weights(), "bias")), lstm_ref.WeightError, r"missing weight\(s\) \['bias'\]"),
    ("unexpected_bias", lambda: run({"units": 3, "use_bias": False}), lstm_ref.WeightError, r"unknown weight\(s\) \['bias'\]"),
    ("weight_typo", lambda: run(weights={**drop(good_weights(), "kernel"), "kernal": good_weights()["kernel"]}), lstm_ref.WeightError, r"unknown weight\(s\) \['kernal'\]"),
    ("weight_scoped_name", lambda: run(weights={**drop(good_weights(), "kernel"), "lstm/lstm_cell/kernel:0": good_weights()["kernel"]}), lstm_ref.WeightError, r"lstm/lstm_cell/kernel:0"),
    ("kernel_transposed", lambda: run(weights={**good_weights(), "kernel": good_weights()["kernel"].T}), lstm_ref.WeightError, r"weight 'kernel' has shape \(12, 2\), expected \(2, 12\)"),
    ("bias_wrong_length", lambda: run(weights={**good_weights(), "bias": np.zeros(3, "float32")}), lstm_ref.WeightError, r"weight 'bias' has shape \(3,\), expected \(12,\)"),
    ("weights_not_dict", lambda: run(weights=[1, 2]), lstm_ref.WeightError, r"weights must be a dict"),
    ("weight_not_numeric", lambda: run(weights={**good_weights(), "bias": np.array(["a"] * 12)}), lstm_ref.WeightError, r"weight 'bias' must be a real numeric array"),
    ("x_2d", lambda: run(x=np.ones((T, D), "float32")), lstm_ref.InputError, r"x must be 3-D \(batch, time, features\), got shape \(4, 2\)"),
    ("x_4d", lambda: run(x=np.ones((B, T, D, 1), "float32")), lstm_ref.InputError, r"x must be 3-D"),
    ("x_features_mismatch", lambda: run(x=np.ones((B, T, D + 1), "float32")), lstm_ref.WeightError, r"weight 'kernel' has shape \(2, 12\), expected \(3, 12\).*x features=3"),
    ("x_empty_time", lambda: run(x=np.ones((B, 0, D), "float32")), lstm_ref.InputError, r"at least one row and one step"),
    ("x_complex", lambda: run(x=np.ones((B, T, D), complex)), lstm_ref.InputError, r"x must be a real numeric array"),
    ("mask_wrong_shape", lambda: run(mask=np.ones((B, T + 1), bool)), lstm_ref.InputError, r"mask has shape \(2, 5\), expected \(batch, time\) = \(2, 4\)"),
    ("mask_3d", lambda: run(mask=np.ones((B, T, 1), bool)), lstm_ref.InputError, r"mask has shape \(2, 4, 1\)"),
    ("mask_float", lambda: run(mask=np.ones((B, T), "float32")), lstm_ref.InputError, r"mask must be a bool array"),
    ("mask_non_binary_int", lambda: run(mask=np.full((B, T), 2)), lstm_ref.InputError, r"mask must be a bool array"),
    ("h0_wrong_shape", lambda: run(h0=np.zeros((B, U + 1)), c0=np.zeros((B, U))), lstm_ref.InputError, r"h0 has shape \(2, 4\), expected \(batch, 3\)"),
    ("c0_wrong_batch", lambda: run(h0=np.zeros((B, U)), c0=np.zeros((B + 1, U))), lstm_ref.InputError, r"c0 has shape \(3, 3\)"),
    ("h0_broadcastable_refused", lambda: run(h0=np.zeros((1, U)), c0=np.zeros((1, U))), lstm_ref.InputError, r"h0 has shape \(1, 3\)"),
    ("h0_without_c0", lambda: run(h0=np.zeros((B, U))), lstm_ref.InputError, r"give both h0 and c0"),
]


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_bad_input_is_refused(call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert isinstance(info.value, ValueError)


def test_every_error_is_a_lstm_ref_error():
    for exc in (lstm_ref.ConfigError, lstm_ref.WeightError, lstm_ref.InputError, lstm_ref.FixtureError):
        assert issubclass(exc, lstm_ref.LstmRefError) and issubclass(exc, ValueError)


def test_nan_and_inf_weights_propagate_like_tf():
    """TF does not validate weights; NaN flows through.  So does the reference:
    a NaN in one gate column poisons exactly the units TF's would."""
    w = good_weights()
    w["kernel"][0, 0] = np.nan  # input gate of unit 0
    trace = run(weights=w)
    assert np.isnan(trace.h[:, :, 0]).all()
    assert not np.isnan(trace.h[:, 0, 1:]).any()
    w = good_weights()
    w["bias"][U] = np.inf  # forget gate of unit 0 -> sigmoid(inf) = 1, still finite
    assert np.isfinite(run(weights=w).h).all()


def test_inert_keys_are_accepted():
    config = {"units": U, "name": "lstm", "return_sequences": True, "return_state": True, "dropout": 0.3,
              "recurrent_dropout": 0.0, "kernel_initializer": "glorot_uniform", "unroll": True, "trainable": True,
              "seed": 3, "unit_forget_bias": False, "stateful": False}
    baseline = run({"units": U})
    np.testing.assert_array_equal(run(config).h, baseline.h)
