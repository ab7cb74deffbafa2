"""Oracle worker for ``tf_keras.layers.LSTM`` (Keras 2, tf_keras 2.21, TF
backend, CPU, eager).

Runs with ``TF_USE_LEGACY_KERAS=1`` (set by the client before TF loads).

The wire is batch-major: ``x`` is (batch, time, features) and ``mask``
(batch, time) even when the config says ``time_major=True``; the worker then
transposes x to (time, batch, features) and the mask to (time, batch), which
is what tf_keras takes in that mode, and transposes the sequence back.  The
config goes to the ``tf_keras.layers.LSTM`` constructor as is (a
``get_config()`` dict included), with only the initializers (overwritten by
the assigned weights) and ``return_sequences``/``return_state`` overridden.
Initial states are given to TF in the layer's compute dtype: tf_keras rejects
others (a float32 ``h0`` on a mixed_float16 layer fails in MatMul).

Per-step ``c`` comes from TF itself: a cell is wrapped so that every step
also emits its new ``c`` next to ``h``, and the wrapper runs through
tf_keras' own ``RNN`` with the layer's ``go_backwards``, ``unroll`` and
``time_major``.  The wrapped cell is the layer's own, except where the layer
takes ``standard_lstm`` (tanh/sigmoid, bias, no unroll, no recurrent dropout)
with ``implementation=1``: ``standard_lstm`` has no implementation switch,
so the probe then wraps a twin cell with ``implementation=2`` and the same
weights.  The probe never zeroes masked outputs (``zero_output_for_mask`` is
left off), so a masked step repeats the previous output; the carried ``c``
at step t is the probe's ``c`` at the row's last valid step so far, and
``c0`` before any.

``h`` is the probe's output sequence, or the real layer's when the layer
zeroes masked outputs (``zero_output_for_mask=True``).  The real
``tf_keras.layers.LSTM`` runs on every request with ``cross_check`` or
``zero_output_for_mask``, and on one other request in ``CROSS_CHECK_EVERY``;
its final states must equal the probe's bitwise, and its sequence must equal
the probe's bitwise, or (zeroing masked outputs) be the probe's or zero at
every element.
"""

import json

import numpy as np
import tensorflow as tf  # noqa: E402  (TF_USE_LEGACY_KERAS=1 is already in the environment)
import tf_keras  # noqa: E402

from lstm_ref.harness.oracles import keras_model_grads, keras_models, memory, protocol, provenance, state_probes


