"""Oracle worker for ``keras.layers.LSTM`` under Keras 3 (TF backend, CPU).

Per-step ``c`` comes from TF itself: the layer's own cell is wrapped so that
every step also emits its new ``c`` next to ``h``, and the wrapper runs through
Keras' own ``RNN`` machinery with the layer's flags.  Keras masks that output
like any other (a masked step repeats the previous output, zeros before the
first valid step, or zeros with ``zero_output_for_mask``), so the carried
``c`` at step t is the wrapper's ``c`` at the row's last valid step so far,
and ``c0`` before any.  The real ``keras.layers.LSTM`` is
run too, on every golden and on one live request in ``CROSS_CHECK_EVERY``,
and its sequence and states must equal the wrapper's bitwise.
"""

import keras  # noqa: E402  (after the protocol import: keeps the worker's start order obvious)
import numpy as np
import tensorflow as tf  # noqa: E402

from lstm_ref.harness.oracles import keras_model_grads, keras_models, memory, protocol, provenance


class _EmitCarry(keras.layers.Layer):
    """Wraps a cell so that its output is ``concat([h, c])``."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.state_size = cell.state_size
        self.output_size = 2 * cell.units

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build(input_shape)

    def call(self, inputs, states, training=False):
        h, new_states = self.cell(inputs, states, training=training)
        return tf.concat([h, new_states[1]], axis=-1), new_states


# Initializers are overwritten by the assigned weights; zeros skips the
# orthogonal initializer's QR on every build.
_CHEAP_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros", "bias_initializer": "zeros"}
CROSS_CHECK_EVERY = 8  # the real layer re-runs on 1 request in 8, and on every golden
_requests = [0]


def _build(config, input_dim):
    layer = keras.layers.LSTM(**{**config, **_CHEAP_INIT, "return_sequences": True, "return_state": True})
    layer.build((None, None, input_dim))
    probe = keras_models.carry_probe(
        keras.layers.RNN,
        _EmitCarry(layer.cell, dtype=layer.dtype_policy),
        layer,
        zero_output_for_mask=layer.zero_output_for_mask,
    )
    return layer, probe


_layers = memory.LayerCache(_build, keras.backend.clear_session)


def hello(meta, arrays):
    info = provenance.base()
    info.update(tensorflow=tf.__version__, keras=keras.__version__, oracle="keras3")
    return info, {}


def run(meta, arrays):
    config = meta["config"]
    x = arrays["x"]
    layer, probe = _layers(config, x.shape[-1])
    by_name = {v.name: v for v in layer.weights}
    for name, var in by_name.items():
        var.assign(arrays[f"w:{name}"])
    extra = {}
    if "h0" in arrays:
        extra["initial_state"] = [tf.constant(arrays["h0"]), tf.constant(arrays["c0"])]
    if "mask" in arrays:
        extra["mask"] = tf.constant(arrays["mask"])
    protocol.mark("request")
    hc_seq, final_h, final_c = (t.numpy() for t in probe(tf.constant(x), **extra))
    protocol.mark("run")
    units = layer.cell.units
    probe_h, probe_c = hc_seq[..., :units], hc_seq[..., units:]
    c0 = arrays["c0"].astype(probe_c.dtype) if "c0" in arrays else np.zeros_like(probe_c[:, 0])
    probe_c = keras_models.carried_c(probe_c, arrays.get("mask"), layer.go_backwards, c0)
    if not np.array_equal(probe_c[:, -1], final_c, equal_nan=True):
        raise AssertionError("cross-check: the carried c rebuilt from the outputs differs from the final c state")
    _requests[0] += 1
    if meta.get("cross_check") or _requests[0] % CROSS_CHECK_EVERY == 1:
        h_seq, layer_h, layer_c = (t.numpy() for t in layer(tf.constant(x), **extra))
        for what, ours, real in (
            ("h sequence", probe_h, h_seq),
            ("final h", final_h, layer_h),
            ("final c", final_c, layer_c),
        ):
            if not np.array_equal(ours, real, equal_nan=True):
                raise AssertionError(f"cross-check: the wrapped cell's {what} differs from keras.layers.LSTM's")
        protocol.mark("real layer")
    return {}, {"h": probe_h, "c": probe_c, "final_h": final_h, "final_c": final_c}


class _PerturbedState(keras.layers.Layer):
    """Wraps a cell so that its new state is ``(h + e_h, c + e_c)``, the
    zero perturbations ``e`` read from the input's last ``2 * units``
    columns: dL/de at step t is dL/d(the state the cell computes at step t),
    the per-step view that ``GradientTape`` cannot give of states inside the
    RNN's while loop.  Adding a zero changes no bit of the forward."""

    def __init__(self, cell, features, **kwargs):
        super().__init__(**kwargs)
        self.cell, self.features = cell, features
        self.state_size = cell.state_size
        self.output_size = cell.units

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build((None, self.features))

    def call(self, inputs, states, training=False):
        units, d = self.cell.units, self.features
        h, (_, c) = self.cell(inputs[:, :d], states, training=training)
        h = h + inputs[:, d : d + units]
        c = c + inputs[:, d + units :]
        return h, [h, c]


