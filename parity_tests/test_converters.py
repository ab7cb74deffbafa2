"""Converters proven by parity: both frameworks run on the same numbers.

For every source case and every target kind, ``lstm_ref.convert.convert``
gives the target's case; the source's framework runs the source case, the
target's framework runs the converted one, and

1. each framework matches its own reference (the one comparison, the one
   tolerance table), and
2. the source framework's outputs, put in the target's layout by
   ``Conversion.align``, match the target framework's outputs step by step,
   to the same tolerance (the reference of the target case gives the
   rounding allowance).

Pairs a framework cannot express are refused with the reason; the table
below says which, and the test fails if a refusal appears or disappears.
"""

import numpy as np
import pytest

from lstm_ref import from_config
from lstm_ref.case import Case, build_weights
from lstm_ref.convert import ConversionError, convert
from lstm_ref.harness.compare import assert_parity, assert_run_parity, own_rounding_of
from lstm_ref.harness.records import RECORDS, record_of

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("torch", "onnx", "flax_lstmcell", "flax_optimized")

KIND = {r.id: r.kind for r in RECORDS}
TARGETS = [
    "keras3",
    "tf_keras",
    "tf1_basic",
    "tf1_lstmcell",
    "torch",
    "onnx",
    "nn_lstmcell",
    "flax_lstmcell",
    "flax_optimized",
]
RIGHT = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]], bool)


def _source(name, kind_id, config, *, mask=None, states=False, seed=0, drop=(), features=None):
    kind = KIND[kind_id]
    ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    features = features or config.get("input_size", 3)
    weights = {k: v for k, v in build_weights(ref, rng, features).items() if k not in drop}
    x = rng.standard_normal((3, 6, features)).astype("float32")
    initial = (
        {f"{s}0": (0.5 * rng.standard_normal(ref.state_shape(s, 3))).astype("float32") for s in ref.STATE}
        if states
        else {}
    )
    return Case(kind, config, x, weights, mask, name=name, **initial)


SOURCES = {
    "keras3_masked_states": _source("keras3_masked_states", "keras3", {"units": 4}, mask=RIGHT, states=True, seed=1),
    "keras3_go_backwards": _source(
        "keras3_go_backwards", "keras3", {"units": 3, "go_backwards": True}, mask=RIGHT, seed=2
    ),
    "tf_keras_relu": _source("tf_keras_relu", "tf_keras", {"units": 3, "activation": "relu"}, seed=3),
    # Keras 2's hard_sigmoid gates: ONNX's HardSigmoid(alpha 0.2, beta 0.5), the same function
    # (measured, tf_keras 2.21 against ONNX Runtime: worst ratio 0.026, max |d| h 8.9e-8, final_c 1.2e-7)
    "tf_keras_hard_sigmoid": _source(
        "tf_keras_hard_sigmoid",
        "tf_keras",
        {"units": 4, "recurrent_activation": "hard_sigmoid"},
        mask=RIGHT,
        states=True,
        seed=18,
    ),
    "tf1_basic_forget_bias": _source(
        "tf1_basic_forget_bias", "tf1_basic", {"num_units": 4, "forget_bias": 1.0}, mask=RIGHT, states=True, seed=4
    ),
    "tf1_lstmcell_proj": _source("tf1_lstmcell_proj", "tf1_lstmcell", {"num_units": 4, "num_proj": 2}, seed=5),
    "tf1_lstmcell_peepholes": _source(
        "tf1_lstmcell_peepholes", "tf1_lstmcell", {"num_units": 3, "use_peepholes": True}, seed=6
    ),
    "torch_packed_states": _source(
        "torch_packed_states", "torch", {"input_size": 3, "hidden_size": 4}, mask=RIGHT, states=True, seed=7
    ),
    "torch_bidirectional": _source(
        "torch_bidirectional", "torch", {"input_size": 3, "hidden_size": 3, "bidirectional": True}, mask=RIGHT, seed=8
    ),
    "onnx_reverse_lens": _source(
        "onnx_reverse_lens", "onnx", {"hidden_size": 4, "direction": "reverse"}, mask=RIGHT, seed=9, drop=("P",)
    ),
    "onnx_forward_states": _source(
        "onnx_forward_states", "onnx", {"hidden_size": 3}, states=True, seed=10, drop=("P",)
    ),
    # torch.nn.LSTMCell, stepped over the sequence by a loop: no mask, states (batch, H)
    "torch_cell_states": _source(
        "torch_cell_states", "nn_lstmcell", {"input_size": 3, "hidden_size": 4}, states=True, seed=15
    ),
    "torch_cell_no_bias": _source(
        "torch_cell_no_bias", "nn_lstmcell", {"input_size": 3, "hidden_size": 3, "bias": False}, seed=16
    ),
    # Flax under nnx.RNN: one bias, on the h side; the carry (c, h); past a length the cell keeps stepping
    "flax_cell_lengths_states": _source(
        "flax_cell_lengths_states", "flax_lstmcell", {"hidden_features": 4}, mask=RIGHT, states=True, seed=20
    ),
    "flax_optimized_reverse": _source(
        "flax_optimized_reverse",
        "flax_optimized",
        {"hidden_features": 3, "reverse": True, "keep_order": True},
        mask=RIGHT,
        seed=21,
    ),
}

