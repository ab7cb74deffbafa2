"""Golden cases for the layer-norm LSTMs: contrib's ``LayerNormBasicLSTMCell``
(oracle: the op-for-op port in ``oracles/contrib_worker.py``) and
``tfa.rnn.LayerNormLSTMCell`` (oracle: tensorflow-addons 0.23 on TF 2.15).

Except for the two seed cases, kernels differ per gate block and gamma/beta
are not 1/0, so that a gate-order bug, a joint-vs-per-gate normalisation bug
or a gamma/beta mix-up changes the numbers.
"""

import numpy as np

from .case import Case, golden, one_hot_the_mice_had, per_gate, wide_float16_case

CONTRIB = "tf.contrib.rnn.LayerNormBasicLSTMCell"
TFA = "tfa.rnn.LayerNormLSTMCell"
CONTRIB_NORMS = ("input", "transform", "forget", "output", "state")


def _x(rng, batch, time, features, dtype="float32", scale=1.0):
    return (scale * rng.standard_normal((batch, time, features))).astype(dtype)


def _gamma_beta(rng, width, dtype, gamma_scale=0.5, beta_scale=0.3):
    gamma = (1.0 + gamma_scale * rng.standard_normal(width)).astype(dtype)
    beta = (beta_scale * rng.standard_normal(width)).astype(dtype)
    return gamma, beta


def _contrib_weights(rng, input_dim, units, dtype="float32", layer_norm=True, scales=(0.8, -0.6, 1.2, 0.5)):
    w = {"kernel": per_gate(rng, (input_dim + units, 4 * units), scales, dtype)}
    if layer_norm:
        for scope in CONTRIB_NORMS:
            w[f"{scope}/gamma"], w[f"{scope}/beta"] = _gamma_beta(rng, units, dtype)
    else:
        w["bias"] = (np.repeat([0.1, -0.2, 1.0, 0.3], units) + 0.05 * rng.standard_normal(4 * units)).astype(dtype)
    return w


def _tfa_weights(rng, input_dim, units, dtype="float32", bias=True, scales=(0.7, -0.5, 1.1, 0.4)):
    w = {
        "kernel": per_gate(rng, (input_dim, 4 * units), scales, dtype),
        "recurrent_kernel": per_gate(rng, (units, 4 * units), [s * 0.6 for s in scales[::-1]], dtype),
    }
    if bias:
        w["bias"] = (np.repeat([0.1, 1.0, -0.2, 0.3], units) + 0.05 * rng.standard_normal(4 * units)).astype(dtype)
    for name, width in (("kernel_norm", 4 * units), ("recurrent_norm", 4 * units), ("state_norm", units)):
        w[f"{name}/gamma"], w[f"{name}/beta"] = _gamma_beta(rng, width, dtype)
    return w


# -- contrib ------------------------------------------------------------------


@golden("ln_contrib_seed_the_mice_had")
def ln_contrib_seed_the_mice_had():
    x = one_hot_the_mice_had()
    w = {"kernel": np.full((15, 20), 0.1, "float32")}
    for scope in CONTRIB_NORMS:
        w[f"{scope}/gamma"] = np.ones(5, "float32")
        w[f"{scope}/beta"] = np.zeros(5, "float32")
    return Case(
        CONTRIB, {"num_units": 5}, x, w,
        notes=(
            "The seed: one-hot 'the mice had', batch 1, 5 units, kernel all 0.1, gamma 1, beta 0. "
            "Every output and state is exactly zero: a constant kernel makes each gate block constant "
            "across units, layer norm maps a constant block to beta = 0, so i, f, o = sigmoid(0 or 1), "
            "g = tanh(0) = 0, c = LN(0) = 0, h = 0, forever. It pins only that degenerate fixed point "
            "(and that no bias is added under layer_norm=True); it cannot see gate order, gamma, "
            "epsilon or the recurrence."
        ),
        meta={"all_zero": True},
    )


