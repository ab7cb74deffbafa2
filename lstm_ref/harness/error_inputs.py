"""Error inputs are data: (bad call, expected exception, message pattern).

Each kind's record lists its :class:`ErrorInput` rows; one parametrized test
(``parity_tests/test_bad_input.py``) runs them all.  A row either refuses a
config (``run=None``: :func:`lstm_ref.from_config` raises) or changes one
thing in a valid call (:func:`valid_call`: x of shape (2, 4, 3), weights
from the one builder) and expects ``Reference.run`` to raise.  Every
exception must be a ``ValueError`` subclass exported by ``lstm_ref`` and its
message must name the culprit.
"""

from dataclasses import dataclass

import numpy as np

from .. import from_config
from ..case import build_weights
from ..errors import ConfigError, InputError, WeightError

BATCH, TIME, FEATURES = 2, 4, 3


@dataclass(frozen=True)
class ErrorInput:
    id: str
    config: object  # what from_config gets
    exception: type
    pattern: str  # re.search'd in the message
    run: dict = None  # None: the config is refused; else changes to a valid call (see module doc)
    kind: str = None  # another kind than the record's (an unknown kind, say)

    def call(self, kind):
        """Make the bad call; it must raise ``self.exception``."""
        ref = from_config(self.kind or kind, self.config)
        if self.run is None:
            raise AssertionError(f"from_config accepted {self.config!r}")
        ref.run(**valid_call(ref, self.run))


def valid_call(ref, changes=None):
    """Keyword arguments of a valid ``ref.run`` call, with ``changes``:
    ``weights`` as a dict is merged (a ``None`` value drops that weight),
    anything else replaces the argument."""
    rng = np.random.default_rng(0)
    call = {"x": rng.standard_normal((BATCH, TIME, FEATURES)).astype("float32"),
            "weights": build_weights(ref, rng, FEATURES, dtype="float32")}
    for key, value in (changes or {}).items():
        if key == "weights" and isinstance(value, dict):
            merged = {**call["weights"], **value}
            call["weights"] = {k: v for k, v in merged.items() if v is not None}
        else:
            call[key] = value
    return call


def zeros(*shape):
    return np.zeros(shape, "float32")


def states(h_width, c_width, batch=BATCH):
    return {"h0": zeros(batch, h_width), "c0": zeros(batch, c_width)}


LEFT_PADDED = np.array([[0, 1, 1, 1], [1, 1, 1, 1]], bool)
HOLES = np.array([[1, 0, 1, 0], [1, 1, 0, 0]], bool)
E = ErrorInput

