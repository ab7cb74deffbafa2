"""``lstm-ref check model.onnx | model.pt`` (with or without ``--source``) and ``lstm-ref convert``.

An artifact's LSTMs are read in its framework's worker
(``oracles/onnx_artifacts.py``, ``oracles/torch_artifacts.py``): each becomes
an :class:`Lstm` -- a kind (``onnx.LSTM``, ``torch.nn.LSTM``), a config, the
artifact's own weights, and a runner that runs THE ARTIFACT'S OWN code on a
case: the ONNX node itself (its attributes as stored, its initializers, the
model's opset) in ONNX Runtime; a TorchScript archive's own LSTM submodule;
for a state_dict, which has no code, ``torch.nn.LSTM`` built from the config
its shapes give.

``check`` draws x (``--batch``, ``--time``, ``--seed``; features from the
weights) and compares each LSTM with the reference loaded with the
artifact's weights (:func:`_measure`: the one comparison and tolerance
table).  Where the LSTM takes lengths or an initial state (an ONNX node
with ``sequence_lens``/``initial_h``/``initial_c`` inputs; every PyTorch
LSTM that accepts a ``PackedSequence`` and ``(h0, c0)``), a second run
feeds a right-padded mask and drawn states.

``--source`` pairs the artifact with the model it was made from: source
LSTM k with artifact LSTM k, in order, where a PyTorch LSTM of L layers is
L ONNX nodes (``torch.onnx.export`` writes one node per layer).  Per pair,
(a) the source's weights are converted with :func:`lstm_ref.convert.convert`
to the artifact's layout and compared tensor by tensor with the artifact's
(an exporter that reorders gates wrongly shows here), and (b) both
frameworks run the same input -- for a Keras source, what the layer
received in one run of the model -- and the source's outputs, put in the
artifact's layout by ``Conversion.align``, are compared step by step with
the artifact's, to the same tolerance, the artifact case's reference giving
the rounding allowance (as
``parity_tests/test_converters.py::test_both_frameworks_agree_through_the_reference``).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..case import Case
from ..convert import KERAS3, ONNX, TORCH, TORCH_CELL, ConversionError, convert, convert_bidirectional, convert_layers
from ..errors import InputError, LstmRefError
from ..trace import Trace
from . import pair_grads
from .check import LayerResult, _layer_case, _result
from .compare import compare, own_rounding_of

FRAMEWORK = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "keras3": "Keras 3", "tf_keras": "Keras 2 (tf_keras)"}
TARGETS = {"torch": TORCH, "onnx": ONNX, "keras": KERAS3}
ALL_FIELDS = ("h", "final_h", "final_c")


@dataclass
class Lstm:
    """One LSTM of an artifact or a source, as read from the file."""

    name: str
    kind: str
    config: dict
    weights: dict
    how: str  # what runs it: the row's ``source``
    runner: Callable = None  # (case) -> outputs, or a str: the framework's refusal
    returns: tuple = ALL_FIELDS
    takes_state: bool = True
    takes_mask: bool = True
    optional: dict = field(default_factory=dict)  # ONNX: slot -> "constant" | "computed"
    constants: dict = field(default_factory=dict)  # ONNX: constant sequence_lens / initial_h / initial_c
    recorded: dict = None  # a Keras source: the Case it ran and TF's outputs on it
    layer: int = None  # a layer of a split PyTorch LSTM
    bidi: dict = None  # a direction of a Keras Bidirectional: wrapper, direction, merge_mode
    x_from: int = None  # an ONNX node: the LSTM node (its place in the file) whose Y is its X
    parts: tuple = ()  # a group: a Bidirectional's two directions, or chained ONNX nodes (one per layer)
    group: str = None  # "bidirectional" | "layers"

    @property
    def features(self):
        if self.parts:
            return self.parts[0].features
        if self.kind in (TORCH, TORCH_CELL):
            return int(self.config["input_size"])
        if self.kind == ONNX:
            return int(np.shape(self.weights["W"])[-1])
        return int(np.shape(self.recorded["case"].x)[-1])


# -- reading ------------------------------------------------------------------------


def _weights(out, i):
    return {k[len(f"{i}:w:") :]: v for k, v in out.items() if k.startswith(f"{i}:w:")}


def _torch_lstms(path, worker):
    meta, out = worker.request({"op": "artifact_lstms", "path": str(path), "cells": True}, {})
    lstms = []
    for i, info in enumerate(meta["lstms"]):
        if meta["format"] == "state_dict":

            def runner(case):
                return worker.run(case)
        else:

            def runner(case, i=i):
                return worker.request(
                    {"op": "artifact_run", "path": str(path), "index": i, "cells": True}, _wire(case)
                )[1]

        lstms.append(
            Lstm(
                info["name"],
                info.get("kind", TORCH),
                info["config"],
                _weights(out, i),
                info["source"],
                runner,
                tuple(info["returns"]),
                info["takes_state"],
                info["takes_packed"],
            )
        )
    kind = "state_dict" if meta["format"] == "state_dict" else "TorchScript"
    return lstms, [tuple(s) for s in meta["skipped"]], kind


def _onnx_lstms(path, worker):
    meta, out = worker.request({"op": "artifact_lstms", "path": str(path)}, {})
    lstms = []
    for i, node in enumerate(meta["nodes"]):

        def runner(case, i=i):
            reply, outputs = worker.request({"op": "artifact_run", "path": str(path), "index": i}, _wire(case))
            return reply.get("refused") or outputs

        consts = {k[len(f"{i}:const:") :]: v for k, v in out.items() if k.startswith(f"{i}:const:")}
        lstms.append(
            Lstm(
                node["name"],
                ONNX,
                node["config"],
                _weights(out, i),
                "the model's own LSTM node (its attributes and initializers) in ONNX Runtime",
                runner,
                optional=node["optional"],
                constants=consts,
                takes_state=True,
                takes_mask=True,
                x_from=node.get("x_from"),
            )
        )
    description = f"opset {meta['opset']}" + (f", written by {meta['producer']}" if meta["producer"] else "")
    return lstms, [tuple(s) for s in meta["skipped"]], description


def _wire(case):
    arrays = {"x": case.x, **case.initial_state}
    if case.mask is not None:
        arrays["mask"] = case.mask
    return arrays


def _keras_lstms(path, worker, batch, time, seed, custom_objects=()):
    """A Keras model's LSTM rows (one per layer, the first call of a shared
    one), each with the Case it ran in one model run and TF's outputs."""

    meta, out = worker.request(
        {
            "op": "model_lstms",
            "path": str(path),
            "batch": batch,
            "time": time,
            "seed": seed,
            "custom_objects": [str(p) for p in custom_objects],
        },
        {},
    )
    lstms = []
    modes = {m["path"]: m["merge_mode"] for m in meta.get("merged", [])}
    for i, layer in enumerate(meta["layers"]):
        name = layer["path"]
        if " (call " in name:
            if not name.endswith(" (call 1)"):
                continue  # the same layer and weights again
            name = name[: -len(" (call 1)")]
        case = _layer_case(layer, out, i)
        outputs = {k: out[f"{i}:{k}"] for k in ("h", "c", "final_h", "final_c") if f"{i}:{k}" in out}
        wrapper = layer.get("bidirectional")
        bidi = (
            None
            if not wrapper
            else {
                "wrapper": wrapper[: -len(" (call 1)")] if wrapper.endswith(" (call 1)") else wrapper,
                "direction": layer.get("direction"),
                "merge_mode": modes.get(wrapper, "concat"),
            }
        )
        lstms.append(
            Lstm(
                name,
                layer["kind"],
                layer["config"],
                case.weights,
                f"{layer['kind']} in the model run",
                recorded={"case": case, "outputs": outputs},
                bidi=bidi,
            )
        )
    lstms = Lstms(lstms)
    lstms.others = [tuple(o) for o in meta.get("others", [])]
    return lstms, [tuple(s) for s in meta.get("skipped", [])], ""


