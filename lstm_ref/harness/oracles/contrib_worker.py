"""Oracle worker for ``tf.contrib.rnn.LayerNormBasicLSTMCell`` (TF 2.21 + tf_keras).

``tf.contrib`` died with TF 1.15 and cannot be installed next to TF 2.x, so
this worker carries a *port*: the cell's ``call`` and
``tf.contrib.layers.layer_norm`` rewritten op for op in real TF ops, run under
the real ``tf.compat.v1.nn.dynamic_rnn``.  Followed sources (TF r1.15):

  * ``tensorflow/contrib/rnn/python/ops/rnn_cell.py`` L1342-L1463
    (``LayerNormBasicLSTMCell``: ``_linear``, ``_norm``, ``call``);
  * ``tensorflow/contrib/layers/python/layers/layers.py`` (``layer_norm``:
    ``nn.moments`` over the last axis, ``variance_epsilon = 1e-12 if dtype !=
    float16 else 1e-3``, ``nn.batch_normalization``).

The port is proved two ways by ``parity_tests/test_layer_norm_cells.py``:
with ``layer_norm=False`` it is bitwise the real
``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` (handler ``basic_lstm_proof``), and
its normaliser is bitwise tf_keras' own non-fused ``LayerNormalization`` at the
same epsilon and close to a float64 evaluation of the TF 1.x formula
(handler ``norm``).

Per-step ``c`` comes from TF: a second cell object emits ``concat([h, c])``
as its output, and every request checks it bitwise against the plain cell's
outputs and final state.
"""

import numpy as np
import tensorflow as tf  # noqa: E402  (TF_USE_LEGACY_KERAS=1 is set by the client)

from lstm_ref.harness.oracles import memory, protocol, provenance, state_probes

KIND = "tf.contrib.rnn.LayerNormBasicLSTMCell"

ACTIVATIONS = {
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "softsign": tf.math.softsign,
    "elu": tf.nn.elu,
    "linear": tf.identity,
}

NORMS = ("input", "transform", "forget", "output", "state")


def contrib_layer_norm(inputs, gamma, beta):
    """``tf.contrib.layers.layer_norm(inputs, begin_norm_axis=1)`` (r1.15)."""
    mean, variance = tf.nn.moments(inputs, [1], keepdims=True)
    # "Note that epsilon must be increased for float16 due to the limited
    # representable range." (contrib/layers/python/layers/layers.py)
    variance_epsilon = 1e-12 if inputs.dtype != tf.float16 else 1e-3
    return tf.nn.batch_normalization(
        inputs, mean, variance, offset=beta, scale=gamma, variance_epsilon=variance_epsilon
    )


class PortedLayerNormBasicLSTMCell:
    """Duck-typed RNNCell (what ``dynamic_rnn`` checks for: ``output_size``,
    ``state_size``, ``zero_state``, ``__call__``) holding explicit weights.

    ``emit_c=True`` makes the output ``concat([new_h, new_c])``.
    """

    def __init__(self, num_units, weights, forget_bias=1.0, activation="tanh", layer_norm=True, emit_c=False):
        self._num_units = num_units
        self._w = weights
        self._forget_bias = forget_bias
        self._activation = ACTIVATIONS[activation]
        self._layer_norm = layer_norm
        self._emit_c = emit_c

    @property
    def state_size(self):
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(self._num_units, self._num_units)

    @property
    def output_size(self):
        return 2 * self._num_units if self._emit_c else self._num_units

    def zero_state(self, batch_size, dtype):
        z = tf.zeros([batch_size, self._num_units], dtype=dtype)
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(z, z)

    def _norm(self, inp, scope):
        return contrib_layer_norm(inp, self._w[f"{scope}/gamma"], self._w[f"{scope}/beta"])

    def _linear(self, args):
        out = tf.linalg.matmul(args, self._w["kernel"])
        if not self._layer_norm:
            out = tf.nn.bias_add(out, self._w["bias"])
        return out

    def __call__(self, inputs, state, scope=None):
        # LayerNormBasicLSTMCell.call, line for line (dropout omitted: keep_prob
        # is 1.0 here, and the reference refuses anything else).
        c, h = state
        args = tf.concat([inputs, h], 1)
        concat = self._linear(args)
        i, j, f, o = tf.split(value=concat, num_or_size_splits=4, axis=1)
        if self._layer_norm:
            i = self._norm(i, "input")
            j = self._norm(j, "transform")
            f = self._norm(f, "forget")
            o = self._norm(o, "output")
        g = self._activation(j)
        new_c = c * tf.math.sigmoid(f + self._forget_bias) + tf.math.sigmoid(i) * g
        if self._layer_norm:
            new_c = self._norm(new_c, "state")
        new_h = self._activation(new_c) * tf.math.sigmoid(o)
        new_state = tf.compat.v1.nn.rnn_cell.LSTMStateTuple(new_c, new_h)
        out = tf.concat([new_h, new_c], 1) if self._emit_c else new_h
        return out, new_state


