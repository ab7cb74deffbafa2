"""``torch.nn.LSTM``: its record, the Hypothesis strategy of its cases, the
report's sweep, its error inputs and its golden cases.
"""

import itertools

import numpy as np

from ... import from_config, torch_lstm
from ...case import Case, build_weights, one_hot_the_mice_had
from ...errors import ConfigError, InputError, WeightError
from ..error_inputs import BATCH, FEATURES, LEFT_PADDED, TIME, E, states, zeros
from ..golden.case import golden
from ..oracles.client import ORACLES
from ..sweep import RIGHT_PADDED, drawn_stacked_case
from .record import KindRecord

# -- strategy: the option space the tests draw from ------------------------------------------------


def examples():
    """A Hypothesis strategy of ``torch.nn.LSTM`` :class:`~lstm_ref.case.Case` s."""
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import features, stacked_run, units

    torch_dtypes = st.sampled_from(["float32", "float32", "float32", "float64"])

    @st.composite
    def torch_lstm_examples(draw):
        """A :class:`Case` of ``torch.nn.LSTM``: layers, directions, projection,
        both biases or none, packed lengths, stacked initial states."""
        hidden = draw(units, label="hidden_size")
        config = {
            "input_size": draw(features, label="input_size"),
            "hidden_size": hidden,
            "num_layers": draw(st.integers(1, 3), label="num_layers"),
            "bias": draw(st.booleans(), label="bias"),
            "bidirectional": draw(st.booleans(), label="bidirectional"),
            "proj_size": draw(st.integers(0, hidden - 1) if hidden > 1 else st.just(0), label="proj_size"),
            "dtype": draw(torch_dtypes, label="dtype"),
        }
        if draw(st.booleans(), label="layout_kwargs"):
            config.update(
                batch_first=draw(st.booleans(), label="batch_first"),
                dropout=draw(st.sampled_from([0.0, 0.3]), label="dropout"),
            )
        ref = from_config("torch.nn.LSTM", config)
        x, weights, mask, states = draw(stacked_run(ref), label="run")
        return Case("torch.nn.LSTM", config, x, weights, mask, **states)

    return torch_lstm_examples()


# -- sweep: the report's seeded cases --------------------------------------------------------------


def sweep(seed=0):
    """Layers x directions x projection x bias, both dtypes, packed lengths."""
    rng = np.random.default_rng(seed + 6)
    options = [
        {},
        {"bidirectional": True},
        {"num_layers": 2},
        {"num_layers": 2, "bidirectional": True, "proj_size": 2},
        {"proj_size": 1, "bias": False},
        {"num_layers": 3, "batch_first": True},
    ]
    for i, (dtype, extra) in enumerate(itertools.product(["float32", "float64"], options)):
        pattern = RIGHT_PADDED[i % 2]
        config = {
            "input_size": int(rng.integers(2, 6)),
            "hidden_size": int(rng.integers(3, 7)),
            "dtype": dtype,
            **extra,
        }
        yield drawn_stacked_case(
            rng, f"sweep_torch_{i:02d}_{dtype}_{pattern}", "torch.nn.LSTM", config, mask=pattern, states=i % 3 == 0
        )


# -- error inputs (input_size 3, hidden 3: gate blocks are 12 rows) --------------------------------

TORCH = {"input_size": FEATURES, "hidden_size": 3}
TORCH_BI = {**TORCH, "bidirectional": True, "num_layers": 2}
ERROR_INPUTS = (
    E("hidden_missing", {"input_size": 3}, ConfigError, r"config\['hidden_size'\] is required"),
    E("keras_name", {"input_size": 3, "units": 3}, ConfigError, r"unknown config key\(s\) \['units'\]"),
    E("proj_not_smaller", {**TORCH, "proj_size": 3}, ConfigError, r"proj_size.*smaller than hidden_size"),
    E("layers_zero", {**TORCH, "num_layers": 0}, ConfigError, r"config\['num_layers'\] must be a positive integer"),
    E("dtype_half", {**TORCH, "dtype": "float16"}, ConfigError, r"config\['dtype'\]='float16' is not supported"),
    E("device_cuda", {**TORCH, "device": "cuda"}, ConfigError, r"device.*CPU"),
    E("dropout_range", {**TORCH, "dropout": 2.0}, ConfigError, r"dropout.*\[0, 1\]"),
    E(
        "input_size_mismatch",
        TORCH,
        InputError,
        r"x has 4 features, but config\['input_size'\] is 3",
        {"x": zeros(BATCH, TIME, FEATURES + 1)},
    ),
    E(
        "keras_layout_weight",
        TORCH,
        WeightError,
        r"weight 'weight_ih_l0' has shape \(3, 12\), expected \(12, 3\)",
        {"weights": {"weight_ih_l0": zeros(FEATURES, 12)}},
    ),
    E(
        "reverse_weights_missing",
        TORCH_BI,
        WeightError,
        r"missing weight\(s\) \['weight_hh_l1_reverse'\]",
        {"weights": {"weight_hh_l1_reverse": None}},
    ),
    E("one_bias", TORCH, WeightError, r"missing weight\(s\) \['bias_hh_l0'\]", {"weights": {"bias_hh_l0": None}}),
    E(
        "h0_unstacked",
        TORCH,
        InputError,
        r"h0 has shape \(2, 3\), expected \(num_layers \* num_directions, batch, 3\) = \(1, 2, 3\)",
        states(3, 3),
    ),
    E(
        "h0_one_slot_for_two",
        TORCH_BI,
        InputError,
        r"h0 has shape \(1, 2, 3\).*= \(4, 2, 3\)",
        {"h0": zeros(1, BATCH, 3), "c0": zeros(4, BATCH, 3)},
    ),
    E("mask_left_padded", TORCH, InputError, r"mask row\(s\) \[0\] are not right-padded", {"mask": LEFT_PADDED}),
    E(
        "mask_empty_row",
        TORCH,
        InputError,
        r"mask row\(s\) \[1\] have length 0.*pack_padded_sequence",
        {"mask": np.array([[1, 1, 0, 0], [0, 0, 0, 0]], bool)},
    ),
)