class Lstms(list):
    """A Keras model's LSTMs, with ``others``: ``[(path, class)]`` of its
    layers that hold no recurrent layer (an Embedding, a Dense...)."""

    others = ()


def read_lstms(path, oracle_name, pool, batch=2, time=7, seed=0, custom_objects=()):
    """``(lstms, skipped, description)`` of the model at ``path``, opened by
    the worker ``oracle_name`` names (``model_format``)."""
    worker = pool.get(oracle_name)
    if oracle_name == "torch":
        return _torch_lstms(path, worker)
    if oracle_name == "onnxruntime":
        return _onnx_lstms(path, worker)
    return _keras_lstms(path, worker, batch, time, seed, custom_objects)


# -- drawing and comparing --------------------------------------------------------------


def _draw(lstm, rng, batch, time, lengths=False, states=False):
    """A case for ``lstm`` on drawn x; with ``lengths`` a right-padded mask
    (row 0 full, every row at least one step), with ``states`` drawn h0, c0.
    An ONNX node's constant optional inputs are kept: its constant states
    fix the batch, its constant lengths the mask."""
    consts = lstm.constants
    if "initial_h" in consts:
        batch = int(np.shape(consts["initial_h"])[-2])
    mask = None
    if "sequence_lens" in consts and not lengths:
        lens = np.asarray(consts["sequence_lens"]).astype(int)
        batch, time = len(lens), max(time, int(lens.max()))
        mask = np.arange(time)[None] < lens[:, None]
    dtype = lstm.config.get("dtype") or "float32"
    x = rng.standard_normal((batch, time, lstm.features)).astype(dtype)
    if lengths:
        lens = rng.integers(1, time + 1, size=batch)
        lens[0] = time
        mask = np.arange(time)[None] < lens[:, None]
    initial = {}
    ref = Case(lstm.kind, lstm.config, x, lstm.weights).reference()
    if states:
        initial = {f"{s}0": (0.5 * rng.standard_normal(ref.state_shape(s, batch))).astype(dtype) for s in ref.STATE}
    elif "initial_h" in consts or "initial_c" in consts:  # the operator's default for the other one: zeros
        given = np.asarray(consts.get("initial_h", consts.get("initial_c")), dtype)
        initial = {
            f"{s[8]}0": np.asarray(consts[s], dtype) if s in consts else np.zeros_like(given)
            for s in ("initial_h", "initial_c")
        }
    return Case(lstm.kind, lstm.config, x, lstm.weights, mask, name=lstm.name, **initial)


class ShapeMismatch(Exception):
    """A framework's output whose shape is not the reference's: nothing to compare."""


def _failed(name, kind, why, **extra):

    return LayerResult(layer=name, kind=kind, status="fail", reason=why, **extra)


def _measure(case, desired, replace=None):
    """The one comparison on the fields ``desired`` has: the reference on
    ``case`` (or ``replace``: another framework's outputs in the case's
    layout) against ``desired``, with the reference's own rounding as the
    allowance."""
    ref = case.reference()
    trace = case.run(ref)
    exact = None if ref.policy.compute == np.float64 else case.run(ref, oracle=True)
    names = [f for f in trace.fields if f in desired and (replace is None or f in replace)]
    wrong = {f: (np.shape(desired[f]), np.shape(trace[f])) for f in names if np.shape(desired[f]) != np.shape(trace[f])}
    if wrong:
        raise ShapeMismatch(
            "; ".join(f"{f}: the framework returned {got}, the reference {want}" for f, (got, want) in wrong.items())
        )
    own = (
        None
        if exact is None
        else own_rounding_of(Trace({f: trace[f] for f in names}), Trace({f: exact[f] for f in names}))
    )
    actual = Trace({f: np.asarray((replace or trace.fields)[f]) for f in names})
    return compare(actual, {f: desired[f] for f in names}, ref.policy.compute, kind=ref.kind, own=own)


