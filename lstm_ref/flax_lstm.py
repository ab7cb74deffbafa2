"""``flax.nnx.LSTMCell`` and ``flax.nnx.OptimizedLSTMCell`` run by ``flax.nnx.RNN``, in NumPy.

Read from ``flax/nnx/nn/recurrent.py`` (flax 0.12.8, the newest for Python
3.11) and checked against it, on jax 0.10.2 (CPU):

* ``LSTMCell`` holds eight ``nnx.Linear`` layers, one per gate and side:
  ``ii``, ``if_``, ``ig``, ``io`` on x (``use_bias=False``) and ``hi``,
  ``hf``, ``hg``, ``ho`` on h (``use_bias=True``); ``OptimizedLSTMCell``
  two, ``dense_i`` (in, 4H) without a bias and ``dense_h`` (H, 4H) with one,
  its gate blocks i, f, g, o on the last axis ("input and recurrent layers
  are summed so only one needs a bias", says the source).  The weights are
  keyed by their ``nnx.state`` path joined with ``/`` (``ii/kernel``,
  ``hf/bias``, ``dense_h/kernel``); kernels are (in, out), as Keras'.
* The cell::

      c, h = carry                                   # (c, h): not (h, c)
      z_k = x @ W_ik + (h @ W_hk + b_hk)             # k = i, f, g, o; Linear adds its bias to its own product
      i, f, o = gate_fn(z_i), gate_fn(z_f), gate_fn(z_o);  g = activation_fn(z_g)
      new_c = f * c + i * g;  new_h = o * activation_fn(new_c)
      return (new_c, new_h), new_h

  Keras' cell with the bias on the h side and no ``unit_forget_bias`` (the
  ConvLSTM cell's ``+1`` on the forget gate is not in these two).
* ``nnx.RNN.__call__`` scans the cell over every step of every row: a
  ``seq_lengths`` masks nothing.  Past a row's length the cell keeps
  stepping on the padding, and the output there is what it computes (not
  zeros, not the last output).  ``seq_lengths`` does two things only:
  ``flip_sequences`` reverses each row within its length (``reverse=True``;
  the padding is reversed in place too, ``(T - 1 - t + L) % T``), and
  ``_select_last_carry`` returns the carry after step ``L - 1`` of each row
  -- for a row of length 0, ``L - 1 = -1`` wraps to the carry after the
  *last* step, not the initial carry.
* ``reverse=True`` returns the outputs in processing order;
  ``keep_order=True`` flips them back with the same ``flip_sequences``.
* ``param_dtype`` is the variables' dtype and the default carry's
  (``initialize_carry``); ``dtype`` the computation's.  They must agree:
  ``dtype=float64`` over float32 params fails in the scan (the carry's type
  changes), and ``dtype=float32`` over float64 params computes float64 (the
  float64 carry promotes the step).  x is given in ``param_dtype``.

``run(x, weights, mask=, h0=, c0=)`` takes the contract of every kind here:
x batch-major (``time_major`` only changes the layout Flax reads), the
sequence lengths as a right-padded ``mask``, and the initial carry as
``h0``/``c0`` by name (Flax's tuple is ``(c0, h0)``).  The trace is ``h``
(what ``nnx.RNN`` returns, past a row's length included), ``final_h`` and
``final_c`` (its returned carry); like ``torch.nn.LSTM``'s, no per-step c.
``grad`` is the shared cell's backward (``lstm_ref/grad.py``) over every
step with these rules as linear maps around it (:meth:`FlaxLSTMCell._grad`),
checked against ``nnx.grad`` on the real ``nnx.RNN``.  The final carry's
gradient enters at step ``L - 1`` only: ``_select_last_carry``'s
``x[last_idx, arange]`` is a gather, whose transpose scatters into that
step (``L = 0``: the last step, the index wrapping as in the forward).

Linen's ``flax.linen.LSTMCell`` and ``OptimizedLSTMCell`` compute the same
(``flax/linen/recurrent.py``: the same Dense layers and equations; its
optimized cell concatenates the eight kernels for one product and adds
``h`` before ``x``, the same sums), with parameters ``params/ii/kernel``,
``params/if/kernel`` (``if``, not ``if_``) for both cells: the API differs,
not the numbers, so linen is no kind of its own (its parameter trees are
read by ``lstm-ref check``).  Linen's ``apply`` ignores parameters it does
not use: a bias put on the input side (``ii/bias``) is dropped silently.
"""

