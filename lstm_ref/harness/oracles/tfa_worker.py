"""Oracle worker for ``tfa.rnn.LayerNormLSTMCell`` (TF 2.15.1, Keras 2.15,
tensorflow-addons 0.23, NumPy < 2), run as ``tf.keras.layers.RNN(cell)``.

The cell builds its three ``LayerNormalization`` sublayers without a dtype,
so they follow the *global* policy; a cell whose ``dtype`` differs from it
fails in ``BiasAdd``.  The worker therefore sets the global policy to the
config's ``dtype`` while it builds and runs the layer, and restores it.

``go_backwards`` and ``zero_output_for_mask`` are taken off the config and
given to ``keras.layers.RNN``: they are the layer's options, not the cell's.

Per-step ``c`` comes from TF: the layer's own cell is wrapped so that every
step also emits its new ``c`` next to ``h``, and the wrapper runs through the
same ``RNN`` machinery (always with ``zero_output_for_mask=False``, so that a
masked step repeats the last emitted ``c``: the carried one).  The real
layer runs too, eagerly, on every golden (a ``cross_check`` request), on
every masked request with ``zero_output_for_mask`` (its sequence is the
answer then) and on one other request in ``CROSS_CHECK_EVERY``: the wrapper's ``h`` must equal
the layer's sequence, and its final ``(h, c)`` the layer's returned state,
bitwise.  (It ran on every request until ``make bench`` profiled this
worker: half of a request's time.)  The wrapper goes through
``traced.Traced``: eager until a configuration has been asked
``TRACE_AFTER`` times, then a ``tf.function`` whose first answer is
compared bitwise with the eager run.
"""

import warnings

import numpy as np

from lstm_ref.harness.oracles import memory, protocol, provenance, state_probes, traced

warnings.filterwarnings("ignore", module="tensorflow_addons")  # the end-of-life notice

import tensorflow as tf  # noqa: E402
import tensorflow_addons as tfa  # noqa: E402

KIND = "tfa.rnn.LayerNormLSTMCell"
RNN_OPTIONS = ("go_backwards", "zero_output_for_mask")


