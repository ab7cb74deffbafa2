"""Oracle worker for ``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` / ``LSTMCell``
driven by ``tf.compat.v1.nn.dynamic_rnn`` (TF 2.x eager, CPU, tf_keras cells).

Runs with ``TF_USE_LEGACY_KERAS=1`` (set by the client before TF loads).

Per-step ``c`` comes from TF itself: the real cell is wrapped in an RNNCell
whose output is ``concat([m, c])`` and the wrapper runs through the same
``dynamic_rnn`` call.  ``dynamic_rnn`` zeroes outputs past a row's
``sequence_length`` and carries the state, so for those (right-padded) steps
the carried ``c`` is the row's final ``c`` that ``dynamic_rnn`` returns.
The real cell's own ``dynamic_rnn`` runs too, eagerly, on every golden (a
``cross_check`` request) and on one live request in ``CROSS_CHECK_EVERY``:
the wrapper's ``m`` must equal its outputs bitwise, and the wrapper's final
state its final state.  (It ran on every request until ``make bench``
profiled this worker: half of a request's time, for a check that has never
failed.)  The wrapper's ``dynamic_rnn`` goes through ``traced.Traced``:
eager until a configuration has been asked ``TRACE_AFTER`` times, then a
``tf.function`` whose first answer is compared bitwise with the eager run.
"""

import numpy as np
import tensorflow as tf  # noqa: E402  (TF_USE_LEGACY_KERAS=1 is already in the environment)

from lstm_ref.harness.oracles import memory, protocol, provenance, state_probes, traced

tf1 = tf.compat.v1

CLASSES = {
    "tf.compat.v1.nn.rnn_cell.BasicLSTMCell": tf1.nn.rnn_cell.BasicLSTMCell,
    "tf.compat.v1.nn.rnn_cell.LSTMCell": tf1.nn.rnn_cell.LSTMCell,
}


class _EmitCarry(tf1.nn.rnn_cell.RNNCell):
    """Wraps a built cell so that its output is ``concat([m, c])``."""

    def __init__(self, cell):
        super().__init__(dtype=cell.dtype)
        self._cell = cell

    @property
    def state_size(self):
        return self._cell.state_size

    @property
    def output_size(self):
        return self._cell.output_size + self._cell.state_size.c

    def __call__(self, inputs, state, scope=None):
        # Not RNNCell.__call__: it keeps the variable scope of its first call
        # (legacy_cells.RNNCell.__call__, ``rnncell_scope``), and one made
        # inside a traced function is out of scope everywhere else.  The
        # wrapper has no variables; the real cell's own __call__ runs below.
        return self.call(inputs, state)

    def call(self, inputs, state):
        m, new_state = self._cell(inputs, state)
        return tf.concat([m, new_state.c], axis=-1), new_state


def _build(kind, config, input_dim):
    cell = CLASSES[kind](**config)
    cell.build((None, input_dim))
    return cell, traced.Traced(tf, _dynamic_rnn(_EmitCarry(cell)), TRACE_AFTER), _dynamic_rnn(cell)


def _dynamic_rnn(cell):
    """``fn(xs, lengths, h0, c0) -> (outputs, final c, final h)`` of
    ``dynamic_rnn`` over ``cell`` (zero initial state without h0)."""

    def run(xs, lengths, h0, c0):
        kw = {"sequence_length": lengths}
        if h0 is None:
            kw["dtype"] = xs.dtype  # dynamic_rnn builds cell.zero_state itself
        init = None if h0 is None else tf1.nn.rnn_cell.LSTMStateTuple(c0, h0)
        out, state = tf1.nn.dynamic_rnn(cell, xs, initial_state=init, **kw)
        return out, state.c, state.h

    return run


_cells = memory.LayerCache(_build, tf.keras.backend.clear_session)
CROSS_CHECK_EVERY = 8  # the real cell re-runs on 1 request in 8, and on every golden
_requests = [0]
# A trace and its first call cost 103-183 ms, an eager run 14-15 ms (T=5).
TRACE_AFTER = 8
traced.configure(tf)


