"""``keras.layers.LSTM`` (Keras 3) on the CPU, in NumPy.

On the CPU Keras 3 never takes the cuDNN path (``backend.lstm`` raises
``NotImplementedError`` and ``LSTM.inner_loop`` falls back to ``RNN``), so the
numbers are those of ``LSTMCell.call`` in ``keras/src/layers/rnn/lstm.py``
driven by ``keras/src/backend/tensorflow/rnn.py``.

Surprises worth knowing, all checked against TF 2.21 / Keras 3.15:
  * gate order in kernel columns is i, f, c, o;
  * with ``go_backwards=True`` the returned sequence stays in processing
    order (reversed time); Keras does not flip it back;
  * a masked step repeats the previous *output* -- zeros before the first
    valid step even when ``h0`` is not zero -- while the carried state keeps
    ``h0``/``c0``;
  * ``unit_forget_bias`` only shapes the *initial* bias; with explicit
    weights it changes nothing;
  * ``hard_sigmoid`` is Keras 3's ``relu6(x + 3) / 6``, not Keras 2's
    ``clip(0.2 x + 0.5, 0, 1)``;
  * ``unroll=True`` with ``go_backwards`` and ``zero_output_for_mask``
    zeroes the outputs with the *unreversed* mask (``backend.rnn``'s unrolled
    branch, the same bug as tf_keras: ``lstm_ref/tf_keras_lstm.py``).

``config["backend"]`` (``"tensorflow"``, ``"jax"``, ``"torch"``) picks
what the layer computes on that Keras backend: :mod:`lstm_ref.keras_backends`.
"""

import copy

import numpy as np

from . import activations, keras_backends
from .errors import ConfigError
from .grad import LSTMCell
from .reference import KERAS_CELL_INERT, Reference, register, split_gates
from .runner import takes_workspace
from .variants import (
    Variant,
    activation_read_as,
    drop_mask,
    flip_sequences,
    has_partial_mask,
    mask_output_flipped,
    permute_gates,
    set_config,
)


