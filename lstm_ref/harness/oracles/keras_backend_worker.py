"""Oracle worker for ``keras.layers.LSTM`` under Keras 3 on the JAX or the
torch backend (CPU): the backend is the process's ``KERAS_BACKEND``, set by
its ``ORACLES`` row (``keras3_jax``, ``keras3_torch``; ``keras3_worker.py``
serves the TF backend).  Written with ``keras.ops`` only, so that one module
serves both.

Per-step ``c``.  The layer's own cell runs inside :class:`_CarryHC`, a
wrapper whose single state is ``concat([h, c])`` and whose output is that
state: the backend's ``rnn`` (``keras/src/backend/{jax,torch}/rnn.py``)
then masks it exactly as it masks the real layer's output -- the previous
output on the TF-style loops, the carried *state* on the JAX ``lax.scan``
loop -- and its h half is bitwise the real layer's output.  The carried
``c`` at step t is the c half at the row's last valid step so far, ``c0``
before any (``keras_models.carried_c``).

One path does not go through ``rnn``: on the torch backend,
``LSTM.inner_loop`` first tries ``backend.lstm``, which without a mask
(and with ``use_cudnn`` not False and no recurrent dropout) runs
``_fallback_lstm`` on the CPU: its own loop, the bias added to the input
projection before the recurrent term.  There the per-step c is read from
the real layer's own call: ``_fallback_lstm`` calls ``activation`` twice a
step, on ``z_c`` and then on the new ``c`` (``new_h =
recurrent_activation(z_o) * activation(new_c)``), and a recording
activation keeps every second argument.

The real ``keras.layers.LSTM`` is run too, on every golden and on one live
request in ``CROSS_CHECK_EVERY``, and its sequence and states must equal the
wrapper's (or the recorded run's) bitwise.

On a GPU (``LSTM_PARITY_KERAS_DEVICE=gpu``) a layer that takes its
backend's cuDNN path (``lstm_ref.keras_backends.cudnn_path``) is run as it
is, and the reply has no per-step c (cuDNN returns none; ``path`` says so).
``fake-gpu`` (JAX only) exercises that path on the CPU: Keras is told a GPU
is there and ``jax.experimental.rnn.lstm`` is JAX's own reference of the
cuDNN op (``lstm_ref`` of ``jax/experimental/rnn.py``), so Keras' cuDNN glue
(weight packing, ``go_backwards`` flips) runs for real.
"""

import contextlib
import os

import keras  # noqa: E402  (KERAS_BACKEND comes from the environment the client sets)
import numpy as np
from keras import ops

from lstm_ref import keras_backends  # noqa: E402
from lstm_ref.harness.oracles import keras_models, memory, protocol, provenance

BACKEND = keras.backend.backend()
DEVICE = os.environ.get("LSTM_PARITY_KERAS_DEVICE", "cpu")  # cpu, gpu, fake-gpu (JAX)
CROSS_CHECK_EVERY = 8  # the real layer re-runs on 1 request in 8, and on every golden
_requests = [0]
_CHEAP_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros", "bias_initializer": "zeros"}


def _inference():
    """torch: no autograd graph (Keras' torch variables require grad, and a
    tensor that requires grad cannot become NumPy); JAX: nothing."""
    if BACKEND == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


