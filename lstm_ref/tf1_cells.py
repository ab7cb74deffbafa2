"""``tf.compat.v1.nn.rnn_cell.BasicLSTMCell`` and ``LSTMCell`` in NumPy, as
driven by ``tf.compat.v1.nn.dynamic_rnn`` on the CPU.

Source: ``tf_keras/src/layers/rnn/legacy_cells.py`` (tf_keras 2.21, loaded by
TF 2.21 under ``TF_USE_LEGACY_KERAS=1``), classes ``BasicLSTMCell`` and
``LSTMCell``; sequence handling from ``tensorflow/python/ops/rnn.py``
(``dynamic_rnn`` / ``_rnn_step``).

Surprises worth knowing, all checked against TF 2.21 / tf_keras 2.21:
  * gate order in kernel columns is i, j, f, o (j is the candidate), not
    Keras' i, f, c, o; the kernel is one matrix over ``concat([x, h_prev])``,
    shape ``(input_dim + out_units, 4 * num_units)``;
  * ``forget_bias`` is added inside the forget sigmoid *at every step*
    (``sigmoid(f + forget_bias)``), on top of the stored bias; it is rounded to
    the cell's dtype first (``tf.constant(forget_bias, dtype=f.dtype)`` in
    BasicLSTMCell.call, ``f + self._forget_bias`` in LSTMCell.call);
  * ``activation=None`` (or any falsy value) means ``tanh``, not linear
    (``if activation: ... else: self._activation = tf.tanh``), and names are
    resolved by *tf_keras* (Keras 2): ``hard_sigmoid`` is
    ``clip(0.2 x + 0.5, 0, 1)``, and Keras-3-only names (``hard_tanh``,
    ``celu``, ...) do not exist;
  * LSTMCell applies, in this order: the new c, ``cell_clip`` on c, the
    output peephole on the *clipped* c (``sigmoid(o + w_o_diag * c)``), m, the
    projection ``m @ projection/kernel``, then ``proj_clip`` on the projected
    m.  The carried c is the clipped one and the carried h is the projected,
    clipped m, which is also the step's output;
  * ``proj_clip`` without ``num_proj`` is silently ignored by TF, and
    ``cell_clip=0`` is honoured (c is clamped to 0);
  * ``dynamic_rnn(sequence_length=...)`` zeroes outputs past a row's length
    and carries its state unchanged; a sequence length can only express
    right padding, so other masks are refused;
  * ``num_unit_shards``/``num_proj_shards`` partition the variables in graph
    mode and are ignored in eager mode; the numbers are those of the
    concatenated kernel either way.
"""

import numbers

import numpy as np

from . import activations
from .errors import ConfigError
from .grad import LSTMCell as GradCell
from .reference import Reference, register
from .variants import Variant, permute_gates, set_config