@register
class KerasLSTM(Reference):
    kind = "keras.layers.LSTM"
    OPTIONS = {
        "units": None,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "go_backwards": False,
        "zero_output_for_mask": False,  # an RNN kwarg that LSTM forwards
        "implementation": 2,  # 1 adds the bias before the recurrent term
        "dtype": None,
        # Which Keras backend's numbers (lstm_ref/keras_backends.py); unroll and
        # use_cudnn pick code paths whose masking and rounding differ there.
        "backend": "tensorflow",
        "unroll": False,
        "use_cudnn": "auto",
    }
    INERT = KERAS_CELL_INERT | {
        "return_sequences",
        "return_state",
        "activity_regularizer",
        "stateful",
    }
    REFUSED = {
        "stateful": (bool, "the reference has no memory between calls; pass the carried state as h0/c0"),
        "use_cudnn": (lambda v: v is True, "the reference mirrors the CPU path; cuDNN is a different kernel"),
    }

    def _configure_layer(self, options):
        """What every Keras LSTM layer (Keras 3, tf_keras) takes alike."""
        if options["units"] is None:
            raise ConfigError(f"{self.kind}: config['units'] is required")
        self.units = self.out_units = self._positive_int("units")
        self.activation = self.resolve_activation(options["activation"], "activation")
        self.recurrent_activation = self.resolve_activation(options["recurrent_activation"], "recurrent_activation")
        self.use_bias = self._bool("use_bias")
        self.go_backwards = self._bool("go_backwards")
        self.zero_output_for_mask = self._bool("zero_output_for_mask")

    def _configure(self, options):
        self.backend = keras_backends.backend_of(options["backend"], self.kind)
        self._configure_layer(options)
        self.implementation = options["implementation"]
        if self.implementation not in (1, 2):
            raise ConfigError(f"{self.kind}: config['implementation'] must be 1 or 2, got {self.implementation!r}")
        self._dropout_rates()
        if self.config.get("recurrent_dropout", 0):
            self.implementation = 1  # LSTMCell.__init__ does the same
        self.unroll = self._bool("unroll")
        if options["use_cudnn"] not in ("auto", False):
            raise ConfigError(f"{self.kind}: config['use_cudnn'] must be 'auto' or False, got {options['use_cudnn']!r}")
        self.masked_output = keras_backends.masked_output(self.backend, self.unroll)
        self.zero_rule = keras_backends.zero_rule(
            self.backend, self.unroll, self.go_backwards, self.zero_output_for_mask
        )
        # The runner zeroes masked steps in processing order; the other rules are applied after it (run).
        self.zero_output_for_mask = self.zero_rule == "processing"

    # What the backend rules (lstm_ref/keras_backends.py) set; a subclass that
    # configures itself otherwise (tf_keras) keeps TF's.
    backend = "tensorflow"
    masked_output = "previous"
    zero_rule = None
    matmul_in_float32 = False

    def run(self, x, weights, *, mask=None, oracle=False, teacher=None, **initial_state):
        """:meth:`Reference.run`, then the backend's masking rules
        (:mod:`lstm_ref.keras_backends`): JAX's carried h before the first
        valid step, TF's unrolled zeroing by the unreversed mask.  On torch
        without a mask, the run takes ``_fallback_lstm``'s rounding (the bias
        first), and a float64 layer under ``rnn`` multiplies in float32."""
        if self.backend == "tensorflow" and self.zero_rule != "input_order":
            return super().run(x, weights, mask=mask, oracle=oracle, teacher=teacher, **initial_state)
        keras_backends.refuse_mask(self.backend, self.unroll, self.go_backwards, mask, self.kind)
        fallback = keras_backends.takes_fallback(
            self.backend, mask, self.options["use_cudnn"], self.config.get("recurrent_dropout", 0)
        )
        ref = self
        if fallback or keras_backends.matmul_in_float32(self.backend, self.policy.compute, fallback):
            ref = copy.copy(self)
            ref.implementation = 1 if fallback else self.implementation
            ref.matmul_in_float32 = not fallback
        trace = Reference.run(ref, x, weights, mask=mask, oracle=oracle, teacher=teacher, **initial_state)
        if mask is None:
            return trace
        m = self._mask(mask, *trace.h.shape[:2])
        if self.zero_rule == "input_order":
            return trace.replace(h=np.where(m[..., None], trace.h, np.zeros((), trace.h.dtype)))
        if self.masked_output == "state" and self.zero_rule is None and initial_state.get("h0") is not None:
            seen = m[:, ::-1] if self.go_backwards else m
            before_first = ~np.logical_or.accumulate(seen, axis=1)
            h0 = self._state("h0", initial_state["h0"], m.shape[0], trace.h.dtype)
            return trace.replace(h=np.where(before_first[..., None], h0[:, None, :], trace.h))
        return trace

    def tolerance_dtype(self, mask=None) -> np.dtype:
        """The dtype whose tolerance this layer's numbers are judged by: the
        compute dtype, or float32 where a float64 layer rounds to float32
        inside (:func:`lstm_ref.keras_backends.tolerance_dtype`)."""
        fallback = keras_backends.takes_fallback(
            self.backend, mask, self.options.get("use_cudnn", "auto"), self.config.get("recurrent_dropout", 0)
        )
        names = {getattr(self.activation, "__name__", ""), getattr(self.recurrent_activation, "__name__", "")}
        return keras_backends.tolerance_dtype(self.backend, self.policy.compute, names, fallback)

    def grad(self, x, weights, upstream, *, mask=None, **initial_state):
        if self.backend != "tensorflow" or self.zero_rule == "input_order":
            raise ConfigError(
                f"{self.kind}: grad is implemented for the TF backend's rnn loop only (backend={self.backend!r}, "
                f"unroll={self.unroll})"
            )
        return super().grad(x, weights, upstream, mask=mask, **initial_state)

    def resolve_activation(self, name, role):
        """How this kind turns a config's activation name into a function
        (as the configured backend computes it)."""
        fn = activations.get(name, role=role, platform=self.platform)
        return keras_backends.activation(fn, self.backend, self.policy.compute)

    def weight_shapes(self, input_dim):
        shapes = {"kernel": (input_dim, 4 * self.units), "recurrent_kernel": (self.units, 4 * self.units)}
        if self.use_bias:
            shapes["bias"] = (4 * self.units,)
        return shapes

    def project_input(self, params, x):
        if self.matmul_in_float32:  # torch's ops.matmul on a float64 layer (lstm_ref/keras_backends.py)
            xk = x.astype(np.float32) @ params["kernel"].astype(np.float32)
        else:
            xk = x @ params["kernel"]
        if self.use_bias and self.implementation == 1:
            xk += params["bias"]  # in place: float32 stays float32, as torch's x_i += b_i
        return xk

    @takes_workspace
    def recurrence(self, params, xz_t, state, ws=None):
        """Keras 3 ``LSTMCell.call`` (implementation 2), gate order i, f, c, o::

            z          = x_t @ kernel + h @ recurrent_kernel + bias
            zi, zf, zc, zo = split(z, 4)
            i = recurrent_activation(zi)      f = recurrent_activation(zf)
            c = f * c_prev + i * activation(zc)
            o = recurrent_activation(zo)
            h = o * activation(c)             output = h

        ``xz_t`` is ``x_t @ kernel`` (plus the bias with implementation 1).
        With the runner's workspace ``ws``, float32 and float64 steps with
        tanh/sigmoid write into its buffers: the same ops in the same order.
        """
        h_prev, c_prev = state
        if self.matmul_in_float32:
            z = h_prev.astype(np.float32) @ params["recurrent_kernel"].astype(np.float32)
            z += xz_t
            if self.use_bias and self.implementation == 2:
                z = z + params["bias"]  # ops.add: torch promotes to float64
            return self._gates(z, c_prev)
        buffers = None if ws is None else ws.scratch(self._buffers, params, xz_t, state)
        if buffers is not None:
            return self._recurrence_into(params, xz_t, state, ws, buffers)
        z = h_prev @ params["recurrent_kernel"]
        z += xz_t  # == x_t @ kernel + h @ recurrent_kernel, TF's rounding
        if self.use_bias and self.implementation == 2:
            z += params["bias"]
        return self._gates(z, c_prev)

    def _buffers(self, params, xz_t, state):
        """The step's temporaries for a workspace (z, then six of the state's
        shape), or None where the step keeps its allocating form: unless
        everything is float32, or everything float64 (float16 keeps the form
        whose rounding points the float16 tests pin), with activations that
        take ``out=`` (and so return the input's dtype)."""
        dtype = xz_t.dtype
        reuses = (
            dtype in _REUSING_DTYPES
            and all(s.dtype == dtype for s in state)
            and params["recurrent_kernel"].dtype == dtype
            and (not self.use_bias or params["bias"].dtype == dtype)
            and self.activation in activations.TAKE_OUT
            and self.recurrent_activation in activations.TAKE_OUT
        )
        if not reuses:
            return None
        return (np.empty(xz_t.shape, dtype), *(np.empty(state[1].shape, dtype) for _ in range(6)))

    def _recurrence_into(self, params, xz_t, state, ws, buffers):
        """:meth:`recurrence` into the workspace's buffers: the same ops in
        the same order."""
        h_prev, c_prev = state
        z, i, f, g, ig, o, tanh_c = buffers
        np.matmul(h_prev, params["recurrent_kernel"], out=z)
        z += xz_t
        if self.use_bias and self.implementation == 2:
            z += params["bias"]
        z_i, z_f, z_c, z_o = self._split(z)
        h, c = ws.new_state(state)
        i = self.recurrent_activation(z_i, out=i)  # the result: only float32's sigmoid writes out
        f = self.recurrent_activation(z_f, out=f)
        np.multiply(f, c_prev, out=c)  # c = f * c_prev + i * activation(z_c)
        c += np.multiply(i, self.activation(z_c, out=g), out=ig)
        o = self.recurrent_activation(z_o, out=o)
        np.multiply(o, self.activation(c, out=tanh_c), out=h)  # h = o * activation(c)
        return h, (h, c)

    def _gates(self, z, c_prev):
        """``(h, (h, c))`` from z, in fresh arrays."""
        z_i, z_f, z_c, z_o = self._split(z)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_prev + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, (h, c)

    @staticmethod
    def _split(z):
        """The gate blocks of z, in Keras' order (both forms of the step)."""
        z_i, z_f, z_c, z_o = split_gates(z)  # np.split(z, 4, axis=-1)
        return z_i, z_f, z_c, z_o

    # -- the backward (lstm_ref.grad): the shared cell, Keras' weights ------
    GRAD = True

    def grad_cell(self, params):
        """Keras' weights as the shared cell's: ``kernel`` is ``Wx``,
        ``recurrent_kernel`` ``Wh``; implementation 1 adds the bias to the
        input projection and 2 to z, the same gradient."""
        bias = params["bias"] if self.use_bias else None
        return LSTMCell(
            params["kernel"], params["recurrent_kernel"], bias, None, self.activation, self.recurrent_activation
        )

    def grad_weights(self, grads):
        out = {"kernel": grads.Wx, "recurrent_kernel": grads.Wh}
        if self.use_bias:
            out["bias"] = grads.b
        return out