# (source, target) -> what the refusal must say.  Every other pair converts.
REFUSED = {
    **{("keras3_go_backwards", t): "a TF1 cell runs forward" for t in ("tf1_basic", "tf1_lstmcell")},
    ("keras3_go_backwards", "torch"): "no reverse-only direction",
    ("tf_keras_relu", "torch"): "sigmoid and tanh only",
    ("tf_keras_hard_sigmoid", "keras3"): r"Keras 3's hard_sigmoid is relu6\(x \+ 3\) / 6",
    **{("tf_keras_hard_sigmoid", t): "TF1 cells use sigmoid for the gates" for t in ("tf1_basic", "tf1_lstmcell")},
    ("tf_keras_hard_sigmoid", "torch"): "sigmoid and tanh only",
    **{("tf1_lstmcell_proj", t): "a projection" for t in ("keras3", "tf_keras", "tf1_basic", "onnx")},
    **{("tf1_lstmcell_peepholes", t): "peepholes" for t in ("keras3", "tf_keras", "tf1_basic", "torch")},
    **{("torch_bidirectional", t): "two directions" for t in ("keras3", "tf_keras", "tf1_basic", "tf1_lstmcell")},
    **{("onnx_reverse_lens", t): "a TF1 cell runs forward" for t in ("tf1_basic", "tf1_lstmcell")},
    ("onnx_reverse_lens", "torch"): "no reverse-only direction",
    # to torch.nn.LSTMCell: a loop steps every row, forward, one layer
    **{
        (s, "nn_lstmcell"): "an LSTMCell has none: its loop steps every row"
        for s in ("keras3_masked_states", "tf1_basic_forget_bias", "torch_packed_states")
    },
    **{(s, "nn_lstmcell"): "stepped forward by its loop" for s in ("keras3_go_backwards", "onnx_reverse_lens")},
    **{
        (s, "nn_lstmcell"): "torch.nn.LSTMCell uses sigmoid and tanh only"
        for s in ("tf_keras_relu", "tf_keras_hard_sigmoid")
    },
    ("tf1_lstmcell_proj", "nn_lstmcell"): "a projection .*LSTMCell has none",
    ("tf1_lstmcell_peepholes", "nn_lstmcell"): "peepholes",
    ("torch_bidirectional", "nn_lstmcell"): "two directions",
    # to and from Flax: Keras 2's hard_sigmoid is not Flax's; no projection, peepholes or second direction
    **{
        (s, t): what
        for t in ("flax_lstmcell", "flax_optimized")
        for s, what in (
            ("tf_keras_hard_sigmoid", r"Flax's hard_sigmoid is relu6\(x \+ 3\) / 6"),
            ("tf1_lstmcell_proj", "a projection"),
            ("tf1_lstmcell_peepholes", "peepholes"),
            ("torch_bidirectional", "two directions"),
        )
    },
    ("flax_cell_lengths_states", "nn_lstmcell"): "an LSTMCell has none: its loop steps every row",
    **{("flax_optimized_reverse", t): "a TF1 cell runs forward" for t in ("tf1_basic", "tf1_lstmcell")},
    ("flax_optimized_reverse", "torch"): "no reverse-only direction",
    ("flax_optimized_reverse", "nn_lstmcell"): "stepped forward by its loop",
}
PAIRS = [(s, t) for s in SOURCES for t in TARGETS]


