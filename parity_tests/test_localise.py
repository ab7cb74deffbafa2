"""``diagnose`` beyond the catalogue: a fault no catalogue lists is
localised to its tensor, gate and unit, and named with its size where a
small correction explains it.  NumPy only: every broken port is the
reference with the fault injected (its weights edited, or one gate of its
step replaced by a subclass written here, not by the localiser's own
machinery).

The confusion table -- injected fault family x what ``diagnose`` answers
(named exactly, with the right size / localised to the right tensor and
gate / not sure / wrong) -- is computed once per module (``TABLE``) and
printed by :func:`test_the_confusion_table`; wrong must be 0.
"""

import json
from collections import Counter

import numpy as np
import pytest

from lstm_ref import activations
from lstm_ref.harness.diagnose import CORRECT, NONE, WITHIN, catalogue, diagnose, probe
from lstm_ref.harness.localise import AMBIGUOUS, FOUND, LOCALISED, UNSURE
from lstm_ref.keras_lstm import KerasLSTM
from lstm_ref.tf1_cells import BasicLSTMCell
from lstm_ref.tf_keras_lstm import TfKerasLSTM
from lstm_ref.torch_lstm import TorchLSTM
from lstm_ref.trace import Trace

from .test_check_artifacts import lstm_ref  # noqa: F401  (the fixture: the CLI in-process on the session's pool)

FEATURES = 4  # = units: the x-fed and h-fed tensors have one shape, so a swap is possible
PORTS = {
    "keras3": ("keras.layers.LSTM", {"units": 4}),
    "tf_keras": ("tf_keras.layers.LSTM", {"units": 4}),
    "tf1_basic": ("tf.compat.v1.nn.rnn_cell.BasicLSTMCell", {"num_units": 4}),
    "tf1_lstmcell": ("tf.compat.v1.nn.rnn_cell.LSTMCell", {"num_units": 4, "use_peepholes": True}),
    "torch": ("torch.nn.LSTM", {"input_size": 4, "hidden_size": 4}),
    "onnx": ("onnx.LSTM", {"hidden_size": 4}),
}
H = 4

# Where each port keeps the tensors a fault is injected into, written out
# here from each framework's layout (not from the localiser's):
# (weight, gate axis, first column of the 4 blocks, rows on axis 0, the
# label diagnose names it by).
KERAS = {
    "x": ("kernel", 1, 0, None, "kernel"),
    "h": ("recurrent_kernel", 1, 0, None, "recurrent_kernel"),
    "bias": ("bias", 0, 0, None, "bias"),
}
TF1 = {
    "x": ("kernel", 1, 0, (0, FEATURES), "kernel[:4] (rows fed by x)"),
    "h": ("kernel", 1, 0, (FEATURES, FEATURES + H), "kernel[4:] (rows fed by h)"),
    "bias": ("bias", 0, 0, None, "bias"),
}
LAYOUT = {
    "keras3": KERAS,
    "tf_keras": KERAS,
    "tf1_basic": TF1,
    "tf1_lstmcell": TF1,
    "torch": {
        "x": ("weight_ih_l0", 0, 0, None, "weight_ih_l0"),
        "h": ("weight_hh_l0", 0, 0, None, "weight_hh_l0"),
        "bias": ("bias_hh_l0", 0, 0, None, "bias_hh_l0"),
    },
    "onnx": {
        "x": ("W", 1, 0, None, "W"),
        "h": ("R", 1, 0, None, "R"),
        "bias": ("B", 1, 4 * H, None, "B[:, 16:]"),  # Rb, the recurrent half
    },
}
LETTERS = {"keras3": "ifco", "tf_keras": "ifco", "tf1_basic": "ijfo", "tf1_lstmcell": "ijfo", "torch": "ifgo"}
LETTERS["onnx"] = "iofc"


