"""Layer-normalised LSTMs in NumPy: TF1 contrib's per-gate cell and tfa's.

Two different cells share the name "layer-norm LSTM"; they normalise
different things with different epsilons:

``tf.contrib.rnn.LayerNormBasicLSTMCell`` (TF 1.x,
``tensorflow/contrib/rnn/python/ops/rnn_cell.py``, r1.15 L1342-L1463)
  * one kernel over ``concat([x, h])``, gate order **i, j, f, o**, and **no
    bias** when ``layer_norm=True`` (``_linear`` adds one only without it);
  * each gate block is normalised *separately* (scopes ``input``,
    ``transform``, ``forget``, ``output``), and so is the new cell state
    (``state``): the carried ``c`` is the normalised one;
  * the normaliser is ``tf.contrib.layers.layer_norm``
    (``contrib/layers/python/layers/layers.py``): ``nn.moments`` (biased
    variance, float16 statistics in float32) then ``nn.batch_normalization``
    with a hard-coded ``variance_epsilon = 1e-12`` (``1e-3`` for float16,
    r1.14+; r1.13 and earlier used 1e-12 for every dtype);
  * ``norm_gain``/``norm_shift`` only initialise gamma/beta: with explicit
    weights they change nothing;
  * ``dropout_keep_prob < 1`` applies dropout on *every* call -- the cell has
    no training flag -- so its forward numbers are random; refused here;
  * a constant kernel (the classic "all weights 0.1" example) makes every gate
    block constant across units, layer norm maps a constant block to its
    ``beta``, and with ``beta = 0`` the cell outputs exactly zero forever.

``tfa.rnn.LayerNormLSTMCell`` (``tensorflow_addons/rnn/layer_norm_lstm_cell.py``,
tfa 0.23 on TF 2.15 / Keras 2.15)
  * a Keras ``LSTMCell`` (gate order **i, f, c, o**) with three Keras
    ``LayerNormalization`` sublayers: ``kernel_norm`` over ``x @ kernel``
    (all four gates *jointly*, 4u wide), ``recurrent_norm`` over
    ``h @ recurrent_kernel`` (jointly), and ``state_norm`` over the new ``c``;
    the bias is added *after* the norms, and the carried ``c`` is normalised;
  * ``norm_epsilon`` defaults to 1e-3;
  * Keras 2.15 ``LayerNormalization`` takes two different paths
    (``keras/src/layers/normalization/layer_normalization.py``): the *fused*
    one, ``(x - mean) * rsqrt(var + eps)`` then ``* gamma + beta``, when the
    variables are float32 (policies ``float32`` and ``mixed_float16``) and
    ``eps >= 1.001e-5``; otherwise ``nn.moments`` + ``nn.batch_normalization``
    (``x * inv + (beta - mean * inv)``);
  * the sublayers are created without ``dtype``, so they follow the *global*
    Keras policy: a cell whose ``dtype`` differs from the global policy fails
    in ``BiasAdd`` (checked on TF 2.15.1).  The reference models the only
    working set-up, global policy == the cell's ``dtype``;
  * Keras 2's ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)``, not Keras 3's.

For tfa, ``go_backwards`` and ``zero_output_for_mask`` are accepted although
they are not cell arguments: they are the ``keras.layers.RNN`` options of the
layer the cell runs in (the oracle passes them there), and the runner
implements them for every family.  For contrib the run follows
``tf.compat.v1.nn.dynamic_rnn``: ``sequence_length`` can only express
right-padded masks, and past a row's length its output is zero.
"""

import warnings

import numpy as np

from . import activations
from . import grad as G
from .errors import ConfigError
from .reference import KERAS_CELL_INERT, Reference, register
from .variants import Variant, permute_gates, set_config

