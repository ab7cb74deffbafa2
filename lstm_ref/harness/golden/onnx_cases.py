"""Golden cases for ONNX's ``LSTM`` operator run by ONNX Runtime 1.32 (CPU).

Weights come from the one builder: gate blocks (i, o, f, c) each at its own
scale and sign, ``Wb`` and ``Rb`` with different per-gate patterns,
peepholes i, o, f with distinct signs.  Clip cases record in ``meta`` the
share of gate inputs that sit beyond the bound (float64 reference), so a
reader can see the clip is active.
"""

import numpy as np

from ...case import build_weights
from ...reference import from_config
from .case import Case, golden, one_hot_the_mice_had

KIND = "onnx.LSTM"


def _case(seed, config, *, batch=2, time=6, features=3, lengths=None, states=False, scales=(0.7, -0.5, 1.1, 0.4),
          drop=(), notes=""):
    rng = np.random.default_rng(seed)
    ref = from_config(KIND, config)
    weights = build_weights(ref, rng, features, scales=scales)
    for name in drop:
        del weights[name]
    x = rng.standard_normal((batch, time, features)).astype("float32")
    mask = None if lengths is None else np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    initial = {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype("float32") for s in ref.STATE} \
        if states else {}
    return Case(KIND, config, x, weights, mask, notes=notes, **initial)


@golden("onnx_seed_the_mice_had")
def onnx_seed_the_mice_had():
    x = one_hot_the_mice_had()
    w = {"W": np.full((1, 20, 10), 0.1, "float32"), "R": np.full((1, 20, 5), 0.1, "float32"),
         "B": np.concatenate([np.full((1, 20), 0.1), np.zeros((1, 20))], axis=1).astype("float32")}
    return Case(KIND, {"hidden_size": 5}, x, w,
                notes="The project's seed as an ONNX node: W, R and Wb 0.1, Rb 0, no P. Cannot tell gate "
                      "orders apart; pins the recurrence.")


@golden("onnx_per_gate_peepholes")
def onnx_per_gate_peepholes():
    return _case(70, {"hidden_size": 4}, notes="Per-gate W/R, Wb != Rb, peepholes i, o, f (o reads the new C).")


@golden("onnx_reverse_sequence_lens")
def onnx_reverse_sequence_lens():
    return _case(71, {"hidden_size": 4, "direction": "reverse"}, batch=3, time=7, lengths=[7, 3, 0], states=True,
                 notes="direction=reverse with sequence_lens 7, 3, 0: each row is reversed within its length and Y "
                       "comes back in input order; the row of length 0 ends with Y_h = Y_c = 0, not its "
                       "initial state.")


@golden("onnx_bidirectional_states")
def onnx_bidirectional_states():
    return _case(72, {"hidden_size": 3, "direction": "bidirectional"}, batch=2, time=5, states=True,
                 notes="Two directions with their own initial states; Y is (T, 2, batch, H) in layout 0.")


@golden("onnx_clip_active")
def onnx_clip_active():
    case = _case(73, {"hidden_size": 4, "clip": 0.5}, scales=(2.0, -1.5, 2.5, 1.2), time=8,
                 notes="clip=0.5 bounds every gate input (and C before h()); onnx.reference ignores it.")
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
    return _case(76, {"hidden_size": 4}, drop=("B", "P"), lengths=[6, 2],
                 notes="B and P absent (zeros), sequence_lens 6 and 2.")


@golden("onnx_activation_defaults")
def onnx_activation_defaults():
    return _case(77, {"hidden_size": 3, "direction": "bidirectional",
                      "activations": ["ThresholdedRelu", "Affine", "Tanh", "Sigmoid", "Tanh", "ScaledTanh"]},
                 states=True, scales=(0.3, -0.2, 0.4, 0.2),
                 notes="No activation_alpha/beta: ONNX Runtime's defaults, not the spec's. ThresholdedRelu's alpha "
                       "is 0 (a relu gate), Affine's (0, 0) makes g = 0 so C only decays from c0, ScaledTanh's "
                       "(0, 0) makes the reverse direction's h = 0.")
