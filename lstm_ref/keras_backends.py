"""``keras.layers.LSTM`` on each Keras 3 backend, CPU: where JAX and torch
compute something else than the TF backend, and how the reference
reproduces it (``config["backend"]``: ``"tensorflow"``, the default,
``"jax"`` or ``"torch"``; :class:`lstm_ref.keras_lstm.KerasLSTM` applies
these rules).

Sources, Keras 3.15.1: ``keras/src/layers/rnn/lstm.py`` (``LSTM.inner_loop``
tries ``backend.lstm`` first, then ``RNN.inner_loop``), ``rnn.py``
(``RNN.call``), ``keras/src/backend/{tensorflow,jax,torch}/rnn.py`` (``rnn``,
``lstm``), ``keras/src/backend/common/dtypes.py`` (``result_type``), each
rule measured against the real layer on every backend
(``parity_tests/test_keras_backends.py``):

* **masked steps, JAX** (``jax/rnn.py``, ``rnn`` without ``unroll``): the
  ``lax.scan`` step outputs ``states[0]`` -- the carried h -- at a masked
  step, where TF and torch output the previous *output*.  The two differ
  only before a row's first valid step: JAX emits ``h0`` there, TF zeros.
  With ``unroll=True`` JAX's Python loop chains the previous output as TF
  does.
* **zero_output_for_mask under unroll**: JAX's unrolled loop ignores it
  (the previous output is repeated); TF's unrolled loop zeroes the
  (processing-order) outputs with the *unreversed* mask, so under
  ``go_backwards`` the wrong steps are zeroed (the same bug as tf_keras,
  ``lstm_ref/tf_keras_lstm.py``); torch's copy of that loop never gets
  there: ``torch.flip(mask_list, dims=mask_list.shape)`` on the tuple
  ``torch.unbind`` returns raises ``AttributeError`` for any mask under
  ``unroll=True, go_backwards=True`` -- refused here, as the layer fails.
* **torch without a mask** (``torch/rnn.py``, ``lstm``): unless
  ``use_cudnn=False`` or ``recurrent_dropout``, ``_fallback_lstm`` runs its
  own loop: ``x_proj = inputs @ kernel + bias``, then ``z = x_proj[t] + h @
  recurrent_kernel`` -- the bias added first, as ``implementation=1``
  rounds, whatever ``implementation`` says; with a mask ``backend.lstm``
  raises ``NotImplementedError`` and the cell runs under ``rnn``.
* **float64 on the non-TF backends**: ``result_type`` maps float64 to
  float32 off TF ("to be aligned with JAX's default", ``BIT64_TO_BIT32_DTYPE``).
  On torch, ``ops.matmul`` casts both operands to that type: a float64
  cell run by ``rnn`` (a mask given, or ``use_cudnn=False``) multiplies in
  float32, and only the bias add (``ops.add``, torch's promotion) comes
  back to float64; with ``implementation=1``, ``x_i += b_i`` stays float32
  and so do the gates.  On JAX, ``ops.tanh`` casts its input to that type:
  tanh -- the activation most LSTMs use -- runs in float32 inside a float64
  layer.  ``_fallback_lstm`` calls ``torch.matmul`` itself: float64 there.
  JAX and torch's ``gelu`` and ``leaky_relu`` take their constants
  (``1/sqrt(2)``, 0.2) in the input's dtype, where TF rounds them to
  float32 first (``lstm_ref/activations.py``).
* **float16 on torch**: each activation is evaluated in float32 and
  rounded once (torch's CPU kernels compute half in float, "opmath"), not
  op by op in half as Eigen does for TF.  JAX's XLA kernels are their own
  approximations (not modelled: measured, ``docs/backends.md``).

What a rule does not change: gate order, ``go_backwards`` (every backend
returns processing order), initial states, ``return_state``.
"""

from typing import NamedTuple

import numpy as np

from . import activations
from .errors import ConfigError, InputError
from .runner import is_right_padded

BACKENDS = ("tensorflow", "jax", "torch")


def backend_of(value, kind) -> str:
    if value not in BACKENDS:
        raise ConfigError(f"{kind}: config['backend'] must be one of {list(BACKENDS)}, got {value!r}")
    return value