def _row(name, case, result, how, **extra):

    row = _result(name, case.kind, result, np.shape(case.x), 0, "h", "final_c")
    row.source, row.masked, row.initial_state = how, case.mask is not None, bool(case.initial_state)
    for key, value in extra.items():
        setattr(row, key, value)
    return row


def _runs(lstm):
    """The runs an artifact's LSTM gets: ``(suffix, lengths, states)``."""
    runs = [("", False, False)]
    if lstm.kind == ONNX:
        extra = [s for s in ("sequence_lens", "initial_h", "initial_c") if s in lstm.optional]
        if extra:
            runs.append(
                (f" ({', '.join(extra)})", "sequence_lens" in extra, "initial_h" in extra or "initial_c" in extra)
            )
    else:
        fed = (["packed lengths"] if lstm.takes_mask else []) + (["h0, c0"] if lstm.takes_state else [])
        if fed:
            runs.append((f" ({', '.join(fed)})", lstm.takes_mask, lstm.takes_state))
    return runs


def check_artifact(lstms, batch=2, time=7, seed=0):
    """Every LSTM of an artifact against the reference on its own weights:
    ``(results, skipped)``."""
    results, skipped = [], []
    for k, lstm in enumerate(lstms):
        for suffix, lengths, states in _runs(lstm):
            rng = np.random.default_rng([seed, k, len(suffix)])
            name = lstm.name + suffix
            try:
                case = _draw(lstm, rng, batch, time, lengths, states)
                case.reference().params(case.weights, lstm.features, case.reference().policy.compute)
            except LstmRefError as exc:  # a config or weights the reference refuses: say so, check the rest
                skipped.append((name, f"{lstm.kind}: {exc}"))
                break
            desired = lstm.runner(case)
            if isinstance(desired, str):
                skipped.append((name, desired))
                break
            try:
                row = _row(name, case, _measure(case, desired), lstm.how)
            except ShapeMismatch as exc:
                results.append(_failed(name, lstm.kind, str(exc), source=lstm.how))
                continue
            kept = [
                c
                for c in lstm.constants
                if not (lengths and c == "sequence_lens") and not (states and c.startswith("initial_"))
            ]
            if kept:
                row.notes = f"the node's constant {', '.join(kept)} kept as stored (batch {np.shape(case.x)[0]})"
            results.append(row)
    return results, skipped


# -- the model as it ran (an .onnx with --input) ----------------------------------------------


def check_as_run(path, lstms, worker, inputs, calls=1):
    """Every top-level LSTM node of the ONNX model at ``path`` on what it
    received when ONNX Runtime ran the WHOLE model on ``inputs`` (``{name:
    array}``, ``""`` for its only input), ``calls`` times with the states an
    output returns fed back (``onnx_artifacts.artifact_as_run``).  Per node
    and call: the reference on the captured x, sequence_lens, initial_h,
    initial_c against the Y, Y_h, Y_c the model's run produced, with the
    one comparison; ``tf_bitwise``: the node run alone on the same inputs
    equals its outputs in the model, bit for bit.  ``(results, skipped,
    casts, meta)``.  A node in an If branch or a Loop/Scan body is checked
    on what it received there (its values lifted out as extra If outputs /
    scan outputs, one row per iteration); a branch not taken is a skipped
    row, as is a node the worker could not lift out (an If in a loop body)."""
    arrays = {f"in:{k}": v for k, v in inputs.items()}
    meta, out = worker.request({"op": "artifact_as_run", "path": str(path), "calls": int(calls)}, arrays)
    results, skipped = [], []
    pairs = ", ".join(f"{a} <- {b}" for a, b in meta["pairs"])
    calls = meta["calls"]

    def label(call, iteration=None):
        at = f", call {call + 1}/{calls}" if calls > 1 else ""
        if iteration:
            it, total = iteration
            at += f", iteration {it}/{total}" if "." not in it else f", iteration {it} of {total.replace('.', 'x')}"
        return f" (as run{at})"

    todo = [(i, call, f"{call}:{i}:", label(call), None) for i in meta["captured"] for call in range(calls)]
    todo += [
        (i, call, f"{call}:{i}@{it}:", label(call, (it, total) if it else None), meta["how"][str(i)])
        for call, i, it, total in meta.get("runs", [])
    ]
    for i, call, key, suffix, lifted in todo:
        lstm = lstms[i]
        name = f"{lstm.name}{suffix}"
        got = {k[len(key) :]: v for k, v in out.items() if k.startswith(key)}
        states = {s: got[s] for s in ("h0", "c0") if s in got}
        dtype = lstm.config.get("dtype") or "float32"
        if states and len(states) == 1:  # the operator's default for the other one: zeros
            states = {s: states.get(s, np.zeros_like(next(iter(states.values())))) for s in ("h0", "c0")}
        try:
            case = Case(
                lstm.kind,
                lstm.config,
                np.asarray(got["x"], dtype),
                lstm.weights,
                got.get("mask"),
                name=name,
                **{k: np.asarray(v, dtype) for k, v in states.items()},
            )
        except LstmRefError as exc:
            skipped.append((name, f"{lstm.kind}: {exc}"))
            continue
        desired = {f: got[f] for f in ALL_FIELDS}
        how = "the node in the model's run (ONNX Runtime), on what it received there"
        try:
            row = _row(name, case, _measure(case, desired), how)
        except ShapeMismatch as exc:
            results.append(_failed(name, lstm.kind, str(exc), source=how))
            continue
        except LstmRefError as exc:
            skipped.append((name, f"{lstm.kind}: {exc}"))
            continue
        alone = lstm.runner(case)
        if isinstance(alone, str):
            row.notes = f"the node alone: {alone}"
        else:
            row.tf_bitwise = all(np.array_equal(alone[f], desired[f], equal_nan=True) for f in ALL_FIELDS)
            if not row.tf_bitwise:
                worst = max(float(np.max(np.abs(np.asarray(alone[f]) - desired[f]))) for f in ALL_FIELDS)
                row.notes = f"the node run alone differs from its run in the model (max |d| {worst:.3g})"
        captured = "X, " + ", ".join(
            s for s, k in (("sequence_lens", "mask"), ("initial_h", "h0"), ("initial_c", "c0")) if k in got
        )
        row.as_run = {
            "call": call + 1,
            "calls": meta["calls"],
            "captured": f"{captured.rstrip(', ')} and Y, Y_h, Y_c " + (lifted or "as extra graph outputs of the model"),
            "state_fed_back": pairs if call else "",
        }
        results.append(row)
    for i, why in meta["uncaptured"]:
        skipped.append((f"{lstms[i].name} (as run)", why))
    for call, i, why in meta.get("not_run", []):
        skipped.append((f"{lstms[i].name}{label(call)}", why))
    return results, skipped, meta["casts"], meta