class _CarryHC(keras.layers.Layer):
    """Wraps an LSTM cell: its one state, and its output, is ``concat([h, c])``."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.units = cell.units
        self.state_size = 2 * cell.units
        self.output_size = 2 * cell.units

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build(input_shape)

    def call(self, inputs, states, training=False):
        hc = states[0] if isinstance(states, (list, tuple)) else states
        h, c = hc[:, : self.units], hc[:, self.units :]
        out, (h, c) = self.cell(inputs, [h, c], training=training)
        hc = ops.concatenate([out, c], axis=-1)
        return hc, [hc]


class _Recorder:
    """An activation that keeps every second argument it is called on: the
    new c of each step, for ``LSTMCell.call`` and ``_fallback_lstm`` alike
    (``activation(z_c)``, then ``activation(c)``).  Under JAX the cell is
    traced inside ``lax.scan``: the value is read by ``jax.debug.callback``
    (ordered: in processing order) when the compiled loop runs."""

    def __init__(self, fn):
        self.fn, self.seen, self.calls = fn, [], 0

    def __call__(self, x):
        self.calls += 1
        if self.calls % 2 == 0:
            if BACKEND == "jax":
                import jax

                jax.debug.callback(lambda a: self.seen.append(np.asarray(a)), x, ordered=True)
            else:
                self.seen.append(x)
        return self.fn(x)


def recorded_path(layer, mask):
    """Which code path the real layer takes and whether its c is recorded
    from it (JAX: always; torch: ``backend.lstm``) rather than probed; None:
    a cuDNN path, run as it is, without the per-step c."""
    if DEVICE != "cpu" and keras_backends.cudnn_path(
        BACKEND,
        mask=mask,
        unroll=layer.unroll,
        activation=getattr(layer.cell.activation, "__name__", ""),
        recurrent_activation=getattr(layer.cell.recurrent_activation, "__name__", ""),
        use_bias=layer.cell.use_bias,
        use_cudnn=layer.use_cudnn,
        recurrent_dropout=layer.cell.recurrent_dropout,
    ):
        return "backend.lstm (cuDNN)", None
    if BACKEND == "jax":
        return ("rnn, unrolled" if layer.unroll else "rnn, lax.scan"), True
    if takes_backend_lstm(layer, mask):
        return "backend.lstm (_fallback_lstm)", True
    return ("rnn, unrolled" if layer.unroll else "rnn"), False


def takes_backend_lstm(layer, mask) -> bool:
    """Whether ``LSTM.inner_loop`` runs ``backend.lstm`` rather than
    ``rnn``: never with a mask (both backends raise NotImplementedError,
    then ``rnn``), never with recurrent dropout or ``use_cudnn=False``; on
    the CPU JAX's raises too (``cudnn_ok`` is False), torch's runs
    ``_fallback_lstm``."""
    return (
        BACKEND == "torch" and mask is None and layer.use_cudnn in ("auto", True) and not layer.cell.recurrent_dropout
    )


def _build(config, input_dim):
    layer = keras.layers.LSTM(**{**config, **_CHEAP_INIT, "return_sequences": True, "return_state": True})
    layer.build((None, None, input_dim))
    probe = keras_models.carry_probe(
        keras.layers.RNN,
        _CarryHC(layer.cell, dtype=layer.dtype_policy),
        layer,
        zero_output_for_mask=layer.zero_output_for_mask,
    )
    return layer, probe


_layers = memory.LayerCache(_build, keras.backend.clear_session)


def _numpy(t):
    return np.asarray(ops.convert_to_numpy(t))


def _own_config(config):
    """The layer's kwargs: the reference's ``backend`` key must name this
    worker's backend, and is not a Keras argument."""
    config = dict(config)
    backend = config.pop("backend", BACKEND)
    if backend != BACKEND:
        raise protocol.UserError(f"this worker runs Keras on {BACKEND}; the case asks for backend {backend!r}")
    return config


def hello(meta, arrays):
    info = provenance.base()
    info.update(keras=keras.__version__, keras_backend=BACKEND, oracle=f"keras3_{BACKEND}", device=DEVICE)
    if BACKEND == "jax":
        import jax

        info.update(jax=jax.__version__, jax_x64=bool(jax.config.jax_enable_x64), devices=str(jax.devices()))
    else:
        import torch

        info.update(torch=torch.__version__, threads=torch.get_num_threads())
    return info, {}


def _real(layer, x, extra):
    h_seq, final_h, final_c = layer(x, **extra)
    return _numpy(h_seq), _numpy(final_h), _numpy(final_c)


