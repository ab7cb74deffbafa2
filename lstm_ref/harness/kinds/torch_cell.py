"""``torch.nn.LSTMCell``, stepped over a sequence by a user's loop: its
record, the Hypothesis strategy of its cases, the report's sweep, its error
inputs and its golden cases.
"""

import numpy as np

from ... import from_config, torch_lstm
from ...case import Case, build_weights
from ...errors import ConfigError, InputError, WeightError
from ..error_inputs import BATCH, FEATURES, TIME, E, states, zeros
from ..golden.case import golden
from ..oracles.client import ORACLES
from .record import KindRecord

KIND = "torch.nn.LSTMCell"


def _case(rng, config, *, batch, time, scales, initial_state=False, name="", notes=""):
    """x, weights (the one builder: gate blocks on the rows, two biases with
    their own per-gate patterns) and, if asked, an initial (h, c)."""
    ref = from_config(KIND, config)
    dtype = ref.policy.variable
    weights = build_weights(ref, rng, config["input_size"], scales=scales)
    x = rng.standard_normal((batch, time, config["input_size"])).astype(dtype)
    initial = (
        {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype(dtype) for s in ref.STATE}
        if initial_state
        else {}
    )
    return Case(KIND, config, x, weights, name=name, notes=notes, **initial)


# -- strategy: the option space the tests draw from ------------------------------------------------


def examples():
    """A Hypothesis strategy of ``torch.nn.LSTMCell`` :class:`~lstm_ref.case.Case` s:
    sizes, bias or none, both dtypes, an initial state or none, per-gate
    scales (saturating ones included), sequences short and long; never a mask."""
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import batches, features, gate_blocks, seeds, times, units

    @st.composite
    def torch_lstm_cell_examples(draw):
        config = {"input_size": draw(features, label="input_size"), "hidden_size": draw(units, label="hidden_size")}
        if draw(st.booleans(), label="bias?"):
            config["bias"] = draw(st.booleans(), label="bias")
        if draw(st.booleans(), label="dtype?"):
            config["dtype"] = draw(st.sampled_from(["float32", "float64"]), label="dtype")
        rng = np.random.default_rng(draw(seeds, label="seed"))
        return _case(
            rng,
            config,
            batch=draw(batches, label="batch"),
            time=draw(times, label="time"),
            scales=tuple(draw(gate_blocks(), label="gate_scales")),
            initial_state=draw(st.booleans(), label="initial_state"),
        )

    return torch_lstm_cell_examples()


# -- sweep: the report's seeded cases --------------------------------------------------------------


def sweep(seed=0):
    """Bias or none, both dtypes, with and without an initial state."""
    rng = np.random.default_rng(seed + 8)
    for i, (dtype, bias, initial) in enumerate(
        (d, b, s) for d in ("float32", "float64") for b in (True, False) for s in (False, True)
    ):
        config = {"input_size": 3, "hidden_size": int(rng.integers(3, 7)), "bias": bias, "dtype": dtype}
        yield _case(
            rng,
            config,
            batch=3,
            time=int(rng.choice([4, 10, 30])),
            scales=tuple(rng.choice([0.3, 0.7, 1.2, -0.8, 3.0], size=4)),
            initial_state=initial,
            name=f"sweep_torch_cell_{i:02d}_{dtype}_{'bias' if bias else 'nobias'}",
        )


# -- error inputs (input_size 3, hidden 3: gate blocks are 12 rows) --------------------------------

