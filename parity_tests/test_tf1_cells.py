"""Live parity: lstm_ref against ``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` and
``LSTMCell`` run by ``tf.compat.v1.nn.dynamic_rnn`` (tf_keras 2.21), every
step; plus the bad-input table for both kinds."""

import numpy as np
import pytest
from hypothesis import given, note

import lstm_ref
from lstm_ref import ConfigError, InputError, WeightError
from lstm_ref.compare import assert_run_parity
from lstm_ref.tf1_cells import _TF_KERAS_NAMES, tf_keras_activation

from . import pytest_helpers as ph
from . import strategies as hh

BASIC = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
FULL = "tf.compat.v1.nn.rnn_cell.LSTMCell"

def _describe(kind, config, x, mask):
    return f"{kind} {config}, x.shape={x.shape}, mask={None if mask is None else mask.astype(int).tolist()}"


@pytest.mark.live
@given(example=hh.tf1_examples())
def test_tf1_cell_matches_tf_every_step(oracle_for, example):
    kind, config, x, weights, h0, c0, mask = example
    note(_describe(kind, config, x, mask))
    ref = lstm_ref.from_config(kind, config)
    desired = oracle_for(kind).run(kind, config, x, weights, h0, c0, mask)
    assert_run_parity(ref, desired, x, weights, h0, c0, mask, context=_describe(kind, config, x, mask))


@pytest.mark.live
@given(example=hh.tf1_examples())
def test_tf1_oracle_mode_is_tf_in_float64(oracle_for, example):
    """Oracle mode is float64 arithmetic on the inputs as TF holds them."""
    kind, config, x, weights, h0, c0, mask = example
    note(_describe(kind, config, x, mask))
    ref = lstm_ref.from_config(kind, config)
    ph.assert_oracle_mode_is_tf_float64(oracle_for(kind), ref, x, weights, h0, c0, mask,
                                        context=_describe(kind, config, x, mask))


@pytest.mark.live
@pytest.mark.parametrize("kind, config", [
    (BASIC, {"num_units": 3, "forget_bias": 2.5}),
    (FULL, {"num_units": 4, "use_peepholes": True, "cell_clip": 0.4, "num_proj": 2, "proj_clip": 0.2}),
])
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
    tol = lstm_ref.tolerances.tolerance_for("float32")
    np.testing.assert_allclose(m, out["m"], rtol=tol.rtol, atol=tol.atol, strict=True)
    np.testing.assert_allclose(c, out["c"], rtol=tol.rtol, atol=tol.atol, strict=True)
    assert h is m


@pytest.mark.live
@pytest.mark.parametrize("name", sorted(_TF_KERAS_NAMES + ("hard_sigmoid",)))
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_activation_matches_tf_keras(oracle_for, name, dtype):
    """Each name a TF1 cell accepts, against ``tf_keras.activations.get``."""
    x = np.concatenate([np.linspace(-12, 12, 481), [-0.5, 0.5, -1, 1, -3, 3, 6, 0]]).astype(dtype).reshape(-1, 3)
    ours = tf_keras_activation(name)(x)
    _, out = oracle_for(FULL).request({"op": "activation", "name": name}, {"x": x})
    assert ours.dtype == out["y"].dtype
    tol = lstm_ref.tolerances.activation_tolerance(dtype)
    np.testing.assert_allclose(ours, out["y"], rtol=tol.rtol, atol=tol.atol, err_msg=f"activation {name} ({dtype})")


def test_falsy_activation_is_tanh_not_linear():
    """legacy_cells.py: ``if activation: ... else: tf.tanh``."""
    for kind in (BASIC, FULL):
        assert lstm_ref.from_config(kind, {"num_units": 2, "activation": None}).activation is lstm_ref.activations.tanh


# -- bad input: (kind, config, change to a valid call, exception, message pattern)

def _valid(kind, config, input_dim=3, batch=2, time=4):
    ref = lstm_ref.from_config(kind, config)
    rng = np.random.default_rng(0)
    weights = {k: rng.standard_normal(s).astype("float32") for k, s in ref.weight_shapes(input_dim).items()}
    return {"x": rng.standard_normal((batch, time, input_dim)).astype("float32"), "weights": weights}


def _drop(name):
    def edit(call):
        del call["weights"][name]
    return edit


def _set(key, value):
    def edit(call):
        call[key] = value
    return edit


def _states(h_width, c_width):
    def edit(call):
        call["h0"], call["c0"] = np.zeros((2, h_width), "float32"), np.zeros((2, c_width), "float32")
    return edit


def _weight(name, shape):
    def edit(call):
        call["weights"][name] = np.zeros(shape, "float32")
    return edit