class _EmitCarry(tf.keras.layers.Layer):
    """Wraps a cell so that its output is ``concat([h, c])``."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.state_size = cell.state_size
        self.output_size = 2 * cell.units

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, states, training=None):
        h, new_states = self.cell(inputs, states, training=training)
        return tf.concat([h, new_states[1]], axis=-1), new_states


class _GlobalPolicy:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.saved = tf.keras.mixed_precision.global_policy()
        tf.keras.mixed_precision.set_global_policy(self.name)

    def __exit__(self, *exc):
        tf.keras.mixed_precision.set_global_policy(self.saved)


CROSS_CHECK_EVERY = 8
_requests = [0]
# A trace and its first call cost 240-256 ms, an eager run 56-75 ms (T=5).
TRACE_AFTER = 4
traced.configure(tf)


def _policy_name(config):
    return config.get("dtype") or "float32"


def _build(config, input_dim):
    cell_kwargs = {k: v for k, v in config.items() if k not in RNN_OPTIONS}
    rnn_kwargs = {k: config[k] for k in RNN_OPTIONS if k in config}
    with _GlobalPolicy(_policy_name(config)):
        cell = tfa.rnn.LayerNormLSTMCell(**cell_kwargs)
        layer = tf.keras.layers.RNN(cell, return_sequences=True, return_state=True, **rnn_kwargs)
        layer.build((None, None, input_dim))
        probe = tf.keras.layers.RNN(
            _EmitCarry(cell, dtype=cell.dtype_policy),
            return_sequences=True,
            return_state=True,
            go_backwards=layer.go_backwards,
            zero_output_for_mask=False,
        )
    return layer, traced.Traced(tf, traced.keras_call(probe), TRACE_AFTER), traced.keras_call(layer)


_layers = memory.LayerCache(_build, tf.keras.backend.clear_session)


def _variables(cell):
    out = {"kernel": cell.kernel, "recurrent_kernel": cell.recurrent_kernel}
    if cell.use_bias:
        out["bias"] = cell.bias
    for norm in (cell.kernel_norm, cell.recurrent_norm, cell.state_norm):
        out[f"{norm.name}/gamma"] = norm.gamma
        out[f"{norm.name}/beta"] = norm.beta
    return out


def hello(meta, arrays):
    import keras

    info = provenance.base()
    info.update(tensorflow=tf.__version__, keras=keras.__version__, tensorflow_addons=tfa.__version__, oracle="tfa")
    return info, {}


def run(meta, arrays):
    if meta["kind"] != KIND:
        raise ValueError(f"tfa oracle serves {KIND!r} only, got {meta['kind']!r}")
    config = meta["config"]
    x = arrays["x"]
    layer, probe, real_layer = _layers(config, x.shape[-1])
    cell = layer.cell
    variables = _variables(cell)
    if sorted(variables) != sorted(k[2:] for k in arrays if k.startswith("w:")):
        raise ValueError(f"weights {sorted(k[2:] for k in arrays if k.startswith('w:'))} != cell's {sorted(variables)}")
    for name, var in variables.items():
        var.assign(arrays[f"w:{name}"].astype(var.dtype.name))
    compute = cell.compute_dtype
    args = [tf.constant(x), None, None, None]
    if "h0" in arrays:
        args[2:] = tf.constant(arrays["h0"], compute), tf.constant(arrays["c0"], compute)
    if "mask" in arrays:
        args[1] = tf.constant(arrays["mask"].astype(bool))
    zeroes = layer.zero_output_for_mask and "mask" in arrays
    _requests[0] += 1
    with _GlobalPolicy(_policy_name(config)):
        protocol.mark("request")
        hc_seq, probe_h, probe_c_final = probe(args, traced.specs(tf, args))
        protocol.mark("run")
        real = zeroes or meta.get("cross_check") or _requests[0] % CROSS_CHECK_EVERY == 1
        if real:
            h_seq, final_h, final_c = (t.numpy() for t in real_layer(*args))  # eagerly: the oracle
    units = cell.units
    probe_seq_h, probe_c = hc_seq[..., :units], hc_seq[..., units:]
    c0 = arrays["c0"].astype(probe_c.dtype) if "c0" in arrays else np.zeros_like(probe_c[:, 0])
    expect_h = probe_seq_h
    if "mask" in arrays:
        mask = arrays["mask"].astype(bool)
        m = mask[:, ::-1] if layer.go_backwards else mask
        seen = np.logical_or.accumulate(m, axis=1)
        probe_c = np.where(seen[..., None], probe_c, c0[:, None, :])
        if layer.zero_output_for_mask:
            expect_h = np.where(m[..., None], probe_seq_h, 0).astype(probe_seq_h.dtype)
    if not np.array_equal(probe_c[:, -1], probe_c_final, equal_nan=True):
        raise AssertionError("cross-check: wrapped cell's last emitted c differs from its returned c")
    if not real:
        return {}, {"h": expect_h, "c": probe_c, "final_h": probe_h, "final_c": probe_c_final}
    checks = (
        (expect_h, h_seq, "wrapped cell's h differs from the RNN layer's sequence"),
        (probe_h, final_h, "wrapped cell's final h differs from the layer's returned h"),
        (probe_c_final, final_c, "wrapped cell's final c differs from the layer's returned c"),
        (probe_c[:, -1], final_c, "wrapped cell's last emitted c differs from the layer's returned c"),
    )
    for got, want, what in checks:
        if not (got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)):
            raise AssertionError(f"cross-check: {what}")
    protocol.mark("real layer")
    return {}, {"h": h_seq, "c": probe_c, "final_h": final_h, "final_c": final_c}


GRAD_FIELDS = ("h", "final_h", "final_c")  # what the RNN layer returns


def grad(meta, arrays):
    """``tf.GradientTape`` on the real cell in ``tf.keras.layers.RNN`` (the
    layer ``run`` compares with), eagerly, under the config's global policy:
    the loss is ``sum(field * up:<field>)`` over ``h``, ``final_h``,
    ``final_c``; the reply has ``x``, ``h0``, ``c0`` (when given),
    ``w:<name>`` (float32 under ``mixed_float16``: the variables' dtype), and
    the per-step ``steps:h``/``steps:c_carried`` (dL/d of the state the
    cell computes at step t, processing order, c's with that step's h
    held) from the same cell in ``RNN`` with the layer's flags and zero
    perturbations added to its new state
    (``state_probes.keras2_perturbed_state``), whose dL/dx must equal the
    real layer's bitwise."""
    if meta["kind"] != KIND:
        raise ValueError(f"tfa oracle serves {KIND!r} only, got {meta['kind']!r}")
    config = meta["config"]
    x = arrays["x"]
    layer = _layers(config, x.shape[-1])[0]
    cell = layer.cell
    variables = _variables(cell)
    for name, var in variables.items():
        var.assign(arrays[f"w:{name}"].astype(var.dtype.name))
    compute = cell.compute_dtype
    ups = {k[3:]: v for k, v in arrays.items() if k.startswith("up:")}
    unknown = sorted(set(ups) - set(GRAD_FIELDS))
    if unknown:
        raise protocol.UserError(f"grad: upstream field(s) {unknown}: the RNN layer returns {list(GRAD_FIELDS)}")
    xt = tf.constant(x.astype(compute))
    init = [tf.constant(arrays["h0"], compute), tf.constant(arrays["c0"], compute)] if "h0" in arrays else []
    mask = tf.constant(arrays["mask"].astype(bool)) if "mask" in arrays else None

    def loss_of(rnn, inputs):
        fields = dict(zip(GRAD_FIELDS, traced.keras_call(rnn)(inputs, mask, *(init or [None, None]))))
        return tf.add_n([tf.reduce_sum(fields[k] * tf.constant(v, fields[k].dtype)) for k, v in ups.items()])

    sources = {"x": xt, **dict(zip(("h0", "c0"), init)), **{f"w:{k}": v for k, v in variables.items()}}
    units = cell.units
    with _GlobalPolicy(_policy_name(config)):
        protocol.mark("request")
        with tf.GradientTape() as tape:
            for t in [xt, *init]:
                tape.watch(t)
            loss = loss_of(layer, xt)
        grads = tape.gradient(loss, list(sources.values()))
        protocol.mark("grad")
        probe = tf.keras.layers.RNN(
            state_probes.keras2_perturbed_state(tf.keras.layers, cell, x.shape[-1], dtype=cell.dtype_policy),
            return_sequences=True,
            return_state=True,
            go_backwards=layer.go_backwards,
            zero_output_for_mask=layer.zero_output_for_mask,
        )
        eps = tf.zeros(x.shape[:2] + (2 * units,), compute)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            tape.watch(eps)
            loss = loss_of(probe, tf.concat([xt, eps], axis=-1))
        d_x, d_eps = (g.numpy() for g in tape.gradient(loss, [xt, eps]))
    out = {
        n: (np.zeros(t.shape, t.dtype.as_numpy_dtype) if g is None else g.numpy())
        for (n, t), g in zip(sources.items(), grads)
    }
    if not np.array_equal(d_x, out["x"], equal_nan=True):
        raise AssertionError("cross-check: dL/dx through the perturbed cell differs from the real layer's")
    if layer.go_backwards:  # the RNN read eps reversed: processing order, as the reference's steps
        d_eps = d_eps[:, ::-1]
    out["steps:h"], out["steps:c_carried"] = d_eps[..., :units], d_eps[..., units:]
    protocol.mark("steps")
    return {}, out


def layer_norm_path(meta, arrays):
    """Which LayerNormalization path (fused or not) the cell's sublayers take."""
    config = meta["config"]
    layer = _layers(config, int(meta["input_dim"]))[0]
    cell = layer.cell
    return {n.name: bool(n._fused) for n in (cell.kernel_norm, cell.recurrent_norm, cell.state_norm)}, {}


if __name__ == "__main__":
    protocol.serve({"hello": hello, "run": run, "grad": grad, "layer_norm_path": layer_norm_path})