def masked_output(backend, unroll) -> str:
    """What a masked step outputs: ``"previous"`` (the previous output, zeros
    before the first valid step) or ``"state"`` (the carried h: ``h0`` before
    the first valid step; JAX's ``lax.scan`` loop)."""
    return "state" if backend == "jax" and not unroll else "previous"


def zero_rule(backend, unroll, go_backwards, zero_output_for_mask):
    """How ``zero_output_for_mask`` acts: ``None`` (it does not),
    ``"processing"`` (zeros at the masked steps) or ``"input_order"`` (TF's
    unrolled loop: processing-order outputs zeroed with the unreversed mask)."""
    if not zero_output_for_mask:
        return None
    if unroll and backend == "jax":
        return None
    if unroll and go_backwards:
        return "input_order"
    return "processing"


def refuse_mask(backend, unroll, go_backwards, mask, kind):
    """The torch backend fails on any mask under ``unroll=True,
    go_backwards=True`` (module docstring): nothing to reproduce."""
    if backend == "torch" and unroll and go_backwards and mask is not None:
        raise InputError(
            f"{kind}: Keras 3.15's torch backend fails on a mask with unroll=True and go_backwards=True "
            "(keras/src/backend/torch/rnn.py: torch.flip on the tuple of torch.unbind, AttributeError); "
            "run it without unroll"
        )


def takes_fallback(backend, mask, use_cudnn, recurrent_dropout) -> bool:
    """Whether the torch backend runs ``_fallback_lstm`` (no mask, ``use_cudnn``
    not False, no recurrent dropout)."""
    return backend == "torch" and mask is None and use_cudnn != False and not recurrent_dropout  # noqa: E712


def matmul_in_float32(backend, compute, fallback) -> bool:
    """Whether the layer's matrix products run in float32 though it computes
    in float64 (torch's ``ops.matmul`` under ``rnn``)."""
    return backend == "torch" and compute == np.float64 and not fallback


def tolerance_dtype(backend, compute, activation_names, fallback) -> np.dtype:
    """The dtype whose tolerance a case is judged by: float32 for a float64
    layer that rounds to float32 inside (torch's matmul under ``rnn``, JAX's
    tanh), else the compute dtype."""
    if compute == np.float64 and (
        matmul_in_float32(backend, compute, fallback) or (backend == "jax" and "tanh" in activation_names)
    ):
        return np.dtype(np.float32)
    return np.dtype(compute)


def _tanh_in_float32(x, out=None):
    """JAX's ``ops.tanh`` on float64: the input cast to float32, tanh there."""
    if x.dtype == np.float64:
        return np.tanh(x.astype(np.float32)).astype(np.float64)
    return activations.tanh(x, out=out)


_tanh_in_float32.__name__ = "tanh"


def _gelu(x):
    """``jax.nn.gelu``/``torch.nn.functional.gelu`` (exact): 1/sqrt(2) in the input's dtype."""
    return np.asarray(0.5, x.dtype) * x * activations._erfc(-x * np.asarray(0.7071067811865476, x.dtype))


def _leaky_relu(x):
    """``jax.nn.leaky_relu``/``torch``'s: slope 0.2 in the input's dtype."""
    return np.maximum(x, np.asarray(0.2, x.dtype) * x)


_gelu.__name__, _leaky_relu.__name__ = "gelu", "leaky_relu"
_OWN_CONSTANTS = {activations.gelu: _gelu, activations.leaky_relu: _leaky_relu}


def _rounded_once(fn):
    """``fn`` on float16 evaluated in float32 and rounded once (torch)."""

    def once(x, out=None):
        if x.dtype == np.float16:
            with np.errstate(over="ignore", under="ignore"):
                return fn(x.astype(np.float32)).astype(np.float16)
        return fn(x)

    once.__name__ = fn.__name__
    return once


def activation(fn, backend, compute):
    """The activation ``fn`` (TF's, from :mod:`lstm_ref.activations`) as
    ``backend`` computes it in a layer that computes in ``compute``."""
    if backend == "tensorflow":
        return fn
    fn = _OWN_CONSTANTS.get(fn, fn)
    if backend == "jax" and compute == np.float64 and fn is activations.tanh:
        return _tanh_in_float32
    if backend == "torch" and compute == np.float16 and fn.__name__ not in TORCH_HALF_OP_BY_OP:
        return _rounded_once(fn)
    return fn