import numpy as np

from . import activations
from . import grad as G
from .dtypes import resolve_policy
from .errors import ConfigError, InputError
from .reference import Reference, register, split_gates
from .runner import run_sequence
from .trace import Trace
from .variants import Variant

LSTM_CELL, OPTIMIZED = "flax.nnx.LSTMCell", "flax.nnx.OptimizedLSTMCell"
GATES = ("i", "f", "g", "o")
INPUT_LAYERS = ("ii", "if_", "ig", "io")  # LSTMCell's Linear layers on x, in gate order
HIDDEN_LAYERS = ("hi", "hf", "hg", "ho")  # ... and on h, each with the bias


# -- jax.nn's activations, by the name flax.nnx exports them under ------------------------------
# ``jax/_src/nn/functions.py`` (jax 0.10.2).  Where jax defines a function as
# Keras does, Keras' NumPy form serves (float32 and float64 only here);
# where it does not (gelu is the tanh approximation by default, leaky_relu's
# slope is 0.01, softplus is logaddexp), its own form is written out.
#
# Each carries ``.derivative`` (float64, for ``Reference.grad``; sigmoid and
# tanh are lstm_ref.activations' own, with theirs): the derivative jax's
# reverse mode takes, kinks included.  ``relu`` and ``relu6`` have custom
# JVPs, ``select(x > 0, g, 0)`` and ``select((x > 0) & (x < 6), g, 0)``: 0 at
# 0 (and at 6), so hard_sigmoid's slope 1/6 holds on the open (-3, 3);
# a ``jnp.where`` passes the gradient to the branch it picked (hard_tanh's
# ``where(x > 1, 1, where(x < -1, -1, x))``: 1 on the closed [-1, 1];
# leaky_relu's ``where(x >= 0, x, 0.01 x)``: 1 at 0; elu's ``where(x > 0, x,
# expm1(...))``: exp(0) = 1 at 0); celu's ``maximum``/``minimum`` split a
# tie in half (``lax.max``'s JVP), 1/2 + exp(0)/2 = 1 at 0.


def _derivative(d):
    """Attach ``d``, the function's derivative, as its ``.derivative``."""

    def attach(fn):
        fn.derivative = d
        return fn

    return attach


def _sigmoid64(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _d_hard_sigmoid(x):
    return ((x > -3) & (x < 3)) / 6.0


@_derivative(_d_hard_sigmoid)
def _hard_sigmoid(x):
    """relu6(x + 3.) / 6. (Keras 3's, not Keras 2's clip(0.2 x + 0.5)); XLA's
    algebraic simplifier turns the division by the constant 6 into a
    product with its reciprocal, rounded: bitwise on 100,000 draws, where
    ``/ 6`` is 1 ulp off on 5% of them."""
    one = x.dtype.type(1)
    return np.minimum(np.maximum(x + x.dtype.type(3), 0), x.dtype.type(6)) * (one / x.dtype.type(6))


@_derivative(lambda x: 1.0 / (1.0 + np.abs(x)) ** 2)
def _soft_sign(x):  # x / (|x| + 1)
    return x / (np.abs(x) + 1)


@_derivative(_sigmoid64)
def _softplus(x):  # jnp.logaddexp(x, 0)
    return np.logaddexp(x, x.dtype.type(0))


@_derivative(lambda x: _sigmoid64(-x))
def _log_sigmoid(x):  # -softplus(-x)
    return -_softplus(-x)


def _elu_form(x, alpha=1.0):  # where(x > 0, x, alpha * expm1(where(x > 0, 0, x)))
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.where(x > 0, 0, x)))


@_derivative(lambda x: np.where(x > 0, 1.0, np.exp(x)))
def _elu(x):
    return _elu_form(x)


@_derivative(lambda x: np.where(x > 0, 1.0, np.exp(x)))  # at 0: the tie's 1/2 + exp(0) / 2
def _celu(x):  # maximum(x, 0) + expm1(minimum(x, 0))
    return np.maximum(x, 0) + np.expm1(np.minimum(x, 0))


_GELU_K = np.sqrt(2 / np.pi)