@golden("ln_contrib_seed_no_layer_norm")
def ln_contrib_seed_no_layer_norm():
    x = one_hot_the_mice_had()
    w = {"kernel": np.full((15, 20), 0.1, "float32"), "bias": np.full((20,), 0.1, "float32")}
    return Case(
        CONTRIB, {"num_units": 5, "layer_norm": False}, x, w,
        notes=(
            "The seed's own comparison: layer_norm=False, every weight and bias 0.1 (the cell is then "
            "BasicLSTMCell with its bias). All four gates see the same pre-activation and all units are "
            "equal, so gate order (i, j, f, o) and unit permutations are invisible; it pins the forget "
            "bias (f + 1.0), the presence of the bias and the recurrence. No normalisation runs."
        ),
    )


@golden("ln_contrib_per_gate")
def ln_contrib_per_gate():
    rng = np.random.default_rng(101)
    return Case(CONTRIB, {"num_units": 4}, _x(rng, 2, 6, 3), _contrib_weights(rng, 3, 4),
                notes="Per-gate kernels, gamma/beta drawn per scope: gate order, per-gate (not joint) "
                      "normalisation and the five gamma/beta pairs all change the numbers.")


@golden("ln_contrib_forget_bias_relu")
def ln_contrib_forget_bias_relu():
    rng = np.random.default_rng(102)
    return Case(CONTRIB, {"num_units": 3, "forget_bias": -0.5, "activation": "relu"},
                _x(rng, 2, 5, 4), _contrib_weights(rng, 4, 3),
                notes="Non-default forget_bias and activation (applied to j and to the normalised c).")


@golden("ln_contrib_small_variance")
def ln_contrib_small_variance():
    rng = np.random.default_rng(103)
    units, features = 4, 3
    w = _contrib_weights(rng, features, units, scales=(1e-4, 0.8, 1e-4, 0.6))
    return Case(CONTRIB, {"num_units": units, "dtype": "float64"}, _x(rng, 2, 5, features, "float64"),
                {k: v.astype("float64") for k, v in w.items()},
                notes="float64, i and f kernel blocks at scale 1e-4: their blocks have variance ~1e-8, "
                      "far above 1e-12, and are normalised to O(1) anyway (layer norm is scale-free). "
                      "Pins that the epsilon is tiny (1e-12): with tfa's 1e-3 these gates would collapse "
                      "towards beta.")


@golden("ln_contrib_epsilon_dominates")
def ln_contrib_epsilon_dominates():
    rng = np.random.default_rng(104)
    units, features = 4, 3
    w = _contrib_weights(rng, features, units, scales=(1e-7, 0.8, 1e-7, 0.6))
    return Case(CONTRIB, {"num_units": units, "dtype": "float64"}, _x(rng, 1, 4, features, "float64"),
                {k: v.astype("float64") for k, v in w.items()},
                notes="float64, i and f blocks at scale 1e-7 (variance ~1e-14 < epsilon 1e-12): there "
                      "epsilon dominates and the normalised gates shrink towards beta; pins the value "
                      "1e-12 and that it sits inside the rsqrt.")


@golden("ln_contrib_long_initial_state")
def ln_contrib_long_initial_state():
    rng = np.random.default_rng(105)
    return Case(CONTRIB, {"num_units": 3}, _x(rng, 2, 50, 2), _contrib_weights(rng, 2, 3),
                h0=rng.standard_normal((2, 3)).astype("float32"), c0=rng.standard_normal((2, 3)).astype("float32"),
                notes="50 steps from non-zero h0, c0 (state tuple order: TF holds (c, h)).")


