"""``Reference.grad`` against the frameworks' own reverse mode, through the
records (``KindRecord.grad``: the bound per dtype policy, with its
measurement): ``tf.GradientTape`` on the real ``keras.layers.LSTM``,
``tf_keras.layers.LSTM``, the TF1 cells and contrib's port under
``dynamic_rnn``, tfa's cell in ``keras.layers.RNN``; ``torch.autograd`` on
``nn.LSTM``/``nn.LSTMCell``; ``onnx.LSTM`` through the torch oracle and the
converter (``lstm_ref/harness/grad_oracle.py``: ONNX Runtime has no
training here).  Every input, initial state and weight is compared, and the
per-step dL/dh_t and dL/dc_t each worker returns (``steps:*``).

The reference's gradient is float64 (the float64 forward at the inputs
rounded as ``run`` rounds them); the framework's is computed in the layer's
dtype.  Each array passes when ``max |d| / (1 + |g_ref|)`` stays within the
record's bound plus the conditioning term: how far the reference's own
gradient moves when its inputs are perturbed by one rounding, scaled
(``grad_oracle.check``; the numbers and their measurement:
``docs/tolerances.md``, Gradients).
"""

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from lstm_ref import from_config
from lstm_ref.case import Case, build_weights
from lstm_ref.convert import ConversionError
from lstm_ref.errors import ConfigError
from lstm_ref.harness import grad_oracle
from lstm_ref.harness.oracles.client import OracleInputError
from lstm_ref.harness.records import RECORDS, record_of

KERAS = "keras.layers.LSTM"
LSTM, CELL, ONNX = "torch.nn.LSTM", "torch.nn.LSTMCell", "onnx.LSTM"
TK, BASIC, TF1 = "tf_keras.layers.LSTM", "tf.compat.v1.nn.rnn_cell.BasicLSTMCell", "tf.compat.v1.nn.rnn_cell.LSTMCell"
CONTRIB, TFA = "tf.contrib.rnn.LayerNormBasicLSTMCell", "tfa.rnn.LayerNormLSTMCell"

MASK_HOLES = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 1, 1, 1]], bool)
MASK_RIGHT = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)

# (kind, config, mask, initial states), float64 and float32, two seeds.
CASES = [
    (KERAS, {"units": 4}, None, True),
    (KERAS, {"units": 4, "go_backwards": True}, MASK_HOLES, True),
    (KERAS, {"units": 3, "implementation": 1, "use_bias": False, "zero_output_for_mask": True}, MASK_HOLES, False),
    (KERAS, {"units": 3, "activation": "softsign", "recurrent_activation": "hard_sigmoid"}, MASK_HOLES, True),
    (CELL, {"input_size": 3, "hidden_size": 4}, None, True),
    (CELL, {"input_size": 3, "hidden_size": 4, "bias": False}, None, False),
    (LSTM, {"input_size": 3, "hidden_size": 4}, None, True),
    (LSTM, {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True}, MASK_RIGHT, True),
    (LSTM, {"input_size": 3, "hidden_size": 4, "proj_size": 2, "bidirectional": True}, MASK_RIGHT, False),
    (TK, {"units": 4}, MASK_HOLES, True),
    (
        TK,
        {"units": 3, "implementation": 1, "go_backwards": True, "recurrent_activation": "hard_sigmoid"},
        MASK_HOLES,
        True,
    ),
    (TK, {"units": 3, "implementation": 0, "activation": None, "use_bias": False}, None, False),
    (TK, {"units": 3, "unroll": True, "go_backwards": True, "zero_output_for_mask": True}, MASK_HOLES, True),
    (TK, {"units": 3, "time_major": True, "go_backwards": True}, MASK_HOLES, True),  # x, mask transposed for TF
    (BASIC, {"num_units": 4, "forget_bias": 0.7}, MASK_RIGHT, True),
    (BASIC, {"num_units": 3, "activation": "hard_sigmoid"}, None, False),
    (TF1, {"num_units": 4, "use_peepholes": True}, MASK_RIGHT, True),
    (
        TF1,
        {"num_units": 4, "use_peepholes": True, "cell_clip": 0.4, "num_proj": 3, "proj_clip": 0.15},
        MASK_RIGHT,
        True,
    ),
    (TF1, {"num_units": 3, "num_proj": 2, "activation": "hard_sigmoid", "forget_bias": 0.0}, None, False),
    (CONTRIB, {"num_units": 4}, MASK_RIGHT, True),
    (CONTRIB, {"num_units": 3, "forget_bias": -0.5, "activation": "relu"}, None, False),
    (CONTRIB, {"num_units": 3, "layer_norm": False}, MASK_RIGHT, True),
    (TFA, {"units": 4}, MASK_HOLES, True),
    (
        TFA,
        {"units": 3, "go_backwards": True, "recurrent_activation": "hard_sigmoid", "use_bias": False},
        MASK_HOLES,
        True,
    ),
    (TFA, {"units": 3, "zero_output_for_mask": True, "norm_epsilon": 1e-5}, MASK_HOLES, False),
    # onnx.LSTM through torch.nn.LSTM (the converter's configs: Sigmoid/Tanh, no clip, no P)
    (ONNX, {"hidden_size": 4}, None, True),
    (ONNX, {"hidden_size": 3, "direction": "bidirectional"}, MASK_RIGHT, True),
    (ONNX, {"hidden_size": 3, "layout": 1}, MASK_RIGHT, False),
]
# float16 and mixed_float16 (where the framework has them), one seed.
HALF_CASES = [
    (KERAS, {"units": 4}, MASK_HOLES, True),
    (KERAS, {"units": 3, "go_backwards": True, "recurrent_activation": "hard_sigmoid"}, None, False),
    (TK, {"units": 4}, MASK_HOLES, True),
    (TK, {"units": 3, "implementation": 1, "go_backwards": True}, None, False),
    (BASIC, {"num_units": 4, "forget_bias": 0.7}, MASK_RIGHT, True),
    (TF1, {"num_units": 4, "use_peepholes": True, "cell_clip": 0.8, "num_proj": 3}, MASK_RIGHT, True),
    (CONTRIB, {"num_units": 4}, MASK_RIGHT, True),
    (TFA, {"units": 4}, MASK_HOLES, True),
    (TFA, {"units": 3, "go_backwards": True}, None, True),  # without h0 its first state norm is ill-conditioned
]
HALF_DTYPES = {KERAS: ("float16", "mixed_float16"), TK: ("float16", "mixed_float16"), TFA: ("float16", "mixed_float16")}