# -- golden cases ----------------------------------------------------------------------------------

KIND = "torch.nn.LSTM"


def _case(seed, config, *, batch=2, time=6, lengths=None, states=False, scales=(0.7, -0.5, 1.1, 0.4), notes=""):
    rng = np.random.default_rng(seed)
    ref = from_config(KIND, config)
    dtype = ref.policy.variable
    weights = build_weights(ref, rng, config["input_size"], scales=scales)
    x = rng.standard_normal((batch, time, config["input_size"])).astype(dtype)
    mask = None if lengths is None else np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    initial = (
        {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype(dtype) for s in ref.STATE} if states else {}
    )
    return Case(KIND, config, x, weights, mask, notes=notes, **initial)


@golden("torch_seed_the_mice_had")
def torch_seed_the_mice_had():
    x = one_hot_the_mice_had()
    w = {
        "weight_ih_l0": np.full((20, 10), 0.1, "float32"),
        "weight_hh_l0": np.full((20, 5), 0.1, "float32"),
        "bias_ih_l0": np.full((20,), 0.1, "float32"),
        "bias_hh_l0": np.zeros(20, "float32"),
    }
    return Case(
        KIND,
        {"input_size": 10, "hidden_size": 5},
        x,
        w,
        notes="The project's seed in PyTorch: every weight and bias_ih 0.1, bias_hh 0 (the Keras "
        "layer's one bias, split). Cannot tell gate orders apart; pins the recurrence.",
    )


@golden("torch_per_gate_basic")
def torch_per_gate_basic():
    return _case(
        60,
        {"input_size": 3, "hidden_size": 4},
        notes="One layer, one direction, per-gate weights and two distinct biases.",
    )


@golden("torch_bidirectional_packed")
def torch_bidirectional_packed():
    return _case(
        61,
        {"input_size": 3, "hidden_size": 4, "bidirectional": True},
        batch=3,
        time=7,
        lengths=[7, 4, 1],
        states=True,
        notes="PackedSequence lengths 7, 4, 1 with stacked h0/c0: the reverse direction starts at each "
        "row's last valid step; outputs past a length are zeros; h_n is the state at the last "
        "valid step.",
    )


@golden("torch_two_layers_bidirectional_proj")
def torch_two_layers_bidirectional_proj():
    return _case(
        62,
        {
            "input_size": 4,
            "hidden_size": 5,
            "num_layers": 2,
            "bidirectional": True,
            "proj_size": 3,
            "batch_first": True,
        },
        batch=2,
        time=6,
        states=True,
        notes="Two layers, two directions, proj_size 3: layer 1 reads both directions' projected "
        "outputs; h_n slots are layer * 2 + direction; batch_first changes only the layout.",
    )


@golden("torch_no_bias_three_layers")
def torch_no_bias_three_layers():
    return _case(
        63,
        {"input_size": 2, "hidden_size": 3, "num_layers": 3, "bias": False, "dropout": 0.5},
        time=9,
        notes="bias=False, three layers, dropout 0.5 (inert in eval()).",
    )


@golden("torch_float64_packed")
def torch_float64_packed():
    return _case(
        64,
        {"input_size": 3, "hidden_size": 4, "num_layers": 2, "dtype": "float64"},
        batch=3,
        lengths=[6, 2, 5],
        notes="float64, two layers, packed lengths.",
    )


@golden("torch_saturated_long")
def torch_saturated_long():
    return _case(
        65,
        {"input_size": 3, "hidden_size": 4},
        time=100,
        scales=(6.0, -5.0, 4.0, 7.0),
        notes="Saturating gates over 100 steps: error growth along the sequence.",
    )


# -- the record -------------------------------------------------------------------------------------

RECORD = KindRecord(
    kind=KIND,
    id="torch",
    label="LSTM (PyTorch)",
    reference=torch_lstm.TorchLSTM,
    oracle=ORACLES["torch"],
    examples=examples,
    sweep=sweep,
    variants=torch_lstm.TORCH_LSTM_VARIANTS,
    error_inputs=ERROR_INPUTS,
    throughput_config=lambda rng: {
        "input_size": 3,
        "hidden_size": int(rng.integers(1, 7)),
        "num_layers": int(rng.integers(1, 3)),
        "bidirectional": bool(rng.integers(2)),
    },
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    grad={
        "float64": 2.2e-16,  # left 0 (435 arrays; worst t 6.4e-7: 3 layers, gradients up to 4.2e5, spread-covered): eps
        "float32": 1.2e-7,  # left 0 (1,722 arrays; worst t 0.22, an exploding gradient, spread-covered): eps
    },
)