def grad(meta, arrays):
    """``tf.GradientTape`` on the real ``keras.layers.LSTM``: the loss is
    ``sum(field * up:<field>)`` over ``h``, ``final_h``, ``final_c`` (the
    real layer returns no per-step c); the reply has ``x``, ``h0``, ``c0``
    (when given) and ``w:<name>``.  The per-step ``steps:h`` and
    ``steps:c_carried`` (dL/d of the state the cell computes at step t,
    processing order; c's with that step's h held, since the perturbation
    is added after the cell computed h from c) come
    from the same cell run by ``keras.layers.RNN`` with zero perturbations
    added to its new state (:class:`_PerturbedState`); that run's dL/dx
    must equal the real layer's bitwise (else the request fails).  Every
    upstream field must be given the layer's compute dtype."""
    config = meta["config"]
    x = arrays["x"]
    layer, _ = _layers(config, x.shape[-1])
    weights = {v.name: v for v in layer.weights}
    for name, var in weights.items():
        var.assign(arrays[f"w:{name}"])
    ups = {k[3:]: tf.constant(v) for k, v in arrays.items() if k.startswith("up:")}
    unknown = sorted(set(ups) - {"h", "final_h", "final_c"})
    if unknown:
        raise protocol.UserError(f"grad: upstream field(s) {unknown}: the real layer returns h, final_h, final_c")
    xt = tf.constant(x)
    init = [tf.constant(arrays["h0"]), tf.constant(arrays["c0"])] if "h0" in arrays else None
    extra = {} if "mask" not in arrays else {"mask": tf.constant(arrays["mask"])}

    def loss_of(outputs):
        fields = dict(zip(("h", "final_h", "final_c"), outputs))
        return tf.add_n([tf.reduce_sum(fields[k] * tf.cast(v, fields[k].dtype)) for k, v in ups.items()])

    protocol.mark("request")
    with tf.GradientTape() as tape:
        watched = [xt, *(init or [])]
        for t in watched:
            tape.watch(t)
        loss = loss_of(layer(xt, initial_state=init, **extra))
    names = ["x", *(["h0", "c0"] if init else [])]
    grads = tape.gradient(loss, watched + [weights[n] for n in weights])
    out = {n: g.numpy() for n, g in zip(names, grads)}
    out.update((f"w:{n}", g.numpy()) for n, g in zip(weights, grads[len(names) :]))
    protocol.mark("grad")
    units = layer.cell.units
    batch, time = x.shape[:2]
    eps = tf.constant(np.zeros((batch, time, 2 * units), dtype=x.dtype))
    probe = keras.layers.RNN(
        _PerturbedState(layer.cell, x.shape[-1], dtype=layer.dtype_policy),
        return_sequences=True,
        return_state=True,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
        dtype=layer.dtype_policy,
    )
    with tf.GradientTape() as tape:
        tape.watch(eps)
        tape.watch(xt)
        loss = loss_of(probe(tf.concat([xt, eps], axis=-1), initial_state=init, **extra))
    d_in, d_x = (g.numpy() for g in tape.gradient(loss, [eps, xt]))
    if not np.array_equal(d_x, out["x"]):
        raise AssertionError("cross-check: dL/dx through the perturbed cell differs from the real layer's")
    if layer.go_backwards:  # the RNN read eps reversed: processing order, as the trace
        d_in = d_in[:, ::-1]
    out["steps:h"], out["steps:c_carried"] = d_in[..., :units], d_in[..., units:]
    protocol.mark("steps")
    return {}, out


def activation(meta, arrays):
    fn = keras.activations.get(meta["name"])
    return {}, {"y": np.asarray(fn(tf.constant(arrays["x"])))}