def tf_keras_activation(name, *, role="activation", platform=None):
    """An activation as legacy cells resolve it: falsy -> tanh, else by tf_keras name."""
    if not name:  # legacy_cells.py: `if activation: ... else: tf.tanh`
        return activations.tanh
    return activations.get_keras2(name, role=role, platform=platform)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class _TF1Cell(Reference):
    GATES = "ijfo"
    """What BasicLSTMCell and LSTMCell share: right-padded masks only, zero
    outputs past the sequence length, forget_bias and activation."""

    zero_output_for_mask = True  # dynamic_rnn zeroes outputs past sequence_length
    go_backwards = False  # not a cell option; reversing is the caller's business

    def _configure_common(self, options):
        if options["num_units"] is None:
            raise ConfigError(f"{self.kind}: config['num_units'] is required")
        self.units = self._positive_int("num_units")
        if self.policy.variable != self.policy.compute:
            raise ConfigError(
                f"{self.kind}: config['dtype']={self.policy.name!r} is not supported: legacy TF1 cells have "
                "no mixed-precision path (TF 2.21 fails with a float32 kernel against float16 inputs); "
                "use 'float16'"
            )
        fb = options["forget_bias"]
        if not _is_real(fb) or not np.isfinite(fb):
            raise ConfigError(f"{self.kind}: config['forget_bias'] must be a finite real number, got {fb!r}")
        # TF turns the Python float into a tensor of the cell's dtype.
        self.forget_bias = float(np.asarray(fb, dtype=self.policy.compute))
        self.activation = tf_keras_activation(options["activation"], platform=self.platform)

    def _const(self, value, like):
        return np.asarray(value, dtype=like.dtype)

    def float64_config(self):
        rounded = {"forget_bias": self.forget_bias}
        for key in ("cell_clip", "proj_clip"):
            if self.config.get(key) is not None:
                rounded[key] = getattr(self, key) if getattr(self, key, None) is not None else self.config[key]
        return {**super().float64_config(), **rounded}

    def _check_mask(self, mask):
        self._require_right_padded(mask, "dynamic_rnn's sequence_length can only express right padding")

    def project_input(self, params, x):
        # concat([x, h]) @ kernel == x @ kernel[:d] + h @ kernel[d:]; the x half
        # does not depend on the state, so it is one GEMM over all steps.
        # float16: TF's one MatMul accumulates in float32 and rounds once, so
        # the x half stays float32 until the h half is added (see _gates).
        k = params["kernel"][: x.shape[-1]]
        if x.dtype == np.float16:
            return x.astype(np.float32) @ k.astype(np.float32)
        return x @ k

    # Reference.grad: the shared cell of lstm_ref.grad, its blocks in i, f, c
    # order; TF1's columns are i, j, f, o, and the permutation is its own inverse.
    _SHARED_ORDER = (0, 2, 1, 3)

    def _to_shared(self, w):
        blocks = np.split(w, 4, axis=-1)
        return np.concatenate([blocks[k] for k in self._SHARED_ORDER], axis=-1)

    def grad_cell(self, params):
        """The kernel over ``concat([x, h])`` splits into ``Wx`` (its first
        ``input_dim`` rows) and ``Wh``; ``forget_bias`` is a constant added
        to the f block of ``b`` (``sigmoid(f + forget_bias)``)."""
        kernel = self._to_shared(params["kernel"])
        d = kernel.shape[0] - self.out_units
        b = self._to_shared(params["bias"]) + np.repeat([0.0, self.forget_bias, 0.0, 0.0], self.units)
        peep = getattr(self, "use_peepholes", False)
        P = tuple(params[f"w_{g}_diag"] for g in "ifo") if peep else None
        Wp = params.get("projection/kernel")
        clips = {"cell_clip": getattr(self, "cell_clip", None), "proj_clip": getattr(self, "proj_clip", None)}
        return GradCell(kernel[:d], kernel[d:], b, Wp, self.activation, activations.sigmoid, P, **clips)

    def grad_weights(self, grads):
        out = {
            "kernel": self._to_shared(np.concatenate([grads.Wx, grads.Wh], axis=0)),
            "bias": self._to_shared(grads.b),
        }
        if grads.P is not None:
            out.update(zip(("w_i_diag", "w_f_diag", "w_o_diag"), grads.P))
        if grads.Wp is not None:
            out["projection/kernel"] = grads.Wp
        return out

    def _gates(self, params, xz_t, h_prev):
        kernel = params["kernel"]
        k_h = kernel[kernel.shape[0] - h_prev.shape[-1] :]
        if h_prev.dtype == np.float16:
            z = (xz_t + h_prev.astype(np.float32) @ k_h.astype(np.float32)).astype(np.float16)
        else:
            z = xz_t + h_prev @ k_h
        z = z + params["bias"]  # tf.nn.bias_add after the matmul
        return np.split(z, 4, axis=-1)


@register
class BasicLSTMCell(_TF1Cell):
    kind = "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"
    GRAD = True  # Reference.grad through _TF1Cell.grad_cell
    OPTIONS = {
        "num_units": None,
        "forget_bias": 1.0,
        "state_is_tuple": True,
        "activation": None,
        "dtype": None,
    }
    INERT = frozenset({"reuse", "name", "trainable"})
    REFUSED = {
        "state_is_tuple": (
            lambda v: v is not True,
            "the reference takes the state as the (c, h) pair; a concatenated state is only a layout",
        ),
    }

    def _configure(self, options):
        self._configure_common(options)
        self.out_units = self.units

    def weight_shapes(self, input_dim):
        return {"kernel": (input_dim + self.units, 4 * self.units), "bias": (4 * self.units,)}

    def recurrence(self, params, xz_t, state):
        """``BasicLSTMCell.call`` (legacy_cells.py), gate order i, j, f, o::

            z          = concat([x_t, h]) @ kernel + bias
            i, j, f, o = split(z, 4)
            c = c_prev * sigmoid(f + forget_bias) + sigmoid(i) * activation(j)
            h = activation(c) * sigmoid(o)       output = h

        ``xz_t`` is ``x_t @ kernel[:input_dim]``.
        """
        h_prev, c_prev = state
        i, j, f, o = self._gates(params, xz_t, h_prev)
        sig = activations.sigmoid
        c = c_prev * sig(f + self._const(self.forget_bias, f)) + sig(i) * self.activation(j)
        h = self.activation(c) * sig(o)
        return h, (h, c)


