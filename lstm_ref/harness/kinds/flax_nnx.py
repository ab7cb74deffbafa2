"""``flax.nnx.LSTMCell`` and ``flax.nnx.OptimizedLSTMCell`` run by ``flax.nnx.RNN``:
their records, the Hypothesis strategy of their cases, the report's sweep,
their error inputs and their golden cases (one slice: the two kinds are one
cell in two weight layouts).
"""

import numpy as np

from ... import flax_lstm, from_config
from ...case import Case, build_weights, one_hot_the_mice_had
from ...errors import ConfigError, InputError, WeightError
from ..error_inputs import BATCH, FEATURES, HOLES, TIME, E, states, zeros
from ..golden.case import golden
from ..oracles.client import ORACLES
from .record import KindRecord

CELL, OPTIMIZED = flax_lstm.LSTM_CELL, flax_lstm.OPTIMIZED

# Gate functions that keep a gate in a bounded range, and every other
# activation flax.nnx names (lstm_ref.flax_lstm.ACTIVATIONS).
GATE_FNS = ["sigmoid", "sigmoid", "hard_sigmoid", "tanh", "hard_tanh", "soft_sign"]
ACTIVATION_FNS = ["tanh", "tanh", *sorted(set(flax_lstm.ACTIVATIONS) - {"tanh"})]
# As the Keras strategy does (kinds/keras3.py), an unbounded activation is
# drawn tame (small weights, 1-6 steps, small carries), and so is a gate
# function that can be negative (tanh, hard_tanh, soft_sign): a forget gate
# near -1 flips c every step, and such a run can be chaotic.  There the
# reference alone, x moved by one float64 ulp, moves h by 1.2e-3 after 45
# steps (parity_tests/test_flax_lstm.py::test_a_chaotic_draw_is_the_references_own_limit),
# and XLA's float64 tanh and logistic, up to 6 ulp from NumPy's, are
# amplified as much (measured untamed: float64 1.4e-8 after 41 steps;
# oracle mode against Flax in float64 1.2e-2; float32 wholly diverged).
BOUNDED = {"sigmoid", "hard_sigmoid", "tanh", "hard_tanh", "soft_sign", "relu6"}
NEGATIVE_GATES = {"tanh", "hard_tanh", "soft_sign"}


def _case(kind, seed, config, *, batch=2, time=6, features=3, lengths=None, states=False, scales=None, notes=""):
    rng = np.random.default_rng(seed)
    ref = from_config(kind, config)
    dtype = ref.policy.variable
    weights = build_weights(ref, rng, features, scales=scales or (0.7, -0.5, 1.1, 0.4))
    x = rng.standard_normal((batch, time, features)).astype(dtype)
    mask = None if lengths is None else np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    initial = {f"{s}0": rng.standard_normal((batch, ref.units)).astype(dtype) for s in ref.STATE} if states else {}
    return Case(kind, config, x, weights, mask, notes=notes, **initial)


# -- strategy: the option space the tests draw from ------------------------------------------------


def _examples(kind):
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import batches, features, gate_blocks, seeds, times, units

    @st.composite
    def flax_examples(draw):
        """A :class:`Case` of ``kind``: sizes, gate and activation functions,
        reverse/keep_order, both dtypes, lengths (a row of length 0
        included), an initial carry."""
        config = {"hidden_features": draw(units, label="hidden_features")}
        feat = draw(features, label="features")
        if draw(st.booleans(), label="in_features?"):
            config["in_features"] = feat
        if draw(st.booleans(), label="functions?"):
            config["gate_fn"] = draw(st.sampled_from(GATE_FNS), label="gate_fn")
            config["activation_fn"] = draw(st.sampled_from(ACTIVATION_FNS), label="activation_fn")
        config["reverse"] = draw(st.booleans(), label="reverse")
        if draw(st.booleans(), label="keep_order?"):
            config["keep_order"] = draw(st.booleans(), label="keep_order")
        if draw(st.sampled_from([False, False, False, True]), label="float64"):
            config["param_dtype"] = "float64"
            if draw(st.booleans(), label="dtype too"):
                config["dtype"] = "float64"
        if draw(st.booleans(), label="layout kwargs"):
            config["time_major"] = draw(st.booleans(), label="time_major")
            config["unroll"] = draw(st.sampled_from([1, 2]), label="unroll")
        ref = from_config(kind, config)
        dtype = ref.policy.variable
        tame = config.get("activation_fn", "tanh") not in BOUNDED or config.get("gate_fn") in NEGATIVE_GATES
        batch, time = draw(batches, label="batch"), draw(st.integers(1, 6) if tame else times, label="time")
        rng = np.random.default_rng(draw(seeds, label="seed"))
        if tame:
            scales = [draw(st.sampled_from([0.05, 0.2, -0.3]), label=f"gate_scale[{g}]") for g in range(4)]
        else:
            scales = draw(gate_blocks(), label="gate_scales")
        recurrent = draw(st.sampled_from([0.3, 0.5, 1.0]), label="recurrent_scale") * (0.3 if tame else 1.0)
        weights = build_weights(ref, rng, feat, scales=scales, recurrent_scale=recurrent)
        x = rng.standard_normal((batch, time, feat)).astype(dtype)
        mask = None
        if draw(st.booleans(), label="seq_lengths?"):
            lengths = draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch), label="lengths")
            mask = np.arange(time)[None, :] < np.asarray(lengths)[:, None]
        initial = {}
        if draw(st.booleans(), label="initial carry?"):
            scale = draw(st.sampled_from([0.1, 1.0, 3.0]), label="carry_scale") * (0.1 if tame else 1.0)
            initial = {f"{s}0": (scale * rng.standard_normal((batch, ref.units))).astype(dtype) for s in ref.STATE}
        return Case(kind, config, x, weights, mask, **initial)

    return flax_examples()