PEEP = {"num_units": 4, "use_peepholes": True}
PROJ = {"num_units": 4, "num_proj": 2}
LEFT_PADDED = np.array([[0, 1, 1, 1], [1, 1, 1, 1]], bool)
HOLES = np.array([[1, 0, 1, 0], [1, 1, 0, 0]], bool)

ERROR_CASES = [
    # config errors: raised by from_config
    (BASIC, {"num_units": 3, "state_is_tuple": False}, None, ConfigError, r"state_is_tuple.*not supported"),
    (FULL, {"num_units": 3, "state_is_tuple": False}, None, ConfigError, r"state_is_tuple.*not supported"),
    (FULL, {"num_units": 3, "cell_clip": -1.0}, None, ConfigError, r"cell_clip.*>= 0"),
    (FULL, {"num_units": 3, "num_proj": 2, "proj_clip": -0.5}, None, ConfigError, r"proj_clip.*>= 0"),
    (FULL, {"num_units": 3, "cell_clip": float("nan")}, None, ConfigError, r"cell_clip"),
    (FULL, {"num_units": 3, "units": 3}, None, ConfigError, r"unknown config key.*'units'"),
    (BASIC, {"num_units": 3, "use_peepholes": True}, None, ConfigError, r"unknown config key.*'use_peepholes'"),
    (BASIC, {}, None, ConfigError, r"num_units.*required"),
    (FULL, {"num_units": 0}, None, ConfigError, r"num_units.*positive integer"),
    (FULL, {"num_units": 3, "num_proj": 0}, None, ConfigError, r"num_proj.*positive integer"),
    (FULL, {"num_units": 3, "num_unit_shards": 2}, None, ConfigError, r"num_unit_shards.*not supported"),
    (FULL, {"num_units": 3, "num_proj": 2, "num_proj_shards": 3}, None, ConfigError, r"num_proj_shards"),
    (FULL, {"num_units": 3, "use_peepholes": 1}, None, ConfigError, r"use_peepholes.*True or False"),
    (BASIC, {"num_units": 3, "forget_bias": "1"}, None, ConfigError, r"forget_bias.*real number"),
    (BASIC, {"num_units": 3, "activation": "hard_tanh"}, None, ConfigError, r"'hard_tanh'.*tf_keras"),
    (FULL, {"num_units": 3, "dtype": "mixed_float16"}, None, ConfigError, r"mixed_float16.*not supported"),
    (FULL, {"num_units": 3, "dtype": "bfloat16"}, None, ConfigError, r"bfloat16.*not supported"),
    # weight errors: raised by run
    (FULL, PEEP, _drop("w_o_diag"), WeightError, r"missing weight.*'w_o_diag'"),
    (FULL, PEEP, _weight("w_f_diag", (3,)), WeightError, r"'w_f_diag' has shape \(3,\), expected \(4,\)"),
    (FULL, PROJ, _drop("projection/kernel"), WeightError, r"missing weight.*'projection/kernel'"),
    (FULL, PROJ, _weight("projection/kernel", (2, 4)), WeightError, r"'projection/kernel' has shape \(2, 4\)"),
    # kernel rows are input_dim + num_proj, not input_dim + num_units
    (FULL, PROJ, _weight("kernel", (3 + 4, 16)), WeightError, r"'kernel' has shape \(7, 16\), expected \(5, 16\)"),
    (BASIC, {"num_units": 4}, _weight("kernel", (3, 16)), WeightError, r"'kernel' has shape \(3, 16\), expected \(7, 16\)"),
    (BASIC, {"num_units": 4}, _weight("w_f_diag", (4,)), WeightError, r"unknown weight.*'w_f_diag'"),
    (FULL, {"num_units": 4}, _weight("recurrent_kernel", (4, 16)), WeightError, r"unknown weight.*'recurrent_kernel'"),
    # input errors: raised by run
    (FULL, {"num_units": 4}, _set("mask", LEFT_PADDED), InputError, r"row\(s\) \[0\] are not right-padded"),
    (BASIC, {"num_units": 4}, _set("mask", HOLES), InputError, r"row\(s\) \[0\] are not right-padded"),
    (FULL, PROJ, _states(4, 4), InputError, r"h0 has shape \(2, 4\), expected.*\(2, 2\)"),
    (FULL, PROJ, _set("c0", np.zeros((2, 2), "float32")), InputError, r"give both h0 and c0"),
]


@pytest.mark.parametrize(
    "kind, config, edit, error, pattern", ERROR_CASES,
    ids=[f"{k.rsplit('.', 1)[1]}-{e.__name__}-{i}" for i, (k, _, _, e, _) in enumerate(ERROR_CASES)],
)
def test_bad_input_is_refused(kind, config, edit, error, pattern):
    with pytest.raises(error, match=pattern):
        if edit is None:
            lstm_ref.from_config(kind, config)
        else:
            call = _valid(kind, config)
            edit(call)
            lstm_ref.from_config(kind, config).run(**call)