def _index(port, tensor, letter=None, unit=None, shape=None):
    weight, axis, start, rows, _ = LAYOUT[port][tensor]
    idx = [slice(None)] * len(shape)
    if rows is not None:
        idx[0] = slice(*rows)
    if letter is None:
        idx[axis] = slice(start, start + 4 * H)
    else:
        g = start + LETTERS[port].index(letter) * H
        idx[axis] = slice(g, g + H) if unit is None else g + unit
    return weight, tuple(idx)


def _edited(case, edit):
    weights = {k: np.array(v, copy=True) for k, v in case.weights.items()}
    edit(weights)
    return weights


# -- one gate of the step replaced: each a subclass of the family, its step
# written out here as the framework's source has it, with one gate changed


def _keras_with(cls, gate, fn, unit=None):
    """Keras' ``LSTMCell.call`` (keras/src/layers/rnn/lstm.py) with ``fn``
    applied to gate ``gate``'s value (one unit's only, when ``unit``)."""

    class Port(cls):
        def _buffers(self, params, xz_t, state):
            return None  # the allocating step, which _gates is

        def _gates(self, z, c_prev):
            z_i, z_f, z_c, z_o = self._split(z)
            values = {
                "i": self.recurrent_activation(z_i),
                "f": self.recurrent_activation(z_f),
                "c": self.activation(z_c),
                "o": self.recurrent_activation(z_o),
            }
            changed = fn(values[gate], {"i": z_i, "f": z_f, "c": z_c, "o": z_o}[gate])
            values[gate] = changed if unit is None else np.where(np.arange(H) == unit, changed, values[gate])
            c = values["f"] * c_prev + values["i"] * values["c"]
            h = values["o"] * self.activation(c)
            return h, (h, c)

    return Port


class _BasicHardOutput(BasicLSTMCell):
    """``BasicLSTMCell.call`` (legacy_cells.py) with Keras 2's hard_sigmoid
    on the output gate."""

    def recurrence(self, params, xz_t, state):
        h_prev, c_prev = state
        i, j, f, o = self._gates(params, xz_t, h_prev)
        sig = activations.sigmoid
        c = c_prev * sig(f + self._const(self.forget_bias, f)) + sig(i) * self.activation(j)
        return (h := self.activation(c) * activations.keras2_hard_sigmoid(o)), (h, c)


class _TorchHardForget(TorchLSTM):
    """``LSTMCell`` of aten/src/ATen/native/RNN.cpp with Keras 3's
    hard_sigmoid on the forget gate."""

    def recurrence(self, params, xz_t, state):
        h_prev, c_prev = state
        hz = h_prev @ params["weight_hh"].T + params["bias_hh"]
        z_i, z_f, z_g, z_o = np.split(xz_t + hz, 4, axis=-1)
        c = activations.hard_sigmoid(z_f) * c_prev + activations.sigmoid(z_i) * np.tanh(z_g)
        h = activations.sigmoid(z_o) * np.tanh(c)
        return h, (h, c)


# -- the injections: (family, port, fault) -> (target trace, expected answer)
# An expected answer is (family, label, gate letter or None, units, size or None).


def _weights_fault(port, edit, expect):
    def make(case):
        return case.run(case.reference(), weights=_edited(case, lambda w: edit(port, w))), expect

    return make


def _reference_fault(cls, expect, config=None):
    def make(case):
        return case.run(cls(config or case.config)), expect

    return make


def _swap(port, w):
    (a, ia), (b, ib) = (
        _index(port, "x", shape=w[LAYOUT[port]["x"][0]].shape),
        _index(port, "h", shape=w[LAYOUT[port]["h"][0]].shape),
    )
    va, vb = w[a][ia].copy(), w[b][ib].copy()
    w[a][ia], w[b][ib] = vb, va


def _permute_recurrent(port, w):
    """The recurrent tensor alone with its f and o blocks exchanged."""
    name = LAYOUT[port]["h"][0]
    (_, i_f), (_, i_o) = (_index(port, "h", g, shape=w[name].shape) for g in "fo")
    f, o = w[name][i_f].copy(), w[name][i_o].copy()
    w[name][i_f], w[name][i_o] = o, f