def _conversion(source_id, target_id):
    return convert(SOURCES[source_id], KIND[target_id])


@pytest.mark.parametrize("source_id,target_id", [p for p in PAIRS if p in REFUSED], ids="{0[0]}->{0[1]}".format)
def test_refused_with_the_reason(source_id, target_id):
    with pytest.raises(ConversionError, match=REFUSED[(source_id, target_id)]):
        _conversion(source_id, target_id)


@pytest.mark.parametrize(
    "source_id,target_id", [p for p in PAIRS if p not in REFUSED], ids=["->".join(p) for p in PAIRS if p not in REFUSED]
)
def test_both_frameworks_agree_through_the_reference(oracle_for, source_id, target_id):
    conversion = _conversion(source_id, target_id)
    source, target = conversion.source, conversion.case
    from_source = oracle_for(source.kind).run(source)
    from_target = oracle_for(target.kind).run(target)
    assert_run_parity(source, from_source, context=f"source {source.name}")
    assert_run_parity(target, from_target, context=f"target {target.name}")
    # The two frameworks, step by step, in the target's layout; the target's
    # reference gives the rounding allowance.
    ref = target.reference()
    own = own_rounding_of(target.run(ref), target.run(ref, oracle=True))
    aligned = conversion.align(from_source)
    trace = target.run(ref).replace(**{k: aligned[k] for k in aligned})
    assert_parity(
        trace,
        from_target,
        ref.policy.compute,
        kind=target.kind,
        own=own,
        context=f"{source.kind} ran {source.name}, {target.kind} its conversion; notes: {conversion.notes}",
    )


@pytest.mark.parametrize("source_id", list(SOURCES))
def test_a_round_trip_gives_the_same_numbers_back(source_id):
    """source -> every target that takes it -> back: the reference computes
    the same trace, up to the rounding of a bias sum (past a row's length,
    h is compared on valid steps only: a Keras source repeats its last
    output there, and comes back writing zeros, as its target did)."""
    source = SOURCES[source_id]
    for target_id in TARGETS:
        if (source_id, target_id) in REFUSED:
            continue
        there = _conversion(source_id, target_id).case
        back = convert(there, source.kind)
        truth, again = source.run(), back.case.run()
        valid = (slice(None),) if source.mask is None else (np.asarray(source.mask, bool),)
        for name in truth.fields:
            a, b = (again[name], truth[name]) if name.startswith("final_") else (again[name][valid], truth[name][valid])
            np.testing.assert_allclose(
                a, b, rtol=1e-5, atol=1e-6, err_msg=f"{source_id} -> {target_id} -> back: {name}"
            )


def test_a_left_padded_mask_is_refused_for_sequence_lens():
    case = SOURCES["keras3_masked_states"].replace(mask=RIGHT[:, ::-1].copy())
    with pytest.raises(ConversionError, match=r"not right-padded.*tensorflow-onnx#2030"):
        convert(case, KIND["onnx"])


def test_every_record_kind_with_a_converter_is_tested():
    from lstm_ref.convert import KINDS

    assert {record_of(k).id for k in KINDS} == set(TARGETS)


# -- several one-layer sources as one module ---------------------------------------------------


