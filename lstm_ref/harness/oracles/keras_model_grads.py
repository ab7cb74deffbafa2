"""The ``model_grads`` op: every LSTM layer of a saved Keras model, with the
gradient TF computes for it through the WHOLE model (``check MODEL --grad``).

Framework-agnostic over the ``keras`` module it is given (Keras 3 or
tf_keras), like :mod:`keras_models`, whose walk, inputs and call recorders
it reuses.  The model runs once, eagerly, inside a persistent
``tf.GradientTape`` that watches its floating inputs.  The loss is a seeded
random projection of the model's floating outputs,
``L = sum_k sum(float32(out_k) * P_k)``, ``P_k ~ N(0, 1)`` drawn from
``default_rng([seed, 17])``.  For each recorded call of an LSTM layer:

* the upstream gradient the layer received: ``tape.gradient(L, outputs)``
  for each of its outputs (the sequence or last step, and the final states
  with ``return_state``), zeros where ``L`` does not depend on one;
* TF's gradient of that call alone: the vector-Jacobian product of the
  call's outputs with that upstream, ``tape.gradient(outputs, [x, h0, c0,
  *weights], output_gradients=upstream)``.  This is this call's share even
  when ``x`` also feeds other layers or the layer is called twice (shared
  weights): what the reference computes from the same upstream;
* TF's per-step ``dL/dh_t``, ``dL/dc_t`` where the worker's ``grad`` op
  gives them (the Keras 3 worker's perturbed-state run on the layer's cell),
  from the same upstream.

An ``RNN(StackedRNNCells)`` gives one entry per cell (:func:`_call_entries`),
each with ``stack: {"index", "above", "flip"}``: the entry index of the cell
above, whose reference dL/dx (flipped back under ``go_backwards``) is this
cell's sequence upstream, which TF's tape cannot see inside the RNN's loop.

Reply: meta ``{"layers": [{"path", "kind", "config", "class", "source",
"return_sequences", "return_state"[, "stack"]}], "skipped": [[path, why]], "outputs":
[{"name", "shape", "dtype"}], "seed"}``; arrays ``{i}:x``, ``{i}:mask``,
``{i}:h0``, ``{i}:c0``, ``{i}:w:<name>`` (what the call received, as
``model_lstms`` gives them), ``{i}:up:<field>`` (the upstream in the
reference's fields: ``h`` per step, batch-major -- the last step's alone
without ``return_sequences``, zeros elsewhere -- ``final_h``, ``final_c``),
``{i}:g:<x|h0|c0|w:name>`` and ``{i}:g:steps:<h|c_carried>``.
"""

import os

import numpy as np

from lstm_ref.harness.oracles import protocol
from lstm_ref.harness.oracles.keras_models import (
    _call_arrays,
    _cell_config,
    _first_line,
    _flat,
    _load,
    _numpy,
    _short_name,
    _tf,
    import_custom_objects,
)

PROJECTION_SEED = 17


def _call_tensors(tf, arguments):
    """The x tensor and initial state tensors one recorded call received."""
    names = list(arguments)
    x = arguments[names[0]]
    states = arguments.get("initial_state")
    if isinstance(x, (list, tuple)):  # tf_keras RNN.__call__: [inputs, *initial_state]
        if states is None and len(x) > 1:
            states = list(x[1:])
        x = x[0]
    return x, _flat(tf, states)


def _loss(tf, output, seed):
    """``sum_k sum(float32(out_k) * P_k)`` over the floating outputs, and their description."""
    rng = np.random.default_rng([seed, PROJECTION_SEED])
    terms, described = [], []
    for k, out in enumerate(_flat(tf, output)):
        if not out.dtype.is_floating:
            continue
        projection = rng.standard_normal(tuple(out.shape)).astype(np.float32)
        terms.append(tf.reduce_sum(tf.cast(out, tf.float32) * projection))
        described.append({"name": str(k), "shape": list(out.shape), "dtype": out.dtype.name})
    if not terms:
        raise protocol.UserError("--grad: the model has no floating output to take a gradient of")
    return tf.add_n(terms), described