def _add(tensor, letter, amount, unit=None):
    def edit(port, w):
        name, idx = _index(port, tensor, letter, unit, w[LAYOUT[port][tensor][0]].shape)
        w[name][idx] += amount

    return edit


def _scale(tensor, letter, factor):
    def edit(port, w):
        name, idx = _index(port, tensor, letter, shape=w[LAYOUT[port][tensor][0]].shape)
        w[name][idx] *= factor

    return edit


def _shift(port, w):
    """Unit 1 of gate o of the input tensor read one place off along its inputs."""
    name, axis = LAYOUT[port]["x"][0], LAYOUT[port]["x"][1]
    col = LAYOUT[port]["x"][2] + LETTERS[port].index("o") * H + 1
    idx = tuple(col if a == axis else slice(None) for a in range(w[name].ndim))
    fan_in = [a for a in range(w[name].ndim) if a != axis][-1]
    w[name][idx] = np.roll(w[name][idx], 1, axis=fan_in - (fan_in > axis))


def _label(port, tensor):
    return LAYOUT[port][tensor][4]


def _shift_label(port):
    return LAYOUT[port]["x"][0]


INJECTIONS = {}
for _p in PORTS:
    INJECTIONS[("swap", _p)] = _weights_fault(_p, _swap, ("swap", _label(_p, "x"), None, (), None))
    if _p == "tf_keras":  # Keras 3's weights and step: its own rows are the swap, an activation and a clip
        continue
    INJECTIONS[("offset per gate", _p)] = _weights_fault(
        _p, _add("bias", "f", 0.5), ("offset", _label(_p, "bias"), "f", (), 0.5)
    )
    INJECTIONS[("offset per unit", _p)] = _weights_fault(
        _p, _add("bias", "i", -0.7, unit=2), ("unit offset", _label(_p, "bias"), "i", (2,), -0.7)
    )
    cand = LETTERS[_p][[k for k, g in enumerate(LETTERS[_p]) if g not in "ifo"][0]]
    INJECTIONS[("scaled gate", _p)] = _weights_fault(
        _p, _scale("h", cand, 0.5), ("scale", _label(_p, "h"), cand, (), 0.5)
    )
    INJECTIONS[("shifted unit", _p)] = _weights_fault(_p, _shift, ("shift", _shift_label(_p), "o", (1,), None))
for _p in ("keras3", "tf1_basic", "torch", "onnx"):
    INJECTIONS[("permutation in one tensor", _p)] = _weights_fault(
        _p, _permute_recurrent, ("permutation", _label(_p, "h"), "f", (), None)
    )
for _p in ("keras3", "torch", "onnx"):
    INJECTIONS[("scaled tensor", _p)] = _weights_fault(
        _p, _scale("x", None, 1.5), ("tensor scale", _label(_p, "x"), None, (), 1.5)
    )
INJECTIONS[("offset per unit", "tf1_lstmcell peephole")] = lambda case: (  # an exporter dropped one unit's peephole
    case.run(case.reference(), weights=_edited(case, lambda w: w["w_o_diag"].__setitem__(1, 0.0))),
    ("unit offset", "w_o_diag", None, (1,), -float(case.weights["w_o_diag"][1])),
)
INJECTIONS[("activation", "keras3")] = _reference_fault(
    _keras_with(KerasLSTM, "o", lambda v, z: activations.hard_sigmoid(z)), ("activation", "activation", "o", (), None)
)
INJECTIONS[("activation", "tf_keras")] = _reference_fault(
    _keras_with(TfKerasLSTM, "c", lambda v, z: activations.softsign(z)), ("activation", "activation", "c", (), None)
)
INJECTIONS[("activation", "tf1_basic")] = _reference_fault(
    _BasicHardOutput, ("activation", "activation", "o", (), None)
)
INJECTIONS[("activation", "torch")] = _reference_fault(_TorchHardForget, ("activation", "activation", "f", (), None))
INJECTIONS[("activation", "onnx")] = lambda case: (
    case.run(case.reference({**case.config, "activations": ["Sigmoid", "Softsign", "Tanh"]})),
    ("activation", "activation", "c", (), None),
)
INJECTIONS[("clipped quantiser", "keras3")] = _reference_fault(
    _keras_with(KerasLSTM, "o", lambda v, z: np.minimum(v, 0.8), unit=3), ("clip", "activation", "o", (3,), 0.8)
)
INJECTIONS[("clipped quantiser", "tf_keras")] = _reference_fault(
    _keras_with(TfKerasLSTM, "f", lambda v, z: np.minimum(v, 0.75)), ("clip", "activation", "f", (), 0.75)
)