@golden("ln_contrib_mask_right_padded")
def ln_contrib_mask_right_padded():
    rng = np.random.default_rng(106)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
    return Case(CONTRIB, {"num_units": 3}, _x(rng, 3, 5, 2), _contrib_weights(rng, 2, 3), mask=mask,
                h0=rng.standard_normal((3, 3)).astype("float32"), c0=rng.standard_normal((3, 3)).astype("float32"),
                notes="dynamic_rnn sequence_length 5, 3, 0: zero outputs past the length, state copied "
                      "through; a zero-length row returns its initial state.")


@golden("ln_contrib_float64")
def ln_contrib_float64():
    rng = np.random.default_rng(107)
    w = _contrib_weights(rng, 3, 4, dtype="float64")
    return Case(CONTRIB, {"num_units": 4, "dtype": "float64"}, _x(rng, 2, 8, 3, "float64"), w,
                notes="float64 inputs and variables (epsilon 1e-12).")


@golden("ln_contrib_float16")
def ln_contrib_float16():
    rng = np.random.default_rng(108)
    w = _contrib_weights(rng, 3, 4, dtype="float16")
    return Case(CONTRIB, {"num_units": 4, "dtype": "float16"}, _x(rng, 2, 6, 3, "float16"), w,
                notes="float16: epsilon 1e-3 (contrib's float16 special case), statistics in float32.")


# -- tfa ----------------------------------------------------------------------


@golden("ln_tfa_per_gate")
def ln_tfa_per_gate():
    rng = np.random.default_rng(201)
    return Case(TFA, {"units": 4}, _x(rng, 2, 6, 3), _tfa_weights(rng, 3, 4),
                notes="Per-gate kernels; 4u-wide kernel_norm/recurrent_norm gamma/beta: a per-gate "
                      "(contrib-style) normalisation, a gate-order or a norm mix-up changes the numbers. "
                      "float32, default epsilon 1e-3: Keras' fused path.")


@golden("ln_tfa_seed_constant")
def ln_tfa_seed_constant():
    x = one_hot_the_mice_had()
    w = {"kernel": np.full((10, 20), 0.1, "float32"), "recurrent_kernel": np.full((5, 20), 0.1, "float32"),
         "bias": np.full((20,), 0.1, "float32")}
    for name, width in (("kernel_norm", 20), ("recurrent_norm", 20), ("state_norm", 5)):
        w[f"{name}/gamma"] = np.ones(width, "float32")
        w[f"{name}/beta"] = np.zeros(width, "float32")
    return Case(TFA, {"units": 5}, x, w,
                notes="The seed's constant weights on tfa: both joint norms see a constant 20-wide row and "
                      "return beta = 0, so z = bias = 0.1 everywhere; c = LN(constant) = 0, h = 0. Like "
                      "the contrib seed it pins only a degenerate fixed point.")


@golden("ln_tfa_no_bias_hard_sigmoid")
def ln_tfa_no_bias_hard_sigmoid():
    rng = np.random.default_rng(202)
    return Case(TFA, {"units": 3, "use_bias": False, "recurrent_activation": "hard_sigmoid"},
                _x(rng, 2, 5, 4), _tfa_weights(rng, 4, 3, bias=False),
                notes="use_bias=False and Keras 2's hard_sigmoid clip(0.2 x + 0.5, 0, 1) (Keras 3's "
                      "relu6(x + 3) / 6 differs).")


@golden("ln_tfa_small_epsilon_nonfused")
def ln_tfa_small_epsilon_nonfused():
    rng = np.random.default_rng(203)
    return Case(TFA, {"units": 4, "norm_epsilon": 1e-6}, _x(rng, 2, 5, 3),
                _tfa_weights(rng, 3, 4, scales=(1e-3, 0.7, 1e-3, 0.5)),
                notes="norm_epsilon 1e-6 < 1.001e-5: Keras leaves the fused path for moments + "
                      "batch_normalization; small i/f kernel blocks keep the rows' variance near epsilon.")


