"""The seeded live sweeps the report runs: deterministic cases per kind,
drawn with NumPy (no Hypothesis), covering each kind's option space.

Each sweep is ``fn(seed) -> iterator of Case`` (named), referenced by its
kind's record.  Weights come from the one builder
(:func:`lstm_ref.case.build_weights`) and masks from the one generator
(:func:`lstm_ref.case.make_mask`).
"""

import itertools

import numpy as np

from .. import from_config
from ..case import Case, build_weights, make_mask

ALL_MASKS = ("none", "right", "left", "holes", "fully_masked_row")
RIGHT_PADDED = ("none", "right")


def _case(rng, name, kind, config, *, batch=3, time=None, features=None, units_key="units", scales=None,
          mask="none", states=False):
    """One named case: x, weights and mask drawn from ``rng``."""
    ref = from_config(kind, config)
    time = time or int(rng.choice([4, 10, 30]))
    features = features or int(rng.integers(2, 6))
    var = ref.policy.variable
    scales = scales if scales is not None else tuple(rng.choice([0.3, 0.7, 1.2, -0.8, 3.0], size=4))
    weights = build_weights(ref, rng, features, scales=scales)
    x = rng.standard_normal((batch, time, features)).astype(var)
    initial = {}
    if states:
        initial = {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype(var) for s in ref.STATE}
    return Case(kind, config, x, weights, make_mask(rng, mask, batch, time), name=name, **initial)