def _port_of(key):
    return key[1].split()[0]


def _score(localisation, expect):
    """named: the right correction with its size; localised: the right
    tensor and gate; unsure: said so; wrong: anything else."""
    family, label, letter, units, size = expect
    if localisation is None or localisation.verdict == UNSURE:
        return "unsure"

    def here(where):
        parts, gates_, found_units = where
        return label in parts and (letter is None or letter in gates_) and (not units or set(units) <= set(found_units))

    if localisation.verdict == FOUND:
        best = localisation.best
        if any(here(w) for w in best.places()) and best.family == family:
            if size is None or np.isclose(best.theta[0], size, rtol=2e-3, atol=2e-3):
                return "named"
        return "localised" if any(here(w) for w in best.places()) else "wrong"
    if localisation.verdict == AMBIGUOUS:
        return "localised" if any(here(w) for f in localisation.within for w in f.places()) else "wrong"
    assert localisation.verdict == LOCALISED
    where = localisation.where
    return "localised" if label in where["parts"] and (letter is None or letter in where["gates"]) else "wrong"


@pytest.fixture(scope="module")
def table():
    rows = []
    for key, make in INJECTIONS.items():
        kind, config = PORTS[_port_of(key)]
        case = probe(kind, config, FEATURES)
        trace, expect = make(case)
        d = diagnose(case, trace.fields, pairs=False)
        assert d.verdict == NONE, (key, d.verdict, d.best() and d.best().name)  # no catalogue fault explains it
        rows.append((key, expect, d, _score(d.localisation, expect)))
    return rows


def test_the_confusion_table(table):
    """Every injected family x port: named exactly with its size, or at
    least localised to the right tensor and gate; never wrong."""
    counts = {}
    for (family, _), _, _, score in table:
        counts.setdefault(family, Counter())[score] += 1
    lines = [f"{'injected':28} {'n':>3} {'named':>6} {'localised':>10} {'unsure':>7} {'wrong':>6}"]
    for family, c in counts.items():
        n = sum(c.values())
        lines.append(f"{family:28} {n:3} {c['named']:6} {c['localised']:10} {c['unsure']:7} {c['wrong']:6}")
    total = sum((c for c in counts.values()), Counter())
    lines.append(
        f"{'all':28} {sum(total.values()):3} {total['named']:6} {total['localised']:10} "
        f"{total['unsure']:7} {total['wrong']:6}"
    )
    print("\n" + "\n".join(lines))
    details = [
        (key, expect, d.localisation.verdict, d.localisation.best and d.localisation.best.says, score)
        for key, expect, d, score in table
        if score != "named"
    ]
    assert total["wrong"] == 0, details
    assert total["named"] == len(table), details