def make_case(kind, config, mask, states, dtype, seed, weights_for=build_weights):
    """The case and its upstream: weights per gate block (``weights_for``),
    x and states N(0, 1) and 0.5 N(0, 1), every array in the dtype the
    framework holds it (variables: the policy's variable dtype)."""
    config = {**config} if kind == ONNX else {**config, "dtype": dtype}
    ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    features = config.get("input_size", 3)
    weights = {k: np.asarray(v).astype(ref.policy.variable) for k, v in weights_for(ref, rng, features).items()}
    if kind == ONNX:
        weights.pop("P")  # torch, the oracle, has no peepholes
    x = rng.standard_normal((3, 5, features)).astype(ref.policy.compute)
    init = {}
    if states:
        init = {
            f"{s}0": (0.5 * rng.standard_normal(ref.state_shape(s, 3))).astype(ref.policy.compute) for s in ref.STATE
        }
        if states == "c0=0":
            init["c0"] = np.zeros_like(init["c0"])
    case = Case(kind, config, x, weights, mask, **init)
    return case, grad_oracle.draw_upstream(case, rng)


def assert_grad_parity(oracle_for, case, upstream, context=""):
    """Every gradient array within the record's bound for the case's dtype
    plus, below float64, the conditioning term (``grad_oracle.check``)."""
    policy = case.reference().policy.name
    tol = record_of(case.kind).grad_tolerance(policy)
    verdicts = grad_oracle.check(oracle_for, case, upstream, tol)
    worst = max(verdicts.values(), key=lambda v: v.t / v.allowed)
    print(f"MEASURE {case.kind} {policy} {case.config} t={worst.t:.3g} allowed={worst.allowed:.3g} ({worst.name})")
    bad = {
        k: f"t {v.t:.3g} > {v.allowed:.3g} (spread {v.spread:.3g}) at {v.worst}, first step over {v.first_step}"
        for k, v in verdicts.items()
        if not v.passed
    }
    assert not bad, f"{context or case.describe()}: {policy} gradient over tol={tol:g}: {bad}"


def _ids(cases):
    return [f"{k.split('.')[0]}.{k.split('.')[-1]}-{i}" for i, (k, *_) in enumerate(cases)]


FULL = [(*c, d) for c in CASES for d in (("float32",) if c[0] == ONNX else ("float64", "float32"))]


@pytest.mark.parametrize(
    ("kind", "config", "mask", "states", "dtype"), FULL, ids=[f"{i}-{c[-1]}" for i, c in zip(_ids(FULL), FULL)]
)
def test_grad_matches_the_framework(oracle_for, kind, config, mask, states, dtype):
    """float64 and float32 (ONNX Runtime's LSTM: float32 only); the seed
    alternates over the cases (tools/measure_grad.py runs both)."""
    seed = FULL.index((kind, config, mask, states, dtype)) % 2
    case, upstream = make_case(kind, config, mask, states, dtype, seed)
    assert_grad_parity(oracle_for, case, upstream)


HALF = [(*c, d) for c in HALF_CASES for d in HALF_DTYPES.get(c[0], ("float16",))]