def _dtype(config):
    return tf.as_dtype(config.get("dtype") or "float32")


def _dynamic_rnn(cell, x, h0, c0, lengths):
    init = None if h0 is None else tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c0, h0)
    return tf.compat.v1.nn.dynamic_rnn(cell, x, sequence_length=lengths, initial_state=init, dtype=x.dtype)


def _cell_kwargs(config):
    return dict(
        forget_bias=float(config.get("forget_bias", 1.0)),
        activation=config.get("activation", "tanh"),
        layer_norm=bool(config.get("layer_norm", True)),
    )


def _trace(config, shapes, input_dim):
    """One traced function per (config, input width): the plain cell and the
    emitting cell.  The signature fixes the feature width (dynamic_rnn needs
    it static) and leaves batch and time free."""
    kwargs = _cell_kwargs(config)
    units = int(config["num_units"])
    dtype = _dtype(config)
    signature = [
        tf.TensorSpec([None, None, input_dim], dtype),
        {k: tf.TensorSpec(shape, dtype) for k, shape in shapes.items()},
        tf.TensorSpec([None, units], dtype),
        tf.TensorSpec([None, units], dtype),
        tf.TensorSpec([None], tf.int32),
    ]

    @tf.function(input_signature=signature)
    def run(x, weights, h0, c0, lengths):
        plain = PortedLayerNormBasicLSTMCell(units, weights, **kwargs)
        probe = PortedLayerNormBasicLSTMCell(units, weights, emit_c=True, **kwargs)
        out, (final_c, final_h) = _dynamic_rnn(plain, x, h0, c0, lengths)
        hc, (probe_c, probe_h) = _dynamic_rnn(probe, x, h0, c0, lengths)
        return out, final_h, final_c, hc, probe_h, probe_c

    # Traced and instantiated now, on one zero step: the build's cost, not the first run's.
    run(
        tf.zeros([1, 1, input_dim], dtype),
        {k: tf.zeros(shape, dtype) for k, shape in shapes.items()},
        tf.zeros([1, units], dtype),
        tf.zeros([1, units], dtype),
        tf.ones([1], tf.int32),
    )
    return run


_runner = memory.LayerCache(_trace, tf.keras.backend.clear_session, size=64)  # a trace holds ~2 MB


def _inputs(meta, arrays):
    config = meta["config"]
    dtype = _dtype(config)
    x = tf.constant(arrays["x"], dtype=dtype)
    weights = {k[2:]: tf.constant(v, dtype=dtype) for k, v in arrays.items() if k.startswith("w:")}
    batch, time = arrays["x"].shape[:2]
    units = int(config["num_units"])
    h0 = tf.constant(arrays["h0"], dtype=dtype) if "h0" in arrays else tf.zeros([batch, units], dtype)
    c0 = tf.constant(arrays["c0"], dtype=dtype) if "c0" in arrays else tf.zeros([batch, units], dtype)
    if "mask" in arrays:
        lengths = protocol.sequence_lengths(arrays["mask"])
    else:
        lengths = np.full([batch], time, np.int32)
    return config, x, weights, h0, c0, lengths


