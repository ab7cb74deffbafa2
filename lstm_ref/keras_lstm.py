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
    ``clip(0.2 x + 0.5, 0, 1)``.
"""

import numpy as np

from . import activations
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
    }
    INERT = KERAS_CELL_INERT | {
        "return_sequences",
        "return_state",
        "unroll",
        "activity_regularizer",
        "stateful",
        "use_cudnn",
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
        self._configure_layer(options)
        self.implementation = options["implementation"]
        if self.implementation not in (1, 2):
            raise ConfigError(f"{self.kind}: config['implementation'] must be 1 or 2, got {self.implementation!r}")
        self._dropout_rates()
        if self.config.get("recurrent_dropout", 0):
            self.implementation = 1  # LSTMCell.__init__ does the same

    def resolve_activation(self, name, role):
        """How this kind turns a config's activation name into a function."""
        return activations.get(name, role=role, platform=self.platform)

    def weight_shapes(self, input_dim):
        shapes = {"kernel": (input_dim, 4 * self.units), "recurrent_kernel": (self.units, 4 * self.units)}
        if self.use_bias:
            shapes["bias"] = (4 * self.units,)
        return shapes

    def project_input(self, params, x):
        xk = x @ params["kernel"]
        if self.use_bias and self.implementation == 1:
            xk += params["bias"]
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