# -- pairing with the source -----------------------------------------------------------


def split_layers(lstm):
    """A PyTorch LSTM of L layers as L one-layer LSTMs (``torch.onnx.export``
    writes one ONNX node per layer): layer l's weights renamed ``_l0``."""
    layers = int(lstm.config.get("num_layers", 1))
    if lstm.kind != TORCH or layers == 1:
        return [lstm]
    out, width = [], int(lstm.config["input_size"])
    dirs = 2 if lstm.config.get("bidirectional") else 1
    out_width = int(lstm.config.get("proj_size") or lstm.config["hidden_size"])
    for layer in range(layers):
        weights = {
            k.replace(f"_l{layer}", "_l0"): v
            for k, v in lstm.weights.items()
            if f"_l{layer}" in k and (k.endswith(f"_l{layer}") or k.endswith(f"_l{layer}_reverse"))
        }
        config = {**lstm.config, "num_layers": 1, "input_size": width}
        out.append(
            Lstm(
                f"{lstm.name} layer {layer}",
                TORCH,
                config,
                weights,
                f"layer {layer} of {lstm.name}, run as a one-layer torch.nn.LSTM on its weights",
                runner=None,
                layer=layer,
            )
        )
        width = out_width * dirs
    return out


def _weight_diffs(converted, artifact):
    """Per tensor, max |converted source - artifact| (ONNX's optional B and P
    absent = zeros); a shape mismatch is infinite, and named."""
    diffs, notes = {}, []
    for name in sorted(set(converted) | set(artifact)):
        a, b = converted.get(name), artifact.get(name)
        if a is None or b is None:
            present = np.asarray(b if a is None else a)
            if np.any(present != 0):
                notes.append(f"{name} only in the {'artifact' if a is None else 'converted source'}")
                diffs[name] = float("inf")
            continue
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            notes.append(f"{name}: converted source {a.shape}, artifact {b.shape}")
            diffs[name] = float("inf")
            continue
        diffs[name] = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diffs, notes


def check_pairs(
    source_path, source_lstms, artifact_path, artifact_lstms, torch_worker, batch=2, time=7, seed=0, grads=None
):
    """Source LSTM k against artifact LSTM k, as :func:`pair_lstms` pairs
    them: ``(results, skipped)``; see the module docstring.  ``grads``: an
    oracle pool, to add each pair's gradient row (``check --source --grad``,
    :mod:`~lstm_ref.harness.pair_grads`)."""
    pairs = pair_lstms(source_path, source_lstms, artifact_path, artifact_lstms)
    results, skipped = [], []
    previous = None  # the source's output of the layer before, when a PyTorch LSTM is split
    for k, (unit, art) in enumerate(pairs):
        name = f"{unit.name} -> {art.name}"
        try:
            got = _source_run(unit, art, previous, np.random.default_rng([seed, 1000 + k]), batch, time, torch_worker)
            if isinstance(got, str):
                skipped.append((name, f"the source cannot run it: {got}"))
                previous = None
                continue
            conversion, src_out = got
            previous = src_out.get("h") if not unit.parts else None
            diffs, notes = _weight_diffs(conversion.case.weights, art.weights)
            if any(
                np.shape(conversion.case.weights.get(k)) != np.shape(art.weights.get(k))
                for k in conversion.case.weights
                if k in art.weights
            ):
                results.append(_mismatch(name, art, notes, diffs))
                continue
            art_case = conversion.case.replace(config=art.config, weights=art.weights, name=art.name)
            art_ref = art_case.reference()
            art_ref.params(art_case.weights, np.shape(art_case.x)[-1], art_ref.policy.compute)
        except ConversionError as exc:  # the artifact's kind cannot compute what the source computes: no port of it
            results.append(
                _failed(
                    name,
                    art.kind,
                    f"{art.name} ({art.kind}) cannot compute what {unit.name} computes: {exc}",
                    pair=_pair(source_path, unit, artifact_path, art),
                )
            )
            previous = None
            continue
        except LstmRefError as exc:
            skipped.append((name, str(exc)))
            continue
        if (art_case.mask is not None and not art.takes_mask) or (art_case.initial_state and not art.takes_state):
            skipped.append(
                (name, f"the source's run has a mask or an initial state, and {art.name} ({art.how}) takes neither")
            )
            continue
        desired = art.runner(art_case)
        if isinstance(desired, str):
            skipped.append((name, desired))
            continue
        aligned = conversion.align(src_out)
        try:
            result = _measure(art_case, desired, replace=aligned)
        except ShapeMismatch as exc:
            results.append(_failed(name, art.kind, str(exc), weights_max_abs=diffs))
            continue
        pair = _pair(source_path, unit, artifact_path, art)
        row = _row(name, art_case, result, f"{_framework(unit)} vs {_framework(art)}", pair=pair, weights_max_abs=diffs)
        results.append(_explain_pair(row, notes + list(conversion.notes), art, art_case, diffs))
        if grads is not None:
            got = pair_grads.grad_pair(name, conversion, art_case, grads, seed=seed + k)
            if isinstance(got, tuple):
                skipped.append(got)
            else:
                got.pair = pair
                results.append(got)
    return results, skipped