def test_the_answer_gives_the_fix_in_the_kind_s_names(table):
    answers = {key: d.localisation for key, _, d, _ in table}
    offset = answers[("offset per gate", "keras3")]
    assert offset.best.says == "bias of gate f is offset by +0.500 in every unit"
    assert offset.best.fix == "subtract 0.500 from bias[4:8]" and offset.best.ratio <= 1
    swap = answers[("swap", "torch")]
    assert swap.best.says == "weight_ih_l0 and weight_hh_l0 are swapped"
    assert "load weight_ih_l0 where the port loads weight_hh_l0" in swap.best.fix
    torch_bias = answers[("offset per gate", "torch")].best
    assert {"bias_ih_l0", "bias_hh_l0"} <= {p for w in torch_bias.places() for p in w[0]}  # one fault, two names
    assert "weight_hh_l0[8:12]" in answers[("scaled gate", "torch")].best.fix
    assert "read W[:, 5] unshifted" in answers[("shifted unit", "onnx")].best.fix  # o is ONNX's block 1 (i, o, f, c)
    clip = answers[("clipped quantiser", "keras3")].best
    assert clip.says == "gate o saturates at 0.800 in unit 3: looks like a clipped quantiser"
    activation = answers[("activation", "tf1_basic")].best
    assert activation.says.startswith("gate o applies hard_sigmoid (Keras 2") and "applies sigmoid" in activation.says


def test_where_the_target_first_leaves_tolerance(table):
    answers = {key: d.localisation for key, _, d, _ in table}
    one_unit = answers[("offset per unit", "keras3")].departure
    assert one_unit["step"] == 0 and one_unit["fields"]["h"]["unit"] == 2 and one_unit["fields"]["c"]["unit"] == 2
    # the output gate wrong: c is still right when h leaves tolerance
    output_gate = answers[("activation", "keras3")].departure
    assert output_gate["first"] == ["h"] and "output gate" in output_gate["note"]


@pytest.mark.parametrize("port", PORTS)
def test_a_correct_port_stays_no_fault(port):
    kind, config = PORTS[port]
    case = probe(kind, config, FEATURES)
    d = diagnose(case, case.run().fields, pairs=False)
    assert d.verdict == CORRECT and d.localisation is None


def test_a_catalogue_fault_is_named_by_the_catalogue_first():
    case = probe(*PORTS["keras3"], FEATURES)
    fault = next(f for f in catalogue(case.kind) if f.name == "bias missing")
    d = diagnose(case, fault.run(case).fields, pairs=False)
    assert d.verdict == WITHIN and d.best().name == "bias missing" and d.localisation is None


# Faults outside every family: nothing small explains them.  Each with the
# answers that are right: not sure, or localised to the gate (and tensor)
# at fault; a correction named, or another place, is wrong.


def _keras_gate(gate, fn):
    def make(case):
        return case.run(_keras_with(KerasLSTM, gate, fn)(case.config))

    return make


def _weights(edit):
    return lambda case: case.run(case.reference(), weights=_edited(case, edit))


def _outputs(change):
    return lambda case: Trace(change(case.run().fields, np.random.default_rng(0)))