def _short_name(var):
    # Eager names are "<cell scope>/kernel:0", "<cell scope>/projection/kernel:0".
    return var.name.split("/", 1)[1].rsplit(":", 1)[0]


def hello(meta, arrays):
    import tf_keras

    info = provenance.base()
    info.update(tensorflow=tf.__version__, tf_keras=tf_keras.__version__, oracle="tf1")
    return info, {}


def run(meta, arrays):
    kind, config = meta["kind"], meta["config"]
    x = arrays["x"]
    cell, probe, real = _cells(kind, config, x.shape[-1])
    dtype = tf.as_dtype(cell.dtype or "float32")
    for var in cell.weights:
        var.assign(np.asarray(arrays["w:" + _short_name(var)]).astype(var.dtype.as_numpy_dtype))
    out_units = cell.state_size.h
    np_dtype = dtype.as_numpy_dtype
    lengths = protocol.sequence_lengths(arrays["mask"]) if "mask" in arrays else None
    args = [tf.constant(x.astype(np_dtype)), None if lengths is None else tf.constant(lengths), None, None]
    if "h0" in arrays:  # c0 zeros when only h0 is given, as dynamic_rnn's zero state
        c0 = arrays.get("c0", np.zeros((x.shape[0], cell.state_size.c)))
        args[2:] = tf.constant(arrays["h0"].astype(np_dtype)), tf.constant(c0.astype(np_dtype))
    protocol.mark("request")
    p_out, final_c, final_h = probe(args, traced.specs(tf, args))
    h_seq, probe_c = p_out[..., :out_units], p_out[..., out_units:]
    protocol.mark("run")
    _requests[0] += 1
    if meta.get("cross_check") or _requests[0] % CROSS_CHECK_EVERY == 1:
        out, real_c, real_h = (t.numpy() for t in real(*args))  # eagerly: the oracle
        for what, ours, theirs in (("m", h_seq, out), ("final c", final_c, real_c), ("final h", final_h, real_h)):
            if not (ours.dtype == theirs.dtype and np.array_equal(ours, theirs, equal_nan=True)):
                raise AssertionError(f"cross-check: wrapped cell's {what} differs from dynamic_rnn's")
        protocol.mark("real layer")
    if lengths is not None:
        # Past its length a row's outputs are zeros and its c is carried: the
        # final c dynamic_rnn returns (c0 for a row of length 0).
        valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
        probe_c = np.where(valid[..., None], probe_c, final_c[:, None, :])
        last = lengths - 1
        rows = np.flatnonzero(lengths > 0)
        if not np.array_equal(probe_c[rows, last[rows]], final_c[rows], equal_nan=True):
            raise AssertionError("cross-check: c at the last valid step differs from the final c")
    return {}, {"h": h_seq, "c": probe_c, "final_h": final_h, "final_c": final_c}


def step(meta, arrays):
    """One eager call of the real cell: ``(m, c)`` from ``x_t``, ``h``, ``c``."""
    x = arrays["x"]
    cell = _cells(meta["kind"], meta["config"], x.shape[-1])[0]
    for var in cell.weights:
        var.assign(np.asarray(arrays["w:" + _short_name(var)]).astype(var.dtype.as_numpy_dtype))
    dt = tf.as_dtype(cell.dtype or "float32").as_numpy_dtype
    state = tf1.nn.rnn_cell.LSTMStateTuple(tf.constant(arrays["c0"].astype(dt)), tf.constant(arrays["h0"].astype(dt)))
    m, new = cell(tf.constant(x.astype(dt)), state)
    return {}, {"m": m.numpy(), "c": new.c.numpy()}


GRAD_FIELDS = ("h", "final_c", "final_h")  # dynamic_rnn's (outputs, state.c, state.h)