def model_lstms(meta, arrays):
    """Every LSTM in a saved model, each on exactly what it receives in one
    run of the model (``keras_models``; the same op in ``tf_keras_worker``).

    Request: meta ``{"op": "model_lstms", "path": <absolute path>, "batch":
    int, "time": int, "seed": int, "custom_objects": [<.py paths>]}``; arrays ``in:<input name>`` for each
    model input, or none (inputs are then drawn: floats N(0, 1), integers in
    [1, input_dim) of the model's Embedding with trailing zeros in some rows,
    booleans with holes; ``None`` dims become batch, then time).  A file Keras
    cannot load, a model without an LSTM, or inputs of the wrong name, rank or
    fixed dim raise ``protocol.UserError``.

    Reply: meta ``{"inputs": [{"name", "shape", "dtype"}], "layers": [{"path",
    "kind", "config", "bidirectional", "direction", "source", "class",
    "return_sequences"}], "merged":
    [{"path", "merge_mode", "forward", "backward", "return_sequences"}],
    "skipped": [[path, reason]]}``; arrays ``{i}:x``, ``{i}:w:<name>``,
    optional ``{i}:mask``, ``{i}:h0``, ``{i}:c0``, and TF's ``{i}:h``,
    ``{i}:c``, ``{i}:final_h``, ``{i}:final_c`` (``run`` with
    ``cross_check``); what the layer returned in the model run,
    ``{i}:model:h`` (its sequence, or last step) and, with return_state,
    ``{i}:model:final_h``, ``{i}:model:final_c``; ``merged:{j}`` (``merged:{j}:0`` and ``:1`` for
    ``merge_mode=None``), the Bidirectional layer's output in the model run.
    """
    return keras_models.model_lstms(keras, run, meta, arrays)


def save_keras(meta, arrays):
    """Write a Keras 3 model of converted LSTMs (``lstm-ref convert
    WEIGHTS.h5 --to keras``).  Request: meta ``{"op": "save_keras", "path":
    <absolute .keras path>, "layers": [{"name", "config", "input_dim",
    "bidirectional"}]}``; arrays ``{i}:w:<kernel|recurrent_kernel|bias>``, a
    Bidirectional's ``{i}:forward:w:...`` and ``{i}:backward:w:...``.  Each
    layer gets its own ``keras.Input`` ``<name>_input`` (time, features) and
    is ``keras.layers.LSTM(**config, return_sequences=True,
    return_state=True, name=name)`` (a Bidirectional: of the forward
    config, its ``name`` the inner LSTM's, merge_mode concat); the model is saved, loaded back, and its
    weights must equal the sent ones bitwise.  Reply meta ``{"path",
    "layers": [[name, class]]}``."""
    order = ("kernel", "recurrent_kernel", "bias")
    inputs, outputs, expected, done = [], [], [], []
    for i, spec in enumerate(meta["layers"]):
        name, config = spec["name"], dict(spec["config"])
        x = keras.Input(shape=(None, int(spec["input_dim"])), dtype=config.get("dtype"), name=f"{name}_input")
        lstm_args = {**config, "return_sequences": True, "return_state": True}
        if spec.get("bidirectional"):
            layer = keras.layers.Bidirectional(keras.layers.LSTM(**lstm_args), merge_mode="concat", name=name)
            outputs += list(layer(x))
            for d, sub in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
                weights = [arrays[f"{i}:{d}:w:{k}"] for k in order if f"{i}:{d}:w:{k}" in arrays]
                sub.set_weights(weights)
                expected += weights
        else:
            layer = keras.layers.LSTM(**lstm_args, name=name)
            outputs += list(layer(x))
            weights = [arrays[f"{i}:w:{k}"] for k in order if f"{i}:w:{k}" in arrays]
            layer.set_weights(weights)
            expected += weights
        inputs.append(x)
        done.append([name, type(layer).__name__])
    model = keras.Model(inputs=inputs, outputs=outputs, name="lstm_ref_converted")
    model.save(meta["path"])
    reloaded = [np.asarray(w) for w in keras.saving.load_model(meta["path"], compile=False).get_weights()]
    if len(reloaded) != len(expected) or not all(
        w.dtype == e.dtype and np.array_equal(w, e) for w, e in zip(reloaded, expected)
    ):
        raise AssertionError("save_keras: the saved model's weights, loaded back, differ from the converted ones")
    return {"path": meta["path"], "layers": done}, {}


if __name__ == "__main__":
    protocol.serve(
        {
            "hello": hello,
            "run": run,
            "activation": activation,
            "model_lstms": model_lstms,
            "model_grads": lambda meta, arrays: keras_model_grads.model_grads(keras, grad, meta, arrays, run),
            "grad": grad,
            "save_keras": save_keras,
        }
    )