def _pair(source_path, unit, artifact_path, art):
    """A pair row's ``pair``: which two models' LSTMs it compares."""
    return {
        "source": {"model": str(source_path), "layer": unit.name, "kind": unit.kind, "ran": unit.how},
        "artifact": {"model": str(artifact_path), "layer": art.name, "kind": art.kind, "ran": art.how},
    }


def _source_run(unit, art, previous, rng, batch, time, torch_worker):
    """``(conversion to the artifact's kind, the source's outputs in its own
    layout)`` for one pair, or a str: the source's refusal.  A Keras layer
    gives what it received in the model run and TF's outputs; a group runs
    each part (a chained ONNX node on the node before's output)."""
    if unit.group == "bidirectional":
        fwd, bwd = unit.parts
        conversion = convert_bidirectional(
            fwd.recorded["case"], bwd.recorded["case"], art.kind, merge_mode=fwd.bidi["merge_mode"], name=unit.name
        )
        return conversion, [_fields(p.recorded["outputs"]) for p in unit.parts]
    if unit.group == "layers":
        cases, outs, x = [], [], None
        for part in unit.parts:
            # each node keeps its own constant initial_h/initial_c (a dynamo export stores zeros of a fixed batch)
            case = (
                _draw(part, rng, batch, time)
                if x is None
                else _draw(part, rng, *np.shape(x)[:2]).replace(x=np.ascontiguousarray(x), mask=cases[0].mask)
            )
            out = _source_runner(part, torch_worker)(case)
            if isinstance(out, str):
                return out
            cases.append(case)
            outs.append(_fields(out))
            x = out["h"]
        return convert_layers(cases, art.kind, name=unit.name), outs
    if unit.recorded is not None:  # Keras: what the layer received in the model run, and TF's outputs
        return convert(unit.recorded["case"], art.kind), _fields(unit.recorded["outputs"])
    case = _source_case(unit, art, previous, rng, batch, time)
    out = _source_runner(unit, torch_worker)(case)
    return out if isinstance(out, str) else (convert(case, art.kind), _fields(out))


def _fields(outputs):
    return {k: v for k, v in outputs.items() if k in ALL_FIELDS}


def _directions(lstm):
    if lstm.kind == TORCH:
        return 2 if lstm.config.get("bidirectional") else 1
    if lstm.kind == ONNX:
        return 2 if lstm.config.get("direction") == "bidirectional" else 1
    return 1


def bidirectional_group(lstms, k):
    """The ``Bidirectional`` whose forward direction is ``lstms[k]``, as one
    group (its two directions), or None."""
    fwd = lstms[k]
    if not fwd.bidi or fwd.bidi["direction"] != "forward":
        return None
    bwd = next(
        (b for b in lstms if b.bidi and b.bidi["wrapper"] == fwd.bidi["wrapper"] and b.bidi["direction"] == "backward"),
        None,
    )
    if bwd is None:
        return None
    return Lstm(
        fwd.bidi["wrapper"],
        fwd.kind,
        fwd.config,
        {},
        f"Bidirectional({fwd.kind}) in the model run",
        parts=(fwd, bwd),
        group="bidirectional",
        recorded=fwd.recorded,
    )


def layers_group(lstms, k, count):
    """``count`` ONNX nodes from ``lstms[k]`` on, each reading the one
    before's Y (``x_from``), as one group of layers, or None."""
    run = lstms[k : k + count]
    if len(run) < count or any(u.kind != ONNX for u in run):
        return None
    place = {id(u): i for i, u in enumerate(lstms)}
    if any(run[i].x_from is None or run[i].x_from != place[id(run[i - 1])] for i in range(1, count)):
        return None
    return Lstm(
        _common_name([u.name for u in run]),
        ONNX,
        run[0].config,
        {},
        f"{count} chained ONNX LSTM nodes ({', '.join(u.name for u in run)})",
        parts=tuple(run),
        group="layers",
    )


def _common_name(names):
    """``/lstm/LSTM``, ``/lstm/LSTM_1`` -> ``lstm``: their common scope (or the first name)."""
    scopes = [n.strip("/").split("/")[:-1] for n in names]
    common = []
    for parts in zip(*scopes):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common) or names[0]


def pair_lstms(source_path, source_lstms, artifact_path, artifact_lstms):
    """``[(source unit, artifact LSTM)]`` in order, the one pairing of
    ``check --source`` and ``diagnose``: one for one, except that a PyTorch
    LSTM of L layers is L ONNX nodes (``torch.onnx.export`` writes one node
    per layer), L chained ONNX nodes are one PyTorch LSTM of L layers, and a
    Keras ``Bidirectional``'s two directions are one bidirectional LSTM.  A
    count that differs is an input error naming both sides."""
    kind = artifact_lstms[0].kind if artifact_lstms else None
    units = [u for lstm in source_lstms for u in (split_layers(lstm) if kind == ONNX else [lstm])]
    pairs, k = [], 0
    for art in artifact_lstms:
        if k >= len(units):
            break
        unit, used = units[k], 1
        layers = int(art.config.get("num_layers", 1)) if art.kind == TORCH else 1
        group = bidirectional_group(units, k) if _directions(art) == 2 and layers == 1 else None
        if group is None and layers > 1:
            group = layers_group(units, k, layers)
        if group is not None:
            unit, used = group, len(group.parts)
        pairs.append((unit, art))
        k += used
    if len(pairs) != len(artifact_lstms) or k != len(units):
        raise InputError(
            f"--source {source_path.name} has {len(units)} LSTM{'s' if len(units) != 1 else ''} "
            f"{'(layers) ' if kind == ONNX else ''}({', '.join(u.name for u in units) or 'none'}), "
            f"{artifact_path.name} has {len(artifact_lstms)} ({', '.join(a.name for a in artifact_lstms) or 'none'}): "
            "they cannot be matched in order"
        )
    return pairs