_REUSING_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# -- wrong ports this kind is confused with (the report's discrimination column)


def _add_to_forget_bias(weights, case):
    units = weights["bias"].shape[0] // 4
    weights["bias"] = weights["bias"].copy()
    weights["bias"][units : 2 * units] += 1
    return weights


def _h0_before_first_valid_step(trace, case):
    mask = case.mask[:, ::-1] if case.config.get("go_backwards") else case.mask
    before_first = ~np.logical_or.accumulate(mask, axis=1)
    return trace.replace(
        h=np.where(before_first[..., None], case.initial_state["h0"].astype(trace.h.dtype)[:, None, :], trace.h)
    )


def _uses(name):
    return lambda case: (
        name in (case.config.get("activation", "tanh"), case.config.get("recurrent_activation", "sigmoid"))
    )


KERAS_LSTM_VARIANTS = (
    Variant("gate order i,f,o,c", weights=permute_gates((0, 1, 3, 2))),
    Variant("gate order i,c,f,o (TF1's i,j,f,o)", weights=permute_gates((0, 2, 1, 3))),
    Variant(
        "forget bias +1 at run time (TF1 habit)",
        applies=lambda case: "bias" in case.weights,
        weights=_add_to_forget_bias,
    ),
    Variant(
        "Keras 2 hard_sigmoid",
        applies=_uses("hard_sigmoid"),
        reference=activation_read_as(KerasLSTM, "hard_sigmoid", activations.keras2_hard_sigmoid),
    ),
    Variant(
        "go_backwards output flipped back",
        applies=lambda case: case.config.get("go_backwards", False),
        trace=flip_sequences,
    ),
    Variant("mask zeroes the output", applies=has_partial_mask, reference=mask_output_flipped(KerasLSTM)),
    Variant("mask ignored", applies=has_partial_mask, inputs=drop_mask),
    Variant(
        "h0 as the output before the first valid step",
        applies=lambda case: has_partial_mask(case) and "h0" in case.initial_state,
        trace=_h0_before_first_valid_step,
    ),
    Variant(
        "tanh in place of the configured activation",
        applies=lambda case: case.config.get("activation", "tanh") != "tanh",
        config=set_config(activation="tanh"),
    ),
)
