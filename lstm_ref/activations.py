"""Keras 3 activations in NumPy, as the TensorFlow backend defines them.

Each function follows the op sequence of ``keras/src/backend/tensorflow/nn.py``
(Keras 3.15) so that float16 rounds where TF rounds.  Transcendental
*primitives* (tanh, exp, expm1, log1p, erfc) are evaluated one precision up
and rounded once, which is what Eigen does for ``half`` on the CPU.  The TF
kernels *built from* primitives round after every op of theirs, in the input
dtype, as their Eigen expressions do:

  * ``sigmoid`` is Eigen's generic ``scalar_logistic_op``: ``e = exp(x)``,
    then ``e / (1 + e)``, and 1 where ``e`` overflows
    (``Eigen/src/Core/functors/UnaryFunctors.h``; only float32 has a
    specialised kernel).  In float16 the ``1 / (1 + exp(-x))`` evaluated in
    float32 and rounded once is 2 ulp off on 14% of all finite inputs; this
    form is bitwise TF on every one of them;
  * ``elu``/``selu`` are ``exp(x) - 1`` (``relu_op_functor.h``), not expm1;
  * ``softplus`` is ``log1p(exp(x))`` between thresholds of ``log(eps) + 2``
    (``softplus_op.h``), with Eigen's half epsilon of 2^-13.

``parity_tests/test_activations.py`` checks every Keras 3 activation against
TF on all 63,488 finite float16 values, in ulps.

Keras 2's ``hard_sigmoid`` was ``clip(0.2 x + 0.5, 0, 1)``; Keras 3's is
``relu6(x + 3) / 6``.  Only the Keras 3 definition lives here.
"""

import math

import numpy as np

from .errors import ConfigError


def _scipy_erfc(x):
    """SciPy's erfc, imported on first use (only exact gelu needs it)."""
    try:
        from scipy.special import erfc
    except ImportError:  # pragma: no cover - scipy is a declared dependency
        erfc = np.vectorize(math.erfc, otypes=[np.float64])
    return erfc(x)


def _up(fn):
    """Evaluate ``fn`` in at least float32, round once to the input dtype.
    ``out`` (float32/float64, for an ``fn`` that takes it): where to write."""

    def wrapped(x, out=None):
        if x.dtype.itemsize >= 4:  # float32/float64: evaluate as is
            return fn(x) if out is None else fn(x, out=out)
        with np.errstate(over="ignore", under="ignore"):
            return fn(x.astype(np.float32)).astype(x.dtype, copy=False)

    wrapped.__name__ = fn.__name__
    return wrapped


def _c(x, value):
    return np.asarray(value, dtype=x.dtype)


@_up
def tanh(x, out=None):
    return np.tanh(x, out=out)


def sigmoid(x, out=None):
    """``tf.math.sigmoid``.  float32 has Eigen's specialised kernel (a
    polynomial exp, 4.5 ulp): ``1 / (1 + exp(-x))`` on one buffer stands in
    for it, within float32's tolerance.  Every other dtype takes Eigen's
    generic ``scalar_logistic_op``: ``e / (1 + e)``, each op rounded to the
    dtype, and 1 where ``exp`` overflows.  ``out``: where float32 writes
    (the runner's workspace); other dtypes return a fresh array."""
    if x.dtype == np.float32:
        e = np.negative(x, out=out)
        np.exp(e, out=e)  # overflow to inf gives 0, as TF; the runner silences it
        e += 1
        return np.reciprocal(e, out=e)
    e = exponential(x)
    one = _c(x, 1)
    with np.errstate(invalid="ignore"):  # inf / inf where exp overflowed: replaced by 1
        return np.where(np.isposinf(e), one, e / (one + e))


@_up
def exponential(x):
    return np.exp(x)