def _upstream(layer, outs, ups, batch, time):
    """The upstream in the reference's fields (batch-major)."""
    seq = ups[0]
    if getattr(layer, "time_major", False) and layer.return_sequences:
        seq = seq.transpose(1, 0, 2)
    if layer.return_sequences:
        h = seq
    else:
        h = np.zeros((batch, time, seq.shape[-1]), seq.dtype)
        h[:, -1] = seq
    fields = {"h": np.ascontiguousarray(h)}
    if layer.return_state:
        fields["final_h"], fields["final_c"] = ups[1], ups[2]
    return fields


def model_grads(keras, grad_op, meta, arrays, run_op=None):
    """The ``model_grads`` op (see the module docstring).  ``run_op``: the
    worker's ``run`` op, which gives a stacked cell's input (the TF output
    of the cell below); without it a ``StackedRNNCells`` is a skip row."""
    tf = _tf()
    path = os.path.abspath(meta["path"])
    if not os.path.exists(path):
        raise protocol.UserError(f"{path}: no such file or directory")
    import_custom_objects(meta.get("custom_objects", []))
    model = _load(keras, path)
    seed = int(meta.get("seed", 0))
    feed = model.feed(arrays, int(meta.get("batch", 2)), int(meta.get("time", 7)), seed)
    with tf.GradientTape(persistent=True) as tape:
        recorded = model.forward(feed, tape=tape)
        loss, described = _loss(tf, model.output, seed)
    layers, out, skipped, frozen = [], {}, [list(s) for s in model.skipped], []
    for unit in model.units:
        calls = recorded.get(id(unit.layer), [])
        if not calls:
            skipped.append([unit.path, "not called when the model runs (not on a path from the inputs to the outputs)"])
            continue
        if len(unit.cells) != 1 and run_op is None:
            skipped.append([unit.path, f"{unit.source}: this worker cannot run the stacked cells one by one"])
            continue
        if not any(cell.trainable_weights for _, cell, _ in unit.cells):
            frozen.append(unit.path)
            skipped.append([unit.path, "trainable=False (frozen): training computes no gradient for its weights"])
            continue
        for n, call in enumerate(calls):
            suffix = f" (call {n + 1})" if len(calls) > 1 else ""
            try:
                entries = _call_entries(keras, tf, tape, loss, unit, call, suffix, grad_op, run_op)
            except _Skip as skip:
                skipped.append(list(skip.args))
                continue
            for k, (entry, wire, up, grads) in enumerate(entries):
                i = len(layers)
                if len(entries) > 1:  # a lower cell's sequence upstream: the reference's dL/dx of the cell above
                    above = i + 1 if k + 1 < len(entries) else None
                    entry["stack"] = {"index": k, "above": above, "flip": bool(unit.layer.go_backwards)}
                layers.append(entry)
                out.update({f"{i}:{key}": v for key, v in wire.items()})
                out.update({f"{i}:up:{key}": v for key, v in up.items()})
                out.update({f"{i}:g:{key}": v for key, v in grads.items()})
    del tape
    if frozen and not layers and len(frozen) == len(model.units):
        raise protocol.UserError(
            f"--grad: no LSTM in the model has trainable weights ({', '.join(frozen)}: trainable=False); "
            "there is no gradient to check"
        )
    return {"layers": layers, "skipped": skipped, "outputs": described, "seed": seed}, out


class _Skip(Exception):
    """``(name, why)``: a call with no gradient row."""