def grad(meta, arrays):
    """``tf.GradientTape`` on ``dynamic_rnn`` over the real cell (the mask as
    ``sequence_length``): the loss is ``sum(field * up:<field>)`` over
    ``h``, ``final_h``, ``final_c``; the reply has ``x``, ``h0``, ``c0``
    (when given) and ``w:<name>``, and the per-step ``steps:h`` and
    ``steps:c_carried``: dL/d of the state the cell computes at step t
    (zero past a row's length, where ``dynamic_rnn`` discards it), from the
    same cell under ``dynamic_rnn`` with zero perturbations added to its
    new state (``state_probes.TF1PerturbedState``), whose dL/dx must equal
    the real cell's bitwise."""
    x = arrays["x"]
    cell, _, real = _cells(meta["kind"], meta["config"], x.shape[-1])
    dt = tf.as_dtype(cell.dtype or "float32").as_numpy_dtype
    for var in cell.weights:
        var.assign(np.asarray(arrays["w:" + _short_name(var)]).astype(var.dtype.as_numpy_dtype))
    ups = {k[3:]: tf.constant(v.astype(dt)) for k, v in arrays.items() if k.startswith("up:")}
    unknown = sorted(set(ups) - set(GRAD_FIELDS))
    if unknown:
        raise protocol.UserError(f"grad: upstream field(s) {unknown}: dynamic_rnn returns {sorted(GRAD_FIELDS)}")
    lengths = protocol.sequence_lengths(arrays["mask"]) if "mask" in arrays else None
    xt = tf.constant(x.astype(dt))
    init = []
    if "h0" in arrays:
        init = [tf.constant(arrays["h0"].astype(dt)), tf.constant(arrays["c0"].astype(dt))]
    weights = {_short_name(v): v for v in cell.weights}
    protocol.mark("request")
    with tf.GradientTape() as tape:
        for t in [xt, *init]:
            tape.watch(t)
        outputs = real(xt, None if lengths is None else tf.constant(lengths), *(init or [None, None]))
        fields = dict(zip(GRAD_FIELDS, outputs))
        loss = tf.add_n([tf.reduce_sum(fields[k] * v) for k, v in ups.items()])
    sources = [xt, *init, *weights.values()]
    grads = tape.gradient(loss, sources)
    names = ["x", *(["h0", "c0"] if init else []), *(f"w:{n}" for n in weights)]
    out = {n: (np.zeros(s.shape, dt) if g is None else g.numpy()) for n, g, s in zip(names, grads, sources)}
    protocol.mark("grad")
    width = cell.state_size.h
    eps = tf.constant(np.zeros(x.shape[:2] + (width + cell.state_size.c,), dt))
    probe = _dynamic_rnn(state_probes.TF1PerturbedState(tf, cell, x.shape[-1]))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        tape.watch(eps)
        outputs = probe(
            tf.concat([xt, eps], axis=-1), None if lengths is None else tf.constant(lengths), *(init or [None, None])
        )
        fields = dict(zip(GRAD_FIELDS, outputs))
        loss = tf.add_n([tf.reduce_sum(fields[k] * v) for k, v in ups.items()])
    d_x, d_eps = (g.numpy() for g in tape.gradient(loss, [xt, eps]))
    if not np.array_equal(d_x, out["x"], equal_nan=True):
        raise AssertionError("cross-check: dL/dx through the perturbed cell differs from the real cell's")
    out["steps:h"], out["steps:c_carried"] = d_eps[..., :width], d_eps[..., width:]
    protocol.mark("steps")
    return {}, out


def activation(meta, arrays):
    """``tf_keras.activations.get(name)`` as legacy cells resolve a string."""
    from tf_keras.src import activations

    fn = activations.get(meta["name"])
    return {}, {"y": np.asarray(fn(tf.constant(arrays["x"])))}


if __name__ == "__main__":
    protocol.serve({"hello": hello, "run": run, "step": step, "activation": activation, "grad": grad})
