"""Golden cases for ``torch.nn.LSTM`` (torch 2.13, CPU, ``eval()``).

Weights come from the one builder (gate blocks on the rows, each at its own
scale and sign; ``bias_ih`` and ``bias_hh`` with different per-gate
patterns), so that a gate-order or one-bias bug cannot hide.
"""

import numpy as np

from ...case import build_weights
from ...reference import from_config
from .case import Case, golden, one_hot_the_mice_had

KIND = "torch.nn.LSTM"


def _case(seed, config, *, batch=2, time=6, lengths=None, states=False, scales=(0.7, -0.5, 1.1, 0.4), notes=""):
    rng = np.random.default_rng(seed)
    ref = from_config(KIND, config)
    dtype = ref.policy.variable
    weights = build_weights(ref, rng, config["input_size"], scales=scales)
    x = rng.standard_normal((batch, time, config["input_size"])).astype(dtype)
    mask = None if lengths is None else np.arange(time)[None, :] < np.asarray(lengths)[:, None]
    initial = {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype(dtype) for s in ref.STATE} \
        if states else {}
    return Case(KIND, config, x, weights, mask, notes=notes, **initial)


@golden("torch_seed_the_mice_had")
def torch_seed_the_mice_had():
    x = one_hot_the_mice_had()
    w = {"weight_ih_l0": np.full((20, 10), 0.1, "float32"), "weight_hh_l0": np.full((20, 5), 0.1, "float32"),
         "bias_ih_l0": np.full((20,), 0.1, "float32"), "bias_hh_l0": np.zeros(20, "float32")}
    return Case(KIND, {"input_size": 10, "hidden_size": 5}, x, w,
                notes="The project's seed in PyTorch: every weight and bias_ih 0.1, bias_hh 0 (the Keras "
                      "layer's one bias, split). Cannot tell gate orders apart; pins the recurrence.")


@golden("torch_per_gate_basic")
def torch_per_gate_basic():
    return _case(60, {"input_size": 3, "hidden_size": 4},
                 notes="One layer, one direction, per-gate weights and two distinct biases.")


@golden("torch_bidirectional_packed")
def torch_bidirectional_packed():
    return _case(61, {"input_size": 3, "hidden_size": 4, "bidirectional": True}, batch=3, time=7,
                 lengths=[7, 4, 1], states=True,
                 notes="PackedSequence lengths 7, 4, 1 with stacked h0/c0: the reverse direction starts at each "
                       "row's last valid step; outputs past a length are zeros; h_n is the state at the last "
                       "valid step.")


@golden("torch_two_layers_bidirectional_proj")
def torch_two_layers_bidirectional_proj():
    return _case(62, {"input_size": 4, "hidden_size": 5, "num_layers": 2, "bidirectional": True, "proj_size": 3,
                      "batch_first": True}, batch=2, time=6, states=True,
                 notes="Two layers, two directions, proj_size 3: layer 1 reads both directions' projected "
                       "outputs; h_n slots are layer * 2 + direction; batch_first changes only the layout.")


@golden("torch_no_bias_three_layers")
def torch_no_bias_three_layers():
    return _case(63, {"input_size": 2, "hidden_size": 3, "num_layers": 3, "bias": False, "dropout": 0.5},
                 time=9, notes="bias=False, three layers, dropout 0.5 (inert in eval()).")


@golden("torch_float64_packed")
def torch_float64_packed():
    return _case(64, {"input_size": 3, "hidden_size": 4, "num_layers": 2, "dtype": "float64"}, batch=3,
                 lengths=[6, 2, 5], notes="float64, two layers, packed lengths.")


@golden("torch_saturated_long")
def torch_saturated_long():
    return _case(65, {"input_size": 3, "hidden_size": 4}, time=100, scales=(6.0, -5.0, 4.0, 7.0),
                 notes="Saturating gates over 100 steps: error growth along the sequence.")