def _eigen_epsilon(dtype):
    """``Eigen::NumTraits<T>::epsilon()``: machine epsilon, except for half,
    where it is ``0x0800`` = 2^-13, not 2^-10 (``Eigen/src/Core/arch/Default/
    Half.h``, ``NumTraits<Eigen::half>``)."""
    return 2.0**-13 if dtype == np.float16 else np.finfo(dtype).eps


def softplus(x):
    """``tf.math.softplus`` (``tensorflow/core/kernels/softplus_op.h``): x
    above ``-(log(eps) + 2)``, ``exp(x)`` below ``log(eps) + 2``, else
    ``log1p(exp(x))``; the threshold and every op in the input dtype, with
    Eigen's epsilon (float16: log1p up to |x| = 7.0, not 4.9)."""
    eps = _c(x, _eigen_epsilon(x.dtype))
    threshold = _log(eps) + _c(x, 2)
    e = exponential(x)
    return np.where(x > -threshold, x, np.where(x < threshold, e, _log1p(e)))


@_up
def _log(x):
    return np.log(x)


@_up
def _log1p(x):
    return np.log1p(x)


@_up
def _expm1(x):
    return np.expm1(x)


@_up
def _erfc(x):
    return _scipy_erfc(x).astype(x.dtype)


def linear(x):
    return x


def relu(x):
    return np.maximum(x, _c(x, 0))


def relu6(x):
    return np.minimum(np.maximum(x, _c(x, 0)), _c(x, 6))


def leaky_relu(x):
    # tf.nn.leaky_relu(x, alpha=0.2) == max(x, alpha x); alpha is a float32 op
    # attribute, so in float64 the slope is float32(0.2), not 0.2.
    return np.maximum(x, _c(x, np.float32(0.2)) * x)


def elu(x):  # tf.nn.elu: exp(x) - 1, not expm1 (relu_op_functor.h, Elu)
    return np.where(x < 0, exponential(x) - _c(x, 1), x)


def selu(x):  # tf.nn.selu: constants as relu_op_functor.h's Selu casts them
    scale, scale_alpha = _c(x, 1.0507009873554804934193349852946), _c(x, 1.7580993408473768599402175208123)
    with np.errstate(over="ignore"):  # scale * x overflows float16 above 62,336, to inf as in TF
        return np.where(x < 0, scale_alpha * (exponential(x) - _c(x, 1)), scale * x)


def celu(x):  # alpha = 1: max(x, 0) + expm1(min(x, 0) / 1)
    return np.maximum(x, _c(x, 0)) + _c(x, 1) * _expm1(np.minimum(x, _c(x, 0)) / _c(x, 1))


def softsign(x):
    return x / (_c(x, 1) + np.abs(x))


def silu(x):  # tf.nn.silu: x * sigmoid(x)
    return x * sigmoid(x)


def gelu(x):
    # Keras 3 default approximate=False -> tf.nn.gelu (tensorflow/python/ops/
    # nn_ops.py): 0.5 * x * erfc(-x * cast(0.7071067811865476, dtype)).  The
    # Python float becomes a float32 tensor before the cast, so in float64
    # the constant is float32(1/sqrt(2)): measured 5e-9 off the exact form.
    return _c(x, 0.5) * x * _erfc(-x * _c(x, np.float32(0.7071067811865476)))


def tanh_shrink(x):
    return x - tanh(x)


def hard_tanh(x):
    return np.clip(x, _c(x, -1), _c(x, 1))


def hard_sigmoid(x):  # Keras 3: relu6(x + 3) / 6
    return relu6(x + _c(x, 3)) / _c(x, 6)


def hard_silu(x):
    return x * hard_sigmoid(x)


def soft_shrink(x):  # threshold = 0.5
    t = _c(x, 0.5)
    return np.where(x > t, x - t, np.where(x < -t, x + t, _c(x, 0)))


def hard_shrink(x):  # threshold = 0.5
    return np.where(np.abs(x) > _c(x, 0.5), x, _c(x, 0))


