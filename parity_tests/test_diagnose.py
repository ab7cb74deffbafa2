"""``lstm-ref diagnose`` names the fault: every fault of every kind's
catalogue, injected alone into a port on the designed probe, must be named
exactly (no other candidate within tolerance, none equivalent on the
probe); chosen pairs must be named as the pair; a correct port must get "no
fault: within tolerance".  NumPy only: the broken ports are the reference
with the fault (weights edited, a subclass, the inputs or outputs changed).
"""

import numpy as np
import pytest

from lstm_ref.harness.diagnose import AMBIGUOUS, CORRECT, NONE, WITHIN, catalogue, diagnose, probe
from lstm_ref.variants import compose

PORTS = {
    "keras3": ("keras.layers.LSTM", {"units": 4, "recurrent_activation": "hard_sigmoid"}),
    "keras3_masked_half": ("keras.layers.LSTM", {"units": 3, "dtype": "float16", "go_backwards": True}),
    "tf_keras": ("tf_keras.layers.LSTM", {"units": 4}),
    "tf1_basic": ("tf.compat.v1.nn.rnn_cell.BasicLSTMCell", {"num_units": 4}),
    "tf1_lstmcell": ("tf.compat.v1.nn.rnn_cell.LSTMCell", {"num_units": 4, "use_peepholes": True, "cell_clip": 0.8}),
    "torch": ("torch.nn.LSTM", {"input_size": 5, "hidden_size": 4, "bidirectional": True}),
    "onnx": ("onnx.LSTM", {"hidden_size": 4, "clip": 0.9}),
    "contrib": ("tf.contrib.rnn.LayerNormBasicLSTMCell", {"num_units": 4}),
    "tfa": ("tfa.rnn.LayerNormLSTMCell", {"units": 4}),
}


def _probe(port):
    kind, config = PORTS[port]
    return probe(kind, config, 5)


@pytest.mark.parametrize("port", PORTS)
def test_a_correct_port_is_within_tolerance(port):
    case = _probe(port)
    assert diagnose(case, case.run().fields).verdict == CORRECT


# Faults the probe cannot see, each with the reason; the test fails if one
# becomes visible, so that this list stays true.
BLIND = {
    (
        "keras3_masked_half",
        "float16 computed in float32, rounded at the end",
    ): "on the probe it is 7.3e-4 (1-2 ulp) from the truth, within the free-running float16 bound (5e-3, "
    "ratio 0.12); the one-step bound that catches it in the suite (make mutants) needs an unmasked case "
    "and a fault inside the step, and this probe is masked and the fault acts on the trace",
}


@pytest.mark.parametrize("port", PORTS)
def test_every_single_fault_is_named_exactly(port):
    case = _probe(port)
    missed = []
    named = 0
    for fault in catalogue(case.kind):
        if not fault.applies(case):
            continue
        if (port, fault.name) in BLIND:
            assert diagnose(case, fault.run(case).fields, pairs=False).verdict == CORRECT, BLIND[(port, fault.name)]
            continue
        d = diagnose(case, fault.run(case).fields, pairs=False)
        best = d.best()
        if d.verdict != WITHIN or best.name != fault.name or best.equivalent:
            missed.append((fault.name, d.verdict, best and best.name, best and best.equivalent))
        named += 1
    assert not missed, f"{len(missed)} of {named} faults not named exactly: {missed}"
    assert named >= 25


PAIRS = [
    ("keras3", "gate blocks read as i,c,f,o (truth i,f,c,o)", "bias missing"),
    ("keras3", "Keras 2 hard_sigmoid", "output sequence reversed"),
    ("keras3", "final h and c swapped", "a kernel reshaped instead of transposed"),
    ("tf1_basic", "forget_bias missing", "gate blocks read as i,f,j,o (truth i,j,f,o)"),
    ("torch", "bias_hh dropped (one bias, as Keras)", "gate blocks read as i,g,f,o (truth i,f,g,o)"),
    ("torch", "reverse direction's output not flipped back", "initial h and c swapped"),
    ("onnx", "clip ignored (onnx.reference)", "gate blocks read as i,f,c,o (truth i,o,f,c)"),
]


@pytest.mark.parametrize("port,first,second", PAIRS, ids=[f"{p}: {a} + {b}" for p, a, b in PAIRS])
def test_a_pair_of_faults_is_named_as_the_pair(port, first, second):
    case = _probe(port)
    faults = {f.name: f for f in catalogue(case.kind)}
    broken = compose(faults[first], faults[second])
    d = diagnose(case, broken.run(case).fields)
    within = [c for c in d.candidates if c.ratio <= 1]
    assert d.verdict == WITHIN and {n for c in within for n in [c.name, *c.equivalent]} & {
        f"{first} + {second}",
        f"{second} + {first}",
    }, (d.verdict, [(c.name, c.ratio) for c in d.candidates[:3]])


def test_an_unknown_fault_is_no_known_fault_with_the_nearest():
    case = _probe("keras3")
    observed = dict(case.run().fields)
    observed["h"] = observed["h"] * 1.01  # 1% too large everywhere: nothing in the catalogue
    observed["c"] = observed["c"] * 1.01
    d = diagnose(case, observed, pairs=False)
    assert d.verdict == NONE and d.candidates and d.candidates[0].ratio > 1


def test_final_states_only_leave_ambiguities_the_sequence_resolves():
    """Observed final states alone (no per-step h) cannot tell an output
    reversal from the truth: it changes no final state."""
    case = _probe("keras3")
    faults = {f.name: f for f in catalogue(case.kind)}
    observed = faults["output sequence reversed"].run(case)
    assert diagnose(case, {"final_h": observed.final_h, "final_c": observed.final_c}).verdict == CORRECT
    assert diagnose(case, observed.fields).best().name == "output sequence reversed"


def test_the_fix_is_actionable():
    case = _probe("keras3")
    faults = {f.name: f for f in catalogue(case.kind)}
    d = diagnose(case, faults["gate blocks read as i,c,f,o (truth i,f,c,o)"].run(case).fields)
    assert "reorder the gate blocks" in d.best().fix and "[0, 2, 1, 3]" in d.best().fix
    assert np.isfinite(d.best().max_abs) and d.best().ratio <= 1
    assert AMBIGUOUS != d.verdict
