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

Reply: meta ``{"layers": [{"path", "kind", "config", "class", "source",
"return_sequences", "return_state"}], "skipped": [[path, why]], "outputs":
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


def model_grads(keras, grad_op, meta, arrays):
    """The ``model_grads`` op (see the module docstring)."""
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
        if len(unit.cells) != 1:
            skipped.append(
                [unit.path, f"{unit.source}: --grad checks one LSTM per layer; the stacked cells' are not separated"]
            )
            continue
        _, cell, source = unit.cells[0]
        layer = unit.layer
        if not cell.trainable_weights:
            frozen.append(unit.path)
            skipped.append([unit.path, "trainable=False (frozen): training computes no gradient for its weights"])
            continue
        for n, (arguments, output) in enumerate(calls):
            name = unit.path + (f" (call {n + 1})" if len(calls) > 1 else "")
            config = _cell_config(keras, unit, cell, layer.name)
            if config is None:
                skipped.append([name, "implementation=1 cell under go_backwards and zero_output_for_mask"])
                continue
            x_t, states_t = _call_tensors(tf, arguments)
            outs = _flat(tf, output)
            ups = [
                tf.zeros_like(o) if g is None else tf.cast(g, o.dtype)
                for o, g in zip(outs, tape.gradient(loss, outs, unconnected_gradients="none"))
            ]
            weights = list(cell.weights)
            sources = [x_t, *states_t, *weights]
            try:
                vjp = tape.gradient(outs, sources, output_gradients=ups, unconnected_gradients="zero")
            except Exception as exc:  # noqa: BLE001 - TF's refusal, for the row
                skipped.append([name, f"TF's tape cannot differentiate this call: {_first_line(exc)}"])
                continue
            x, mask, states = _call_arrays(tf, layer, arguments)
            i = len(layers)
            wire = {"x": x, **{f"w:{_short_name(v)}": _numpy(v) for v in weights}}
            if mask is not None:
                wire["mask"] = mask
            if states:
                wire["h0"], wire["c0"] = states[0], states[1]
            up = _upstream(layer, outs, [_numpy(u) for u in ups], *x.shape[:2])
            grads = {"x": _numpy(vjp[0])}
            if getattr(layer, "time_major", False):
                grads["x"] = np.ascontiguousarray(grads["x"].transpose(1, 0, 2))
            if states:
                grads["h0"], grads["c0"] = _numpy(vjp[1]), _numpy(vjp[2])
            for v, g in zip(weights, vjp[1 + len(states_t) :]):
                grads[f"w:{_short_name(v)}"] = _numpy(g)
            if grad_op is not None and not getattr(layer, "time_major", False):
                try:
                    _, standalone = grad_op({"config": config}, {**wire, **{f"up:{k}": v for k, v in up.items()}})
                except protocol.UserError:
                    standalone = {}
                grads.update({k: v for k, v in standalone.items() if k.startswith("steps:")})
            layers.append(
                {
                    "path": name,
                    "kind": f"{keras.__name__}.layers.LSTM",
                    "config": config,
                    "class": type(layer).__name__,
                    "source": source,
                    "return_sequences": bool(layer.return_sequences),
                    "return_state": bool(layer.return_state),
                }
            )
            out.update({f"{i}:{k}": v for k, v in wire.items()})
            out.update({f"{i}:up:{k}": v for k, v in up.items()})
            out.update({f"{i}:g:{k}": v for k, v in grads.items()})
    del tape
    if frozen and not layers and len(frozen) == len(model.units):
        raise protocol.UserError(
            f"--grad: no LSTM in the model has trainable weights ({', '.join(frozen)}: trainable=False); "
            "there is no gradient to check"
        )
    return {"layers": layers, "skipped": skipped, "outputs": described, "seed": seed}, out