_RNG = np.random.default_rng(5)
_RANDOM_BLOCK = _RNG.standard_normal((H, H))
_NOISE = 0.3 * _RNG.standard_normal((FEATURES, H))
OUTSIDE = {
    # (port, what): (make, (gates, tensors) a localisation may name; None: only "not sure" is right)
    ("keras3", "one gate's recurrent block loaded from elsewhere"): (
        _weights(lambda w: w["recurrent_kernel"].__setitem__((slice(None), slice(12, 16)), _RANDOM_BLOCK)),
        ({"o"}, {"recurrent_kernel"}),
    ),
    ("keras3", "noise on one gate's input block"): (
        _weights(lambda w: w["kernel"].__setitem__((slice(None), slice(4, 8)), w["kernel"][:, 4:8] + _NOISE)),
        ({"f"}, {"kernel"}),
    ),
    ("keras3", "output gate sigmoid(2 z), an activation no list has"): (
        _keras_gate("o", lambda v, z: activations.sigmoid(2 * z)),
        ({"o"}, {"activation"}),
    ),
    ("keras3", "candidate tanh(0.8 z)"): (_keras_gate("c", lambda v, z: np.tanh(0.8 * z)), ({"c"}, {"activation"})),
    ("keras3", "recurrent_kernel reshaped, not transposed"): (
        _weights(lambda w: w.__setitem__("recurrent_kernel", w["recurrent_kernel"].reshape(16, 4).T.reshape(4, 16))),
        (set(), {"recurrent_kernel"}),
    ),
    # c 1% too large at every step is, one step at a time, i * g 1% too large: gate i, no tensor
    ("keras3", "outputs and states 1% too large"): (
        _outputs(lambda f, rng: {k: v * 1.01 for k, v in f.items()}),
        ({"i"}, set()),
    ),
    ("keras3", "noise"): (
        _outputs(lambda f, rng: {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in f.items()}),
        None,
    ),
    ("keras3", "rounding noise at 1.5x tolerance"): (
        _outputs(lambda f, rng: {k: v + 3e-6 * (1 + np.abs(v)) * rng.standard_normal(v.shape) for k, v in f.items()}),
        None,
    ),
    ("keras3", "two faults: bias of f and recurrent_kernel of o"): (
        _weights(lambda w: (_add("bias", "f", 0.5)("keras3", w), _scale("h", "o", 2.0)("keras3", w))),
        ({"f", "o"}, {"bias", "recurrent_kernel"}),
    ),
    ("tf1_lstmcell", "cell_clip 0.6 where the model has none"): (
        lambda case: case.run(case.reference({**case.config, "cell_clip": 0.6})),
        None,
    ),
    ("torch", "one gate's input block transposed"): (
        _weights(lambda w: w["weight_ih_l0"].__setitem__(slice(0, 4), w["weight_ih_l0"][0:4].T.copy())),
        ({"i"}, {"weight_ih_l0"}),
    ),
    ("torch", "two faults: bias of f and weight_hh of g"): (
        _weights(lambda w: (_add("bias", "f", 0.5)("torch", w), _scale("h", "g", 0.5)("torch", w))),
        ({"f", "g"}, {"bias_ih_l0", "bias_hh_l0", "weight_hh_l0"}),
    ),
}


@pytest.mark.parametrize("key", OUTSIDE, ids=[f"{p}: {w}" for p, w in OUTSIDE])
def test_what_no_correction_explains_is_never_named_nor_put_elsewhere(key):
    make, right = OUTSIDE[key]
    case = probe(*PORTS[key[0]], FEATURES)
    d = diagnose(case, make(case).fields, pairs=False)
    loc = d.localisation
    assert d.verdict == NONE and loc.verdict in (UNSURE, LOCALISED), (loc.verdict, loc.best and loc.best.says)
    if loc.verdict == LOCALISED:
        gates_, tensors = right or (set(), set())
        assert set(loc.where["gates"]) <= gates_ and set(loc.where["parts"]) <= tensors, loc.where
        assert loc.where["gates"] or loc.where["parts"]