def sparse_plus(x):
    return np.where(x <= -1, _c(x, 0), np.where(x < 1, _c(x, 0.25) * (x + _c(x, 1)) ** 2, x))


def sparse_sigmoid(x):
    return np.where(x <= -1, _c(x, 0), np.where(x >= 1, _c(x, 1), _c(x, 0.5) * (x + _c(x, 1))))


def squareplus(x):  # b = 4
    return (x + np.sqrt(np.square(x) + _c(x, 4))) / _c(x, 2)


def log_sigmoid(x):  # tf.math.log_sigmoid == -softplus(-x)
    return -softplus(-x)


def mish(x):  # keras Mish.static_call: x * tanh(softplus(x))
    return x * tanh(softplus(x))


# Eigen's packet of halves on TF's x86 CPU wheels, built for AVX, not AVX-512
# (``Packet8h``, ``Eigen/src/Core/arch/AVX/PacketMath.h``).  A
# float16 reduction over fewer values than this sums them in order, in half;
# a wider one sums packets in an order not modelled here.
HALF_PACKET = 8


def _half_sum(e):
    """Sum over the last axis in half, in order, rounding every add: Eigen's
    ``sum`` of fewer than ``HALF_PACKET`` halves."""
    acc = np.zeros(e.shape[:-1] + (1,), e.dtype)
    for j in range(e.shape[-1]):
        acc = acc + e[..., j : j + 1]
    return acc


def softmax(x):
    """``tf.nn.softmax`` over the last axis (``tensorflow/core/kernels/
    softmax_op_functor.h``): ``e = exp(x - max)``, then ``e * (1 / sum(e))``.
    float16: every op in half, as Eigen computes it (the ``x86-eigen``
    profile), bitwise TF for rows of fewer than ``HALF_PACKET`` values
    (``tolerances.FLOAT16_WIDE_SOFTMAX_ULPS`` for wider rows); where oneDNN
    takes float16, :func:`softmax_rounded_once`.  Other dtypes evaluate
    ``e / sum(e)`` within their tolerance."""
    if x.dtype != np.float16:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    e = exponential(x - x.max(axis=-1, keepdims=True))
    return e * (_c(x, 1) / _half_sum(e))


def softmax_rounded_once(x):
    """``tf.nn.softmax`` on float16 where oneDNN takes it (the
    ``x86-onednn-fp16`` profile, :mod:`lstm_ref.platform`): oneDNN's softmax
    primitive computes in float32 and writes float16 once.  Modelled as the
    exact softmax rounded once: bitwise TF 2.21 on all 63,488 finite float16
    inputs in rows of 4 and of 62 (Xeon with AVX512-FP16); NumPy's float32
    ``e / sum(e)`` rounded once lands 1 ulp off on 45 of the rows-of-62
    values (its pairwise summation order is not oneDNN's), the exact
    evaluation on none.  Other dtypes: :func:`softmax`."""
    if x.dtype != np.float16:
        return softmax(x)
    wide = x.astype(np.float64)
    e = np.exp(wide - wide.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float16)


softmax_rounded_once.__name__ = "softmax"  # the activation a config names (compare.one_step_exemption reads it)


def on_platform(fn, platform):
    """``fn``, or what TF's kernel of that name computes on ``platform``
    where the profile changes it (:mod:`lstm_ref.platform`)."""
    if fn is softmax and platform is not None and platform.half_softmax == "onednn":
        return softmax_rounded_once
    return fn


def log_softmax(x):
    """``tf.nn.log_softmax``: ``s - log(sum(exp(s)))`` with ``s = x - max``,
    in half for float16 as :func:`softmax`."""
    shifted = x - x.max(axis=-1, keepdims=True)
    if x.dtype != np.float16:
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted - _log(_half_sum(exponential(shifted)))