def _explain_pair(row, notes, art, art_case, diffs):
    """A pair's row with its notes (what was fed to an ONNX node that the
    model leaves empty) and, on a failure, whether the weights or the
    computation differ."""
    if art.kind == ONNX:
        fed = (["sequence_lens"] if art_case.mask is not None else []) + (
            ["initial_h", "initial_c"] if art_case.initial_state else []
        )
        fed = [f for f in fed if f not in art.optional]
        if fed:
            notes.append(
                f"{', '.join(fed)} fed to the node (the model leaves {'it' if len(fed) == 1 else 'them'} empty)"
            )
    row.notes = "; ".join(notes)
    if row.status == "fail":
        worst = max(diffs, key=diffs.get) if diffs else None
        row.reason = "the artifact differs from its source" + (
            f"; its weights differ from the converted source's (worst {worst}: {diffs[worst]:.3g})"
            if worst and diffs[worst] > 0
            else "; the weights agree, the computation does not"
        )
    return row


def _mismatch(name, art, notes, diffs):
    """A pair whose shapes differ: a failure, with no numbers to show."""
    return _failed(
        name,
        art.kind,
        "the artifact's LSTM does not have the source's shapes: " + "; ".join(n for n in notes if ":" in n),
        weights_max_abs=diffs,
        notes="; ".join(notes),
    )


def _source_case(unit, art, previous, rng, batch, time):
    """The drawn case a PyTorch or ONNX source runs: layer l > 0 of a split
    PyTorch LSTM reads the source's output of layer l - 1; an ONNX
    artifact's constant lengths and states (a dynamo export stores zeros of
    a fixed batch) are given to the source too."""
    probe = _draw(art, rng, batch, time) if art.constants else None
    if probe is not None:
        batch, time = probe.x.shape[:2]
    case = _draw(unit, rng, batch, time)
    x = previous if unit.layer and previous is not None else case.x
    extra = {} if probe is None else probe.initial_state
    return Case(unit.kind, unit.config, x, unit.weights, None if probe is None else probe.mask, name=unit.name, **extra)


def _source_runner(unit, torch_worker):
    """The source's own runner; a split layer, or a traced LSTM whose
    forward returns no final states, runs as ``torch.nn.LSTM`` on its weights."""
    if unit.runner is not None and set(ALL_FIELDS) <= set(unit.returns):
        return unit.runner
    unit.how = f"{unit.how}; run as torch.nn.LSTM on its weights" if unit.runner is not None else unit.how
    return torch_worker.run


def _framework(lstm):
    if lstm.parts:
        return _framework(lstm.parts[0])
    if lstm.recorded is not None:
        return "TF (Keras 3)" if lstm.kind.startswith("keras.") else "TF (tf_keras)"
    return {TORCH: "PyTorch", TORCH_CELL: "PyTorch", ONNX: "ONNX Runtime"}[lstm.kind]


# -- convert ---------------------------------------------------------------------------------


def _node_name(name):
    """A name to write: ``enc layer 1`` (a split PyTorch layer) as ``enc_l1``."""
    return name.replace(" layer ", "_l").replace(" ", "_")


def _key_prefix(name):
    """A state_dict key prefix from a Keras path or an ONNX node name: ``bi/forward_lstm`` -> ``bi.forward_lstm``."""
    return _node_name(name).strip("/").replace("/", ".")


@dataclass
class Converted:
    """One LSTM module of a conversion: its name, the target case, what it
    leaves to the user (``notes``), and the source unit it came from."""

    name: str
    case: Case
    notes: list = field(default_factory=list)
    unit: Lstm = None

    def __iter__(self):  # (name, case), as convert_lstms has always given
        return iter((self.name, self.case))


def _zero_case(unit):
    if unit.recorded is not None:
        return unit.recorded["case"].replace(mask=None, h0=None, c0=None)
    dtype = unit.config.get("dtype") or "float32"
    return Case(unit.kind, unit.config, np.zeros((1, 1, unit.features), dtype), unit.weights, name=unit.name)


def convert_units(lstms, target):
    """The source's LSTMs as ``target`` modules: ``[(unit, Conversion)]``.
    A Keras ``Bidirectional`` becomes one bidirectional module; ONNX nodes
    that chain (``torch.onnx.export``'s layers of one ``nn.LSTM``) become
    one ``torch.nn.LSTM(num_layers=L)``; a PyTorch LSTM of L layers becomes
    L ONNX nodes.  The converter's refusal names the layer."""
    units = [u for lstm in lstms for u in (split_layers(lstm) if target == ONNX else [lstm])]
    out, k = [], 0
    while k < len(units):
        unit = bidirectional_group(units, k) if target != KERAS3 else None  # Keras: a direction each (write_artifact)
        if unit is None and target == TORCH and units[k].kind == ONNX:
            count = 1
            while layers_group(units, k, count + 1) is not None and _chains(units[k : k + count + 1]):
                count += 1
            unit = layers_group(units, k, count) if count > 1 else None
        unit = unit or units[k]
        k += len(unit.parts) or 1
        try:
            if unit.group == "bidirectional":
                fwd, bwd = (_zero_case(p) for p in unit.parts)
                conversion = convert_bidirectional(
                    fwd, bwd, target, merge_mode=unit.parts[0].bidi["merge_mode"], name=unit.name
                )
            elif unit.group == "layers":
                conversion = convert_layers([_zero_case(p) for p in unit.parts], target, name=unit.name)
            else:
                conversion = convert(_zero_case(unit), target)
        except LstmRefError as exc:
            raise ConversionError(f"{unit.name}: {exc}") from None
        out.append((unit, conversion))
    return out


def _chains(nodes):
    """Whether ONNX nodes can be one torch.nn.LSTM: the same attributes, each reading the one before's full output."""
    first = nodes[0].config
    same = all(
        {k: v for k, v in n.config.items() if k != "name"} == {k: v for k, v in first.items() if k != "name"}
        for n in nodes
    )
    if not same or first.get("direction", "forward") == "reverse":
        return False
    width = int(first["hidden_size"]) * (2 if first.get("direction") == "bidirectional" else 1)
    return all(n.features == width for n in nodes[1:])