def keras_sweep(seed=0, kind="keras.layers.LSTM", tag="keras"):
    rng = np.random.default_rng(seed)
    grid = itertools.product(["float32", "float64", "float16", "mixed_float16"], [False, True], ALL_MASKS)
    for i, (dtype, backwards, pattern) in enumerate(grid):
        if i % 2:  # half the grid keeps the sweep quick; the seed picks which half
            continue
        units = int(rng.integers(2, 9))
        # bounded activations only: a long sequence with relu is conditioning, not semantics
        activations = {"activation": ("tanh", "softsign")[(i // 4) % 2],
                       "recurrent_activation": ("sigmoid", "hard_sigmoid")[(i // 2) % 2]}
        yield _case(rng, f"sweep_{tag}_{i:02d}_{dtype}_{'bw' if backwards else 'fw'}_{pattern}", kind,
                    {"units": units, "go_backwards": backwards, "dtype": dtype, **activations},
                    time=int(rng.choice([5, 12, 40])), features=int(rng.integers(2, 9)), mask=pattern,
                    states=i % 4 == 0)


def basic_sweep(seed=0):
    rng = np.random.default_rng(seed + 1)
    kind = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
    for i, (dtype, fb) in enumerate(itertools.product(["float32", "float64", "float16"], [0.0, 1.0, 2.5])):
        pattern = RIGHT_PADDED[i % 2]
        yield _case(rng, f"sweep_basic_{i:02d}_{dtype}_{pattern}", kind,
                    {"num_units": int(rng.integers(2, 7)), "forget_bias": fb, "dtype": dtype}, mask=pattern,
                    scales=(0.7, -0.5, 1.1, 0.4))


def lstmcell_sweep(seed=0):
    rng = np.random.default_rng(seed + 2)
    kind = "tf.compat.v1.nn.rnn_cell.LSTMCell"
    options = [{}, {"use_peepholes": True}, {"cell_clip": 0.5}, {"num_proj": 2}, {"num_proj": 3, "proj_clip": 0.2},
               {"use_peepholes": True, "cell_clip": 0.4, "num_proj": 2, "proj_clip": 0.3}]
    for i, (dtype, extra) in enumerate(itertools.product(["float32", "float64", "float16"], options)):
        pattern = RIGHT_PADDED[i % 2]
        yield _case(rng, f"sweep_lstmcell_{i:02d}_{dtype}_{pattern}", kind,
                    {"num_units": int(rng.integers(2, 7)), "dtype": dtype, **extra}, mask=pattern,
                    scales=(0.7, -0.5, 1.1, 0.4), states=i % 3 == 0)


def contrib_sweep(seed=0):
    rng = np.random.default_rng(seed + 3)
    kind = "tf.contrib.rnn.LayerNormBasicLSTMCell"
    grid = itertools.product(["float32", "float64", "float16"], [True, False], [1.0, 0.0])
    for i, (dtype, layer_norm, fb) in enumerate(grid):
        pattern = RIGHT_PADDED[i % 2]
        yield _case(rng, f"sweep_contrib_{i:02d}_{dtype}_{pattern}", kind,
                    {"num_units": int(rng.integers(2, 7)), "layer_norm": layer_norm, "forget_bias": fb,
                     "dtype": dtype}, mask=pattern, scales=(0.8, -0.6, 1.2, 0.5))


def tfa_sweep(seed=0):
    rng = np.random.default_rng(seed + 4)
    kind = "tfa.rnn.LayerNormLSTMCell"
    grid = itertools.product(
        ["float32", "float64", "float16", "mixed_float16"],
        [
            {},
            {"go_backwards": True},
            {"recurrent_activation": "hard_sigmoid", "use_bias": False},
            {"norm_epsilon": 1e-5},
        ],
    )
    for i, (dtype, extra) in enumerate(grid):
        if dtype == "mixed_float16" and "norm_epsilon" in extra:
            continue  # refused by the reference: Keras' third layer-norm path
        pattern = ALL_MASKS[i % len(ALL_MASKS)]
        yield _case(rng, f"sweep_tfa_{i:02d}_{dtype}_{pattern}", kind,
                    {"units": int(rng.integers(2, 7)), "dtype": dtype, **extra}, mask=pattern,
                    scales=(0.7, -0.5, 1.1, 0.4))


def tf_keras_sweep(seed=0):
    """Both code paths (standard_lstm: tanh/sigmoid, bias, no unroll; the cell
    loop otherwise), implementation 0/1/2, unroll with go_backwards and
    zero_output_for_mask (TF's unrolled-mask bug), Keras 2 hard_sigmoid and
    activation=None, every mask pattern, every dtype."""
    rng = np.random.default_rng(seed + 5)
    kind = "tf_keras.layers.LSTM"
    options = [
        {},
        {"implementation": 1},
        {"recurrent_activation": "hard_sigmoid", "implementation": 1},
        {"activation": "softsign", "implementation": 0, "unroll": True},
        {"unroll": True, "go_backwards": True, "zero_output_for_mask": True},
        {"go_backwards": True, "time_major": True},
        {"activation": None, "use_bias": False},
    ]
    grid = itertools.product(["float32", "float64", "float16", "mixed_float16"], options)
    for i, (dtype, extra) in enumerate(grid):
        pattern = ALL_MASKS[i % len(ALL_MASKS)]
        tame = extra.get("activation", "tanh") is None  # linear c: keep it short and small
        yield _case(rng, f"sweep_tf_keras_{i:02d}_{dtype}_{pattern}", kind,
                    {"units": int(rng.integers(2, 7)), "dtype": dtype, **extra}, mask=pattern,
                    time=5 if tame else None, scales=(0.2, -0.15, 0.3, 0.1) if tame else None, states=i % 3 == 0)


def _stacked_case(rng, name, kind, config, *, batch=3, time=None, mask="none", states=False, empty_row=False):
    """A named case of a layered kind: stacked states, lengths >= 1 unless
    ``empty_row`` (ONNX takes rows of length 0)."""
    ref = from_config(kind, config)
    time = time or int(rng.choice([4, 10, 30]))
    features = config.get("input_size") or int(rng.integers(2, 6))
    var = ref.policy.variable
    weights = build_weights(ref, rng, features, scales=tuple(rng.choice([0.3, 0.7, 1.2, -0.8, 3.0], size=4)))
    x = rng.standard_normal((batch, time, features)).astype(var)
    m = make_mask(rng, mask, batch, time)
    if m is not None and empty_row:
        m[-1] = False
    initial = {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype(var) for s in ref.STATE} if states else {}
    return Case(kind, config, x, weights, m, name=name, **initial)


def torch_sweep(seed=0):
    """Layers x directions x projection x bias, both dtypes, packed lengths."""
    rng = np.random.default_rng(seed + 6)
    options = [{}, {"bidirectional": True}, {"num_layers": 2}, {"num_layers": 2, "bidirectional": True, "proj_size": 2},
               {"proj_size": 1, "bias": False}, {"num_layers": 3, "batch_first": True}]
    for i, (dtype, extra) in enumerate(itertools.product(["float32", "float64"], options)):
        pattern = RIGHT_PADDED[i % 2]
        config = {"input_size": int(rng.integers(2, 6)), "hidden_size": int(rng.integers(3, 7)), "dtype": dtype,
                  **extra}
        yield _stacked_case(rng, f"sweep_torch_{i:02d}_{dtype}_{pattern}", "torch.nn.LSTM", config, mask=pattern,
                            states=i % 3 == 0)


def onnx_sweep(seed=0):
    """Every direction, clip, input_forget, non-default activations with
    alpha/beta, no B or P, sequence_lens with a row of length 0."""
    rng = np.random.default_rng(seed + 7)
    options = [{}, {"clip": 0.5}, {"input_forget": 1},
               {"activations": ["HardSigmoid", "Softsign", "ScaledTanh"], "activation_alpha": [0.3, 1.5],
                "activation_beta": [0.6, 0.7]}]
    for i, (direction, extra) in enumerate(itertools.product(["forward", "reverse", "bidirectional"], options)):
        if "activations" in extra and direction == "bidirectional":
            extra = {"activations": extra["activations"] * 2, "activation_alpha": extra["activation_alpha"] * 2,
                     "activation_beta": extra["activation_beta"] * 2}
        pattern = RIGHT_PADDED[i % 2]
        case = _stacked_case(rng, f"sweep_onnx_{i:02d}_{direction}_{pattern}", "onnx.LSTM",
                             {"hidden_size": int(rng.integers(2, 7)), "direction": direction, **extra}, mask=pattern,
                             states=i % 3 == 0, empty_row=i % 4 == 1)
        if i % 5 == 2:
            case = case.replace(weights={k: v for k, v in case.weights.items() if k not in ("B", "P")})
        yield case
