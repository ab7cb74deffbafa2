"""``onnx.LSTM`` as ONNX Runtime runs it: its record, the Hypothesis strategy
of its cases, the report's sweep, its error inputs and its golden cases.
"""

import itertools

import numpy as np

from ... import from_config, onnx_lstm
from ...case import Case, build_weights, one_hot_the_mice_had
from ...errors import ConfigError, InputError, WeightError
from ...variants import never
from ..error_inputs import BATCH, FEATURES, HOLES, E, zeros
from ..golden.case import golden
from ..oracles.client import ORACLES
from ..sweep import RIGHT_PADDED, drawn_stacked_case
from .record import KindRecord

# -- strategy: the option space the tests draw from ------------------------------------------------

ONNX_GATES = ["Sigmoid", "Sigmoid", "HardSigmoid", "Tanh", "Softsign"]

ONNX_BOUNDED = ["Tanh", "Tanh", "Softsign", "ScaledTanh", "Sigmoid"]

ONNX_UNBOUNDED = ["Relu", "LeakyRelu", "Elu", "Affine", "ThresholdedRelu", "Softplus"]


def examples():
    """A Hypothesis strategy of ``onnx.LSTM`` :class:`~lstm_ref.case.Case` s."""
    from hypothesis import strategies as st  # a test dependency: imported when a test draws

    from ..strategies import stacked_run, units

    @st.composite
    def onnx_activations(draw, directions):
        """``activations`` (f, g, h per direction) with ``activation_alpha`` and
        ``activation_beta`` for the functions that take them, in order."""
        names, alphas, betas = [], [], []
        for _ in range(directions):
            names += [
                draw(st.sampled_from(ONNX_GATES), label="f"),
                draw(st.sampled_from(ONNX_BOUNDED + ONNX_UNBOUNDED), label="g"),
                draw(st.sampled_from(ONNX_BOUNDED + ONNX_UNBOUNDED), label="h"),
            ]
        for name in names:
            _, alpha, beta = onnx_lstm.ACTIVATIONS[name]
            if alpha is not None:
                alphas.append(draw(st.sampled_from([alpha, 0.3, 1.5]), label=f"{name}_alpha"))
            if beta is not None:
                betas.append(draw(st.sampled_from([beta, 0.1, 0.7]), label=f"{name}_beta"))
        config = {"activations": names}
        given = draw(st.booleans(), label="give_alpha_beta")
        if given and alphas:
            config["activation_alpha"] = alphas
        if given and betas:
            config["activation_beta"] = betas
        return config

    @st.composite
    def onnx_lstm_examples(draw):
        """A :class:`Case` of ONNX's ``LSTM`` as ONNX Runtime runs it: every
        direction, clip, input_forget, activations with alpha/beta, optional B
        and P, sequence_lens (rows of length 0 included) and initial states.
        ``layout`` is 0: ONNX Runtime's CPU kernel refuses 1."""
        direction = draw(st.sampled_from(["forward", "reverse", "bidirectional"]), label="direction")
        config = {"hidden_size": draw(units, label="hidden_size"), "direction": direction}
        if draw(st.booleans(), label="clip?"):
            config["clip"] = draw(st.sampled_from([0.3, 1.0, 3.0]), label="clip")
        if draw(st.integers(0, 4), label="input_forget?") == 0:
            config["input_forget"] = 1
        tame = False
        if draw(st.booleans(), label="activations?"):
            config.update(draw(onnx_activations(2 if direction == "bidirectional" else 1), label="activations"))
            tame = any(n in ONNX_UNBOUNDED for n in config["activations"])
        ref = from_config("onnx.LSTM", config)
        x, weights, mask, states = draw(stacked_run(ref, min_length=0, tame=tame), label="run")
        for name in ("B", "P"):
            if draw(st.integers(0, 3), label=f"drop_{name}") == 0:
                del weights[name]
        return Case("onnx.LSTM", config, x, weights, mask, **states)

    return onnx_lstm_examples()


# -- sweep: the report's seeded cases --------------------------------------------------------------


def sweep(seed=0):
    """Every direction, clip, input_forget, non-default activations with
    alpha/beta, no B or P, sequence_lens with a row of length 0."""
    rng = np.random.default_rng(seed + 7)
    options = [
        {},
        {"clip": 0.5},
        {"input_forget": 1},
        {
            "activations": ["HardSigmoid", "Softsign", "ScaledTanh"],
            "activation_alpha": [0.3, 1.5],
            "activation_beta": [0.6, 0.7],
        },
    ]
    for i, (direction, extra) in enumerate(itertools.product(["forward", "reverse", "bidirectional"], options)):
        if "activations" in extra and direction == "bidirectional":
            extra = {
                "activations": extra["activations"] * 2,
                "activation_alpha": extra["activation_alpha"] * 2,
                "activation_beta": extra["activation_beta"] * 2,
            }
        pattern = RIGHT_PADDED[i % 2]
        case = drawn_stacked_case(
            rng,
            f"sweep_onnx_{i:02d}_{direction}_{pattern}",
            "onnx.LSTM",
            {"hidden_size": int(rng.integers(2, 7)), "direction": direction, **extra},
            mask=pattern,
            states=i % 3 == 0,
            empty_row=i % 4 == 1,
        )
        if i % 5 == 2:
            case = case.replace(weights={k: v for k, v in case.weights.items() if k not in ("B", "P")})
        yield case