def hello(meta, arrays):
    import tf_keras

    info = provenance.base()
    info.update(
        tensorflow=tf.__version__,
        tf_keras=tf_keras.__version__,
        oracle="contrib",
        note="port of tf.contrib.rnn.LayerNormBasicLSTMCell (TF r1.15) in TF ops, run by tf.compat.v1.nn.dynamic_rnn",
    )
    return info, {}


def run(meta, arrays):
    if meta["kind"] != KIND:
        raise ValueError(f"contrib oracle serves {KIND!r} only, got {meta['kind']!r}")
    config, x, weights, h0, c0, lengths = _inputs(meta, arrays)
    fn = _runner(config, {k: v.shape.as_list() for k, v in weights.items()}, x.shape[-1])
    protocol.mark("request")
    out, final_h, final_c, hc, probe_h, probe_c = (t.numpy() for t in fn(x, weights, h0, c0, tf.constant(lengths)))
    protocol.mark("run")
    units = out.shape[-1]
    h_seq, c_seq = hc[..., :units], hc[..., units:]
    # Past a row's length dynamic_rnn zeroes the output and copies the state
    # through, so the carried c there is the row's final c.
    valid = np.arange(out.shape[1])[None, :, None] < lengths[:, None, None]
    c_seq = np.where(valid, c_seq, final_c[:, None, :])
    checks = (
        (h_seq, out, "emitting cell's h differs from the plain cell's outputs"),
        (probe_h, final_h, "emitting cell's final h differs"),
        (probe_c, final_c, "emitting cell's final c differs"),
    )
    for got, want, what in checks:
        if not np.array_equal(got, want, equal_nan=True):
            raise AssertionError(f"cross-check: {what}")
    return {}, {"h": out, "c": c_seq, "final_h": final_h, "final_c": final_c}


GRAD_FIELDS = ("h", "final_c", "final_h")  # dynamic_rnn's (outputs, state.c, state.h)