# -- keras.layers.LSTM (units 3, so gate blocks are 12 wide) ---------------------
U = {"units": 3}
KERAS_LSTM = (
    E("unknown_kind", {"units": 3}, ConfigError, r"unknown kind 'keras.layers.LSTMM'", kind="keras.layers.LSTMM"),
    E("config_typo", {"units": 3, "go_backward": True}, ConfigError, r"unknown config key\(s\) \['go_backward'\]"),
    E("units_zero", {"units": 0}, ConfigError, r"config\['units'\] must be a positive integer, got 0"),
    E("units_negative", {"units": -2}, ConfigError, r"config\['units'\].*-2"),
    E("units_float", {"units": 2.5}, ConfigError, r"config\['units'\]"),
    E("units_missing", {}, ConfigError, r"config\['units'\] is required"),
    E(
        "unknown_activation",
        {"units": 3, "activation": "tanhh"},
        ConfigError,
        r"config\['activation'\]='tanhh' is not a Keras 3 activation",
    ),
    E(
        "refused_activation",
        {"units": 3, "recurrent_activation": "glu"},
        ConfigError,
        r"recurrent_activation.*glu.*not supported",
    ),
    E("bad_dtype", {"units": 3, "dtype": "int8"}, ConfigError, r"config\['dtype'\]='int8'"),
    E("bfloat16_refused", {"units": 3, "dtype": "mixed_bfloat16"}, ConfigError, r"mixed_bfloat16.*not supported"),
    E("stateful_refused", {"units": 3, "stateful": True}, ConfigError, r"config\['stateful'\]=True is not supported"),
    E("use_cudnn_true_refused", {"units": 3, "use_cudnn": True}, ConfigError, r"use_cudnn"),
    E("bad_implementation", {"units": 3, "implementation": 3}, ConfigError, r"implementation"),
    E("go_backwards_not_bool", {"units": 3, "go_backwards": "yes"}, ConfigError, r"go_backwards"),
    E(
        "dropout_none",
        {"units": 3, "dropout": None},
        ConfigError,
        r"config\['dropout'\] must be a number in \[0, 1\], got None",
    ),
    E("recurrent_dropout_string", {"units": 3, "recurrent_dropout": "0.2"}, ConfigError, r"recurrent_dropout"),
    E("dropout_above_one", {"units": 3, "dropout": 1.5}, ConfigError, r"dropout.*1.5"),
    E("config_not_dict", [("units", 3)], ConfigError, r"config must be a dict"),
    E(
        "missing_weight",
        U,
        WeightError,
        r"missing weight\(s\) \['recurrent_kernel'\]",
        {"weights": {"recurrent_kernel": None}},
    ),
    E("missing_bias", U, WeightError, r"missing weight\(s\) \['bias'\]", {"weights": {"bias": None}}),
    E(
        "unexpected_bias",
        {"units": 3, "use_bias": False},
        WeightError,
        r"unknown weight\(s\) \['bias'\]",
        {"weights": {"bias": zeros(12)}},
    ),
    E(
        "weight_typo",
        U,
        WeightError,
        r"unknown weight\(s\) \['kernal'\]",
        {"weights": {"kernel": None, "kernal": zeros(3, 12)}},
    ),
    E(
        "weight_scoped_name",
        U,
        WeightError,
        r"lstm/lstm_cell/kernel:0",
        {"weights": {"kernel": None, "lstm/lstm_cell/kernel:0": zeros(3, 12)}},
    ),
    E(
        "kernel_transposed",
        U,
        WeightError,
        r"weight 'kernel' has shape \(12, 3\), expected \(3, 12\)",
        {"weights": {"kernel": zeros(12, 3)}},
    ),
    E(
        "bias_wrong_length",
        U,
        WeightError,
        r"weight 'bias' has shape \(3,\), expected \(12,\)",
        {"weights": {"bias": zeros(3)}},
    ),
    E("weights_not_dict", U, WeightError, r"weights must be a dict", {"weights": [1, 2]}),
    E(
        "weight_not_numeric",
        U,
        WeightError,
        r"weight 'bias' must be a real numeric array",
        {"weights": {"bias": np.array(["a"] * 12)}},
    ),
    E(
        "x_2d",
        U,
        InputError,
        r"x must be 3-D \(batch, time, features\), got shape \(4, 3\)",
        {"x": zeros(TIME, FEATURES)},
    ),
    E("x_4d", U, InputError, r"x must be 3-D", {"x": zeros(BATCH, TIME, FEATURES, 1)}),
    E(
        "x_features_mismatch",
        U,
        WeightError,
        r"weight 'kernel' has shape \(3, 12\), expected \(4, 12\).*x features=4",
        {"x": zeros(BATCH, TIME, FEATURES + 1)},
    ),
    E("x_empty_time", U, InputError, r"at least one row and one step", {"x": zeros(BATCH, 0, FEATURES)}),
    E("x_complex", U, InputError, r"x must be a real numeric array", {"x": np.ones((BATCH, TIME, FEATURES), complex)}),
    E(
        "mask_wrong_shape",
        U,
        InputError,
        r"mask has shape \(2, 5\), expected \(batch, time\) = \(2, 4\)",
        {"mask": np.ones((BATCH, TIME + 1), bool)},
    ),
    E("mask_3d", U, InputError, r"mask has shape \(2, 4, 1\)", {"mask": np.ones((BATCH, TIME, 1), bool)}),
    E("mask_float", U, InputError, r"mask must be a bool array", {"mask": np.ones((BATCH, TIME), "float32")}),
    E("mask_non_binary_int", U, InputError, r"mask must be a bool array", {"mask": np.full((BATCH, TIME), 2)}),
    E("h0_wrong_shape", U, InputError, r"h0 has shape \(2, 4\), expected \(batch, 3\)", states(4, 3)),
    E("c0_wrong_batch", U, InputError, r"c0 has shape \(3, 3\)", {"h0": zeros(BATCH, 3), "c0": zeros(BATCH + 1, 3)}),
    E("h0_broadcastable_refused", U, InputError, r"h0 has shape \(1, 3\)", states(3, 3, batch=1)),
    E("h0_without_c0", U, InputError, r"give all of \['h0', 'c0'\] or none.*missing \['c0'\]", {"h0": zeros(BATCH, 3)}),
    E(
        "state_misnamed",
        U,
        InputError,
        r"unknown argument\(s\) \['m0'\]; the initial state is given as \['h0', 'c0'\]",
        {"m0": zeros(BATCH, 3)},
    ),
)