# torch float16 activations built from several torch ops, each rounding in
# half as TF's do (keras/src/backend/torch/nn.py): TF's op-by-op model is
# bitwise on all 63,488 finite halves where "rounded once" is not.
TORCH_HALF_OP_BY_OP = frozenset({"softsign", "sparse_plus", "squareplus", "tanh_shrink"})
# The rest, evaluated in float32 and rounded once, are bitwise torch's on
# every finite half but these: (worst ulps, values off), measured
# (docs/backends.md).  A float16 torch case using one makes no one-step claim.
TORCH_HALF_NOT_BITWISE = {"elu": (1, 1715), "gelu": (6, 576), "mish": (9, 12170), "selu": (2, 1630)}


# -- on a GPU (documented, not reproduced: docs/backends.md) --------------------------------------
#
# ``LSTM.inner_loop`` tries ``backend.lstm`` first; on a GPU each backend
# then takes its cuDNN path where ``cudnn_ok`` holds (tanh, sigmoid, no
# unroll, a bias; ``use_cudnn`` not False, no recurrent dropout):
#   * TF (``tensorflow/rnn.py``, ``_cudnn_lstm``): ``CudnnRNNV3`` with the
#     mask turned into sequence lengths -- right-padded masks only; padded
#     steps output zeros (the CPU loop repeats the previous output);
#   * JAX (``jax/rnn.py``, ``lstm``, keras PR #22399): ``jax.experimental.rnn.lstm``,
#     no mask at all (a mask falls back to ``rnn``); under ``go_backwards``
#     the returned sequence is flipped back to *input* order (the CPU loop
#     returns processing order);
#   * torch (``torch/rnn.py``, ``_cudnn_lstm``): ``torch._VF.lstm`` on CUDA,
#     no mask; processing order as on the CPU.
# None of them returns the per-step c, and cuDNN may compute float32 in
# TF32 (torch's ``cudnn.allow_tf32`` and JAX's default precision are on).


def cudnn_path(backend, *, mask, unroll, activation, recurrent_activation, use_bias, use_cudnn, recurrent_dropout):
    """Whether Keras on ``backend`` takes its cuDNN path on a GPU (the names
    of the activations are given: ``tanh``, ``sigmoid``)."""
    if use_cudnn is False or recurrent_dropout or unroll or not use_bias:
        return False
    if (activation, recurrent_activation) != ("tanh", "sigmoid"):
        return False
    if mask is None:
        return True
    return backend == "tensorflow" and bool(np.all(is_right_padded(mask)))  # masks as sequence lengths


def cudnn_output_order(backend, go_backwards) -> str:
    """The order of the sequence a cuDNN path returns: ``"input"`` for JAX
    under ``go_backwards`` (``jnp.flip`` of the outputs), else ``"processing"``."""
    return "input" if backend == "jax" and go_backwards else "processing"


# -- the findings, for the report and docs/findings.md --------------------------------------------


class Finding(NamedTuple):
    """One difference found: where, what, its source, the upstream issue."""

    id: str
    backend: str
    what: str
    source: str
    upstream: str