def grad(meta, arrays):
    """``tf.GradientTape`` on ``dynamic_rnn`` over the port (the mask as
    ``sequence_length``), eagerly: TF differentiates contrib's own ops
    (``nn.moments``, ``nn.batch_normalization``: the variance path
    included).  The loss is ``sum(field * up:<field>)`` over ``h``,
    ``final_h``, ``final_c``; the reply has ``x``, ``h0``, ``c0`` (when
    given), ``w:<name>``, and the per-step ``steps:h``/``steps:c_carried``
    (dL/d of the state the cell computes at step t, c's with that step's h
    held) from the same port with zero perturbations added to its new
    state (``state_probes.TF1PerturbedState``), whose dL/dx must equal the
    plain run's bitwise."""
    if meta["kind"] != KIND:
        raise ValueError(f"contrib oracle serves {KIND!r} only, got {meta['kind']!r}")
    config, x, weights, h0, c0, lengths = _inputs(meta, arrays)
    ups = {k[3:]: tf.constant(v, dtype=x.dtype) for k, v in arrays.items() if k.startswith("up:")}
    unknown = sorted(set(ups) - set(GRAD_FIELDS))
    if unknown:
        raise protocol.UserError(f"grad: upstream field(s) {unknown}: dynamic_rnn returns {sorted(GRAD_FIELDS)}")
    units, kwargs, lengths = int(config["num_units"]), _cell_kwargs(config), tf.constant(lengths)

    def loss_of(cell, inputs):
        out, (final_c, final_h) = _dynamic_rnn(cell, inputs, h0, c0, lengths)
        fields = dict(zip(GRAD_FIELDS, (out, final_c, final_h)))
        return tf.add_n([tf.reduce_sum(fields[k] * v) for k, v in ups.items()])

    sources = {"x": x, **({"h0": h0, "c0": c0} if "h0" in arrays else {})}
    sources.update((f"w:{k}", v) for k, v in weights.items())
    protocol.mark("request")
    with tf.GradientTape() as tape:
        for t in sources.values():
            tape.watch(t)
        loss = loss_of(PortedLayerNormBasicLSTMCell(units, weights, **kwargs), x)
    grads = tape.gradient(loss, list(sources.values()))
    out = {
        n: (np.zeros(t.shape, t.dtype.as_numpy_dtype) if g is None else g.numpy())
        for (n, t), g in zip(sources.items(), grads)
    }
    protocol.mark("grad")
    eps = tf.zeros(x.shape[:2] + (2 * units,), x.dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        tape.watch(eps)
        probe = state_probes.TF1PerturbedState(tf, PortedLayerNormBasicLSTMCell(units, weights, **kwargs), x.shape[-1])
        loss = loss_of(probe, tf.concat([x, eps], axis=-1))
    d_x, d_eps = (g.numpy() for g in tape.gradient(loss, [x, eps]))
    if not np.array_equal(d_x, out["x"], equal_nan=True):
        raise AssertionError("cross-check: dL/dx through the perturbed port differs from the plain port's")
    out["steps:h"], out["steps:c_carried"] = d_eps[..., :units], d_eps[..., units:]
    protocol.mark("steps")
    return {}, out


def basic_lstm_proof(meta, arrays):
    """The port with ``layer_norm=False`` next to the real
    ``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` with the same kernel and bias,
    both under ``dynamic_rnn``.  Returns both; the test asserts bitwise."""
    config, x, weights, h0, c0, lengths = _inputs(meta, arrays)
    units = int(config["num_units"])
    forget_bias = float(config.get("forget_bias", 1.0))
    activation = config.get("activation", "tanh")
    port = PortedLayerNormBasicLSTMCell(units, weights, forget_bias, activation, layer_norm=False)
    real = tf.compat.v1.nn.rnn_cell.BasicLSTMCell(
        units, forget_bias=forget_bias, activation=ACTIVATIONS[activation], dtype=x.dtype
    )
    real.build(tf.TensorShape([None, x.shape[-1]]))
    real._kernel.assign(weights["kernel"])  # legacy_cells.BasicLSTMCell.build: self._kernel, self._bias
    real._bias.assign(weights["bias"])
    out = {}
    for name, cell in (("port", port), ("real", real)):
        seq, (c, h) = _dynamic_rnn(cell, x, h0, c0, tf.constant(lengths))
        out.update({f"{name}:h": seq.numpy(), f"{name}:final_h": h.numpy(), f"{name}:final_c": c.numpy()})
    return {"real_class": f"{type(real).__module__}.{type(real).__qualname__}"}, out


def norm(meta, arrays):
    """The port's normaliser on ``x`` (batch, width) next to tf_keras'
    ``LayerNormalization(epsilon=eps)``, which for these settings (eps below
    1.001e-5, or non-float32 variables) takes its non-fused path: the same
    ``nn.moments`` + ``nn.batch_normalization`` pair as contrib."""
    import tf_keras

    x = tf.constant(arrays["x"])
    gamma, beta = tf.constant(arrays["gamma"]), tf.constant(arrays["beta"])
    port = contrib_layer_norm(x, gamma, beta)
    eps = 1e-12 if x.dtype != tf.float16 else 1e-3
    layer = tf_keras.layers.LayerNormalization(axis=-1, epsilon=eps, dtype=x.dtype.name)
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    return {"keras_fused": bool(layer._fused)}, {"port": port.numpy(), "keras": layer(x).numpy()}


if __name__ == "__main__":
    protocol.serve({"hello": hello, "run": run, "grad": grad, "basic_lstm_proof": basic_lstm_proof, "norm": norm})