def _compare_group(oracle_for, conversion, outputs):
    target = conversion.case
    from_target = oracle_for(target.kind).run(target)
    assert_run_parity(target, from_target, context=f"target {target.name}")
    ref = target.reference()
    own = own_rounding_of(target.run(ref), target.run(ref, oracle=True))
    aligned = conversion.align(outputs)
    trace = target.run(ref).replace(**aligned)
    assert_parity(
        trace,
        from_target,
        ref.policy.compute,
        kind=target.kind,
        own=own,
        context=f"{target.name}; notes: {conversion.notes}",
    )
    return aligned, from_target


@pytest.mark.parametrize("target_id", ["torch", "onnx"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_a_keras_bidirectional_is_one_bidirectional_module(oracle_for, target_id, return_sequences):
    """Keras' Bidirectional directions (the backward one go_backwards, both
    zero_output_for_mask = return_sequences, as the wrapper forces them), on
    the same x and right-padded mask, as ONE bidirectional torch/ONNX LSTM:
    TF runs each direction, the target the converted module, and the
    concatenation (Keras' merge_mode="concat") agrees step by step."""
    from lstm_ref.convert import convert_bidirectional

    config = {"units": 4, "return_sequences": return_sequences, "zero_output_for_mask": return_sequences}
    fwd = _source("fwd", "keras3", config, mask=RIGHT, seed=11)
    bwd = _source("bwd", "keras3", {**config, "go_backwards": True}, mask=RIGHT, seed=12).replace(x=fwd.x)
    conversion = convert_bidirectional(fwd, bwd, KIND[target_id], merge_mode="sum", name="bi")
    cfg = conversion.case.config
    assert cfg.get("bidirectional") is True or cfg.get("direction") == "bidirectional"
    assert any("merge_mode='sum'" in n and "add the two halves" in n for n in conversion.notes)
    outputs = [oracle_for(c.kind).run(c) for c in (fwd, bwd)]
    for case, out in zip((fwd, bwd), outputs):
        assert_run_parity(case, out, context=case.name)
    aligned, from_target = _compare_group(oracle_for, conversion, outputs)
    assert aligned["h"].shape == (3, 6, 8) and aligned["final_h"].shape == (2, 3, 4)


def test_a_bidirectional_whose_directions_disagree_is_refused():
    from lstm_ref.convert import convert_bidirectional

    fwd = _source("fwd", "keras3", {"units": 4}, seed=11)
    with pytest.raises(ConversionError, match="backward layer backwards"):
        convert_bidirectional(fwd, fwd, KIND["torch"])
    bwd = _source("bwd", "keras3", {"units": 3, "go_backwards": True}, seed=12).replace(x=fwd.x)
    with pytest.raises(ConversionError, match="differ in units"):
        convert_bidirectional(fwd, bwd, KIND["torch"])
    with pytest.raises(ConversionError, match="only torch.nn.LSTM and onnx.LSTM"):
        convert_bidirectional(fwd, bwd, KIND["keras3"])


def test_chained_onnx_nodes_are_one_multi_layer_torch_lstm(oracle_for):
    """Two bidirectional ONNX nodes, the second reading the first's Y (what
    torch.onnx.export writes for nn.LSTM(num_layers=2, bidirectional=True)),
    as one torch.nn.LSTM(num_layers=2): torch runs the module, ONNX Runtime
    the nodes one after the other, and they agree step by step."""
    from lstm_ref.convert import convert_layers

    first = _source(
        "n0", "onnx", {"hidden_size": 3, "direction": "bidirectional"}, mask=RIGHT, states=True, seed=13, drop=("P",)
    )
    out0 = oracle_for(first.kind).run(first)
    second = _source(
        "n1",
        "onnx",
        {"hidden_size": 3, "direction": "bidirectional"},
        mask=RIGHT,
        states=True,
        seed=14,
        drop=("P",),
        features=6,
    ).replace(x=np.ascontiguousarray(out0["h"]))
    out1 = oracle_for(second.kind).run(second)
    conversion = convert_layers([first, second], KIND["torch"], name="lstm")
    assert conversion.case.config["num_layers"] == 2 and conversion.case.config["bidirectional"] is True
    _, from_target = _compare_group(oracle_for, conversion, [out0, out1])
    assert from_target["final_h"].shape == (4, 3, 3)
    with pytest.raises(ConversionError, match="one ONNX LSTM node is one layer"):
        convert_layers([first, second], KIND["onnx"])


# -- torch.nn.LSTMCell: the one-layer torch.nn.LSTM, renamed ----------------------------------------


def test_an_lstmcell_is_the_one_layer_torch_lstm_renamed():
    """The converter is a renaming, nothing more: the same tensors, bit for
    bit, under ``_l0`` names; the states stacked (1, batch, H) one way and
    unstacked the other."""
    cell = SOURCES["torch_cell_states"]
    lstm = convert(cell, KIND["torch"]).case
    assert lstm.config == {
        "input_size": 3,
        "hidden_size": 4,
        "num_layers": 1,
        "bias": True,
        "bidirectional": False,
        "proj_size": 0,
        "dtype": "float32",
    }
    assert sorted(lstm.weights) == sorted(f"{k}_l0" for k in cell.weights)
    for key, value in cell.weights.items():
        assert np.array_equal(lstm.weights[f"{key}_l0"], value)
    assert lstm.initial_state["h0"].shape == (1, 3, 4)
    back = convert(lstm, KIND["nn_lstmcell"]).case
    assert back.config == {"input_size": 3, "hidden_size": 4, "bias": True, "dtype": "float32"}
    assert all(np.array_equal(back.weights[k], v) for k, v in cell.weights.items())
    assert back.initial_state["h0"].shape == (3, 4)


def test_an_all_true_mask_is_no_mask_and_is_said():
    source = SOURCES["torch_packed_states"].replace(mask=np.ones((3, 6), bool))
    conversion = convert(source, KIND["nn_lstmcell"])
    assert conversion.case.mask is None
    assert any("all true" in n and "dropped" in n for n in conversion.notes), conversion.notes
    truth, again = source.run(), conversion.case.run()
    np.testing.assert_allclose(again.h, truth.h, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(again.final_c, truth.final_c[0], rtol=1e-6, atol=1e-7)


def test_a_stacked_lstm_is_refused_for_a_cell():
    stacked = _source("stacked", "torch", {"input_size": 3, "hidden_size": 3, "num_layers": 2}, seed=17)
    with pytest.raises(ConversionError, match="2 layers; an LSTMCell is one layer"):
        convert(stacked, KIND["nn_lstmcell"])


# -- hard_sigmoid: Keras 2's is ONNX's HardSigmoid(0.2, 0.5), Keras 3's is another function ----------


def test_keras2_hard_sigmoid_is_written_as_hardsigmoid_alpha_beta():
    conversion = _conversion("tf_keras_hard_sigmoid", "onnx")
    config = conversion.case.config
    assert config["activations"] == ["HardSigmoid", "Tanh", "Tanh"], config
    assert (config["activation_alpha"], config["activation_beta"]) == ([0.2], [0.5]), config
    assert any("HardSigmoid(alpha=0.2, beta=0.5)" in n for n in conversion.notes), conversion.notes


def test_keras3_hard_sigmoid_is_never_hardsigmoid_0_2():
    """Keras 3's hard_sigmoid, relu6(x + 3) / 6, is not clip(0.2 x + 0.5, 0, 1):
    refused for every target, and an ONNX HardSigmoid with other parameters is
    not Keras 2's either."""
    for role in ("recurrent_activation", "activation"):
        case = _source("k3", "keras3", {"units": 3, role: "hard_sigmoid"}, seed=19)
        for target_id in TARGETS:
            if target_id == "keras3":
                continue
            with pytest.raises(ConversionError, match=r"Keras 3's hard_sigmoid is relu6\(x \+ 3\) / 6"):
                _conversion_of(case, target_id)
    onnx = _conversion("tf_keras_hard_sigmoid", "onnx").case
    sixth = onnx.replace(config={**onnx.config, "activation_alpha": [1 / 6]})
    with pytest.raises(ConversionError, match="only HardSigmoid"):
        convert(sixth, KIND["tf_keras"])


def _conversion_of(case, target_id):
    return convert(case, KIND[target_id])
