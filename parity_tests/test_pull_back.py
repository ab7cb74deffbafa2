"""``Conversion.pull_back``, the adjoint of ``align``: what ``check PORT
--source MODEL --grad`` gives the source as its upstream.

For every converting pair of ``test_converters.py``'s sources and targets:
``sum(align(o) * u) == sum(o * pull_back(u))`` for random ``o`` and ``u``
(the definition of an adjoint), and the two kinds' references, fed ``u`` and
its pull-back, agree on dL/dx and dL/d(initial state): the same function
seen from both layouts has the same gradient.  NumPy only.
"""

import numpy as np
import pytest

from lstm_ref.convert import convert, convert_bidirectional

from .test_converters import KIND, PAIRS, REFUSED, SOURCES, _source

pytestmark = pytest.mark.kinds("torch", "onnx")

FIELDS = ("h", "final_h", "final_c")
# Both references are float64 over the cases' float32 numbers, but the converted
# case's weights are float32 again where the converter folds a constant (TF1's
# forget_bias) or sums two biases (torch, ONNX): one rounding, measured worst
# 7.7e-7 relative on dL/dx and dL/d(state) over every pair; a flip, a dropped
# step or a wrong state order is O(0.1).
RTOL, ATOL = 3e-6, 1e-9
CONVERTING = [p for p in PAIRS if p not in REFUSED]


def _random_like(trace, rng):
    return {f: rng.standard_normal(np.shape(trace[f])) for f in FIELDS}


@pytest.mark.parametrize("source_id,target_id", CONVERTING, ids=[f"{s}->{t}" for s, t in CONVERTING])
def test_pull_back_is_the_adjoint_of_align(source_id, target_id):
    conversion = convert(SOURCES[source_id], KIND[target_id])
    rng = np.random.default_rng(0)
    outputs = _random_like(conversion.source.run(), rng)
    upstream = _random_like(conversion.case.run(), rng)
    aligned, pulled = conversion.align(outputs), conversion.pull_back(upstream)
    zero = conversion.align({f: np.zeros_like(v) for f, v in outputs.items()})  # align is affine: its linear part
    forward = sum(float(np.sum((aligned[f] - zero[f]) * upstream[f])) for f in FIELDS)
    back = sum(float(np.sum(outputs[f] * pulled[f])) for f in FIELDS)
    np.testing.assert_allclose(forward, back, rtol=1e-12)
    for f in FIELDS:
        assert pulled[f].shape == np.shape(outputs[f]), f


@pytest.mark.parametrize("source_id,target_id", CONVERTING, ids=[f"{s}->{t}" for s, t in CONVERTING])
def test_both_references_give_the_same_input_gradient(source_id, target_id):
    conversion = convert(SOURCES[source_id], KIND[target_id])
    src, dst = conversion.source, conversion.case
    rng = np.random.default_rng(1)
    upstream = conversion.restrict({f: v.astype(np.float32) for f, v in _random_like(dst.run(), rng).items()})
    pulled = conversion.pull_back(upstream)
    g_dst = dst.reference().grad(dst.x, dst.weights, upstream, mask=dst.mask, **dst.initial_state)
    g_src = src.reference().grad(src.x, src.weights, pulled, mask=src.mask, **src.initial_state)
    np.testing.assert_allclose(g_src.x, g_dst.x, rtol=RTOL, atol=ATOL)
    states = conversion.states_to_target(g_src.initial)
    for name, value in g_dst.initial.items():
        np.testing.assert_allclose(states[name], value, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("target_id", ["torch", "onnx"])
def test_a_bidirectional_pulls_back_to_its_two_directions(target_id):
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]], bool)
    fwd = _source("fwd", "keras3", {"units": 3, "return_sequences": True}, mask=mask, seed=11)
    bwd = _source("bwd", "keras3", {"units": 3, "return_sequences": True, "go_backwards": True}, mask=mask, seed=12)
    bwd = bwd.replace(x=fwd.x)
    group = convert_bidirectional(fwd, bwd, KIND[target_id])
    rng = np.random.default_rng(2)
    upstream = {f: v.astype(np.float32) for f, v in _random_like(group.case.run(), rng).items()}
    pulled = group.pull_back(upstream)
    outputs = [_random_like(part.run(), rng) for part in group.sources]
    aligned = group.align(outputs)
    forward = sum(float(np.sum(aligned[f] * upstream[f])) for f in FIELDS)
    back = sum(float(np.sum(o[f] * p[f])) for o, p in zip(outputs, pulled) for f in FIELDS)
    np.testing.assert_allclose(forward, back, rtol=1e-12)
    # both directions read the same x: their input gradients add up to the module's
    dst = group.case
    g_dst = dst.reference().grad(dst.x, dst.weights, upstream, mask=dst.mask)
    g_src = [p.reference().grad(p.x, p.weights, u, mask=p.mask) for p, u in zip(group.sources, pulled)]
    np.testing.assert_allclose(g_src[0].x + g_src[1].x, g_dst.x, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_a_stack_of_layers_pulls_back_layer_by_layer(direction):
    """Two chained ONNX nodes as one torch.nn.LSTM(num_layers=2): the pull-back
    is the adjoint of align (the top layer takes the sequence, each layer its
    slice of the stacked states, a lower layer no sequence), and fed top down
    -- the lower layer's sequence upstream being the upper layer's dL/dx --
    the two nodes' references give the module's dL/dx and dL/d(state).
    Without that feed the lower layer's dL/dx is wrong."""
    from lstm_ref.convert import convert_layers

    dirs = 2 if direction == "bidirectional" else 1
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], bool)
    config = {"hidden_size": 3, "direction": direction}
    a = _source("a", "onnx", config, mask=mask, states=True, seed=13, drop=("P",))
    b = _source("b", "onnx", config, mask=mask, states=True, seed=14, drop=("P",), features=3 * dirs)
    b = b.replace(x=a.run().h)
    group = convert_layers([a, b], KIND["torch"])
    rng = np.random.default_rng(3)
    upstream = {f: v.astype(np.float32) for f, v in _random_like(group.case.run(), rng).items()}
    pulled = group.pull_back(upstream)
    assert "h" not in pulled[0] and pulled[1]["h"].shape == b.run().h.shape
    outputs = [_random_like(part.run(), rng) for part in group.sources]
    aligned = group.align(outputs)
    forward = sum(float(np.sum(aligned[f] * upstream[f])) for f in FIELDS)
    back = sum(float(np.sum(o[f] * p[f])) for o, p in zip(outputs, pulled) for f in p)
    np.testing.assert_allclose(forward, back, rtol=1e-12)

    def grad(case, up):
        return case.reference().grad(case.x, case.weights, up, mask=case.mask, **case.initial_state)

    dst = group.case
    g_dst = grad(dst, upstream)
    g_top = grad(b, pulled[1])
    g_low = grad(a, {**pulled[0], "h": g_top.x})
    np.testing.assert_allclose(g_low.x, g_dst.x, rtol=RTOL, atol=ATOL)
    for name, value in g_dst.initial.items():
        states = [part.states_to_target(g.initial)[name] for part, g in zip(group.parts(), (g_low, g_top))]
        np.testing.assert_allclose(np.concatenate(states, axis=0), value, rtol=RTOL, atol=ATOL, err_msg=name)
    cut = grad(a, pulled[0])  # the layer above's dL/dx not fed down
    assert not np.allclose(cut.x, g_dst.x, rtol=RTOL, atol=ATOL)