class _EmitCarry(tf_keras.layers.Layer):
    """Wraps an LSTM cell so that its output is ``concat([h, c])``."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.state_size = cell.state_size
        self.output_size = 2 * cell.units

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, states, training=None):
        h, new_states = self.cell(inputs, states, training=training)
        return tf.concat([h, new_states[1]], axis=-1), new_states

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        return self.cell.get_initial_state(inputs=inputs, batch_size=batch_size, dtype=dtype)


# Initializers are overwritten by the assigned weights; zeros skips the
# orthogonal initializer's QR on every build.
_CHEAP_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros", "bias_initializer": "zeros"}
CROSS_CHECK_EVERY = 8  # the real layer re-runs on 1 request in 8, and on every golden
_requests = [0]


def _short_name(var):
    # "lstm_cell/kernel:0" -> "kernel"
    return var.name.rsplit("/", 1)[-1].split(":", 1)[0]


def _build(config, input_dim):
    layer = tf_keras.layers.LSTM(**{**config, **_CHEAP_INIT, "return_sequences": True, "return_state": True})
    layer.build((None, None, input_dim))
    cell = layer.cell
    if layer._could_use_gpu_kernel and cell.implementation == 1:
        # standard_lstm is always fused; its step is LSTMCell's fused branch.
        cell = tf_keras.layers.LSTMCell.from_config({**cell.get_config(), "implementation": 2})
        cell.build((None, input_dim))
    probe = keras_models.carry_probe(
        tf_keras.layers.RNN, _EmitCarry(cell, dtype=layer.dtype_policy), layer, time_major=layer.time_major
    )
    return layer, cell, probe


_layers = memory.LayerCache(_build, tf_keras.backend.clear_session)


def hello(meta, arrays):
    info = provenance.base()
    info.update(tensorflow=tf.__version__, tf_keras=tf_keras.__version__, oracle="tf_keras")
    return info, {}


def _assign(cells, arrays):
    for cell in cells:
        for var in cell.weights:
            var.assign(np.asarray(arrays[f"w:{_short_name(var)}"]).astype(var.dtype.as_numpy_dtype))


def run(meta, arrays):
    config = meta["config"]
    x = arrays["x"]
    layer, cell, probe = _layers(config, x.shape[-1])
    expected = {_short_name(v) for v in layer.cell.weights}
    given = {k[2:] for k in arrays if k.startswith("w:")}
    if given != expected:
        raise ValueError(f"weights {sorted(given)} do not match the layer's variables {sorted(expected)}")
    _assign({id(c): c for c in (layer.cell, cell)}.values(), arrays)
    time_major = layer.time_major
    compute = np.dtype(layer.compute_dtype)
    extra = {}
    if "h0" in arrays:
        extra["initial_state"] = [tf.constant(arrays["h0"].astype(compute)), tf.constant(arrays["c0"].astype(compute))]
    if "mask" in arrays:
        mask = arrays["mask"].astype(bool)
        extra["mask"] = tf.constant(mask.T.copy() if time_major else mask)
    xs = tf.constant(np.ascontiguousarray(x.transpose(1, 0, 2)) if time_major else x)

    def batch_major(seq):
        return np.ascontiguousarray(seq.transpose(1, 0, 2)) if time_major else seq

    protocol.mark("request")
    hc_seq, final_h, final_c = (t.numpy() for t in probe(xs, **extra))
    protocol.mark("run")
    hc_seq = batch_major(hc_seq)
    units = layer.cell.units
    probe_h, probe_c = hc_seq[..., :units], hc_seq[..., units:]
    c0 = arrays["c0"].astype(probe_c.dtype) if "c0" in arrays else np.zeros_like(probe_c[:, 0])
    probe_c = keras_models.carried_c(probe_c, arrays.get("mask"), layer.go_backwards, c0)
    if not np.array_equal(probe_c[:, -1], final_c, equal_nan=True):
        raise AssertionError("cross-check: the carried c rebuilt from the outputs differs from the final c state")
    _requests[0] += 1
    zeroes = layer.zero_output_for_mask and "mask" in arrays
    h_out = probe_h
    if zeroes or meta.get("cross_check") or _requests[0] % CROSS_CHECK_EVERY == 1:
        h_seq, layer_h, layer_c = (t.numpy() for t in layer(xs, **extra))
        h_seq = batch_major(h_seq)
        for what, ours, real in (("final h", final_h, layer_h), ("final c", final_c, layer_c)):
            if not np.array_equal(ours, real, equal_nan=True):
                raise AssertionError(f"cross-check: the wrapped cell's {what} differs from tf_keras.layers.LSTM's")
        if zeroes:
            same = (h_seq == probe_h) | (h_seq == 0) | (np.isnan(h_seq) & np.isnan(probe_h))
            if not same.all():
                raise AssertionError(
                    "cross-check: tf_keras.layers.LSTM's sequence is neither the wrapped "
                    "cell's output nor zero at some step"
                )
            h_out = h_seq
        elif not np.array_equal(probe_h, h_seq, equal_nan=True):
            raise AssertionError("cross-check: the wrapped cell's h sequence differs from tf_keras.layers.LSTM's")
        protocol.mark("real layer")
    return {}, {"h": h_out, "c": probe_c, "final_h": final_h, "final_c": final_c}


GRAD_FIELDS = ("h", "final_h", "final_c")  # what the real layer returns


def _loss(outputs, ups, time_major=False):
    if time_major:  # the sequence (time, batch, units): the upstream is batch-major, as the reference's
        outputs = [tf.transpose(outputs[0], [1, 0, 2]), *outputs[1:]]
    fields = dict(zip(GRAD_FIELDS, outputs))
    return tf.add_n([tf.reduce_sum(fields[k] * tf.cast(v, fields[k].dtype)) for k, v in ups.items()])


def grad(meta, arrays):
    """``tf.GradientTape`` on the real ``tf_keras.layers.LSTM`` (either code
    path, unrolled or not): the loss is ``sum(field * up:<field>)`` over
    ``h``, ``final_h``, ``final_c``; the reply has ``x``, ``h0``, ``c0``
    (when given) and ``w:<name>``.  x, mask and the upstream are
    batch-major, as the reference takes them; under ``time_major`` the
    layer gets them transposed (as ``run`` does) and ``x``'s gradient is
    transposed back.

    The per-step ``steps:h`` and ``steps:c_carried`` (dL/d of the state
    the cell computes at step t, processing order; c's with that step's h
    held) come from the probe's cell (the layer's own, or its
    ``implementation=2`` twin where the layer takes ``standard_lstm``) run
    by ``tf_keras.layers.RNN`` with the layer's ``go_backwards``,
    ``unroll`` and ``zero_output_for_mask``, zero perturbations added to its
    new state (``state_probes.keras2_perturbed_state``); that run's dL/dx
    must equal the real layer's bitwise."""
    config = meta["config"]
    x = arrays["x"]
    layer, cell = _layers(config, x.shape[-1])[:2]
    time_major = layer.time_major
    _assign({id(c): c for c in (layer.cell, cell)}.values(), arrays)
    ups = {k[3:]: tf.constant(v) for k, v in arrays.items() if k.startswith("up:")}
    unknown = sorted(set(ups) - set(GRAD_FIELDS))
    if unknown:
        raise protocol.UserError(f"grad: upstream field(s) {unknown}: the real layer returns {list(GRAD_FIELDS)}")
    compute = np.dtype(layer.compute_dtype)
    xt = tf.constant(np.ascontiguousarray(x.transpose(1, 0, 2) if time_major else x).astype(compute))
    init = None
    if "h0" in arrays:
        init = [tf.constant(arrays["h0"].astype(compute)), tf.constant(arrays["c0"].astype(compute))]
    mask = None if "mask" not in arrays else arrays["mask"].astype(bool)
    extra = {} if mask is None else {"mask": tf.constant(mask.T.copy() if time_major else mask)}
    weights = {_short_name(v): v for v in layer.cell.weights}
    protocol.mark("request")
    with tf.GradientTape() as tape:
        watched = [xt, *(init or [])]
        for t in watched:
            tape.watch(t)
        loss = _loss(layer(xt, initial_state=init, **extra), ups, time_major)
    grads = tape.gradient(loss, watched + list(weights.values()))
    names = ["x", *(["h0", "c0"] if init else [])] + [f"w:{n}" for n in weights]
    out = {
        n: (np.zeros(t.shape, t.dtype.as_numpy_dtype) if g is None else g.numpy())
        for n, g, t in zip(names, grads, watched + list(weights.values()))
    }
    real_x = out["x"]  # as the layer took x (time-major under time_major)
    protocol.mark("grad")
    units, features = cell.units, x.shape[-1]
    eps = tf.constant(np.zeros(tuple(xt.shape[:2]) + (2 * units,), compute))
    probe = tf_keras.layers.RNN(
        state_probes.keras2_perturbed_state(tf_keras.layers, cell, features, dtype=layer.dtype_policy),
        return_sequences=True,
        return_state=True,
        go_backwards=layer.go_backwards,
        unroll=layer.unroll,
        zero_output_for_mask=layer.zero_output_for_mask,
        time_major=time_major,
        dtype=layer.dtype_policy,
    )
    with tf.GradientTape() as tape:
        tape.watch(xt)
        tape.watch(eps)
        loss = _loss(probe(tf.concat([xt, eps], axis=-1), initial_state=init, **extra), ups, time_major)
    d_x, d_eps = (g.numpy() for g in tape.gradient(loss, [xt, eps]))
    if not np.array_equal(d_x, real_x, equal_nan=True):
        raise AssertionError("cross-check: dL/dx through the perturbed cell differs from the real layer's")
    if time_major:
        out["x"], d_eps = np.ascontiguousarray(real_x.transpose(1, 0, 2)), d_eps.transpose(1, 0, 2)
    if layer.go_backwards:  # the RNN read eps reversed: processing order, as the reference's steps
        d_eps = d_eps[:, ::-1]
    out["steps:h"], out["steps:c_carried"] = d_eps[..., :units], d_eps[..., units:]
    protocol.mark("steps")
    return {}, out


