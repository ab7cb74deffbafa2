"""Eager at first, a traced ``tf.function`` once a configuration repeats
(the TF1 cells' and tfa's forward passes).

Eagerly, every step of a request is a Python trip through the framework
(3-17 ms a step, ``make bench`` prints it); traced, a whole request takes
1-3 ms, but the trace and its first call cost 100-260 ms (measured for issue
16, T=5: TF1 103-183 ms against 14-15 ms eager, tfa 240-256 against 56-75).
A function is therefore run eagerly until its signature (the worker's built
layer, the inputs' dtypes and shapes but batch and time, which optional
inputs are given) has been asked ``after`` times, about the ratio of the two
costs (the ski-rental rule: never more than about twice the better choice),
and through a ``tf.function`` traced for that signature after.

The Keras workers stay eager: ``make bench``'s Keras 3 examples draw 360
configurations, more than the ``MAX_TRACED`` a worker keeps, and traced it
answered 15.9 examples/s against 20.5/s eager, at +514 MB (throughput.py).

Why the answers stay TF's own:

* the traced function is the worker's own function, the one its eager
  path runs: the same framework layers, the same calls;
* grappler is off (``configure``): its remapper and arithmetic optimiser may
  fuse or reorder ops (MatMul + BiasAdd, adds) into kernels that round
  differently from the op-by-op eager run, and the eager run is the oracle;
* a trace's first answer is compared bitwise with the eager run of the
  same call: a difference fails the request, and the trace is not kept;
* only the probe is traced: the workers' cross-check still runs the real
  layer eagerly, the oracle, on every golden and on one request in 8, and
  compares it bitwise with the answer, traced or not, whatever the batch,
  time steps and mask.

``LSTM_PARITY_TRACE_AFTER=1`` traces on every first request (to run a test
module through the traced path); a huge value never traces.
"""

import os
import weakref
from collections import OrderedDict

import numpy as np

from lstm_ref.harness.oracles import protocol

# Traced functions kept per worker (make bench: +172-320 MB for TF1, +311 MB
# for tfa), the least recently used dropped.
MAX_TRACED = 64
_live = OrderedDict()  # (id(Traced), key) -> weak reference to the Traced


def configure(tf):
    """Grappler off for traced functions (eager ops never go through it)."""
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def _numpy(outputs):
    return [np.asarray(t) for t in outputs]


class Traced:
    """``traced(args, specs)``: ``fn(*args)`` as NumPy arrays, eagerly or
    through a function traced for ``specs`` (a ``tf.TensorSpec`` per
    argument, ``None`` where the argument is ``None``)."""

    def __init__(self, tf, fn, after: int):
        self.tf = tf
        self.fn = fn
        self.after = int(os.environ.get("LSTM_PARITY_TRACE_AFTER") or after)
        self.uses = {}
        self.functions = {}

    def __call__(self, args, specs):
        key = tuple(None if s is None else (tuple(s.shape.as_list()), s.dtype.name) for s in specs)
        self.uses[key] = self.uses.get(key, 0) + 1
        function = self.functions.get(key)
        if function is None and self.uses[key] < self.after:
            return _numpy(self.fn(*args))
        present = [i for i, a in enumerate(args) if a is not None]
        if function is None:
            # Kept only once its first answer is the eager run's: a trace that
            # fails (or differs) fails this request and is tried again later.
            function = self._trace(len(args), present, [specs[i] for i in present])
            out = _numpy(function(*[args[i] for i in present]))
            protocol.mark("trace")
            for i, (a, b) in enumerate(zip(out, _numpy(self.fn(*args)))):
                if not (a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)):
                    raise AssertionError(f"cross-check: output {i} of the traced function differs from the eager run")
            protocol.mark("trace")
            self.functions[key] = function
        else:
            out = _numpy(function(*[args[i] for i in present]))
        self._touch(key)
        return out

    def _touch(self, key):
        _live[(id(self), key)] = weakref.ref(self)  # a layer the worker's cache dropped may go
        _live.move_to_end((id(self), key))
        while len(_live) > MAX_TRACED:
            (_, old), ref = _live.popitem(last=False)
            owner = ref()
            if owner is not None:
                owner.functions.pop(old, None)
                owner.uses[old] = 0  # it earns a new trace as the first one did

    def _trace(self, n, present, signature):
        fn = self.fn

        def given(*tensors):
            full = [None] * n
            for i, t in zip(present, tensors):
                full[i] = t
            return fn(*full)

        return self.tf.function(given, input_signature=signature, autograph=False)


def specs(tf, args):
    """The signature of a worker's ``(x, mask or lengths, h0, c0)``: batch
    and time free, features and units fixed (no tracing worker unrolls)."""
    out = []
    for a in args:
        if a is None:
            out.append(None)
            continue
        keep = a.dtype.is_floating and a.shape.rank >= 2  # features (x) or units (h0, c0)
        shape = [None] * (a.shape.rank - 1) + ([a.shape[-1]] if keep else [None])
        out.append(tf.TensorSpec(shape, a.dtype))
    return out


def keras_call(layer):
    """``fn(x, mask, h0, c0)``: the Keras (or tf_keras) RNN layer's call
    with the absent inputs left out."""

    def call(x, mask, h0, c0):
        extra = {}
        if h0 is not None:
            extra["initial_state"] = [h0, c0]
        if mask is not None:
            extra["mask"] = mask
        return layer(x, **extra)

    return call