KERAS3 = {
    f.__name__: f
    for f in (
        linear,
        tanh,
        sigmoid,
        exponential,
        softplus,
        relu,
        relu6,
        leaky_relu,
        elu,
        selu,
        celu,
        softsign,
        silu,
        gelu,
        tanh_shrink,
        hard_tanh,
        hard_sigmoid,
        hard_silu,
        soft_shrink,
        hard_shrink,
        sparse_plus,
        sparse_sigmoid,
        squareplus,
        log_sigmoid,
        mish,
        softmax,
        log_softmax,
    )
}
# The activations that take ``out=`` (the Keras steps' workspace form).
TAKE_OUT = frozenset({tanh, sigmoid})
KERAS3["swish"] = silu  # keras/src/activations/__init__.py aliases
KERAS3["hard_swish"] = hard_silu

# Keras 3 activations the reference refuses, and why.
REFUSED = {
    "glu": "halves the last axis, so it cannot be a gate activation",
    "threshold": "needs `threshold` and `default_value` arguments that a string cannot carry",
    "sparsemax": "not implemented in the reference",
}


def get(name, *, role: str, platform=None):
    """Look up a Keras 3 activation by the name a config carries.

    ``None`` means linear, as in ``keras.activations.get``.  ``role`` names
    the config key for error messages; ``platform`` (a
    :class:`~lstm_ref.platform.Profile`) picks the kernel TF runs there.
    """
    if name is None:
        return linear
    if isinstance(name, dict):  # serialized form, e.g. from get_config()
        name = name.get("config", name.get("class_name"))
    if not isinstance(name, str):
        raise ConfigError(f"config[{role!r}]: expected an activation name, got {name!r}")
    if name in REFUSED:
        raise ConfigError(f"config[{role!r}]={name!r} is not supported: {REFUSED[name]}")
    try:
        return on_platform(KERAS3[name], platform)
    except KeyError:
        raise ConfigError(
            f"config[{role!r}]={name!r} is not a Keras 3 activation; expected one of {sorted(KERAS3)}"
        ) from None


# -- Keras 2: tf_keras 2.21 (TF1 cells, tf_keras.layers.LSTM) and Keras 2.15 (tfa)


def keras2_hard_sigmoid(x):
    """Keras 2's ``backend.hard_sigmoid`` (tf_keras 2.21, Keras 2.15):
    ``clip(x * 0.2 + 0.5, 0, 1)``, in that op order and in the input's dtype."""
    dt = x.dtype
    return np.clip(x * np.asarray(0.2, dt) + np.asarray(0.5, dt), np.asarray(0, dt), np.asarray(1, dt))


# Names ``tf_keras.activations.get`` resolves (checked with tf_keras 2.21);
# all but hard_sigmoid end in the same tf.nn op as the Keras 3 function of
# that name, so they compute the same numbers.
TF_KERAS_NAMES = (
    "elu",
    "exponential",
    "gelu",
    "hard_sigmoid",
    "leaky_relu",
    "linear",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "swish",
    "tanh",
)
# The subset the Keras 2.15 cells of tensorflow-addons are tested with.
KERAS215_NAMES = (
    "elu",
    "exponential",
    "hard_sigmoid",
    "linear",
    "relu",
    "selu",
    "sigmoid",
    "softsign",
    "swish",
    "tanh",
)


def get_keras2(name, *, role: str, names=TF_KERAS_NAMES, where="tf_keras (Keras 2)", platform=None):
    """Look up a Keras 2 activation by name: ``None`` is linear (as
    ``tf_keras.activations.get``), ``hard_sigmoid`` is Keras 2's, every
    other name in ``names`` is the Keras 3 function of that name."""
    if name is None:
        return linear
    if isinstance(name, dict):  # serialized form, e.g. from get_config()
        name = name.get("config", name.get("class_name"))
    if not isinstance(name, str) or name not in names:
        raise ConfigError(f"config[{role!r}]={name!r} is not a {where} activation; expected one of {sorted(names)}")
    return keras2_hard_sigmoid if name == "hard_sigmoid" else on_platform(KERAS3[name], platform)