def test_localisation_through_the_cli_on_files(tmp_path, monkeypatch, capsys):
    """--kind/--config/--weights/--write-probe, the target run on the probe
    file, --observed: the correction, its fix and the JSON."""
    from lstm_ref.harness.cli import main

    kind, config = PORTS["tf1_basic"]
    case = probe(kind, config, FEATURES)
    np.savez(tmp_path / "w.npz", **case.weights)
    monkeypatch.chdir(tmp_path)
    args = ["diagnose", "--kind", kind, "--config", json.dumps(config), "--weights", "w.npz"]
    assert main([*args, "--write-probe", "probe.npz"]) == 0
    given = dict(np.load(tmp_path / "probe.npz"))
    port = case.replace(**{k: given[k] for k in ("x", "mask", "h0", "c0")})
    broken = _edited(port, lambda w: _add("bias", "j", -0.25)("tf1_basic", w))
    trace = port.run(port.reference(), weights=broken)
    np.savez(tmp_path / "out.npz", h=trace.h, final_h=trace.final_h, final_c=trace.final_c)
    capsys.readouterr()
    code = main([*args, "--observed", "out.npz", "--json", "d.json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no known fault" in out and "correction found: bias of gate j is offset by -0.250 in every unit" in out
    assert "fix: add 0.250 to bias[4:8]" in out
    result = json.loads((tmp_path / "d.json").read_text())["results"][0]
    assert result["verdict"] == "no known fault" and result["localisation"]["verdict"] == "correction found"
    assert result["localisation"]["best"]["parts"] == ["bias"] and result["localisation"]["best"]["gates"] == ["j"]


def test_the_self_checks_refuse_a_wrong_schedule_or_gate_view(monkeypatch):
    """Mutants: a teacher one step late, and a gate view that drops the
    peepholes, are caught by the self-checks (no forcing, no in-step
    corrections) instead of fitting a wrong model."""
    from dataclasses import replace

    from lstm_ref.harness.localise import forcing, gates

    case = probe(*PORTS["tf1_lstmcell"], FEATURES)
    ref = case.reference()
    assert forcing.schedule(ref, case, case.run().fields) is not None and gates.usable(ref, case)[0]
    right = forcing._carried_output
    monkeypatch.setattr(forcing, "_carried_output", lambda out, m, h0: np.roll(right(out, m, h0), 1, axis=1))
    assert forcing.schedule(ref, case, case.run().fields) is None
    monkeypatch.undo()
    view = gates.view
    monkeypatch.setattr(gates, "view", lambda r, params: replace(view(r, params), P=None))
    usable, why = gates.usable(ref, case)
    assert not usable and "from the family's own step" in why


def test_localisation_through_the_cli_on_model_files(keras3_models, oracle_pool, tmp_path, lstm_ref):  # noqa: F811
    """Live: a Keras model and two PyTorch ports of it with a fault outside
    every catalogue; ``diagnose --source --target`` runs each port in its
    own framework on the probe.  weight_hh of gate g halved: named, in
    torch's names.  bias_hh of gate f + 0.5: the model is untrained, its
    forget bias 1 in every unit, so "x 1.5" and "+ 0.5" are one trace there
    -- an ambiguity, both listed, never one of them as THE fault."""
    from lstm_ref.convert import TORCH
    from lstm_ref.harness import artifacts
    from lstm_ref.harness.model_format import model_format

    model = keras3_models["embed_lstm.keras"]
    lstms = artifacts.read_lstms(model, model_format(model)[0], oracle_pool)[0]
    converted = artifacts.convert_lstms(lstms, TORCH)

    def port(file, edit):
        ported = []
        for name, case in converted:
            weights = {k: np.array(v, copy=True) for k, v in case.weights.items()}
            edit(weights, case.reference().units)  # torch's gates i, f, g, o on the rows
            ported.append((name, case.replace(weights=weights)))
        artifacts.write_artifact(ported, TORCH, tmp_path / file, oracle_pool)
        return lstm_ref("diagnose", "--source", model, "--target", tmp_path / file)

    code, out, err = port(
        "g.pt", lambda w, u: w["weight_hh_l0"].__setitem__(slice(2 * u, 3 * u), w["weight_hh_l0"][2 * u : 3 * u] * 0.5)
    )
    assert code == 0 and "correction found: weight_hh_l0 of gate g is scaled by 0.500" in out, out + err
    assert "fix: divide weight_hh_l0[" in out
    code, out, err = port(
        "f.pt", lambda w, u: w["bias_hh_l0"].__setitem__(slice(u, 2 * u), w["bias_hh_l0"][u : 2 * u] + 0.5)
    )
    assert code == 1 and "corrections bring it within tolerance and the probe cannot tell them apart" in out, out
    assert "of gate f is scaled by 1.500" in out and "of gate f is offset by +0.500 in every unit" in out, out