# -- error inputs (hidden 3) -----------------------------------------------------------------------

ONNX = {"hidden_size": 3}
ONNX_BI = {"hidden_size": 3, "direction": "bidirectional"}
ERROR_INPUTS = (
    E("hidden_missing", {}, ConfigError, r"config\['hidden_size'\] is required"),
    E("direction_typo", {**ONNX, "direction": "backward"}, ConfigError, r"config\['direction'\] must be one of"),
    E("clip_zero", {**ONNX, "clip": 0}, ConfigError, r"config\['clip'\] must be a positive number"),
    E("input_forget_bool_like", {**ONNX, "input_forget": 2}, ConfigError, r"input_forget"),
    E(
        "activation_unknown",
        {**ONNX, "activations": ["Sigmoid", "Swish", "Tanh"]},
        ConfigError,
        r"unknown activation\(s\) \['Swish'\]",
    ),
    E(
        "activations_one_direction_for_two",
        {**ONNX_BI, "activations": ["Sigmoid", "Tanh", "Tanh"]},
        ConfigError,
        r"3 functions per direction \(6 for direction='bidirectional'\), got 3",
    ),
    E("alpha_left_over", {**ONNX, "activation_alpha": [0.5]}, ConfigError, r"1 activation_alpha.*left over"),
    E("layout_2", {**ONNX, "layout": 2}, ConfigError, r"layout must be 0"),
    E("float64_refused", {**ONNX, "dtype": "float64"}, ConfigError, r"float32 only"),
    E(
        "W_unstacked",
        ONNX,
        WeightError,
        r"weight 'W' has shape \(12, 3\), expected \(1, 12, 3\)",
        {"weights": {"W": zeros(12, FEATURES)}},
    ),
    E(
        "B_one_half",
        ONNX,
        WeightError,
        r"weight 'B' has shape \(1, 12\), expected \(1, 24\)",
        {"weights": {"B": zeros(1, 12)}},
    ),
    E(
        "torch_names",
        ONNX,
        WeightError,
        r"unknown weight\(s\) \['weight_ih_l0'\]",
        {"weights": {"weight_ih_l0": zeros(12, FEATURES)}},
    ),
    E("R_missing", ONNX, WeightError, r"missing weight\(s\) \['R'\]", {"weights": {"R": None}}),
    E(
        "initial_h_layout_1",
        ONNX_BI,
        InputError,
        r"h0 has shape \(2, 1, 3\), expected .* = \(2, 2, 3\)",
        {"h0": zeros(BATCH, 1, 3), "c0": zeros(2, BATCH, 3)},
    ),
    E("mask_holes", ONNX, InputError, r"mask row\(s\) \[0\] are not right-padded", {"mask": HOLES}),
)


# -- golden cases ----------------------------------------------------------------------------------

KIND = "onnx.LSTM"


def _case(
    seed,
    config,
    *,
    batch=2,
    time=6,
    features=3,
    lengths=None,
    states=False,
    scales=(0.7, -0.5, 1.1, 0.4),
    drop=(),
    notes="",
):
    rng = np.random.default_rng(seed)
    ref = from_config(KIND, config)
    weights = build_weights(ref, rng, features, scales=scales)
    for name in drop:
        del weights[name]
    x = rng.standard_normal((batch, time, features)).astype("float32")
    mask = None if lengths is None else np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    initial = (
        {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype("float32") for s in ref.STATE} if states else {}
    )
    return Case(KIND, config, x, weights, mask, notes=notes, **initial)


@golden("onnx_seed_the_mice_had")
def onnx_seed_the_mice_had():
    x = one_hot_the_mice_had()
    w = {
        "W": np.full((1, 20, 10), 0.1, "float32"),
        "R": np.full((1, 20, 5), 0.1, "float32"),
        "B": np.concatenate([np.full((1, 20), 0.1), np.zeros((1, 20))], axis=1).astype("float32"),
    }
    return Case(
        KIND,
        {"hidden_size": 5},
        x,
        w,
        notes="The project's seed as an ONNX node: W, R and Wb 0.1, Rb 0, no P. Cannot tell gate "
        "orders apart; pins the recurrence.",
    )