def convert_lstms(lstms, target):
    """Every LSTM converted to ``target`` (``torch.nn.LSTM`` / ``onnx.LSTM``)
    as :func:`convert_units` groups them: ``[Converted]`` (each also unpacks
    as ``(source name, Case)``)."""
    return [
        Converted(unit.name, conversion.case, list(conversion.notes), unit)
        for unit, conversion in convert_units(lstms, target)
    ]


def _sequence_out(unit):
    """What a Keras unit passes on in the model run -- its output sequence,
    the directions merged for a Bidirectional -- and the merge, or ``(None,
    why)`` when it passes on no sequence the next node can read."""
    parts = unit.parts or (unit,)
    if not parts[0].config.get("return_sequences", False):
        return None, "returns its last step only (return_sequences=False)"
    if unit.group != "bidirectional":
        if unit.config.get("go_backwards"):
            return None, "returns its sequence in processing order (go_backwards), which an ONNX reverse node does not"
        return np.asarray(unit.recorded["outputs"]["h"]), None
    mode = parts[0].bidi["merge_mode"]
    fwd, bwd = (np.asarray(p.recorded["outputs"]["h"]) for p in parts)
    bwd = bwd[:, ::-1]  # Keras flips the backward sequence back to input order before merging
    merged = {
        "concat": lambda: np.concatenate([fwd, bwd], -1),
        "sum": lambda: fwd + bwd,
        "mul": lambda: fwd * bwd,
        "ave": lambda: (fwd + bwd) / 2,
    }.get(mode)
    if merged is None:
        return None, "returns its two directions as two outputs (merge_mode=None)"
    return merged(), None


def _chain(converted):
    """For each converted Keras unit: ``(k, None)`` when it reads unit k's
    output (what the model run shows: its input is that output, merged),
    or ``(None, why not)``."""
    links = []
    for k, item in enumerate(converted):
        unit = item.unit
        if k == 0 or unit is None or unit.recorded is None or converted[k - 1].unit is None:
            links.append((None, None))
            continue
        prev = converted[k - 1].unit
        seq, why = _sequence_out(prev)
        x, mask = unit.recorded["case"].x, unit.recorded["case"].mask
        prev_mask = (prev.parts or (prev,))[0].recorded["case"].mask
        if seq is None:
            links.append((None, f"{prev.name} {why}"))
        elif np.shape(seq) != np.shape(x) or not np.allclose(seq, x, rtol=1e-6, atol=1e-7):
            links.append((None, f"its input is not {prev.name}'s output in the model run (a layer in between?)"))
        elif (mask is None) != (prev_mask is None) or mask is not None and not np.array_equal(mask, prev_mask):
            links.append((None, f"it runs under another mask than {prev.name}"))
        else:
            links.append((k - 1, None))
    return links


_MERGE_OPS = {
    "concat": "Transpose + Reshape (the directions concatenated)",
    "sum": "ReduceSum over the directions",
    "mul": "ReduceProd over the directions",
    "ave": "ReduceMean over the directions",
}


def write_artifact(converted, target, out_path, pool):
    """Write ``converted`` (:func:`convert_lstms`) as a ``.pt`` state_dict or
    an ``.onnx`` model: ``[(source name, name in the file)]``.  In the ONNX
    model, LSTMs that read the one before's output in a Keras model run
    (:func:`_chain`) are chained as in the source: node k's ``Y`` (its
    directions merged by ``Transpose``+``Reshape`` for concat, ``ReduceSum``,
    ``ReduceProd``, ``ReduceMean`` for sum, mul, ave) is node k+1's ``X``;
    every other node has its own input ``<node>/X``."""
    written = []
    converted = [c if isinstance(c, Converted) else Converted(*c) for c in converted]
    if target == KERAS3:
        return _write_keras(converted, out_path, pool)
    if target == TORCH:
        arrays, order = {}, []
        for name, case in converted:
            prefix = "" if len(converted) == 1 else _key_prefix(name) + "."
            for key, value in case.weights.items():
                arrays[f"w:{prefix}{key}"] = np.ascontiguousarray(value)
                order.append(prefix + key)
            written.append((name, prefix[:-1] or "(plain keys)"))
        pool.get("torch").request({"op": "save_state_dict", "path": str(out_path), "order": order}, arrays)
        return written
    nodes, arrays = [], {}
    for i, ((name, case), (source, why)) in enumerate(zip(converted, _chain(converted))):
        node = _node_name(name)
        unit = converted[i].unit
        masked = (
            unit is not None
            and unit.recorded is not None
            and (unit.parts or (unit,))[0].recorded["case"].mask is not None
        )
        merge = unit.parts[0].bidi["merge_mode"] if unit is not None and unit.group == "bidirectional" else "concat"
        nodes.append(
            {
                "name": node,
                "config": {k: v for k, v in case.config.items() if k != "dtype"},
                "x_from": source,
                "merge": merge,
                "lengths": bool(masked),
            }
        )
        for key, value in case.weights.items():
            arrays[f"{i}:{key}"] = value
        if unit is not None and unit.group == "bidirectional" and merge in _MERGE_OPS:
            converted[i].notes[:] = [n for n in converted[i].notes if not n.startswith("merge_mode=")]
            converted[i].notes.append(
                f"merge_mode={merge!r} written as ONNX ops: {node}/merged = {_MERGE_OPS[merge]} "
                f"of {node}/Y (time, 2, batch, units)"
            )
        if source is None:
            where = f"node {node!r} (input {node}/X" + (", sequence_lens" if masked else "") + ")"
            if why:
                converted[i].notes.append(f"not chained to the node before: {why}; it has its own input {node}/X")
        else:
            head = next(n["name"] for n in reversed(nodes[:-1]) if n["x_from"] is None) if i else node
            where = (
                f"node {node!r} (input: {nodes[source]['name']}'s output"
                + ("" if nodes[source]["merge"] == "concat" else f", merged by {nodes[source]['merge']}")
                + f"; the chain's input is {head}/X)"
            )
        written.append((name, where))
    pool.get("onnxruntime").request({"op": "save_lstms", "path": str(out_path), "nodes": nodes}, arrays)
    return written