@pytest.mark.parametrize(
    ("kind", "config", "mask", "states", "dtype"), HALF, ids=[f"{i}-{c[-1]}" for i, c in zip(_ids(HALF), HALF)]
)
def test_half_precision_grad_matches_the_framework(oracle_for, kind, config, mask, states, dtype):
    """float16 and mixed_float16: the framework's gradient computed in half
    precision against the float64 gradient at the same rounded inputs (the
    records' half-precision bounds are what that rounding costs)."""
    case, upstream = make_case(kind, config, mask, states, dtype, 0)
    assert_grad_parity(oracle_for, case, upstream)


def _tf1_c_stays_zero(ref, rng, features):
    """TF1 weights under which every c is exactly 0 (from c0 = 0): the
    candidate block j (columns units:2 units) has zero kernel and bias, so
    ``j = tanh(0) = 0``; then m and its projection are 0 too."""
    weights = build_weights(ref, rng, features)
    n = ref.units
    weights["kernel"] = np.array(weights["kernel"])
    weights["kernel"][:, n : 2 * n] = 0
    weights["bias"] = np.array(weights["bias"])
    weights["bias"][n : 2 * n] = 0
    return weights


def _keras2_corners(ref, rng, features):
    """tf_keras weights with every gate pre-activation exactly at Keras 2
    hard_sigmoid's corners: zero kernels, the bias +-2.5 (0.2 z + 0.5 is
    exactly 1 or 0 in float32 and float64 alike)."""
    weights = build_weights(ref, rng, features)
    bias = np.where(np.arange(weights["bias"].size) % 2 == 0, 2.5, -2.5)
    return {"kernel": 0 * weights["kernel"], "recurrent_kernel": 0 * weights["recurrent_kernel"], "bias": bias}


BOUNDARY_CASES = {
    "tf1-cell_clip-proj_clip-0": (
        TF1,
        {"num_units": 4, "use_peepholes": True, "cell_clip": 0.0, "num_proj": 3, "proj_clip": 0.0},
        _tf1_c_stays_zero,
    ),
    "tf_keras-hard_sigmoid-corners": (
        TK,
        {"units": 4, "activation": "hard_sigmoid", "recurrent_activation": "hard_sigmoid"},
        _keras2_corners,
    ),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(BOUNDARY_CASES))
def test_the_subgradient_at_exact_clip_boundaries_is_tfs(oracle_for, name, dtype):
    """Every clipped value exactly on its bound, at every step: TF's
    ``clip_by_value`` gradient (passing on the closed interval) against the
    reference's, and not a zero gradient (which a strict-interior
    subgradient would give the kernels here)."""
    kind, config, weights_for = BOUNDARY_CASES[name]
    case, upstream = make_case(kind, config, MASK_RIGHT, "c0=0", dtype, 0, weights_for)
    if kind == TF1:
        assert not np.asarray(case.run().c).any()
    ours = grad_oracle.reference_grads(case, upstream)
    assert np.abs(ours["w:kernel"]).max() > 0.1
    assert_grad_parity(oracle_for, case, upstream, context=name)


# -- through the records: each kind's own Hypothesis examples -----------------------------------

GRAD_RECORDS = [r for r in RECORDS if r.grad]


def torch_comparable(case):
    """An ``onnx.LSTM`` draw within what the converter carries to torch (see
    ``grad_oracle``): its clip, input_forget, activations and peepholes
    dropped, a reverse-only direction run forward, rows of length 0 given
    one step; any other kind as it is."""
    if case.kind != ONNX:
        return case
    config = {
        k: v
        for k, v in case.config.items()
        if k not in ("clip", "input_forget", "activations", "activation_alpha", "activation_beta")
    }
    if config.get("direction") == "reverse":
        config["direction"] = "forward"
    weights = {k: v for k, v in case.weights.items() if k != "P"}
    mask = case.mask
    if mask is not None:
        mask = np.array(mask, bool)
        mask[~mask.any(axis=1), 0] = True
    return case.replace(config=config, weights=weights, mask=mask)


@pytest.mark.parametrize("record", GRAD_RECORDS, ids=[r.id for r in GRAD_RECORDS])
@settings(max_examples=max(1, settings().max_examples // 10))
@given(data=st.data())
def test_grad_matches_its_framework_through_the_record(oracle_for, record, data):
    """A few of the kind's own examples (its record's strategy: every dtype
    it draws, masks, states, options), the upstream drawn N(0, 1); the
    bound is the record's for the case's dtype.  A config without an exact
    derivative (gelu...) or that the oracle's grad cannot take (tf_keras
    ``time_major``) is skipped."""
    case = torch_comparable(data.draw(record.examples(), label="case"))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="upstream seed"))
    note(case.describe())
    try:
        upstream = grad_oracle.draw_upstream(case, rng)
        grad_oracle.reference_grads(case, upstream)
        record.grad_tolerance(case.reference().policy.name)
    except (ConfigError, KeyError) as exc:  # no derivative; a dtype with no gradient bound
        note(f"not differentiable here: {exc}")
        assume(False)
    try:
        assert_grad_parity(oracle_for, case, upstream)
    except (OracleInputError, ConversionError) as exc:
        note(f"the oracle's grad refuses it: {exc}")
        assume(False)