def _d_gelu(x):
    t = np.tanh(_GELU_K * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_K * (1 + 3 * 0.044715 * x**2)


@_derivative(_d_gelu)
def _gelu(x):  # approximate=True, jax's default: x * 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    k = _GELU_K.astype(x.dtype)
    return x * (x.dtype.type(0.5) * (1 + np.tanh(k * (x + x.dtype.type(0.044715) * x**3))))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


@_derivative(lambda x: _SELU_SCALE * np.where(x > 0, 1.0, _SELU_ALPHA * np.exp(x)))
def _selu(x):
    return x.dtype.type(_SELU_SCALE) * _elu_form(x, _SELU_ALPHA)


def _d_silu(x):
    s = _sigmoid64(x)
    return s + x * s * (1.0 - s)


@_derivative(_d_silu)
def _silu(x):  # jax.nn.swish is silu
    return x * activations.sigmoid(x)


@_derivative(lambda x: _hard_sigmoid(x) + x * _d_hard_sigmoid(x))
def _hard_silu(x):  # jax.nn.hard_swish is hard_silu
    return x * _hard_sigmoid(x)


@_derivative(lambda x: ((x >= -1) & (x <= 1)) * 1.0)
def _hard_tanh(x):  # where(x > 1, 1, where(x < -1, -1, x))
    return np.clip(x, -1, 1).astype(x.dtype)


@_derivative(lambda x: (x > 0) * 1.0)
def _relu(x):
    return np.maximum(x, 0).astype(x.dtype)


@_derivative(lambda x: ((x > 0) & (x < 6)) * 1.0)
def _relu6(x):
    return np.minimum(np.maximum(x, 0), 6).astype(x.dtype)


@_derivative(lambda x: np.where(x >= 0, 1.0, 0.01))
def _leaky_relu(x):  # negative_slope 0.01
    return np.where(x >= 0, x, x.dtype.type(0.01) * x)


@_derivative(np.ones_like)
def _identity(x):
    return x


ACTIVATIONS = {
    "sigmoid": activations.sigmoid,
    "tanh": activations.tanh,
    "hard_sigmoid": _hard_sigmoid,
    "hard_tanh": _hard_tanh,
    "relu": _relu,
    "relu6": _relu6,
    "silu": _silu,
    "swish": _silu,
    "hard_silu": _hard_silu,
    "hard_swish": _hard_silu,
    "soft_sign": _soft_sign,
    "softplus": _softplus,
    "log_sigmoid": _log_sigmoid,
    "elu": _elu,
    "celu": _celu,
    "selu": _selu,
    "gelu": _gelu,
    "leaky_relu": _leaky_relu,
    "identity": _identity,
}


def activation(name, role):
    """The jax.nn function ``flax.nnx.<name>`` names, in NumPy."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"config[{role!r}]={name!r}: give the function's name in flax.nnx, one of {sorted(ACTIVATIONS)}"
        ) from None


def flip_sequences(a, lengths):
    """Flax's ``flip_sequences`` (``flax/nnx/nn/recurrent.py``) on batch-major
    ``a``: step ``t`` of row ``b`` is read from ``(T - 1 - t + L_b) % T`` --
    each row reversed within its length, its padding reversed in place.
    Its own inverse; all rows whole when ``lengths`` is None."""
    if lengths is None:
        return a[:, ::-1]
    time = a.shape[1]
    index = (np.arange(time - 1, -1, -1)[None, :] + np.asarray(lengths)[:, None]) % time
    return np.take_along_axis(a, index.reshape(index.shape + (1,) * (a.ndim - 2)), axis=1)


class _EveryCarry:
    """The cell with its c traced at every step: ``nnx.RNN`` picks the final
    carry out of the carries of every step (``_select_last_carry``)."""

    TRACED_STATES = ("c",)

    def __init__(self, cell):
        self._cell = cell

    def __getattr__(self, name):
        return getattr(self._cell, name)

    def recurrence(self, params, xz_t, state):
        return self._cell.recurrence(params, xz_t, state)


_DTYPES = ("float32", "float64")


@register
class FlaxLSTMCell(Reference):
    """``flax.nnx.RNN(flax.nnx.LSTMCell(in_features, hidden_features, ...), ...)``."""

    kind = LSTM_CELL
    GATES = "ifgo"
    OPTIONS = {
        "in_features": None,  # None: x's last axis
        "hidden_features": None,
        "gate_fn": "sigmoid",
        "activation_fn": "tanh",
        "reverse": False,
        "keep_order": False,
        "param_dtype": "float32",
        "dtype": None,
    }
    # Initializers, rngs and metadata shape only the initial weights;
    # time_major changes the layout Flax reads (run() is batch-major);
    # return_carry is what the trace returns anyway; unroll unrolls the scan
    # (the same steps, compiled in another shape).
    INERT = frozenset(
        {
            "kernel_init",
            "recurrent_kernel_init",
            "bias_init",
            "carry_init",
            "keep_rngs",
            "rngs",
            "kernel_metadata",
            "recurrent_kernel_metadata",
            "bias_metadata",
            "time_major",
            "return_carry",
            "unroll",
        }
    )
    REFUSED = {
        "param_dtype": (
            lambda v: v not in _DTYPES,
            "the reference runs float32 and float64 only (jax's CPU float16/bfloat16 are not measured)",
        ),
    }
    TRACED_STATES = ()

    def _configure(self, options):
        if options["hidden_features"] is None:
            raise ConfigError(f"{self.kind}: config['hidden_features'] is required")
        self.units = self.out_units = self._positive_int("hidden_features")
        self.in_features = None if options["in_features"] is None else self._positive_int("in_features")
        self.gate_fn = activation(options["gate_fn"], "gate_fn")
        self.activation_fn = activation(options["activation_fn"], "activation_fn")
        self.reverse = self._bool("reverse")
        self.keep_order = self._bool("keep_order")
        param_dtype = options["param_dtype"]
        if options["dtype"] not in (None, param_dtype):
            raise ConfigError(
                f"{self.kind}: config['dtype']={options['dtype']!r} with param_dtype={param_dtype!r} is not "
                "supported: nnx.RNN's default carry is param_dtype, so float64 over float32 params fails in the "
                "scan (carry type mismatch) and float32 over float64 params computes float64; give dtype=None "
                "or param_dtype"
            )
        self.policy = resolve_policy(param_dtype)

    def float64_config(self):
        """float64 is ``param_dtype`` here (``dtype`` follows it or is None)."""
        return {**self.config, "param_dtype": "float64", **({"dtype": "float64"} if "dtype" in self.config else {})}

    # -- weights: the cell's nnx.state, paths joined with '/' --------------------------------------
    def _check_features(self, input_dim):
        if self.in_features is not None and input_dim != self.in_features:
            raise InputError(
                f"{self.kind}: x has {input_dim} features, but config['in_features'] is {self.in_features} "
                "(flax: dot_general requires contracting dimensions to have the same shape)"
            )

    def weight_shapes(self, input_dim):
        self._check_features(input_dim)
        shapes = {f"{name}/kernel": (input_dim, self.units) for name in INPUT_LAYERS}
        for name in HIDDEN_LAYERS:
            shapes[f"{name}/kernel"] = (self.units, self.units)
            shapes[f"{name}/bias"] = (self.units,)
        return shapes

    def gate_blocks(self, name, shape):
        """One Linear layer per gate: no weight holds gate blocks."""
        return None

    def pack(self, params):
        """``(kernel (in, 4H), recurrent (H, 4H), bias (4H,))``, gates i, f, g, o
        on the last axis (OptimizedLSTMCell's layout)."""
        if "kernel" in params:
            return params
        return {
            "kernel": np.concatenate([params[f"{n}/kernel"] for n in INPUT_LAYERS], axis=-1),
            "recurrent_kernel": np.concatenate([params[f"{n}/kernel"] for n in HIDDEN_LAYERS], axis=-1),
            "bias": np.concatenate([params[f"{n}/bias"] for n in HIDDEN_LAYERS]),
        }

    @classmethod
    def unpack(cls, kernel, recurrent, bias):
        """The kind's weights from the packed ``(kernel, recurrent, bias)``."""
        out = {}
        for name, block in zip(INPUT_LAYERS, split_gates(np.asarray(kernel))):
            out[f"{name}/kernel"] = np.ascontiguousarray(block)
        for name, k, b in zip(HIDDEN_LAYERS, split_gates(np.asarray(recurrent)), split_gates(np.asarray(bias))):
            out[f"{name}/kernel"] = np.ascontiguousarray(k)
            out[f"{name}/bias"] = np.ascontiguousarray(b)
        return out

    def draw_weights(self, rng, input_dim, scales, recurrent_scale):
        """For :func:`lstm_ref.case.build_weights`: every gate at its own
        scale and sign (the h side reversed, times ``recurrent_scale``), the
        h-side bias per gate."""
        from .case import GATE_BIASES, per_gate

        self._check_features(input_dim)
        units = self.units
        kernel = per_gate(rng, (input_dim, 4 * units), scales, np.float64)
        recurrent = per_gate(rng, (units, 4 * units), [recurrent_scale * s for s in scales[::-1]], np.float64)
        bias = np.repeat(GATE_BIASES, units) + 0.1 * rng.standard_normal(4 * units)
        return self.unpack(kernel, recurrent, bias)

    # -- the cell ---------------------------------------------------------------------------------
    def project_input(self, params, x):
        """``ii(x)``, ``if_(x)``, ``ig(x)``, ``io(x)`` side by side (no bias: the
        input Linear layers have none), hoisted over all steps."""
        return x @ self.pack(params)["kernel"]

    def recurrence(self, params, xz_t, state):
        """``LSTMCell.__call__`` (``flax/nnx/nn/recurrent.py``), gates i, f, g, o::

            z_k   = x_t @ W_ik + (h @ W_hk + b_hk)     # ii(x) + hi(h): the bias inside the h Linear
            c'    = gate_fn(z_f) * c + gate_fn(z_i) * activation_fn(z_g)
            h'    = gate_fn(z_o) * activation_fn(c')   # output = h'

        ``state`` is (h, c) in the runner's order; Flax's carry is (c, h).
        """
        h_prev, c_prev = state
        packed = self.pack(params)
        hz = h_prev @ packed["recurrent_kernel"]
        hz += packed["bias"]
        z_i, z_f, z_g, z_o = split_gates(xz_t + hz)
        i = self.gate_fn(z_i)
        f = self.gate_fn(z_f)
        g = self.activation_fn(z_g)
        o = self.gate_fn(z_o)
        c = f * c_prev + i * g
        h = o * self.activation_fn(c)
        return h, (h, c)

    # -- nnx.RNN: seq_lengths, reverse, keep_order ------------------------------------------------
    def _check_mask(self, mask):
        self._require_right_padded(mask, "nnx.RNN takes seq_lengths, a length per row")

    def _run(self, params, xs, state0, mask):
        """``nnx.RNN.__call__(x, initial_carry=(c0, h0), seq_lengths=mask.sum(1),
        return_carry=True)``: flip within lengths (``reverse``), scan every
        step, pick each row's carry after step ``L - 1`` (``L = 0``: the last
        step's), flip the outputs back (``reverse and keep_order``)."""
        lengths = None if mask is None else mask.sum(axis=1)
        seq = flip_sequences(xs, lengths) if self.reverse else xs
        steps = run_sequence(_EveryCarry(self), self.pack(params), seq, state0, None)
        h, c = steps["h"], steps["c"]
        if lengths is None:
            final_h, final_c = steps["final_h"], steps["final_c"]
        else:
            last = (lengths - 1) % xs.shape[1]  # jnp indexing wraps -1 to the last step
            rows = np.arange(xs.shape[0])
            final_h, final_c = h[rows, last], c[rows, last]
        if self.reverse and self.keep_order:
            h = flip_sequences(h, lengths)
        return Trace({"h": h, "final_h": final_h, "final_c": final_c})

    # -- the backward (lstm_ref.grad): the shared cell over every step, nnx.RNN's rules around it ----
    GRAD = True

    def grad_cell(self, params):
        """The packed weights as the shared cell's: ``Wx`` the input layers'
        kernels, ``Wh`` the h layers', ``b`` their biases (gates i, f, g, o
        in both: the shared cell's blocks), ``gate_fn`` as ``ract`` and
        ``activation_fn`` as ``act`` (each with the derivative jax takes)."""
        packed = self.pack(params)
        return G.LSTMCell(
            packed["kernel"], packed["recurrent_kernel"], packed["bias"], None, self.activation_fn, self.gate_fn
        )

    def grad_weights(self, grads):
        """The shared cell's weight gradients at the cell's ``nnx.state`` paths."""
        return self.unpack(grads.Wx, grads.Wh, grads.b)

    def _grad(self, params, xs, state0, mask, upstream):
        """``nnx.RNN``'s rules (:meth:`_run`) as a linear map around the
        shared cell run over every step with no mask (the scan steps through
        the padding): the upstream on the returned ``y`` goes to every step's
        h (flipped within the lengths to processing order first under
        ``reverse and keep_order``: the flip is a permutation that is its own
        inverse, so its adjoint is itself); ``_select_last_carry`` picks the
        carry after step ``L - 1``, so the ``final_h``/``final_c`` upstream is
        added into that step's h and carried-c upstream (``L = 0``: the last
        step, as the index wraps); ``reverse`` read x flipped within the
        lengths, so dL/dx is flipped back.  The per-step ``steps`` are in
        processing order, the padding's steps included."""
        lengths = None if mask is None else mask.sum(axis=1)
        seq = flip_sequences(xs, lengths) if self.reverse else xs
        cell = self.grad_cell(params)
        tape, every = G.forward(cell, seq, state0, None, False)
        h = every["h"]
        if lengths is None:
            final_h, final_c = every["final_h"], every["final_c"]
        else:
            rows, last = np.arange(xs.shape[0]), (lengths - 1) % xs.shape[1]
            final_h, final_c = h[rows, last], every["c"][rows, last]
        flip_out = self.reverse and self.keep_order
        fields = {"h": flip_sequences(h, lengths) if flip_out else h, "final_h": final_h, "final_c": final_c}
        up = self._upstream(upstream, fields)
        d_h = up.get("h")
        if d_h is not None and flip_out:
            d_h = flip_sequences(d_h, lengths)
        d_c, d_final_h, d_final_c = None, up.get("final_h"), up.get("final_c")
        if lengths is not None:  # the final carry is step L - 1's: its upstream enters there
            if d_final_h is not None:
                d_h = np.zeros_like(h) if d_h is None else d_h.copy()
                d_h[rows, last] += d_final_h
            if d_final_c is not None:
                d_c = np.zeros_like(h)
                d_c[rows, last] = d_final_c
            d_final_h = d_final_c = None
        dx, (dh0, dc0), cell_grads, steps = G.backward(cell, tape, d_h, d_c, d_final_h, d_final_c)
        if self.reverse:
            dx = flip_sequences(dx, lengths)
        return G.GradResult(dx, {"h0": dh0, "c0": dc0}, self.grad_weights(cell_grads), steps, Trace(fields))


@register
class FlaxOptimizedLSTMCell(FlaxLSTMCell):
    """``flax.nnx.RNN(flax.nnx.OptimizedLSTMCell(...), ...)``: the same cell with
    two Linear layers, ``dense_i`` (in, 4H) and ``dense_h`` (H, 4H) with the
    bias, gate blocks i, f, g, o on the last axis::

        y = dense_i(x) + dense_h(h);  i, f, g, o = jnp.split(y, 4, axis=-1)
    """

    kind = OPTIMIZED
    GRAD = True  # read from the class itself (Reference.grad): the same backward, the weights unpacked here

    def weight_shapes(self, input_dim):
        self._check_features(input_dim)
        units = self.units
        return {
            "dense_i/kernel": (input_dim, 4 * units),
            "dense_h/kernel": (units, 4 * units),
            "dense_h/bias": (4 * units,),
        }

    def gate_blocks(self, name, shape):
        return (len(shape) - 1, 1)

    def pack(self, params):
        if "kernel" in params:
            return params
        return {
            "kernel": params["dense_i/kernel"],
            "recurrent_kernel": params["dense_h/kernel"],
            "bias": params["dense_h/bias"],
        }

    @classmethod
    def unpack(cls, kernel, recurrent, bias):
        return {"dense_i/kernel": kernel, "dense_h/kernel": recurrent, "dense_h/bias": bias}


# -- wrong ports these kinds are confused with ------------------------------------------------------


def _bias_names(case):
    return [k for k in case.weights if k.endswith("/bias")]


def _forget_plus_one(weights, case):
    """+1 on the forget gate's pre-activation: the h-side bias of f raised by 1."""
    ref = case.reference()
    packed = ref.pack(dict(weights))
    bias = np.asarray(packed["bias"], np.float64).copy()
    bias[ref.units : 2 * ref.units] += 1
    return {**weights, **ref.unpack(packed["kernel"], packed["recurrent_kernel"], bias.astype(packed["bias"].dtype))}


def _bias_dropped(weights, case):
    return {k: (np.zeros_like(v) if k.endswith("/bias") else v) for k, v in weights.items()}


def _initial_swapped(case):
    return case.replace(h0=case.initial_state["c0"], c0=case.initial_state["h0"])


def _final_swapped(trace, case):
    return trace.replace(final_h=trace.final_c, final_c=trace.final_h)


def _gate_layers(perm):
    """LSTMCell's per-gate layers read in another order: the port's layer k is the truth's ``perm[k]``."""

    def change(weights, case):
        out = dict(weights)
        for side in (INPUT_LAYERS, HIDDEN_LAYERS):
            for k, p in enumerate(perm):
                for leaf in ("kernel", "bias"):
                    if f"{side[p]}/{leaf}" in weights:
                        out[f"{side[k]}/{leaf}"] = weights[f"{side[p]}/{leaf}"]
        return out

    return change


def _reverse_keeps_order(case):
    return case.config.get("reverse", False) and not case.config.get("keep_order", False)


def _flipped_back(trace, case):
    """The outputs of ``reverse=True`` put back in input order (``keep_order`` assumed)."""
    lengths = None if case.mask is None else np.asarray(case.mask, bool).sum(axis=1)
    return trace.replace(h=flip_sequences(trace.h, lengths))


def _padding_zeroed(trace, case):
    """Past a row's length, zeros (PyTorch, ONNX) where nnx.RNN emits what the cell computes."""
    mask = np.asarray(case.mask, bool)
    return trace.replace(h=np.where(mask[..., None], trace.h, 0).astype(trace.h.dtype))


def _has_padding(case):
    return case.mask is not None and not np.asarray(case.mask).all()


def _has_initial_state(case):
    return "h0" in case.initial_state


_STATES = (
    Variant(
        "initial h and c swapped",
        applies=_has_initial_state,
        inputs=_initial_swapped,
        fix="nnx.RNN's initial_carry is (c, h), not (h, c): pass (c0, h0)",
    ),
    Variant(
        "final h and c swapped",
        trace=_final_swapped,
        fix="nnx.RNN returns its carry as (c, h): unpack it as c, h = carry",
    ),
)
_FORGET = Variant(
    "forget gate +1 inside the cell (ConvLSTMCell's habit)",
    weights=_forget_plus_one,
    fix="add nothing to the forget gate: LSTMCell and OptimizedLSTMCell have no +1 (linen's ConvLSTMCell adds one)",
)
_INPUT_SIDE_BIAS = Variant(
    "bias put on the input side, where linen drops it",
    weights=_bias_dropped,
    fix="put the bias on the h side (hi/hf/hg/ho bias, dense_h/bias; fold an input-side bias in): the input "
    "layers have none, and linen's apply ignores an ii/bias silently",
)
_ORDER = (
    Variant(
        "reverse outputs flipped back (keep_order assumed)",
        applies=_reverse_keeps_order,
        trace=_flipped_back,
        fix="with reverse=True and keep_order=False nnx.RNN returns processing order, each row reversed within "
        "its length",
    ),
    Variant(
        "outputs past a row's length zeroed",
        applies=_has_padding,
        trace=_padding_zeroed,
        fix="nnx.RNN keeps stepping past seq_lengths: the output there is what the cell computes on the padding",
    ),
)

FLAX_LSTM_CELL_VARIANTS = (
    *_STATES,
    _FORGET,
    _INPUT_SIDE_BIAS,
    Variant(
        "gate layers read as i,g,f,o (TF1's i,j,f,o)",
        weights=_gate_layers((0, 2, 1, 3)),
        fix="map ii, if_, ig, io (and hi, hf, hg, ho) to the gates i, f, g, o",
    ),
    Variant(
        "gate layers read as i,o,f,g (ONNX's i,o,f,c)",
        weights=_gate_layers((0, 3, 1, 2)),
        fix="map ii, if_, ig, io (and hi, hf, hg, ho) to the gates i, f, g, o",
    ),
    *_ORDER,
)
FLAX_OPTIMIZED_VARIANTS = (*_STATES, _FORGET, _INPUT_SIDE_BIAS, *_ORDER)