FINDINGS = tuple(
    Finding(*row)
    for row in (
        (
            "jax-masked-output",
            "jax",
            "a masked step outputs the carried h (lax.scan loop, unroll=False): h0 before a row's first valid "
            "step, where TF and torch output zeros; reproduced (masked_output 'state')",
            "keras/src/backend/jax/rnn.py, rnn(): _step, output_tm1 = states[0]",
            "to file: keras-team/keras, JAX rnn() masked output before the first valid step is h0, not zeros",
        ),
        (
            "jax-unroll-zero-output",
            "jax",
            "unroll=True ignores zero_output_for_mask (the previous output is repeated); reproduced",
            "keras/src/backend/jax/rnn.py, rnn(): unrolled masked branch, no zero_output_for_mask",
            "to file: keras-team/keras, JAX rnn(unroll=True) ignores zero_output_for_mask",
        ),
        (
            "unroll-go-backwards-zeroing",
            "tensorflow",
            "unroll=True, go_backwards=True, zero_output_for_mask=True zeroes the processing-order outputs "
            "with the unreversed mask (as tf_keras); reproduced -- the Keras 3 reference had taken unroll as inert",
            "keras/src/backend/tensorflow/rnn.py, rnn(): unrolled branch, tf.where(_expand_mask(mask, outputs))",
            "to file: keras-team/keras, unrolled rnn() zeroes go_backwards outputs with the unreversed mask",
        ),
        (
            "torch-unroll-go-backwards-mask",
            "torch",
            "unroll=True, go_backwards=True with any mask raises AttributeError ('tuple' object has no "
            "attribute 'shape'); the reference refuses the call (InputError)",
            "keras/src/backend/torch/rnn.py, rnn(): torch.flip(mask_list, dims=mask_list.shape) on a tuple",
            "to file: keras-team/keras, torch rnn(unroll=True, go_backwards=True) fails on a mask",
        ),
        (
            "torch-fallback-bias-first",
            "torch",
            "without a mask (use_cudnn not False, no recurrent dropout) the CPU runs _fallback_lstm: the bias is "
            "added to the input projection before the recurrent term whatever implementation says; reproduced",
            "keras/src/backend/torch/rnn.py, lstm() and _fallback_lstm()",
            "keras#22274 / PR #22470 (the torch LSTM's cuDNN and CPU fallback paths)",
        ),
        (
            "float64-as-float32",
            "jax, torch",
            "result_type maps float64 to float32 off TF: on torch ops.matmul multiplies a float64 cell in "
            "float32 under rnn() (a mask, or use_cudnn=False); on JAX ops.tanh computes in float32; reproduced, "
            "judged by float32's tolerance",
            "keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE; torch/numpy.py matmul(); jax/numpy.py tanh()",
            "keras#20804 (backend numerics 'within about 1e-7'); keras#22697 (TF vs torch losses): to file",
        ),
        (
            "float64-constants",
            "jax, torch",
            "gelu and leaky_relu take 1/sqrt(2) and 0.2 in float64 (TF rounds them to float32 first, 5e-9 off); "
            "reproduced",
            "jax.nn.gelu / torch.nn.functional.gelu; TF: tensorflow/python/ops/nn_ops.py gelu",
            "keras#20804",
        ),
        (
            "float16-activations",
            "torch",
            "half activations are evaluated in float32 and rounded once (TF: op by op in half), except softsign, "
            "sparse_plus, squareplus, tanh_shrink (several torch ops); elu, gelu, mish, selu are not modelled "
            "bitwise (no one-step claim); reproduced",
            "keras/src/backend/torch/nn.py; torch's CPU half kernels compute in float (opmath)",
            "keras#20804",
        ),
        (
            "jax-float16",
            "jax",
            "XLA's half kernels (tanh, logistic, fused products) are its own: 57-61% of one-step values not "
            "bitwise the reference; within 5e-3 free-running (worst 1.7e-3), no one-step claim",
            "XLA CPU; keras/src/backend/jax/nn.py",
            "keras#20804",
        ),
        (
            "jax-bidirectional-return-state",
            "jax",
            "Bidirectional(LSTM(return_state=True)) builds, saves and runs on JAX in Keras 3.15.1; every "
            "direction and the merge check against the reference",
            "keras/src/layers/rnn/bidirectional.py",
            "keras#18861 (fixed)",
        ),
        (
            "jax-cudnn-go-backwards",
            "jax (GPU)",
            "the cuDNN path (no mask, tanh/sigmoid, a bias, no unroll) returns the go_backwards sequence in input "
            "order (the CPU: processing order) and no per-step c; shown through a fake GPU, not reproduced",
            "keras/src/backend/jax/rnn.py, lstm(): jnp.flip(outputs, axis=1)",
            "keras PR #22399 (adds the path): to file",
        ),
        (
            "gpu-masks",
            "tensorflow, jax, torch (GPU)",
            "masks on the cuDNN paths: TF takes right-padded masks as sequence lengths and outputs zeros past a "
            "row's length (the CPU repeats the previous output); JAX and torch fall back to rnn() on any mask",
            "keras/src/backend/{tensorflow,jax,torch}/rnn.py, lstm()",
            "keras PR #22399; keras#22274",
        ),
    )
)