# -- TF1 cells ----------------------------------------------------------------------
PEEP = {"num_units": 4, "use_peepholes": True}
PROJ = {"num_units": 4, "num_proj": 2}
STATE_IS_TUPLE = (r"state_is_tuple.*not supported",)
BASIC_LSTM_CELL = (
    E("state_is_tuple_false", {"num_units": 3, "state_is_tuple": False}, ConfigError, *STATE_IS_TUPLE),
    E(
        "use_peepholes_unknown",
        {"num_units": 3, "use_peepholes": True},
        ConfigError,
        r"unknown config key.*'use_peepholes'",
    ),
    E("num_units_missing", {}, ConfigError, r"num_units.*required"),
    E("forget_bias_string", {"num_units": 3, "forget_bias": "1"}, ConfigError, r"forget_bias.*real number"),
    E("keras3_only_activation", {"num_units": 3, "activation": "hard_tanh"}, ConfigError, r"'hard_tanh'.*tf_keras"),
    E(
        "kernel_rows_without_state",
        {"num_units": 4},
        WeightError,
        r"'kernel' has shape \(3, 16\), expected \(7, 16\)",
        {"weights": {"kernel": zeros(3, 16)}},
    ),
    E(
        "peephole_weight_unknown",
        {"num_units": 4},
        WeightError,
        r"unknown weight.*'w_f_diag'",
        {"weights": {"w_f_diag": zeros(4)}},
    ),
    E("mask_with_holes", {"num_units": 4}, InputError, r"row\(s\) \[0\] are not right-padded", {"mask": HOLES}),
)
LSTM_CELL = (
    E("state_is_tuple_false", {"num_units": 3, "state_is_tuple": False}, ConfigError, *STATE_IS_TUPLE),
    E("cell_clip_negative", {"num_units": 3, "cell_clip": -1.0}, ConfigError, r"cell_clip.*>= 0"),
    E("proj_clip_negative", {"num_units": 3, "num_proj": 2, "proj_clip": -0.5}, ConfigError, r"proj_clip.*>= 0"),
    E("cell_clip_nan", {"num_units": 3, "cell_clip": float("nan")}, ConfigError, r"cell_clip"),
    E("keras_units_key", {"num_units": 3, "units": 3}, ConfigError, r"unknown config key.*'units'"),
    E("num_units_zero", {"num_units": 0}, ConfigError, r"num_units.*positive integer"),
    E("num_proj_zero", {"num_units": 3, "num_proj": 0}, ConfigError, r"num_proj.*positive integer"),
    E("unit_shards", {"num_units": 3, "num_unit_shards": 2}, ConfigError, r"num_unit_shards.*not supported"),
    E("proj_shards", {"num_units": 3, "num_proj": 2, "num_proj_shards": 3}, ConfigError, r"num_proj_shards"),
    E("use_peepholes_int", {"num_units": 3, "use_peepholes": 1}, ConfigError, r"use_peepholes.*True or False"),
    E("mixed_float16", {"num_units": 3, "dtype": "mixed_float16"}, ConfigError, r"mixed_float16.*not supported"),
    E("bfloat16", {"num_units": 3, "dtype": "bfloat16"}, ConfigError, r"bfloat16.*not supported"),
    E("peephole_missing", PEEP, WeightError, r"missing weight.*'w_o_diag'", {"weights": {"w_o_diag": None}}),
    E(
        "peephole_wrong_shape",
        PEEP,
        WeightError,
        r"'w_f_diag' has shape \(3,\), expected \(4,\)",
        {"weights": {"w_f_diag": zeros(3)}},
    ),
    E(
        "projection_missing",
        PROJ,
        WeightError,
        r"missing weight.*'projection/kernel'",
        {"weights": {"projection/kernel": None}},
    ),
    E(
        "projection_transposed",
        PROJ,
        WeightError,
        r"'projection/kernel' has shape \(2, 4\)",
        {"weights": {"projection/kernel": zeros(2, 4)}},
    ),
    # kernel rows are input_dim + num_proj, not input_dim + num_units
    E(
        "kernel_rows_num_units",
        PROJ,
        WeightError,
        r"'kernel' has shape \(7, 16\), expected \(5, 16\)",
        {"weights": {"kernel": zeros(3 + 4, 16)}},
    ),
    E(
        "keras_weight_names",
        {"num_units": 4},
        WeightError,
        r"unknown weight.*'recurrent_kernel'",
        {"weights": {"recurrent_kernel": zeros(4, 16)}},
    ),
    E("left_padded_mask", {"num_units": 4}, InputError, r"row\(s\) \[0\] are not right-padded", {"mask": LEFT_PADDED}),
    E("h0_is_num_units_wide", PROJ, InputError, r"h0 has shape \(2, 4\), expected.*\(2, 2\)", states(4, 4)),
    E("c0_without_h0", PROJ, InputError, r"give all of \['h0', 'c0'\] or none", {"c0": zeros(BATCH, 2)}),
)

