"""``diagnose`` on gradients names the backward-only faults
(:mod:`lstm_ref.grad_faults`): each injected alone into a target whose
forward is right -- the reference with the fault, its gradients rounded to
float32 as a float32 framework returns them -- is named exactly on keras3,
tf_keras, torch (two biases: the doubled bias gradient is torch's natural
slip) and a TF1 cell; a correct target is "no fault"; a fault outside the
catalogue is named as nothing.  NumPy only.  Prints the confusion table.
"""

import numpy as np
import pytest

from lstm_ref import grad_faults as GF
from lstm_ref.harness.diagnose import CORRECT, NONE, WITHIN, _grad_keys, diagnose_grad, probe
from lstm_ref.harness.grad_oracle import draw_upstream

PORTS = {
    "keras3": ("keras.layers.LSTM", {"units": 4}),
    "tf_keras": ("tf_keras.layers.LSTM", {"units": 4}),
    "torch": ("torch.nn.LSTM", {"input_size": 5, "hidden_size": 4}),
    "tf1_lstmcell": ("tf.compat.v1.nn.rnn_cell.LSTMCell", {"num_units": 4, "use_peepholes": True}),
}
# The upstream is N(0, 1) times this, so that dL/dh_t exceeds the largest
# catalogue clip (5) somewhere on the probe and clipping at 5 is visible.
UPSTREAM_SCALE = 4.0
INJECTED = (GF.TRUNCATED, GF.DETACHED_C, GF.clipped(1.0), GF.clipped(5.0), GF.clipped(0.37), GF.DOUBLED_BIAS)


def _setup(port):
    kind, config = PORTS[port]
    case = probe(kind, config, 5)
    up = {k: (v * UPSTREAM_SCALE).astype(v.dtype) for k, v in draw_upstream(case, np.random.default_rng(1)).items()}
    return case, up


def _target(case, up, fault):
    """The port's gradients: the reference with ``fault``, in float32."""
    g = _grad_keys(GF.grad_with(case.reference(), case, up, fault), case)
    return {k: v.astype(np.float32) for k, v in g.items()}


def _named(case, up, grads):
    d = diagnose_grad(case, up, grads, observed=case.run().fields)
    return d, (d.best().name if d.verdict == WITHIN else d.verdict)


def test_confusion_table_of_the_backward_faults(capsys):
    rows, wrong = [], []
    for fault in (None, *INJECTED):
        row = []
        for port in PORTS:
            case, up = _setup(port)
            d, named = _named(case, up, _target(case, up, fault))
            expected = CORRECT if fault is None else fault.name
            row.append(named)
            if named != expected:
                wrong.append((port, expected, named, [(c.name, c.ratio) for c in d.candidates[:3]]))
        rows.append((fault.name if fault else "(correct target)", row))
    with capsys.disabled():
        print("\ninjected -> named, per port:", " | ".join(PORTS))
        for name, row in rows:
            print(f"  {name:44s} -> " + " | ".join("OK" if n == (name if n != CORRECT else n) else n for n in row))
    assert not wrong, wrong


@pytest.mark.parametrize("port", PORTS)
def test_the_fitted_clip_needs_the_per_step_gradient(port):
    """Clipped at 0.37 (outside CLIP_VALUES): named with steps:h (the bound
    is fitted from it), and without steps:h nothing is named -- the
    catalogue's 1 and 5 do not pass for it."""
    case, up = _setup(port)
    grads = _target(case, up, GF.clipped(0.37))
    assert _named(case, up, grads)[1] == GF.clipped(0.37).name
    d, named = _named(case, up, {k: v for k, v in grads.items() if k != "steps:h"})
    assert named == NONE, [(c.name, c.ratio) for c in d.candidates]


@pytest.mark.parametrize("port", PORTS)
def test_a_fault_outside_the_catalogue_is_not_named(port):
    """The recurrent weight's gradient halved: no backward fault does that."""
    case, up = _setup(port)
    grads = _target(case, up, None)
    name = next(k for k in grads if k.startswith("w:") and ("recurrent" in k or "weight_hh" in k or k == "w:kernel"))
    grads[name] = grads[name] * np.float32(0.5)
    d, named = _named(case, up, grads)
    assert named == NONE, [(c.name, c.ratio) for c in d.candidates]


def test_a_forward_fault_is_reported_as_the_forward_diagnosis():
    case, up = _setup("keras3")
    outputs = case.run().fields
    outputs = {**outputs, "final_h": outputs["final_h"][::-1]}
    d = diagnose_grad(case, up, _target(case, up, None), observed=outputs)
    assert d.verdict != CORRECT and "gradients were not searched" in d.note


def test_no_fault_changes_nothing_when_none_is_given():
    """The default path is bitwise the same as with an empty fault set."""
    from lstm_ref import grad as G

    case, up = _setup("torch")
    plain = _target(case, up, None)
    with G.injected({}):
        again = _target(case, up, None)
    assert all(np.array_equal(plain[k], again[k]) for k in plain)
    with pytest.raises(ValueError, match="unknown backward fault"):
        with G.injected({"detach_x": True}):
            pass