@golden("ln_tfa_epsilon_matters")
def ln_tfa_epsilon_matters():
    rng = np.random.default_rng(204)
    return Case(TFA, {"units": 4, "dtype": "float64"}, _x(rng, 2, 5, 3, "float64", scale=0.02),
                _tfa_weights(rng, 3, 4, dtype="float64", scales=(0.05, 0.04, 0.06, 0.03)),
                notes="float64 (non-fused path), small inputs and kernels: the joint rows' variance is "
                      "~1e-5..1e-4, comparable to epsilon 1e-3, so the value of epsilon shows.")


@golden("ln_tfa_long_initial_state")
def ln_tfa_long_initial_state():
    rng = np.random.default_rng(205)
    return Case(TFA, {"units": 3}, _x(rng, 2, 50, 2), _tfa_weights(rng, 2, 3),
                h0=rng.standard_normal((2, 3)).astype("float32"), c0=rng.standard_normal((2, 3)).astype("float32"),
                notes="50 steps from non-zero h0, c0.")


@golden("ln_tfa_mask_backwards")
def ln_tfa_mask_backwards():
    rng = np.random.default_rng(206)
    mask = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], bool)
    return Case(TFA, {"units": 3, "go_backwards": True}, _x(rng, 2, 5, 3), _tfa_weights(rng, 3, 3), mask=mask,
                h0=rng.standard_normal((2, 3)).astype("float32"), c0=rng.standard_normal((2, 3)).astype("float32"),
                notes="keras.layers.RNN(go_backwards=True) with a gappy mask: masked steps repeat the "
                      "previous output (zeros before the first valid one), states carry.")


@golden("ln_tfa_float64")
def ln_tfa_float64():
    rng = np.random.default_rng(207)
    return Case(TFA, {"units": 4, "dtype": "float64"}, _x(rng, 2, 8, 3, "float64"),
                _tfa_weights(rng, 3, 4, dtype="float64"),
                notes="float64 (global policy float64): Keras' non-fused layer norm.")


@golden("ln_tfa_mixed_float16")
def ln_tfa_mixed_float16():
    rng = np.random.default_rng(208)
    return Case(TFA, {"units": 4, "dtype": "mixed_float16"}, _x(rng, 2, 6, 3, "float16"),
                _tfa_weights(rng, 3, 4),
                notes="mixed_float16: float32 variables, so the fused layer norm (statistics in float32), "
                      "the rest in float16.")


@golden("ln_tfa_float16")
def ln_tfa_float16():
    rng = np.random.default_rng(209)
    return Case(TFA, {"units": 4, "dtype": "float16"}, _x(rng, 2, 6, 3, "float16"),
                _tfa_weights(rng, 3, 4, dtype="float16"),
                notes="float16 everywhere: non-fused layer norm in float16 (moments in float32).")


@golden("ln_contrib_float16_wide")
def ln_contrib_float16_wide():
    return wide_float16_case(CONTRIB, {"num_units": 64, "dtype": "float16"}, 46, notes=(
        "concat([x, h]) @ kernel is one float32-accumulated MatMul (the x half stays float32 until the h "
        "half is added); batch 3 < 8 puts every rsqrt on Eigen's scalar path (two roundings)."))


@golden("ln_tfa_float16_wide_one_row")
def ln_tfa_float16_wide_one_row():
    return wide_float16_case(TFA, {"units": 64, "dtype": "float16"}, 47, batch=1, notes=(
        "TF 2.15 accumulates in half; one row takes Eigen's GEMV, which sums x @ kernel's 256 products "
        "in blocks of 16 (tf215_matmul)."))


@golden("ln_tfa_float16_split_accumulators")
def ln_tfa_float16_split_accumulators():
    return wide_float16_case(TFA, {"units": 6, "dtype": "float16"}, 48, batch=5, features=40, notes=(
        "TF 2.15's half GEBP kernel: 4 * 6 = 24 outputs leave columns 16-23 to the one-packet kernel, "
        "which sums even and odd k apart for the 4 rows of a full panel (tf215_matmul); row 5 sums in order."))