# -- layer-norm cells -------------------------------------------------------------------
C2 = {"num_units": 2}
MIXED_POLICY = {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
CONTRIB = (
    E("num_units_missing", {}, ConfigError, "num_units.*required"),
    E("dropout", {"num_units": 2, "dropout_keep_prob": 0.9}, ConfigError, "dropout on every call"),
    E("mixed", {"num_units": 2, "dtype": "mixed_float16"}, ConfigError, "no mixed-precision"),
    E("mixed_as_a_serialized_policy", {"num_units": 2, "dtype": MIXED_POLICY}, ConfigError, "no mixed-precision"),
    E("go_backwards", {"num_units": 2, "go_backwards": True}, ConfigError, "unknown config key"),
    E("activation", {"num_units": 2, "activation": "gelu"}, ConfigError, "activation"),
    E("forget_bias", {"num_units": 2, "forget_bias": "1"}, ConfigError, "forget_bias"),
    E("left_padded_mask", C2, InputError, "right-padded", {"mask": LEFT_PADDED}),
    E("bias_with_layer_norm", C2, WeightError, "unknown weight", {"weights": {"bias": zeros(8)}}),
    E("bias_missing_without_layer_norm", {"num_units": 2, "layer_norm": False}, WeightError, "missing weight.*bias",
      {"weights": {"bias": None}}),
    E("kernel_shape", C2, WeightError, "shape", {"weights": {"kernel": zeros(3, 8)}}),
)
T2 = {"units": 2}
TFA = (
    E("units_missing", {}, ConfigError, "units.*required"),
    E("epsilon", {"units": 2, "norm_epsilon": -1.0}, ConfigError, "norm_epsilon"),
    E("mixed_non_fused", {"units": 2, "dtype": "mixed_float16", "norm_epsilon": 1e-6}, ConfigError, "non-fused"),
    E("keras3_activation", {"units": 2, "activation": "gelu"}, ConfigError, "Keras 2.15"),
    E("dropout_range", {"units": 2, "dropout": 1.5}, ConfigError, "dropout"),
    E("norm_weight_shape", T2, WeightError, "state_norm/gamma.*shape", {"weights": {"state_norm/gamma": zeros(8)}}),
    E("contrib_names", T2, WeightError, "unknown weight", {"weights": {"input/gamma": zeros(2)}}),
    E("c0_without_h0", T2, InputError, r"give all of \['h0', 'c0'\] or none", {"c0": zeros(BATCH, 2)}),
    E("mask_of_floats", T2, InputError, "mask must be a bool array", {"mask": np.ones((BATCH, TIME), "float32")}),
)

# -- tf_keras.layers.LSTM (Keras 2) -----------------------------------------------------
TF_KERAS_LSTM = (
    E("config_typo", {"units": 3, "go_backward": True}, ConfigError, r"unknown config key\(s\) \['go_backward'\]"),
    E("keras3_only_key", {"units": 3, "use_cudnn": True}, ConfigError, r"unknown config key\(s\) \['use_cudnn'\]"),
    E("units_missing", {}, ConfigError, r"config\['units'\] is required"),
    E("units_zero", {"units": 0}, ConfigError, r"config\['units'\] must be a positive integer, got 0"),
    E("stateful_refused", {"units": 3, "stateful": True}, ConfigError, r"config\['stateful'\]=True is not supported"),
    E(
        "keras3_only_activation",
        {"units": 3, "activation": "hard_tanh"},
        ConfigError,
        r"config\['activation'\]='hard_tanh' is not a tf_keras \(Keras 2\) activation",
    ),
    E(
        "keras3_only_recurrent_activation",
        {"units": 3, "recurrent_activation": "hard_silu"},
        ConfigError,
        r"'hard_silu' is not a tf_keras",
    ),
    E("implementation_3", {"units": 3, "implementation": 3}, ConfigError, r"implementation'\] must be 0, 1 or 2"),
    E("implementation_bool", {"units": 3, "implementation": True}, ConfigError, r"must be 0, 1 or 2, got True"),
    E("unroll_int", {"units": 3, "unroll": 1}, ConfigError, r"config\['unroll'\] must be True or False"),
    E(
        "time_major_string",
        {"units": 3, "time_major": "yes"},
        ConfigError,
        r"config\['time_major'\] must be True or False",
    ),
    E("bfloat16", {"units": 3, "dtype": "mixed_bfloat16"}, ConfigError, r"mixed_bfloat16.*not supported"),
    E(
        "policy_without_name",
        {"units": 3, "dtype": {"class_name": "Policy"}},
        ConfigError,
        r"cannot read a policy name",
    ),
    E(
        "recurrent_dropout_above_one",
        {"units": 3, "recurrent_dropout": 1.5},
        ConfigError,
        r"recurrent_dropout'\] must be a number in \[0, 1\]",
    ),
    E("missing_bias", U, WeightError, r"missing weight\(s\) \['bias'\]", {"weights": {"bias": None}}),
    E(
        "unexpected_bias",
        {"units": 3, "use_bias": False},
        WeightError,
        r"unknown weight\(s\) \['bias'\]",
        {"weights": {"bias": zeros(12)}},
    ),
    E(
        "scoped_name",
        U,
        WeightError,
        r"lstm_cell/kernel:0",
        {"weights": {"kernel": None, "lstm_cell/kernel:0": zeros(3, 12)}},
    ),
    E(
        "time_major_mask",
        {"units": 3, "time_major": True},
        InputError,
        r"mask has shape \(4, 2\), expected \(batch, time\) = \(2, 4\)",
        {"mask": np.ones((TIME, BATCH), bool)},
    ),
    E("h0_without_c0", U, InputError, r"give all of \['h0', 'c0'\] or none", {"h0": zeros(BATCH, 3)}),
    E("h0_wrong_shape", U, InputError, r"h0 has shape \(2, 4\), expected \(batch, 3\)", states(4, 3)),
)

# -- torch.nn.LSTM (input_size 3, hidden 3: gate blocks are 12 rows) -----------------
TORCH = {"input_size": FEATURES, "hidden_size": 3}
TORCH_BI = {**TORCH, "bidirectional": True, "num_layers": 2}
TORCH_LSTM = (
    E("hidden_missing", {"input_size": 3}, ConfigError, r"config\['hidden_size'\] is required"),
    E("keras_name", {"input_size": 3, "units": 3}, ConfigError, r"unknown config key\(s\) \['units'\]"),
    E("proj_not_smaller", {**TORCH, "proj_size": 3}, ConfigError, r"proj_size.*smaller than hidden_size"),
    E("layers_zero", {**TORCH, "num_layers": 0}, ConfigError, r"config\['num_layers'\] must be a positive integer"),
    E("dtype_half", {**TORCH, "dtype": "float16"}, ConfigError, r"config\['dtype'\]='float16' is not supported"),
    E("device_cuda", {**TORCH, "device": "cuda"}, ConfigError, r"device.*CPU"),
    E("dropout_range", {**TORCH, "dropout": 2.0}, ConfigError, r"dropout.*\[0, 1\]"),
    E("input_size_mismatch", TORCH, InputError, r"x has 4 features, but config\['input_size'\] is 3",
      {"x": zeros(BATCH, TIME, FEATURES + 1)}),
    E("keras_layout_weight", TORCH, WeightError, r"weight 'weight_ih_l0' has shape \(3, 12\), expected \(12, 3\)",
      {"weights": {"weight_ih_l0": zeros(FEATURES, 12)}}),
    E("reverse_weights_missing", TORCH_BI, WeightError, r"missing weight\(s\) \['weight_hh_l1_reverse'\]",
      {"weights": {"weight_hh_l1_reverse": None}}),
    E("one_bias", TORCH, WeightError, r"missing weight\(s\) \['bias_hh_l0'\]", {"weights": {"bias_hh_l0": None}}),
    E("h0_unstacked", TORCH, InputError,
      r"h0 has shape \(2, 3\), expected \(num_layers \* num_directions, batch, 3\) = \(1, 2, 3\)", states(3, 3)),
    E("h0_one_slot_for_two", TORCH_BI, InputError, r"h0 has shape \(1, 2, 3\).*= \(4, 2, 3\)",
      {"h0": zeros(1, BATCH, 3), "c0": zeros(4, BATCH, 3)}),
    E("mask_left_padded", TORCH, InputError, r"mask row\(s\) \[0\] are not right-padded", {"mask": LEFT_PADDED}),
    E("mask_empty_row", TORCH, InputError, r"mask row\(s\) \[1\] have length 0.*pack_padded_sequence",
      {"mask": np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)}),
)