def _call_entries(keras, tf, tape, loss, unit, call, suffix, grad_op, run_op):
    """One recorded call of ``unit``: ``[(layer meta, wire, upstream,
    TF's gradients)]``, one per cell (bottom first); :class:`_Skip` ``(name,
    why)`` where the call cannot be checked.

    A ``StackedRNNCells`` runs its cells within one step, so TF's tape sees
    only the RNN's call: dL/dx (the bottom cell's), every cell's
    dL/d(initial state) and dL/d(weights) from one vector-Jacobian product.
    Each cell's x is the TF output sequence of the cell below (flipped to
    input order under ``go_backwards``, as ``check`` runs them); the top
    cell takes the RNN's sequence upstream, each cell its own final states',
    and a lower cell's sequence upstream -- inside the loop, out of the
    tape's sight -- is left to the harness (``stack`` in its meta)."""
    layer, (arguments, output) = unit.layer, call
    stacked = len(unit.cells) > 1
    configs = []
    for path, cell, _ in unit.cells:
        config = _cell_config(keras, unit, cell, cell.name if stacked else layer.name)
        if config is None:
            raise _Skip(path + suffix, "implementation=1 cell under go_backwards and zero_output_for_mask")
        configs.append(config)
    x_t, states_t = _call_tensors(tf, arguments)
    outs = _flat(tf, output)
    ups = [
        tf.zeros_like(o) if g is None else tf.cast(g, o.dtype)
        for o, g in zip(outs, tape.gradient(loss, outs, unconnected_gradients="none"))
    ]
    weights = [list(cell.weights) for _, cell, _ in unit.cells]
    sources = [x_t, *states_t, *(v for w in weights for v in w)]
    try:
        vjp = tape.gradient(outs, sources, output_gradients=ups, unconnected_gradients="zero")
    except Exception as exc:  # noqa: BLE001 - TF's refusal, for the row
        raise _Skip(unit.path + suffix, f"TF's tape cannot differentiate this call: {_first_line(exc)}") from None
    x, mask, states = _call_arrays(tf, layer, arguments)
    ups = [_numpy(u) for u in ups]
    d_weights = iter(vjp[1 + len(states_t) :])
    entries, cell_x = [], x
    for k, ((path, cell, source), config) in enumerate(zip(unit.cells, configs)):
        top = k == len(unit.cells) - 1
        wire = {"x": cell_x, **{f"w:{_short_name(v)}": _numpy(v) for v in weights[k]}}
        if mask is not None:
            wire["mask"] = mask
        if states:
            wire["h0"], wire["c0"] = states[2 * k], states[2 * k + 1]
        own = [ups[1 + 2 * k], ups[2 + 2 * k]] if layer.return_state else []
        if top:
            up = _upstream(layer, outs, [ups[0], *own], *x.shape[:2])
        else:
            up = dict(zip(("final_h", "final_c"), own))
        grads = {}
        if k == 0:
            grads["x"] = _numpy(vjp[0])
            if getattr(layer, "time_major", False):
                grads["x"] = np.ascontiguousarray(grads["x"].transpose(1, 0, 2))
        if states:
            grads["h0"], grads["c0"] = _numpy(vjp[1 + 2 * k]), _numpy(vjp[2 + 2 * k])
        frozen = not cell.trainable_weights  # a frozen cell in a stack: TF's tape never watched its weights
        for v in weights[k]:
            g = next(d_weights)
            if not frozen:
                grads[f"w:{_short_name(v)}"] = _numpy(g)
        if grad_op is not None and not stacked and not getattr(layer, "time_major", False):
            try:
                _, standalone = grad_op({"config": config}, {**wire, **{f"up:{key}": v for key, v in up.items()}})
            except protocol.UserError:
                standalone = {}
            grads.update({key: v for key, v in standalone.items() if key.startswith("steps:")})
        entry = {
            "path": (path if stacked else unit.path) + suffix,
            "kind": f"{keras.__name__}.layers.LSTM",
            "config": config,
            "class": type(layer).__name__,
            "source": source,
            "return_sequences": bool(layer.return_sequences),
            "return_state": bool(layer.return_state),
        }
        if frozen:
            entry["frozen"] = True
        entries.append((entry, wire, up, grads))
        if not top:  # the next cell's x: this cell's TF output sequence, in input order
            _, tf_out = run_op({"op": "run", "config": config}, dict(wire))
            cell_x = np.ascontiguousarray(tf_out["h"][:, ::-1] if layer.go_backwards else tf_out["h"])
    return entries