def run(meta, arrays):
    config = _own_config(meta["config"])
    x_np = arrays["x"]
    layer, probe = _layers(config, x_np.shape[-1])
    by_name = {v.name: v for v in layer.weights}
    for name, var in by_name.items():
        var.assign(arrays[f"w:{name}"])
    units = layer.cell.units
    mask = arrays.get("mask")
    with _inference():
        x = ops.convert_to_tensor(x_np)
        extra = {}
        if "h0" in arrays:
            extra["initial_state"] = [ops.convert_to_tensor(arrays["h0"]), ops.convert_to_tensor(arrays["c0"])]
        if mask is not None:
            extra["mask"] = ops.convert_to_tensor(mask)
        protocol.mark("request")
        path, recorded = recorded_path(layer, mask)
        reply = {"path": path}
        if recorded is None:
            h, final_h, final_c = _real(layer, x, extra)
            return reply, {"h": h, "final_h": final_h, "final_c": final_c}
        if recorded:
            h, c, final_h, final_c = _recorded(layer, x, extra, arrays)
        else:
            h, c, final_h, final_c = _probed(probe, x, extra, arrays, units, layer.go_backwards)
        protocol.mark("run")
        _requests[0] += 1
        sampled = meta.get("cross_check") or _requests[0] % CROSS_CHECK_EVERY == 1
        if BACKEND == "jax" and (mask is not None or sampled):
            h, c, final_h, final_c, reply["instrumented_eps"] = _plain_jax(layer, x, extra, h, c, final_h, final_c)
            if mask is None and reply["instrumented_eps"]:
                raise AssertionError("cross-check (jax, no mask): the recorded run differs from keras.layers.LSTM's")
            protocol.mark("real layer")
        elif sampled:
            h_seq, layer_h, layer_c = _real(layer, x, extra)
            for what, ours, real in (
                ("h sequence", h, h_seq),
                ("final h", final_h, layer_h),
                ("final c", final_c, layer_c),
            ):
                if not np.array_equal(ours, real, equal_nan=True):
                    raise AssertionError(f"cross-check ({path}): the {what} differs from keras.layers.LSTM's")
            protocol.mark("real layer")
    return reply, {"h": h, "c": c, "final_h": final_h, "final_c": final_c}


# XLA compiles the recorded loop (a callback reads c) apart from the plain
# one and may fuse it otherwise.  Without a mask the two agreed bitwise on
# every golden and 40 live draws (asserted on sampled requests); with a mask they differ
# by an ulp here and there (measured on the goldens: worst 0.75 eps (1 + |x|),
# float64_masked; float16 0.5).  Then h and the final states are
# the plain layer's and the per-step c the recorded run's, its run within
# this many eps (1 + |plain|) of the plain one (5x the worst).
INSTRUMENTED_EPS = 4.0


def _plain_jax(layer, x, extra, h, c, final_h, final_c):
    """JAX: the plain layer's h and final states, the recorded run's c, and
    how far (in eps (1 + |plain|)) the recorded run is from the plain one."""
    plain_h, plain_fh, plain_fc = _real(layer, x, extra)
    worst = max(_eps_apart(a, b) for a, b in ((h, plain_h), (final_h, plain_fh), (final_c, plain_fc)))
    if worst > INSTRUMENTED_EPS:
        raise AssertionError(f"the recorded run is {worst:.3g} eps from keras.layers.LSTM's (> {INSTRUMENTED_EPS:g})")
    return plain_h, c, plain_fh, plain_fc, worst


def _eps_apart(a, b) -> float:
    """max |a - b| / (eps (1 + |b|)), NaN where both are NaN counted as equal."""
    if np.array_equal(a, b, equal_nan=True):
        return 0.0
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    d = np.where(np.isnan(wide_a) & np.isnan(wide_b), 0.0, np.abs(wide_a - wide_b))
    return float(np.nanmax(d / (np.finfo(a.dtype).eps * (1 + np.abs(wide_b)))))