# -- onnx.LSTM (hidden 3) --------------------------------------------------------------------
ONNX = {"hidden_size": 3}
ONNX_BI = {"hidden_size": 3, "direction": "bidirectional"}
ONNX_LSTM = (
    E("hidden_missing", {}, ConfigError, r"config\['hidden_size'\] is required"),
    E("direction_typo", {**ONNX, "direction": "backward"}, ConfigError, r"config\['direction'\] must be one of"),
    E("clip_zero", {**ONNX, "clip": 0}, ConfigError, r"config\['clip'\] must be a positive number"),
    E("input_forget_bool_like", {**ONNX, "input_forget": 2}, ConfigError, r"input_forget"),
    E("activation_unknown", {**ONNX, "activations": ["Sigmoid", "Swish", "Tanh"]}, ConfigError,
      r"unknown activation\(s\) \['Swish'\]"),
    E("activations_one_direction_for_two", {**ONNX_BI, "activations": ["Sigmoid", "Tanh", "Tanh"]}, ConfigError,
      r"3 functions per direction \(6 for direction='bidirectional'\), got 3"),
    E("alpha_left_over", {**ONNX, "activation_alpha": [0.5]}, ConfigError, r"1 activation_alpha.*left over"),
    E("layout_2", {**ONNX, "layout": 2}, ConfigError, r"layout must be 0"),
    E("float64_refused", {**ONNX, "dtype": "float64"}, ConfigError, r"float32 only"),
    E("W_unstacked", ONNX, WeightError, r"weight 'W' has shape \(12, 3\), expected \(1, 12, 3\)",
      {"weights": {"W": zeros(12, FEATURES)}}),
    E("B_one_half", ONNX, WeightError, r"weight 'B' has shape \(1, 12\), expected \(1, 24\)",
      {"weights": {"B": zeros(1, 12)}}),
    E("torch_names", ONNX, WeightError, r"unknown weight\(s\) \['weight_ih_l0'\]",
      {"weights": {"weight_ih_l0": zeros(12, FEATURES)}}),
    E("R_missing", ONNX, WeightError, r"missing weight\(s\) \['R'\]", {"weights": {"R": None}}),
    E("initial_h_layout_1", ONNX_BI, InputError, r"h0 has shape \(2, 1, 3\), expected .* = \(2, 2, 3\)",
      {"h0": zeros(BATCH, 1, 3), "c0": zeros(2, BATCH, 3)}),
    E("mask_holes", ONNX, InputError, r"mask row\(s\) \[0\] are not right-padded", {"mask": HOLES}),
)