CONTRIB_EPSILON = {"float16": 1e-3}  # every other dtype: 1e-12
SINGLE_UNIT_NOISE = (
    "tf.contrib.rnn.LayerNormBasicLSTMCell with num_units=1 and layer_norm=True normalises single values: "
    "x * inv + (beta - mean * inv) with inv = gamma / sqrt(1e-12) is beta plus rounding noise of the size of "
    "ulp(x * 1e6), in TF as in this reference, and the two noises differ; expect parity only to that noise"
)
CONTRIB_EPSILON_DEFAULT = 1e-12
FUSED_MIN_EPSILON = 1.001e-5  # keras LayerNormalization._fused_can_be_used


def _stat_dtype(dtype):
    """TF computes float16 layer-norm statistics in float32."""
    return np.promote_types(dtype, np.float32)


HALF_PACKET = activations.HALF_PACKET  # Eigen's Packet8h: TF's x86 wheels are built for AVX, not AVX-512


def _rsqrt(v):
    """``tf.math.rsqrt`` on ``v`` of shape (batch, ..., 1), one op call per
    step as the cells make it (``tensorflow/core/kernels/cwise_ops.h``:
    ``rsqrt`` is ``Eigen::internal::scalar_rsqrt_op``).

    float16 takes two different roundings by *position* in the flat tensor:
    Eigen evaluates whole packets of ``HALF_PACKET`` halves with ``prsqrt``
    (``F16_PACKET_FUNCTION(Packet8f, Packet8h, prsqrt)`` in
    ``Eigen/src/Core/arch/AVX/MathFunctions.h``: widen to float,
    ``_mm256_rsqrt_ps`` plus one Newton step, round once to half) and the
    tail of ``n % HALF_PACKET`` elements with the scalar
    ``numext::rsqrt(half)`` = ``half(1) / numext::sqrt(half)``
    (``rsqrt_impl`` in ``Eigen/src/Core/MathFunctions.h``; ``sqrt`` and
    ``operator/`` in ``Eigen/src/Core/arch/Default/Half.h`` each round to
    half), i.e. two roundings.  Measured over every positive finite half (TF
    2.15.1 and 2.21): the packet path equals float-then-round-once on all of
    them, the scalar path equals the two-rounding formula on all of them, and
    the two differ on 26% of inputs.  Here the rows of one step are
    ``v.shape[0]``: rows from ``batch // HALF_PACKET * HALF_PACKET`` on are
    the scalar tail.  Other dtypes: ``1 / sqrt``.
    """
    work = _stat_dtype(v.dtype)
    w = v.astype(work, copy=False)
    with np.errstate(divide="ignore"):
        packet = (1 / np.sqrt(w)).astype(v.dtype, copy=False)
        if v.dtype != np.float16 or v.ndim == 0:
            return packet
        scalar = (1 / np.sqrt(w).astype(np.float16).astype(work)).astype(np.float16)
    rows = v.shape[0]
    tail = (np.arange(rows) >= rows // HALF_PACKET * HALF_PACKET).reshape((rows,) + (1,) * (v.ndim - 1))
    return np.where(tail, scalar, packet)


def _moments(x):
    """``tf.nn.moments(x, [-1], keepdims=True)``: two passes, biased variance
    ``mean((x - mean)**2)``, float16 inputs reduced in float32 and the results
    rounded back to float16."""
    y = x.astype(_stat_dtype(x.dtype), copy=False)
    mean = y.mean(axis=-1, keepdims=True)
    variance = np.square(y - mean).mean(axis=-1, keepdims=True)
    return mean.astype(x.dtype), variance.astype(x.dtype)


def batch_norm_layer_norm(x, gamma, beta, epsilon):
    """Layer norm over the last axis as ``tf.nn.moments`` +
    ``tf.nn.batch_normalization`` compute it (TF ``nn_impl.py``)::

        mean, var = moments(x)                 # biased variance
        inv = rsqrt(var + epsilon) * gamma     # epsilon inside the rsqrt
        out = x * inv + (beta - mean * inv)

    Every step after the moments runs in ``x.dtype`` (float16 included), as
    TF does.  Used by contrib's ``layer_norm`` and by Keras 2's non-fused path.
    """
    mean, variance = _moments(x)
    inv = _rsqrt(variance + np.asarray(epsilon, dtype=x.dtype)) * gamma
    return x * inv + (beta - mean * inv)


def fused_layer_norm(x, gamma, beta, epsilon):
    """Keras 2's fused layer norm: ``fused_batch_norm`` (scale 1, offset 0) on
    the rows, then ``* gamma + beta`` in ``x.dtype``::

        mean, var = mean(x), mean((x - mean)**2)    # in float32 for float16 x
        out = (x - mean) * rsqrt(var + epsilon)     # rounded to x.dtype
        out = out * gamma + beta

    Epsilon sits inside the rsqrt, as in ``batch_norm_layer_norm``; what
    differs is where gamma enters and where float16 rounds.
    """
    work = _stat_dtype(x.dtype)
    y = x.astype(work, copy=False)
    mean = y.mean(axis=-1, keepdims=True)
    centred = y - mean
    variance = np.square(centred).mean(axis=-1, keepdims=True)
    normed = (centred * _rsqrt(variance + np.asarray(epsilon, dtype=work))).astype(x.dtype)
    return normed * gamma + beta


# ---------------------------------------------------------------------------
# tf.contrib.rnn.LayerNormBasicLSTMCell


# Names a config may give for contrib's ``activation`` (a TF callable there,
# ``math_ops.tanh`` by default); each maps to the same TF op as the Keras 3
# activation of that name.
CONTRIB_ACTIVATIONS = ("tanh", "sigmoid", "relu", "relu6", "softsign", "elu", "linear")


@register
class LayerNormBasicLSTMCell(Reference):
    kind = "tf.contrib.rnn.LayerNormBasicLSTMCell"
    GATES = "ijfo"
    OPTIONS = {
        "num_units": None,
        "forget_bias": 1.0,
        "activation": "tanh",
        "layer_norm": True,
        # Not a constructor argument: TF1 cells take their dtype from the
        # inputs given to dynamic_rnn.  It fixes the variables' dtype too.
        "dtype": None,
    }
    INERT = frozenset(
        {
            "input_size",  # deprecated and unused in the cell
            "norm_gain",
            "norm_shift",  # initial values of gamma/beta only
            "dropout_keep_prob",  # 1.0 only (see REFUSED)
            "dropout_prob_seed",
            "reuse",
            "name",
        }
    )
    REFUSED = {
        "dropout_keep_prob": (
            lambda v: v != 1,
            "the cell applies dropout on every call when keep_prob < 1 (it has no training flag), "
            "so its forward numbers are random",
        ),
    }
    zero_output_for_mask = True  # dynamic_rnn zeroes outputs past sequence_length

    NORMS = ("input", "transform", "forget", "output", "state")

    def _configure(self, options):
        if options["num_units"] is None:
            raise ConfigError(f"{self.kind}: config['num_units'] is required")
        self.units = self.out_units = self._positive_int("num_units")
        self.layer_norm = self._bool("layer_norm")
        fb = options["forget_bias"]
        if isinstance(fb, bool) or not isinstance(fb, (int, float, np.integer, np.floating)):
            raise ConfigError(f"{self.kind}: config['forget_bias'] must be a real number, got {fb!r}")
        self.forget_bias = float(fb)
        name = options["activation"]
        if name not in CONTRIB_ACTIVATIONS:
            raise ConfigError(
                f"{self.kind}: config['activation']={name!r} is not supported; expected one of "
                f"{list(CONTRIB_ACTIVATIONS)} (the TF op of that name)"
            )
        self.activation = activations.get(name, role="activation")
        if self.policy.variable != self.policy.compute:  # the resolved policy: a name or a serialized dict
            raise ConfigError(
                f"{self.kind}: config['dtype']={self.policy.name!r} is not supported: TF1 cells have "
                "no mixed-precision policy; pass float16, float32 or float64"
            )
        self.epsilon = CONTRIB_EPSILON.get(self.policy.compute.name, CONTRIB_EPSILON_DEFAULT)
        if self.layer_norm and self.units == 1 and self.policy.compute != np.float64:
            warnings.warn(SINGLE_UNIT_NOISE, stacklevel=3)

    def weight_shapes(self, input_dim):
        h = self.units
        shapes = {"kernel": (input_dim + h, 4 * h)}
        if self.layer_norm:
            for scope in self.NORMS:
                shapes[f"{scope}/gamma"] = (h,)
                shapes[f"{scope}/beta"] = (h,)
        else:
            shapes["bias"] = (4 * h,)
        return shapes

    def _check_mask(self, mask):
        self._require_right_padded(
            mask,
            "the cell runs under tf.compat.v1.nn.dynamic_rnn, whose sequence_length can only express right padding",
        )

    def project_input(self, params, x):
        # concat([x, h]) @ kernel == x @ kernel[:in] + h @ kernel[in:]; the
        # x half does not depend on the state.  float16: TF 2.21's one MatMul
        # accumulates in float32 and rounds once, so the x half stays float32
        # until the h half is added (as in tf1_cells._TF1Cell).
        k = params["kernel"][: x.shape[-1]]
        if x.dtype == np.float16:
            return x.astype(np.float32) @ k.astype(np.float32)
        return x @ k

    def _norm(self, params, scope, v):
        return batch_norm_layer_norm(v, params[f"{scope}/gamma"], params[f"{scope}/beta"], self.epsilon)

    def _normalise_gates(self, params, z):
        """Each gate block normalised on its own: ``LN_input(i)``,
        ``LN_transform(j)``, ``LN_forget(f)``, ``LN_output(o)``."""
        return [self._norm(params, scope, block) for scope, block in zip(self.NORMS, np.split(z, 4, axis=-1))]

    def recurrence(self, params, xz_t, state):
        """``LayerNormBasicLSTMCell.call``, gate order i, j, f, o::

            z = concat([x_t, h]) @ kernel         (+ bias only if not layer_norm)
            i, j, f, o = split(z, 4)
            i, j, f, o = LN_input(i), LN_transform(j), LN_forget(f), LN_output(o)
            new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * activation(j)
            new_c = LN_state(new_c)
            new_h = activation(new_c) * sigmoid(o)      output = new_h

        (the LN_* only with ``layer_norm=True``; each is
        :func:`batch_norm_layer_norm` with its own gamma/beta).
        """
        h_prev, c_prev = state
        k_h = params["kernel"][-self.units :]
        bias = None if self.layer_norm else params["bias"]
        if h_prev.dtype != np.float16:
            z = xz_t + h_prev @ k_h
        elif bias is not None and self.platform.half_graph_bias == "fused":
            # The oracle is a graph (TF1 cells never ran eagerly): on oneDNN
            # with AVX512-FP16 grappler's remapper fuses MatMul + BiasAdd,
            # and the bias joins the float32 accumulation before the one
            # rounding (lstm_ref/platform.py, half_graph_bias).
            z32 = xz_t + h_prev.astype(np.float32) @ k_h.astype(np.float32)
            bias, z = None, (z32 + params["bias"].astype(np.float32)).astype(np.float16)
        else:  # one float32 accumulation, one rounding (see project_input)
            z = (xz_t + h_prev.astype(np.float32) @ k_h.astype(np.float32)).astype(np.float16)
        if bias is not None:
            z = z + bias
        if self.layer_norm:
            i, j, f, o = self._normalise_gates(params, z)
        else:
            i, j, f, o = np.split(z, 4, axis=-1)
        g = self.activation(j)
        sig = activations.sigmoid
        c = c_prev * sig(f + np.asarray(self.forget_bias, dtype=f.dtype)) + sig(i) * g
        if self.layer_norm:
            c = self._norm(params, "state", c)
        h = self.activation(c) * sig(o)
        return h, (h, c)

    # -- Reference.grad (lstm_ref.grad): the shared cell with contrib's norms --
    GRAD = True
    _SHARED_ORDER = (0, 2, 1, 3)  # i, j, f, o <-> i, f, c (j), o: its own inverse
    SHARED_SCOPES = ("input", "forget", "transform", "output")  # the gate norms in the shared order

    def grad_cell(self, params):
        """The kernel over ``concat([x, h])`` in the shared gate order, split
        into ``Wx`` and ``Wh``; with ``layer_norm`` the four gate norms are one
        ``norm_z`` of 4 groups (each block normalised on its own, as
        ``_normalise_gates``), ``state`` is ``norm_c``, and ``b`` holds only
        ``forget_bias`` (added after the norm: ``sigmoid(LN_forget(f) +
        forget_bias)``); without it, ``b`` is the bias plus ``forget_bias``.
        The norms' epsilon is the run's (1e-3 in float16, else 1e-12)."""
        kernel = G.permute_blocks(params["kernel"], self._SHARED_ORDER)
        b = np.repeat([0.0, self.forget_bias, 0.0, 0.0], self.units)
        norm_z = norm_c = None
        if self.layer_norm:
            gamma, beta = ([params[f"{s}/{w}"] for s in self.SHARED_SCOPES] for w in ("gamma", "beta"))
            norm_z = G.LayerNorm(np.concatenate(gamma), np.concatenate(beta), self.epsilon, groups=4)
            norm_c = G.LayerNorm(params["state/gamma"], params["state/beta"], self.epsilon)
        else:
            b = b + G.permute_blocks(params["bias"], self._SHARED_ORDER)
        d = kernel.shape[0] - self.units
        return G.LSTMCell(
            kernel[:d], kernel[d:], b, None, self.activation, activations.sigmoid, norm_z=norm_z, norm_c=norm_c
        )

    def grad_weights(self, grads):
        kernel = np.concatenate([grads.Wx, grads.Wh], axis=0)
        out = {"kernel": G.permute_blocks(kernel, self._SHARED_ORDER)}
        if not self.layer_norm:
            out["bias"] = G.permute_blocks(grads.b, self._SHARED_ORDER)
            return out
        dgamma, dbeta = grads.norms["norm_z"]
        per_scope = dict(zip(self.SHARED_SCOPES, zip(np.split(dgamma, 4), np.split(dbeta, 4))))
        per_scope["state"] = grads.norms["norm_c"]
        for scope in self.NORMS:
            out[f"{scope}/gamma"], out[f"{scope}/beta"] = per_scope[scope]
        return out


# ---------------------------------------------------------------------------
# tfa.rnn.LayerNormLSTMCell


def _half_products(a, b, ks, acc):
    """``acc + a[..., k] b[k]`` over ``ks`` in order, in half: each product
    and each add rounded (Eigen's half ``pmadd`` without FMA is ``pmul`` then
    ``padd``, each through float)."""
    for k in ks:
        acc = acc + a[..., k, None] * b[k]
    return acc


def tf215_matmul(a, b):
    """``a @ b`` as TF 2.15's CPU MatMul computes it, for ``a`` of shape
    (batch, ..., k): one MatMul of ``batch`` rows per step.  float16
    accumulates in *half* (TF 2.21 accumulates in float32), and the order of
    the adds follows Eigen's kernels for an AVX build without FMA (TF's x86
    wheels), measured bitwise on TF 2.15.1 for k <= 256:

    * one row (``small_dim == 1`` in ``tensorflow/core/kernels/
      matmul_op_impl.h``): Eigen's column-major GEMV
      (``Eigen/src/Core/products/GeneralMatrixVector.h``), which sums k in
      blocks of ``block_cols`` (all of k below 128, else 16, or 4 when a row
      of ``b`` is 32000 bytes or more) from zero, adding each block's sum to
      the result;
    * more rows: the tensor contraction's GEBP kernel
      (``Eigen/src/Core/products/GeneralBlockPanelKernel.h``), whose output
      columns are Eigen's lhs rows.  ``mr`` is 2 packets of 8 halves (3 needs
      ``EIGEN_HAS_SINGLE_INSTRUCTION_MADD``), and the 2-packet and scalar row
      kernels sum k in order; but the columns left for the *one-packet*
      kernel (``n % 16 >= 8``: columns ``n // 16 * 16`` to ``+ 8``), in the
      rows that fill a 4-wide panel (``nr = 4``: rows below
      ``batch // 4 * 4``), are summed by ``lhs_process_one_packet`` with two
      accumulators -- even k in C, odd k in D, over ``k & ~7`` (peeling
      ``pk = 8``) -- then ``C + D``, then the last ``k % 8`` in order.

    Not modelled: for larger k, Eigen splits k in ``kc`` blocks sized from
    the CPU's cache sizes (measured: k = 512 with 9 x 256 outputs already
    differs), so that order is the machine's.
    """
    if a.dtype != np.float16:
        return a @ b
    rows, (k, n) = a.shape[0], b.shape
    zero = np.zeros(a.shape[:-1] + (n,), dtype=np.float16)
    if rows == 1:
        block = k if k < 128 else (16 if n * b.itemsize < 32000 else 4)
        res = zero
        for start in range(0, k, block):
            res = res + _half_products(a, b, range(start, min(start + block, k)), zero)
        return res
    res = _half_products(a, b, range(k), zero)
    first = n // 16 * 16
    last = first + (n - first) // 8 * 8
    panel = rows // 4 * 4
    if last > first and panel:
        peeled = k & ~7
        a1, b1 = a[:panel], b[:, first:last]
        part = zero[:panel, ..., first:last]
        even = _half_products(a1, b1, range(0, peeled, 2), part)
        odd = _half_products(a1, b1, range(1, peeled, 2), part)
        res[:panel, ..., first:last] = _half_products(a1, b1, range(peeled, k), even + odd)
    return res


def keras2_activation(name, role):
    """Keras 2.15 activations by name (``keras/src/activations.py``)."""
    return activations.get_keras2(name, role=role, names=activations.KERAS215_NAMES, where="Keras 2.15")


@register
class LayerNormLSTMCell(Reference):
    kind = "tfa.rnn.LayerNormLSTMCell"
    OPTIONS = {
        "units": None,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "norm_epsilon": 1e-3,
        "dtype": None,
        # keras.layers.RNN options of the layer the cell runs in (see module docstring)
        "go_backwards": False,
        "zero_output_for_mask": False,
    }
    INERT = (KERAS_CELL_INERT - {"seed"}) | {
        "norm_gamma_initializer",
        "norm_beta_initializer",
    }  # Keras 2 cells take no seed

    NORMS = ("kernel_norm", "recurrent_norm", "state_norm")

    def _configure(self, options):
        if options["units"] is None:
            raise ConfigError(f"{self.kind}: config['units'] is required")
        self.units = self.out_units = self._positive_int("units")
        self.activation = keras2_activation(options["activation"], "activation")
        self.recurrent_activation = keras2_activation(options["recurrent_activation"], "recurrent_activation")
        self.use_bias = self._bool("use_bias")
        self.go_backwards = self._bool("go_backwards")
        self.zero_output_for_mask = self._bool("zero_output_for_mask")
        eps = options["norm_epsilon"]
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or not eps >= 0:
            raise ConfigError(f"{self.kind}: config['norm_epsilon'] must be a real number >= 0, got {eps!r}")
        self.norm_epsilon = float(eps)
        self._dropout_rates()
        # Keras 2.15 LayerNormalization._fused_can_be_used: float32 variables
        # (float32, mixed_float16) and epsilon >= 1.001e-5.
        self.fused = self.policy.variable == np.float32 and self.norm_epsilon >= FUSED_MIN_EPSILON
        if self.policy.name == "mixed_float16" and not self.fused:
            # Keras would then cast the float16 input to float32 and use the
            # float32 gamma/beta uncast: a third path, not modelled.
            raise ConfigError(
                f"{self.kind}: mixed_float16 with norm_epsilon < {FUSED_MIN_EPSILON} (Keras' non-fused "
                "mixed-precision layer norm) is not supported"
            )

    def weight_shapes(self, input_dim):
        u = self.units
        shapes = {"kernel": (input_dim, 4 * u), "recurrent_kernel": (u, 4 * u)}
        if self.use_bias:
            shapes["bias"] = (4 * u,)
        for name, width in (("kernel_norm", 4 * u), ("recurrent_norm", 4 * u), ("state_norm", u)):
            shapes[f"{name}/gamma"] = (width,)
            shapes[f"{name}/beta"] = (width,)
        return shapes

    def _norm(self, params, name, v):
        gamma, beta = params[f"{name}/gamma"], params[f"{name}/beta"]
        if self.fused:
            return fused_layer_norm(v, gamma, beta, self.norm_epsilon)
        return batch_norm_layer_norm(v, gamma, beta, self.norm_epsilon)

    def project_input(self, params, x):
        # kernel_norm(x @ kernel) does not depend on the state: hoisted.
        return self._norm(params, "kernel_norm", tf215_matmul(x, params["kernel"]))

    def recurrence(self, params, xz_t, state):
        """``LayerNormLSTMCell.call`` (tfa 0.23), Keras gate order i, f, c, o::

            z  = kernel_norm(x_t @ kernel) + recurrent_norm(h @ recurrent_kernel)
            z  = z + bias                                   (if use_bias)
            zi, zf, zc, zo = split(z, 4)
            i = recurrent_activation(zi)      f = recurrent_activation(zf)
            c = f * c_prev + i * activation(zc)
            o = recurrent_activation(zo)
            c = state_norm(c)                 # the carried c is normalised
            h = o * activation(c)             output = h

        ``xz_t`` is ``kernel_norm(x_t @ kernel)``; the two 4u-wide norms
        normalise all four gates jointly.
        """
        h_prev, c_prev = state
        z = xz_t + self._norm(params, "recurrent_norm", tf215_matmul(h_prev, params["recurrent_kernel"]))
        if self.use_bias:
            z = z + params["bias"]
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_prev + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        c = self._norm(params, "state_norm", c)
        h = o * self.activation(c)
        return h, (h, c)

    # -- Reference.grad (lstm_ref.grad): the shared cell with tfa's norms ----
    GRAD = True
    _CELL_NORMS = (("norm_x", "kernel_norm"), ("norm_h", "recurrent_norm"), ("norm_c", "state_norm"))

    def grad_cell(self, params):
        """Keras' weights as the shared cell's, with ``kernel_norm`` on ``x
        Wx`` (``norm_x``), ``recurrent_norm`` on ``h Wh`` (``norm_h``), both
        over all four gates jointly, the bias after them, and ``state_norm``
        on the new c (``norm_c``).  Fused or not, the norm is the same
        function and has the same derivative (lstm_ref.grad)."""
        norms = {
            mine: G.LayerNorm(params[f"{name}/gamma"], params[f"{name}/beta"], self.norm_epsilon)
            for mine, name in self._CELL_NORMS
        }
        bias = params["bias"] if self.use_bias else None
        return G.LSTMCell(
            params["kernel"],
            params["recurrent_kernel"],
            bias,
            None,
            self.activation,
            self.recurrent_activation,
            **norms,
        )

    def grad_weights(self, grads):
        out = {"kernel": grads.Wx, "recurrent_kernel": grads.Wh}
        if self.use_bias:
            out["bias"] = grads.b
        for mine, name in self._CELL_NORMS:
            out[f"{name}/gamma"], out[f"{name}/beta"] = grads.norms[mine]
        return out


# -- wrong ports these kinds are confused with (the report's discrimination column)


class _ContribJointNorm(LayerNormBasicLSTMCell):
    """A port that normalises all four gates together (with the four gammas
    and betas side by side), as tfa and Keras-style cells do."""

    def _normalise_gates(self, params, z):
        scopes = self.NORMS[:4]
        gamma = np.concatenate([params[f"{s}/gamma"] for s in scopes])
        beta = np.concatenate([params[f"{s}/beta"] for s in scopes])
        return np.split(batch_norm_layer_norm(z, gamma, beta, self.epsilon), 4, axis=-1)


class _ContribKerasEpsilon(LayerNormBasicLSTMCell):
    """A port with Keras' layer-norm epsilon (1e-3) in place of contrib's 1e-12."""

    def _configure(self, options):
        super()._configure(options)
        self.epsilon = 1e-3


def _skip_norm(cls, skipped):
    """A port of ``cls`` that leaves out the norm named ``skipped``."""

    def _norm(self, params, scope, v):
        return v if scope == skipped else super(port, self)._norm(params, scope, v)

    port = type(f"{cls.__name__}Without_{skipped}", (cls,), {"_norm": _norm, "__doc__": f"No {skipped} norm."})
    return port


class _TfaPerGateNorm(LayerNormLSTMCell):
    """A port that normalises each gate block of the 4u-wide norms on its own
    (contrib's way)."""

    def _norm(self, params, name, v):
        if v.shape[-1] != 4 * self.units:
            return super()._norm(params, name, v)
        parts = []
        for g, block in enumerate(np.split(v, 4, axis=-1)):
            sub = {
                f"{name}/gamma": np.split(params[f"{name}/gamma"], 4)[g],
                f"{name}/beta": np.split(params[f"{name}/beta"], 4)[g],
            }
            parts.append(super()._norm(sub, name, block))
        return np.concatenate(parts, axis=-1)


class _TfaContribEpsilon(LayerNormLSTMCell):
    """A port with contrib's epsilon 1e-12 in place of ``norm_epsilon`` (the
    layer-norm path stays the one the real epsilon selects)."""

    def _configure(self, options):
        super()._configure(options)
        self.norm_epsilon = 1e-12


def _bias_before_norms(case):
    """kernel_norm(x K + b): a constant-one input feature whose kernel row is
    the bias, and a zero bias after the norms."""
    x1 = np.concatenate([case.x, np.ones(case.x.shape[:2] + (1,), case.x.dtype)], axis=-1)
    weights = {
        **case.weights,
        "kernel": np.concatenate([case.weights["kernel"], case.weights["bias"][None]], axis=0),
        "bias": np.zeros_like(case.weights["bias"]),
    }
    return case.replace(x=x1, weights=weights)


def _contrib_norms(case):
    return case.config.get("layer_norm", True)


TFA_4U = (
    "kernel",
    "recurrent_kernel",
    "bias",
    "kernel_norm/gamma",
    "kernel_norm/beta",
    "recurrent_norm/gamma",
    "recurrent_norm/beta",
)

CONTRIB_VARIANTS = (
    Variant("gate order i,f,j,o", applies=_contrib_norms, weights=permute_gates((0, 2, 1, 3), keys=("kernel",))),
    Variant(
        "forget_bias missing",
        applies=lambda case: case.config.get("forget_bias", 1.0) != 0,
        config=set_config(forget_bias=0.0),
    ),
    Variant("joint layer norm instead of per-gate", applies=_contrib_norms, reference=_ContribJointNorm),
    Variant(
        "Keras epsilon 1e-3 instead of 1e-12",
        applies=lambda case: _contrib_norms(case) and case.config.get("dtype", "float32") != "float16",
        reference=_ContribKerasEpsilon,
    ),
    Variant("no state norm", applies=_contrib_norms, reference=_skip_norm(LayerNormBasicLSTMCell, "state")),
)

TFA_VARIANTS = (
    Variant("gate order i,f,o,c", weights=permute_gates((0, 1, 3, 2), keys=TFA_4U)),
    Variant("per-gate layer norm instead of joint", reference=_TfaPerGateNorm),
    Variant("no state norm", reference=_skip_norm(LayerNormLSTMCell, "state_norm")),
    Variant("contrib epsilon 1e-12 instead of norm_epsilon", reference=_TfaContribEpsilon),
    Variant("bias added before the norms", applies=lambda case: "bias" in case.weights, inputs=_bias_before_norms),
)