# -- derivatives, for Reference.grad (float64) ---------------------------------
#
# Each is the derivative of the function, as a function of its input, with
# TF's choice at a kink where it has one: ReluGrad, Relu6Grad, LeakyReluGrad
# and EluGrad/SeluGrad (``tensorflow/core/kernels/relu_op_functor.h``) pass
# the gradient where ``features > 0`` (and ``< 6``), and SoftplusGrad is
# ``sigmoid(features)`` whatever the forward's thresholds.


def _d_sigmoid(x):
    s = 0.5 * (1.0 + np.tanh(0.5 * x))
    return s * (1.0 - s)


def _d_silu(x):
    s = 0.5 * (1.0 + np.tanh(0.5 * x))
    return s * (1.0 + x * (1.0 - s))


def _d_keras2_hard_sigmoid(x):
    """Keras 2's ``hard_sigmoid`` is ``tf.clip_by_value(x * 0.2 + 0.5, 0.,
    1.)`` (tf_keras ``backend.hard_sigmoid``); clip_by_value's gradient passes
    on the closed interval (``maximum(minimum(t, 1), 0)`` in
    ``tensorflow/python/ops/clip_ops.py``, ``_MaximumMinimumGrad`` with
    ``less_equal``/``greater_equal`` in ``math_grad.py``): 0.2 where ``0 <=
    0.2 x + 0.5 <= 1`` (|x| <= 2.5, boundaries included), 0 on the flat
    regions."""
    y = 0.5 + 0.2 * x
    return np.where((y >= 0.0) & (y <= 1.0), 0.2, 0.0)


DERIVATIVES = {
    keras2_hard_sigmoid: _d_keras2_hard_sigmoid,
    tanh: lambda x: 1.0 - np.tanh(x) ** 2,
    sigmoid: _d_sigmoid,
    linear: np.ones_like,
    exponential: np.exp,
    relu: lambda x: (x > 0).astype(x.dtype),
    relu6: lambda x: ((x > 0) & (x < 6)).astype(x.dtype),
    hard_sigmoid: lambda x: ((x > -3) & (x < 3)).astype(x.dtype) / 6.0,  # relu6(x + 3) / 6
    leaky_relu: lambda x: np.where(x > 0, 1.0, float(np.float32(0.2))),
    elu: lambda x: np.where(x < 0, np.exp(x), 1.0),
    selu: lambda x: np.where(x < 0, 1.7580993408473768599402175208123 * np.exp(x), 1.0507009873554804934193349852946),
    softsign: lambda x: 1.0 / (1.0 + np.abs(x)) ** 2,
    softplus: lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    silu: _d_silu,
}


# The two that TF and PyTorch differentiate from their *output*: TF's
# ``_SigmoidGrad`` and ``_TanhGrad`` (``tensorflow/python/ops/math_grad.py``)
# call ``sigmoid_grad(y, grad)`` = ``grad * y * (1 - y)`` and ``tanh_grad(y,
# grad)`` = ``grad * (1 - y * y)`` on ``y = op.outputs[0]``; PyTorch's
# ``sigmoid_backward``/``tanh_backward`` take the result the same way
# (``torch/_decomp/decompositions.py``).  ``Reference.grad`` keeps the gate
# values its forward computed and reads these instead of evaluating the
# activation again.
OUTPUT_DERIVATIVES = {
    sigmoid: lambda y: y * (1.0 - y),
    tanh: lambda y: 1.0 - y * y,
}


def derivative(fn):
    """The derivative of activation ``fn`` (a float64 function of the
    input); a ``ConfigError`` naming the activation where the reference has
    no exact one."""
    try:
        return DERIVATIVES[fn]
    except (KeyError, TypeError):
        name = getattr(fn, "__name__", repr(fn))
        have = sorted(f.__name__ for f in DERIVATIVES)
        raise ConfigError(
            f"grad: activation {name!r} has no derivative in the reference; grad supports {have}"
        ) from None