def activation(meta, arrays):
    fn = tf_keras.activations.get(meta["name"])
    return {}, {"y": np.asarray(fn(tf.constant(arrays["x"])))}


def layer_config(meta, arrays):
    """``get_config()`` of ``tf_keras.layers.LSTM(**kwargs)`` built on
    ``input_dim`` features, as JSON: what a user's saved Keras 2 model holds."""
    layer = tf_keras.layers.LSTM(**meta["kwargs"])
    layer.build((None, None, int(meta["input_dim"])))
    return {"config": json.loads(json.dumps(layer.get_config()))}, {}


def model_lstms(meta, arrays):
    """Every LSTM in a saved Keras 2 model (``.h5`` or a SavedModel directory
    with ``keras_metadata.pb``), each on what it receives in one run of the
    model: the op of ``keras3_worker.model_lstms``, kind
    ``tf_keras.layers.LSTM``."""
    return keras_models.model_lstms(tf_keras, run, meta, arrays)


if __name__ == "__main__":
    protocol.serve(
        {
            "hello": hello,
            "run": run,
            "activation": activation,
            "layer_config": layer_config,
            "model_lstms": model_lstms,
            "model_grads": lambda meta, arrays: keras_model_grads.model_grads(tf_keras, grad, meta, arrays, run),
            "grad": grad,
        }
    )
