"""Keras 3 activations in NumPy, as the TensorFlow backend defines them.

Each function follows the op sequence of ``keras/src/backend/tensorflow/nn.py``
(Keras 3.15) so that float16 rounds where TF rounds.  Transcendental
primitives (tanh, sigmoid, exp, erfc, ...) are evaluated one precision up and
rounded once, which is what Eigen does for ``half`` on the CPU.

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
    """Evaluate ``fn`` in at least float32, round once to the input dtype."""

    def wrapped(x):
        if x.dtype.itemsize >= 4:  # float32/float64: evaluate as is
            return fn(x)
        with np.errstate(over="ignore", under="ignore"):
            return fn(x.astype(np.float32)).astype(x.dtype, copy=False)

    wrapped.__name__ = fn.__name__
    return wrapped


def _c(x, value):
    return np.asarray(value, dtype=x.dtype)


@_up
def tanh(x):
    return np.tanh(x)


@_up
def sigmoid(x):  # 1 / (1 + exp(-x)) on one buffer (scipy's expit is 4x slower)
    e = np.negative(x)
    np.exp(e, out=e)  # overflow to inf gives 0, as TF; the runner silences it
    e += 1
    return np.reciprocal(e, out=e)


@_up
def exponential(x):
    return np.exp(x)


@_up
def softplus(x):
    return np.logaddexp(_c(x, 0), x)


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


def elu(x):  # tf.nn.elu
    return np.where(x > 0, x, _expm1(x))


def selu(x):  # tf.nn.selu, constants from Eigen's selu kernel
    scale, alpha = _c(x, 1.0507009873554804934193349852946), _c(x, 1.6732632423543772848170429916717)
    return np.where(x > 0, scale * x, (scale * alpha) * _expm1(x))


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


@_up
def softmax(x):  # over the last axis, as tf.nn.softmax
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@_up
def log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


KERAS3 = {
    f.__name__: f
    for f in (
        linear, tanh, sigmoid, exponential, softplus, relu, relu6, leaky_relu, elu, selu,
        celu, softsign, silu, gelu, tanh_shrink, hard_tanh, hard_sigmoid, hard_silu,
        soft_shrink, hard_shrink, sparse_plus, sparse_sigmoid, squareplus, log_sigmoid,
        mish, softmax, log_softmax,
    )
}
KERAS3["swish"] = silu  # keras/src/activations/__init__.py aliases
KERAS3["hard_swish"] = hard_silu

# Keras 3 activations the reference refuses, and why.
REFUSED = {
    "glu": "halves the last axis, so it cannot be a gate activation",
    "threshold": "needs `threshold` and `default_value` arguments that a string cannot carry",
    "sparsemax": "not implemented in the reference",
}


def get(name, *, role: str):
    """Look up a Keras 3 activation by the name a config carries.

    ``None`` means linear, as in ``keras.activations.get``.  ``role`` names
    the config key for error messages.
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
        return KERAS3[name]
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
    "elu", "exponential", "gelu", "hard_sigmoid", "leaky_relu", "linear", "log_softmax", "mish", "relu",
    "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign", "swish", "tanh",
)
# The subset the Keras 2.15 cells of tensorflow-addons are tested with.
KERAS215_NAMES = ("elu", "exponential", "hard_sigmoid", "linear", "relu", "selu", "sigmoid", "softsign",
                  "swish", "tanh")


def get_keras2(name, *, role: str, names=TF_KERAS_NAMES, where="tf_keras (Keras 2)"):
    """Look up a Keras 2 activation by name: ``None`` is linear (as
    ``tf_keras.activations.get``), ``hard_sigmoid`` is Keras 2's, every
    other name in ``names`` is the Keras 3 function of that name."""
    if name is None:
        return linear
    if isinstance(name, dict):  # serialized form, e.g. from get_config()
        name = name.get("config", name.get("class_name"))
    if not isinstance(name, str) or name not in names:
        raise ConfigError(f"config[{role!r}]={name!r} is not a {where} activation; expected one of {sorted(names)}")
    return keras2_hard_sigmoid if name == "hard_sigmoid" else KERAS3[name]