def _keras_name(name):
    """A Keras 3 layer name (no ``/``, which Keras 3 refuses)."""
    return name.replace("/", "_").replace("#", "_")


def _simple_bidirectional(fwd, bwd):
    """Whether two converted directions are one ``keras.layers.Bidirectional``
    (its backward layer: the forward's config with ``go_backwards`` flipped)."""
    if fwd.unit is None or bwd.unit is None or not fwd.unit.bidi or not bwd.unit.bidi:
        return False
    if fwd.unit.bidi["wrapper"] != bwd.unit.bidi["wrapper"]:
        return False
    if (fwd.unit.bidi["direction"], bwd.unit.bidi["direction"]) != ("forward", "backward"):
        return False
    a, b = dict(fwd.case.config), dict(bwd.case.config)
    if a.pop("go_backwards", False) or not b.pop("go_backwards", False) or a != b:
        return False
    return {k: np.shape(v) for k, v in fwd.case.weights.items()} == {
        k: np.shape(v) for k, v in bwd.case.weights.items()
    }


def _write_keras(converted, out_path, pool):
    """A Keras 3 model, built and saved by the Keras 3 worker (``save_keras``):
    each LSTM with its own input, a Bidirectional's two directions one
    ``keras.layers.Bidirectional`` where :func:`_simple_bidirectional`, else
    two LSTMs (the backward one ``go_backwards=True``)."""
    layers, arrays, written, k = [], {}, [], 0
    while k < len(converted):
        item = converted[k]
        i = len(layers)
        pair = k + 1 < len(converted) and _simple_bidirectional(item, converted[k + 1])
        if pair:
            bwd = converted[k + 1]
            name = _keras_name(item.unit.bidi["wrapper"])
            config = {key: v for key, v in item.case.config.items() if key != "go_backwards"}
            inner = item.name.rpartition("/")[2].removeprefix("forward_")  # Keras names it forward_<inner>
            if inner and inner != item.name:
                config["name"] = _keras_name(inner)
            layers.append({"name": name, "config": config, "input_dim": item.unit.features, "bidirectional": True})
            for d, part in (("forward", item), ("backward", bwd)):
                arrays.update((f"{i}:{d}:w:{key}", np.ascontiguousarray(v)) for key, v in part.case.weights.items())
                written.append((part.name, f"keras.layers.Bidirectional {name!r} ({d}_layer, input {name}_input)"))
            k += 2
            continue
        name = _keras_name(item.name)
        layers.append(
            {"name": name, "config": dict(item.case.config), "input_dim": item.unit.features, "bidirectional": False}
        )
        arrays.update((f"{i}:w:{key}", np.ascontiguousarray(v)) for key, v in item.case.weights.items())
        backwards = ", go_backwards=True" if item.case.config.get("go_backwards") else ""
        written.append((item.name, f"keras.layers.LSTM {name!r} (input {name}_input{backwards})"))
        k += 1
    pool.get("keras3").request({"op": "save_keras", "path": str(out_path), "layers": layers}, arrays)
    return written


def check_chains(converted, out_path, pool):
    """Prove the written ONNX model: every chain of it run as ONE model in
    ONNX Runtime on its source's input (the first LSTM's, in the model
    run), each node's Y, Y_h, Y_c compared step by step with the source's
    own outputs of that LSTM (``Conversion.align``), with the one
    comparison.  ``[LayerResult]``; nodes with their own input are checked
    alone by ``check OUT --source MODEL``."""
    converted = [c if isinstance(c, Converted) else Converted(*c) for c in converted]
    links = _chain(converted)
    heads = [k for k, (source, _) in enumerate(links) if source is None and k + 1 < len(links) and links[k + 1][0] == k]
    results = []
    for head in heads:
        unit = converted[head].unit
        first = (unit.parts or (unit,))[0].recorded["case"]
        arrays = {"x": first.x}
        if first.mask is not None:
            arrays["mask"] = first.mask
        meta, out = pool.get("onnxruntime").request(
            {"op": "run_chain", "path": str(out_path), "head": _node_name(converted[head].name)}, arrays
        )
        k = head
        while True:
            item = converted[k]
            parts = item.unit.parts or (item.unit,)
            sources = [p.recorded["case"] for p in parts]
            if item.unit.group == "bidirectional":
                conversion = convert_bidirectional(*sources, ONNX, merge_mode=parts[0].bidi["merge_mode"])
            else:
                conversion = convert(sources[0], ONNX)
            aligned = conversion.align(
                [_fields(p.recorded["outputs"]) for p in parts]
                if item.unit.parts
                else _fields(parts[0].recorded["outputs"])
            )
            node = _node_name(item.name)
            desired = {f: out[f"{node}:{f}"] for f in ALL_FIELDS}
            name = f"{item.name} (in the chain from {converted[head].name}/X)"
            result = _measure(conversion.case, desired, replace=aligned)
            results.append(
                _row(
                    name,
                    conversion.case,
                    result,
                    f"{_framework(item.unit)} vs ONNX Runtime (the chained model)",
                    notes=f"{meta['nodes']} node(s) run as one model",
                )
            )
            if k + 1 >= len(links) or links[k + 1][0] != k:
                break
            k += 1
    return results


def refuse_same_framework(oracle_name, target, path):
    if (oracle_name, target) in (("torch", TORCH), ("onnxruntime", ONNX), ("keras3", KERAS3)):
        raise InputError(
            f"{path} is already a {FRAMEWORK[oracle_name]} file; convert goes from Keras, PyTorch or "
            "ONNX to the other framework"
        )