def cell_examples():
    """A Hypothesis strategy of ``flax.nnx.LSTMCell`` cases."""
    return _examples(CELL)


def optimized_examples():
    """A Hypothesis strategy of ``flax.nnx.OptimizedLSTMCell`` cases."""
    return _examples(OPTIMIZED)


# -- sweep: the report's seeded cases --------------------------------------------------------------

_SWEEP = (
    ({}, None, False),
    ({"reverse": True}, "right", True),
    ({"reverse": True, "keep_order": True}, "right", False),
    ({"gate_fn": "hard_sigmoid", "activation_fn": "gelu"}, "empty", True),
    ({"param_dtype": "float64"}, "right", True),
    ({"param_dtype": "float64", "dtype": "float64", "reverse": True}, None, False),
)


def _sweep(kind, seed, tag):
    rng = np.random.default_rng(seed + 21 + (kind == OPTIMIZED))
    for i, (options, lengths, initial) in enumerate(_SWEEP):
        config = {"hidden_features": int(rng.integers(3, 7)), **options}
        time = int(rng.choice([4, 10, 30]))
        lens = None
        if lengths == "right":
            lens = [time, max(1, time // 2), 1]
        elif lengths == "empty":
            lens = [time, 2, 0]
        dtype = options.get("param_dtype", "float32")
        yield _case(
            kind,
            int(rng.integers(2**31)),
            config,
            batch=3,
            time=time,
            features=int(rng.integers(2, 6)),
            lengths=lens,
            states=initial,
            scales=tuple(rng.choice([0.3, 0.7, 1.2, -0.8, 3.0], size=4)),
        ).replace(name=f"sweep_{tag}_{i:02d}_{dtype}_{lengths or 'none'}")


def cell_sweep(seed=0):
    """Lengths (one of 0), reverse and keep_order, other functions, float64, initial carries."""
    return _sweep(CELL, seed, "flax_cell")


def optimized_sweep(seed=0):
    """As :func:`cell_sweep`, in OptimizedLSTMCell's layout."""
    return _sweep(OPTIMIZED, seed, "flax_optimized")


# -- error inputs (x features 3, hidden 3) ---------------------------------------------------------

FLAX = {"hidden_features": 3}
_CELL_ERRORS = (
    E("hidden_missing", {"in_features": 3}, ConfigError, r"config\['hidden_features'\] is required"),
    E("keras_name", {"units": 3}, ConfigError, r"unknown config key\(s\) \['units'\]"),
    E("gate_fn_unknown", {**FLAX, "gate_fn": "hard_sigmoid2"}, ConfigError, r"config\['gate_fn'\]='hard_sigmoid2'"),
    E("gate_fn_callable", {**FLAX, "gate_fn": len}, ConfigError, r"config\['gate_fn'\]=<built-in function len>"),
    E("reverse_string", {**FLAX, "reverse": "yes"}, ConfigError, r"config\['reverse'\] must be True or False"),
    E("param_half", {**FLAX, "param_dtype": "float16"}, ConfigError, r"config\['param_dtype'\]='float16' is not"),
    E(
        "dtype_over_params",
        {**FLAX, "dtype": "float64"},
        ConfigError,
        r"config\['dtype'\]='float64' with param_dtype='float32'.*carry type mismatch",
    ),
    E(
        "in_features_mismatch",
        {**FLAX, "in_features": 4},
        InputError,
        r"x has 3 features, but config\['in_features'\] is 4",
        {"x": zeros(BATCH, TIME, FEATURES)},
    ),
    E("mask_holes", FLAX, InputError, r"mask row\(s\) \[0\] are not right-padded.*seq_lengths", {"mask": HOLES}),
    E("carry_half", FLAX, InputError, r"give all of \['h0', 'c0'\] or none", {"c0": zeros(BATCH, 3)}),
    E("carry_wide", FLAX, InputError, r"h0 has shape \(2, 4\)", states(4, 3)),
)
CELL_ERROR_INPUTS = _CELL_ERRORS + (
    E("gate_missing", FLAX, WeightError, r"missing weight\(s\) \['hf/bias'\]", {"weights": {"hf/bias": None}}),
    E("linen_if", FLAX, WeightError, r"unknown weight\(s\) \['if/kernel'\]", {"weights": {"if/kernel": zeros(3, 3)}}),
    E(
        "input_side_bias",
        FLAX,
        WeightError,
        r"unknown weight\(s\) \['ii/bias'\]",
        {"weights": {"ii/bias": zeros(3)}},
    ),
    E(
        "torch_layout_kernel",
        FLAX,
        WeightError,
        r"weight 'ii/kernel' has shape \(4, 3\), expected \(3, 3\)",
        {"weights": {"ii/kernel": zeros(4, 3)}},
    ),
)
OPTIMIZED_ERROR_INPUTS = _CELL_ERRORS + (
    E(
        "bias_missing",
        FLAX,
        WeightError,
        r"missing weight\(s\) \['dense_h/bias'\]",
        {"weights": {"dense_h/bias": None}},
    ),
    E(
        "per_gate_names",
        FLAX,
        WeightError,
        r"unknown weight\(s\) \['ii/kernel'\]",
        {"weights": {"ii/kernel": zeros(3, 3)}},
    ),
    E(
        "transposed_kernel",
        FLAX,
        WeightError,
        r"weight 'dense_i/kernel' has shape \(12, 3\), expected \(3, 12\)",
        {"weights": {"dense_i/kernel": zeros(12, 3)}},
    ),
)
assert FEATURES == 3 and TIME == 4


# -- golden cases ----------------------------------------------------------------------------------


@golden("flax_cell_seed_the_mice_had")
def flax_cell_seed_the_mice_had():
    w = {f"{n}/kernel": np.full((10, 5), 0.1, "float32") for n in flax_lstm.INPUT_LAYERS}
    for n in flax_lstm.HIDDEN_LAYERS:
        w[f"{n}/kernel"] = np.full((5, 5), 0.1, "float32")
        w[f"{n}/bias"] = np.full((5,), 0.1, "float32")
    return Case(
        CELL,
        {"in_features": 10, "hidden_features": 5},
        one_hot_the_mice_had(),
        w,
        notes="The project's seed in Flax: every kernel and the h-side bias 0.1 (Keras' one bias, on the "
        "h side). Cannot tell gate orders apart; pins the recurrence.",
    )


@golden("flax_cell_per_gate")
def flax_cell_per_gate():
    return _case(CELL, 71, {"hidden_features": 4}, notes="Per-gate layers at their own scales, h-side biases per gate.")


@golden("flax_cell_lengths_carry")
def flax_cell_lengths_carry():
    return _case(
        CELL,
        72,
        {"hidden_features": 4},
        batch=3,
        time=7,
        lengths=[7, 3, 0],
        states=True,
        notes="seq_lengths 7, 3, 0 with an initial carry: past a row's length the cell keeps stepping and "
        "its output is what it computes; the final carry is the one after step L - 1, and for L = 0 the "
        "one after the last step (L - 1 = -1 wraps), not the initial carry; an initial (c, h) handed "
        "over as (h, c) shows.",
    )


@golden("flax_cell_reverse")
def flax_cell_reverse():
    return _case(
        CELL,
        73,
        {"hidden_features": 3, "reverse": True},
        batch=3,
        time=6,
        lengths=[6, 4, 2],
        notes="reverse=True, keep_order=False: each row read backwards within its length (its padding "
        "reversed in place), the outputs returned in processing order.",
    )


@golden("flax_cell_reverse_keep_order_float64")
def flax_cell_reverse_keep_order_float64():
    return _case(
        CELL,
        74,
        {"hidden_features": 3, "reverse": True, "keep_order": True, "param_dtype": "float64"},
        batch=3,
        time=6,
        lengths=[6, 1, 3],
        states=True,
        notes="reverse and keep_order in float64: the outputs flipped back within each length.",
    )


@golden("flax_cell_other_functions")
def flax_cell_other_functions():
    return _case(
        CELL,
        75,
        {"hidden_features": 4, "gate_fn": "hard_sigmoid", "activation_fn": "gelu"},
        time=8,
        notes="gate_fn hard_sigmoid (relu6(x + 3) / 6) and activation_fn gelu, jax's tanh approximation "
        "(approximate=True by default, unlike Keras' gelu).",
    )


@golden("flax_optimized_per_gate")
def flax_optimized_per_gate():
    return _case(OPTIMIZED, 76, {"hidden_features": 4}, notes="dense_i/dense_h, gate blocks i, f, g, o per scale.")


@golden("flax_optimized_lengths_reverse")
def flax_optimized_lengths_reverse():
    return _case(
        OPTIMIZED,
        77,
        {"hidden_features": 3, "reverse": True, "keep_order": True},
        batch=3,
        time=7,
        lengths=[7, 5, 0],
        states=True,
        notes="Optimized cell, reverse and keep_order, lengths 7, 5, 0 and an initial carry.",
    )


@golden("flax_optimized_saturated_long")
def flax_optimized_saturated_long():
    return _case(
        OPTIMIZED,
        78,
        {"hidden_features": 4, "param_dtype": "float64", "dtype": "float64"},
        time=60,
        scales=(4.0, -6.0, 8.0, 3.0),
        notes="Saturating gates over 60 steps, float64.",
    )


# -- the records -----------------------------------------------------------------------------------


# No tolerance overrides: the table's entries hold.  Measured with
# `python -m tools.measure_tolerances 300 flax_lstmcell` (jax 0.10.2, flax
# 0.12.8, CPU; OptimizedLSTMCell's draws give the same numbers): float32
# plain t 4.5e-5 on a 72-step case, rounding k 3.2 (the table's 16 is 5x);
# float64 t 2.1e-15, oracle mode against Flax in float64 6.6e-14 (the
# table's 2e-12 is 30x).  XLA's tanh and logistic are not NumPy's (float32:
# 4 ulp; float64: 6 and 3 ulp), so nothing here is bitwise.


# Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread):
# nnx.grad on the real nnx.RNN (flax_worker's grad op, under nnx.jit) against
# Reference.grad.  Measured with `python -m tools.measure_grad 40 --only
# flax_lstmcell flax_optimized`, seeds 0 and 1 (each run 40 derandomized and
# 40 random draws of both records' strategies; jax 0.10.2, flax 0.12.8, Intel
# Xeon CPU; t = max |d| / (1 + |g|) per gradient array, per-step h and
# carried c included; k = grad_oracle.CONDITIONING's 144 / 50, where Flax's
# worst t / spread is 6.6 / 10.8); tol is 3x the worst t the spread term
# leaves over, and at least eps of the dtype (as every record's).
GRAD_BOUNDS = {
    "float64": 2.2e-16,  # left 4.1e-17 (445 arrays; worst t 2.7e-14, spread-covered): eps
    "float32": 2.5e-7,  # left 8.3e-8 (2,952 arrays; worst t 3.1e-3 on steps:h, spread-covered)
}


def _throughput(rng):
    return {"hidden_features": int(rng.integers(1, 7)), "reverse": bool(rng.integers(2))}


CELL_RECORD = KindRecord(
    kind=CELL,
    id="flax_lstmcell",
    label="LSTMCell (Flax nnx)",
    reference=flax_lstm.FlaxLSTMCell,
    oracle=ORACLES["flax"],
    examples=cell_examples,
    sweep=cell_sweep,
    variants=flax_lstm.FLAX_LSTM_CELL_VARIANTS,
    error_inputs=CELL_ERROR_INPUTS,
    throughput_config=_throughput,
    grad=GRAD_BOUNDS,
)
OPTIMIZED_RECORD = KindRecord(
    kind=OPTIMIZED,
    id="flax_optimized",
    label="OptimizedLSTMCell (Flax nnx)",
    reference=flax_lstm.FlaxOptimizedLSTMCell,
    oracle=ORACLES["flax"],
    examples=optimized_examples,
    sweep=optimized_sweep,
    variants=flax_lstm.FLAX_OPTIMIZED_VARIANTS,
    error_inputs=OPTIMIZED_ERROR_INPUTS,
    throughput_config=_throughput,
    grad=GRAD_BOUNDS,
)