CELL = {"input_size": FEATURES, "hidden_size": 3}
ERROR_INPUTS = (
    E("input_size_missing", {"hidden_size": 3}, ConfigError, r"config\['input_size'\] is required"),
    E("layers_given", {**CELL, "num_layers": 2}, ConfigError, r"unknown config key\(s\) \['num_layers'\]"),
    E("dtype_half", {**CELL, "dtype": "float16"}, ConfigError, r"config\['dtype'\]='float16' is not supported"),
    E(
        "input_size_mismatch",
        CELL,
        InputError,
        r"x has 4 features, but config\['input_size'\] is 3",
        {"x": zeros(BATCH, TIME, FEATURES + 1)},
    ),
    E(
        "layer_suffix",
        CELL,
        WeightError,
        r"unknown weight\(s\) \['weight_ih_l0'\]; expected exactly",
        {"weights": {"weight_ih_l0": zeros(12, FEATURES)}},
    ),
    E(
        "keras_layout_weight",
        CELL,
        WeightError,
        r"weight 'weight_ih' has shape \(3, 12\), expected \(12, 3\)",
        {"weights": {"weight_ih": zeros(FEATURES, 12)}},
    ),
    E("one_bias", CELL, WeightError, r"missing weight\(s\) \['bias_hh'\]", {"weights": {"bias_hh": None}}),
    E(
        "h0_stacked",
        CELL,
        InputError,
        r"h0 has shape \(1, 2, 3\), expected \(batch, 3\)",
        {"h0": zeros(1, BATCH, 3), "c0": zeros(1, BATCH, 3)},
    ),
    E("h0_without_c0", CELL, InputError, r"give all of \['h0', 'c0'\] or none", {"h0": zeros(BATCH, 3)}),
    E("mask_given", CELL, InputError, r"takes no mask", {"mask": np.ones((BATCH, TIME), bool)}),
    E("c0_wrong_width", CELL, InputError, r"c0 has shape \(2, 4\)", states(3, 4)),
)


# -- golden cases ----------------------------------------------------------------------------------

SCALES = (0.7, -0.5, 1.1, 0.4)


@golden("torch_cell_per_gate")
def torch_cell_per_gate():
    return _case(
        np.random.default_rng(81),
        {"input_size": 3, "hidden_size": 4},
        batch=2,
        time=6,
        scales=SCALES,
        notes="LSTMCell stepped over 6 steps from zeros: gate blocks at their own scales, two biases "
        "with their own patterns.",
    )


@golden("torch_cell_initial_state")
def torch_cell_initial_state():
    return _case(
        np.random.default_rng(82),
        {"input_size": 2, "hidden_size": 3},
        batch=3,
        time=5,
        scales=SCALES,
        initial_state=True,
        notes="An initial (h, c): a port that hands it over as (c, h) shows.",
    )


@golden("torch_cell_no_bias_float64")
def torch_cell_no_bias_float64():
    return _case(
        np.random.default_rng(83),
        {"input_size": 4, "hidden_size": 2, "bias": False, "dtype": "float64"},
        batch=2,
        time=7,
        scales=SCALES,
        initial_state=True,
        notes="bias=False, in float64.",
    )


@golden("torch_cell_saturated_long")
def torch_cell_saturated_long():
    return _case(
        np.random.default_rng(84),
        {"input_size": 3, "hidden_size": 5},
        batch=2,
        time=60,
        scales=(4.0, -6.0, 8.0, 3.0),
        notes="Saturating gates over 60 steps.",
    )


# -- the record ------------------------------------------------------------------------------------

RECORD = KindRecord(
    kind=KIND,
    id="nn_lstmcell",
    label="LSTMCell (PyTorch)",
    reference=torch_lstm.TorchLSTMCell,
    oracle=ORACLES["torch"],
    examples=examples,
    sweep=sweep,
    variants=torch_lstm.TORCH_LSTM_CELL_VARIANTS,
    error_inputs=ERROR_INPUTS,
    throughput_config=lambda rng: {
        "input_size": 3,
        "hidden_size": int(rng.integers(1, 7)),
        "bias": bool(rng.integers(2)),
    },
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 2.2e-16,  # left 0 (273 arrays, per-step h and c included; worst t 6.5e-11): eps
        "float32": 1.2e-7,  # left 3.9e-8 (1,079 arrays; worst t 4.6e-5): eps
    },
)