def _probed(probe, x, extra, arrays, units, go_backwards):
    """h, carried c and the final states from the wrapped cell run by ``rnn``."""
    probe_extra = {k: v for k, v in extra.items() if k != "initial_state"}
    if "initial_state" in extra:
        probe_extra["initial_state"] = [ops.concatenate(extra["initial_state"], axis=-1)]
    hc_seq, hc_final = (_numpy(t) for t in probe(x, **probe_extra))
    h, probe_c = hc_seq[..., :units], hc_seq[..., units:]
    final_h, final_c = hc_final[:, :units], hc_final[:, units:]
    c0 = arrays["c0"].astype(probe_c.dtype) if "c0" in arrays else np.zeros_like(probe_c[:, 0])
    c = keras_models.carried_c(probe_c, arrays.get("mask"), go_backwards, c0)
    if not np.array_equal(c[:, -1], final_c, equal_nan=True):
        raise AssertionError("cross-check: the carried c rebuilt from the outputs differs from the final c state")
    return h, c, final_h, final_c


def _recorded(layer, x, extra, arrays):
    """The real layer's run, with the c each step computes as the cell
    passes it to ``activation`` (:class:`_Recorder`), then carried over the
    masked steps (``keras_models.carried_c``)."""
    cell = layer.cell
    original = cell.activation
    recorder = _Recorder(original)
    cell.activation = recorder
    try:
        h, final_h, final_c = _real(layer, x, extra)
        if BACKEND == "jax":
            import jax

            jax.effects_barrier()  # every callback has run
    finally:
        cell.activation = original
    if len(recorder.seen) != h.shape[1]:
        raise AssertionError(f"recording: {len(recorder.seen)} states recorded for {h.shape[1]} steps")
    raw = np.stack([_numpy(s) for s in recorder.seen], axis=1).astype(final_c.dtype, copy=False)
    c0 = arrays["c0"].astype(raw.dtype) if "c0" in arrays else np.zeros_like(raw[:, 0])
    c = keras_models.carried_c(raw, arrays.get("mask"), layer.go_backwards, c0)
    if not np.array_equal(c[:, -1], final_c, equal_nan=True):
        raise AssertionError("recording: the carried c rebuilt from the steps differs from the final c state")
    return h, c, final_h, final_c


def activation(meta, arrays):
    fn = keras.activations.get(meta["name"])
    with _inference():
        return {}, {"y": _numpy(fn(ops.convert_to_tensor(arrays["x"])))}


class _Nest:
    """What ``keras_models`` asks of TF (``tf.nest.flatten``,
    ``tf.convert_to_tensor``), from Keras' own backend-neutral helpers."""

    class nest:  # noqa: N801 - spelled as tf.nest
        flatten = staticmethod(keras.tree.flatten)

    convert_to_tensor = staticmethod(ops.convert_to_tensor)


def model_lstms(meta, arrays):
    """``keras3_worker.model_lstms`` on this backend: the model runs once under
    it, and every LSTM's recorded call is re-run by :func:`run`."""
    keras_models._tf = lambda: _Nest  # the walker's only TF uses, made backend-neutral
    with _inference():
        return keras_models.model_lstms(keras, run, meta, arrays)


def fake_gpu():
    """JAX's cuDNN path on the CPU: Keras sees a GPU, and the cuDNN LSTM op is
    JAX's own reference of it (``lstm_ref``, from the same flat weights)."""
    import importlib

    import jax.experimental.rnn as jax_rnn

    keras_jax_rnn = importlib.import_module("keras.src.backend.jax.rnn")  # the module (the package re-exports rnn())

    def lstm(x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional, **_):
        w_ih, w_hh, b_ih, b_hh = jax_rnn.unpack_lstm_weights(
            weights, input_size, hidden_size, num_layers, bidirectional
        )
        return jax_rnn.lstm_ref(
            x,
            h_0,
            c_0,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            seq_lengths,
            input_size,
            hidden_size,
            num_layers,
            dropout,
            bidirectional,
        )

    keras_jax_rnn._is_gpu_available = lambda: True
    jax_rnn.lstm = lstm


if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND") not in ("jax", "torch"):
        raise SystemExit("keras_backend_worker: set KERAS_BACKEND to jax or torch (keras3_worker serves tensorflow)")
    if DEVICE == "fake-gpu":
        if BACKEND != "jax":
            raise SystemExit("keras_backend_worker: fake-gpu exists for JAX only")
        fake_gpu()
    protocol.serve({"hello": hello, "run": run, "activation": activation, "model_lstms": model_lstms})
