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

import json

import numpy as np

from lstm_ref.harness.oracles import memory, protocol, provenance

import keras  # noqa: E402  (after the protocol import: keeps the worker's start order obvious)
import tensorflow as tf  # noqa: E402


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


_CACHE = {}
_CACHE_SIZE = 32  # built layers kept; old ones are dropped so memory stays flat
# Initializers are overwritten by the assigned weights; zeros skips the
# orthogonal initializer's QR on every build.
_CHEAP_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros", "bias_initializer": "zeros"}
CROSS_CHECK_EVERY = 8  # the real layer re-runs on 1 request in 8, and on every golden
_requests = [0]
_reset = memory.SessionReset(_CACHE, keras.backend.clear_session)


def _layers(config, input_dim):
    key = (json.dumps(config, sort_keys=True), input_dim)
    if key in _CACHE:
        _CACHE[key] = _CACHE.pop(key)  # most recently used last
    else:
        _reset.before_build()
        layer = keras.layers.LSTM(**{**config, **_CHEAP_INIT, "return_sequences": True, "return_state": True})
        layer.build((None, None, input_dim))
        probe = keras.layers.RNN(
            _EmitCarry(layer.cell, dtype=layer.dtype_policy),
            return_sequences=True,
            return_state=True,
            go_backwards=layer.go_backwards,
            zero_output_for_mask=layer.zero_output_for_mask,
            unroll=layer.unroll,
            dtype=layer.dtype_policy,
        )
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (layer, probe)
    return _CACHE[key]


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
    hc_seq, final_h, final_c = (t.numpy() for t in probe(tf.constant(x), **extra))
    units = layer.cell.units
    probe_h, probe_c = hc_seq[..., :units], hc_seq[..., units:]
    c0 = arrays["c0"].astype(probe_c.dtype) if "c0" in arrays else np.zeros_like(probe_c[:, 0])
    if "mask" in arrays:
        # Carried c = the probe's c at the last valid step so far, c0 before any.
        mask = arrays["mask"][:, ::-1] if layer.go_backwards else arrays["mask"]
        steps = np.arange(mask.shape[1])
        last_valid = np.maximum.accumulate(np.where(mask, steps, -1), axis=1)
        gathered = np.take_along_axis(probe_c, np.maximum(last_valid, 0)[..., None], axis=1)
        probe_c = np.where(last_valid[..., None] >= 0, gathered, c0[:, None, :])
    if not np.array_equal(probe_c[:, -1], final_c, equal_nan=True):
        raise AssertionError("cross-check: the carried c rebuilt from the outputs differs from the final c state")
    _requests[0] += 1
    if meta.get("cross_check") or _requests[0] % CROSS_CHECK_EVERY == 1:
        h_seq, layer_h, layer_c = (t.numpy() for t in layer(tf.constant(x), **extra))
        for what, ours, real in (("h sequence", probe_h, h_seq), ("final h", final_h, layer_h), ("final c", final_c, layer_c)):
            if not np.array_equal(ours, real, equal_nan=True):
                raise AssertionError(f"cross-check: the wrapped cell's {what} differs from keras.layers.LSTM's")
    return {}, {"h": probe_h, "c": probe_c, "final_h": final_h, "final_c": final_c}


def activation(meta, arrays):
    fn = keras.activations.get(meta["name"])
    return {}, {"y": np.asarray(fn(tf.constant(arrays["x"])))}


def _lstm_layers(model):
    found, skipped = [], []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Bidirectional):
            skipped.append((layer.name, "Bidirectional wrappers are not unpacked yet"))
        elif type(layer) is keras.layers.LSTM:
            found.append(layer)
        elif getattr(layer, "compute_mask", None) and type(layer).__name__ in ("Masking", "Embedding") \
                and (getattr(layer, "mask_zero", False) or type(layer).__name__ == "Masking"):
            raise ValueError(f"layer {layer.name!r} produces a mask; checking masked models is not supported yet")
    return found, skipped


def model_lstm_layers(meta, arrays):
    """Every keras.layers.LSTM in a saved model, with the input it receives."""
    model = keras.saving.load_model(meta["path"], compile=False)
    layers, skipped = _lstm_layers(model)
    if "x" in arrays:
        x = arrays["x"]
    else:
        rng = np.random.default_rng(meta["seed"])
        shape = [meta["batch"]] + [meta["time"] if d is None else d for d in model.inputs[0].shape[1:]]
        dtype = model.inputs[0].dtype
        x = rng.standard_normal(shape).astype(dtype)
    out, described = {}, []
    for i, layer in enumerate(layers):
        feed = keras.Model(model.inputs, layer.input)
        layer_x = np.asarray(feed(x))
        config = layer.get_config()
        weights = {v.name: np.asarray(v.numpy()) for v in layer.weights}
        result = run({"config": config}, {"x": layer_x, **{f"w:{k}": v for k, v in weights.items()}})[1]
        out[f"{i}:x"] = layer_x
        out.update({f"{i}:w:{k}": v for k, v in weights.items()})
        out.update({f"{i}:{k}": v for k, v in result.items()})
        described.append({"name": layer.name, "config": json.loads(json.dumps(config))})
    return {"layers": described, "skipped": skipped}, out


if __name__ == "__main__":
    protocol.serve({"hello": hello, "run": run, "activation": activation, "model_lstm_layers": model_lstm_layers})