@golden("onnx_per_gate_peepholes")
def onnx_per_gate_peepholes():
    return _case(70, {"hidden_size": 4}, notes="Per-gate W/R, Wb != Rb, peepholes i, o, f (o reads the new C).")


@golden("onnx_reverse_sequence_lens")
def onnx_reverse_sequence_lens():
    return _case(
        71,
        {"hidden_size": 4, "direction": "reverse"},
        batch=3,
        time=7,
        lengths=[7, 3, 0],
        states=True,
        notes="direction=reverse with sequence_lens 7, 3, 0: each row is reversed within its length and Y "
        "comes back in input order; the row of length 0 ends with Y_h = Y_c = 0, not its "
        "initial state.",
    )


@golden("onnx_bidirectional_states")
def onnx_bidirectional_states():
    return _case(
        72,
        {"hidden_size": 3, "direction": "bidirectional"},
        batch=2,
        time=5,
        states=True,
        notes="Two directions with their own initial states; Y is (T, 2, batch, H) in layout 0.",
    )


@golden("onnx_clip_active")
def onnx_clip_active():
    case = _case(
        73,
        {"hidden_size": 4, "clip": 0.5},
        scales=(2.0, -1.5, 2.5, 1.2),
        time=8,
        notes="clip=0.5 bounds every gate input (and C before h()); onnx.reference ignores it.",
    )
    z = np.abs(case.x.astype(np.float64) @ case.weights["W"][0].T.astype(np.float64))
    case.meta["share_gate_inputs_beyond_clip_at_x"] = round(float(np.mean(z > 0.5)), 4)
    return case


@golden("onnx_input_forget")
def onnx_input_forget():
    return _case(74, {"hidden_size": 4, "input_forget": 1}, notes="input_forget=1: f = 1 - i; W_f, R_f, P_f unused.")


@golden("onnx_activations_alpha_beta")
def onnx_activations_alpha_beta():
    return _case(
        75,
        {
            "hidden_size": 3,
            "direction": "bidirectional",
            "activations": ["HardSigmoid", "LeakyRelu", "ScaledTanh", "Sigmoid", "Softsign", "Tanh"],
            "activation_alpha": [0.3, 0.05, 1.5],
            "activation_beta": [0.4, 0.8],
        },
        scales=(0.3, -0.2, 0.4, 0.2),
        notes="Per-direction activations; alpha and beta are consumed in order by the functions that "
        "take them (HardSigmoid 0.3/0.4, LeakyRelu 0.05, ScaledTanh 1.5/0.8).",
    )


@golden("onnx_no_bias_no_peepholes")
def onnx_no_bias_no_peepholes():
    return _case(
        76, {"hidden_size": 4}, drop=("B", "P"), lengths=[6, 2], notes="B and P absent (zeros), sequence_lens 6 and 2."
    )


@golden("onnx_activation_defaults")
def onnx_activation_defaults():
    return _case(
        77,
        {
            "hidden_size": 3,
            "direction": "bidirectional",
            "activations": ["ThresholdedRelu", "Affine", "Tanh", "Sigmoid", "Tanh", "ScaledTanh"],
        },
        states=True,
        scales=(0.3, -0.2, 0.4, 0.2),
        notes="No activation_alpha/beta: ONNX Runtime's defaults, not the spec's. ThresholdedRelu's alpha "
        "is 0 (a relu gate), Affine's (0, 0) makes g = 0 so C only decays from c0, ScaledTanh's "
        "(0, 0) makes the reverse direction's h = 0.",
    )


# -- the record -------------------------------------------------------------------------------------

RECORD = KindRecord(
    kind=KIND,
    id="onnx",
    label="LSTM (ONNX, run by ONNX Runtime)",
    reference=onnx_lstm.OnnxLSTM,
    oracle=ORACLES["onnxruntime"],
    examples=examples,
    sweep=sweep,
    variants=onnx_lstm.ONNX_LSTM_VARIANTS,
    error_inputs=ERROR_INPUTS,
    throughput_config=lambda rng: {
        "hidden_size": int(rng.integers(1, 7)),
        "direction": str(rng.choice(["forward", "reverse", "bidirectional"])),
    },
    float64_twin=never,  # ONNX Runtime's CPU kernel is float32 only
    # Gradient bounds (KindRecord.grad, grad_oracle.check: t <= tol + k spread): measured with
    # `python -m tools.measure_grad 40` (two runs: the live module's cases and 80 Hypothesis draws each;
    # t = max |d| / (1 + |g|) per gradient array); tol is 3x the worst t the spread term leaves over,
    # and at least eps of the dtype.
    # ONNX Runtime has no training here: torch.autograd on the converted torch.nn.LSTM (grad_oracle).
    grad={
        "float32": 1.2e-7,  # left 0 (695 arrays; worst t 7.0e-5): eps
    },
)