@register
class LSTMCell(_TF1Cell):
    kind = "tf.compat.v1.nn.rnn_cell.LSTMCell"
    GRAD = True  # Reference.grad through _TF1Cell.grad_cell
    OPTIONS = {
        "num_units": None,
        "use_peepholes": False,
        "cell_clip": None,
        "num_proj": None,
        "proj_clip": None,
        "forget_bias": 1.0,
        "state_is_tuple": True,
        "activation": None,
        "dtype": None,
    }
    INERT = frozenset(
        {
            "initializer",
            "reuse",
            "name",
            "trainable",
            "num_unit_shards",
            "num_proj_shards",  # None or 1 only, see REFUSED
        }
    )
    _SHARDS = (
        lambda v: v not in (None, 1) or isinstance(v, bool),
        "partitioned variables are not supported; pass None or 1 and the whole (concatenated) variable",
    )
    REFUSED = {
        "state_is_tuple": BasicLSTMCell.REFUSED["state_is_tuple"],
        "num_unit_shards": _SHARDS,
        "num_proj_shards": _SHARDS,
    }

    def _clip_value(self, key):
        value = self.options[key]
        if value is None:
            return None
        if not _is_real(value) or not value >= 0 or not np.isfinite(value):
            raise ConfigError(f"{self.kind}: config[{key!r}] must be None or a finite number >= 0, got {value!r}")
        # tf.clip_by_value converts the bounds to the tensor's dtype.
        return float(np.asarray(value, dtype=self.policy.compute))

    def _configure(self, options):
        self._configure_common(options)
        self.use_peepholes = self._bool("use_peepholes")
        self.cell_clip = self._clip_value("cell_clip")
        self.num_proj = None if options["num_proj"] is None else self._positive_int("num_proj")
        proj_clip = self._clip_value("proj_clip")
        # TF reads proj_clip only inside `if self._num_proj is not None`.
        self.proj_clip = proj_clip if self.num_proj is not None else None
        self.out_units = self.num_proj or self.units

    def weight_shapes(self, input_dim):
        n = self.units
        shapes = {"kernel": (input_dim + self.out_units, 4 * n), "bias": (4 * n,)}
        if self.use_peepholes:
            shapes.update(w_f_diag=(n,), w_i_diag=(n,), w_o_diag=(n,))
        if self.num_proj is not None:
            shapes["projection/kernel"] = (n, self.num_proj)
        return shapes

    def _clip(self, v, bound):
        b = self._const(bound, v)
        return np.clip(v, -b, b)

    def recurrence(self, params, xz_t, state):
        """``LSTMCell.call`` (legacy_cells.py), gate order i, j, f, o::

            z          = concat([x_t, m_prev]) @ kernel + bias
            i, j, f, o = split(z, 4)
            c = sigmoid(f + forget_bias [+ w_f_diag * c_prev]) * c_prev
                + sigmoid(i [+ w_i_diag * c_prev]) * activation(j)
            c = clip(c, -cell_clip, cell_clip)              if cell_clip is not None
            m = sigmoid(o [+ w_o_diag * c]) * activation(c)  (c already clipped)
            m = m @ projection/kernel                        if num_proj is not None
            m = clip(m, -proj_clip, proj_clip)               if both are set
            output = m;  carried state = (c, m)

        ``xz_t`` is ``x_t @ kernel[:input_dim]``; ``state`` is ``(m_prev, c_prev)``.
        """
        m_prev, c_prev = state
        i, j, f, o = self._gates(params, xz_t, m_prev)
        sig = activations.sigmoid
        fb = self._const(self.forget_bias, f)
        if self.use_peepholes:
            c = sig(f + fb + params["w_f_diag"] * c_prev) * c_prev + sig(
                i + params["w_i_diag"] * c_prev
            ) * self.activation(j)
        else:
            c = sig(f + fb) * c_prev + sig(i) * self.activation(j)
        if self.cell_clip is not None:
            c = self._clip(c, self.cell_clip)
        if self.use_peepholes:
            m = sig(o + params["w_o_diag"] * c) * self.activation(c)
        else:
            m = sig(o) * self.activation(c)
        if self.num_proj is not None:
            m = m @ params["projection/kernel"]
            if self.proj_clip is not None:
                m = self._clip(m, self.proj_clip)
        return m, (m, c)


# -- wrong ports these kinds are confused with (the report's discrimination column)


def _has_forget_bias(case):
    return case.config.get("forget_bias", 1.0) != 0


def _doubled_forget_bias(config):
    return {**config, "forget_bias": 2 * config.get("forget_bias", 1.0)}


def _drop_peepholes(weights, case):
    return {k: v for k, v in weights.items() if not k.endswith("_diag")}


BASIC_LSTM_CELL_VARIANTS = (
    Variant("gate order i,f,j,o", weights=permute_gates((0, 2, 1, 3))),
    Variant("forget_bias missing", applies=_has_forget_bias, config=set_config(forget_bias=0.0)),
    Variant("forget_bias doubled", applies=_has_forget_bias, config=_doubled_forget_bias),
)

LSTM_CELL_VARIANTS = BASIC_LSTM_CELL_VARIANTS + (
    Variant(
        "c not clipped",
        applies=lambda case: case.config.get("cell_clip") is not None,
        config=set_config(cell_clip=None),
    ),
    Variant(
        "proj_clip missing",
        applies=lambda case: case.config.get("proj_clip") is not None and bool(case.config.get("num_proj")),
        config=set_config(proj_clip=None),
    ),
    Variant(
        "peepholes ignored",
        applies=lambda case: bool(case.config.get("use_peepholes")),
        config=set_config(use_peepholes=False),
        weights=_drop_peepholes,
    ),
)
