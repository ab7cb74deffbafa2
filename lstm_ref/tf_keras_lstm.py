"""``tf_keras.layers.LSTM`` (Keras 2, tf_keras 2.21 under ``TF_USE_LEGACY_KERAS=1``)
on the CPU, in NumPy.

Sources (tf_keras 2.21): ``tf_keras/src/layers/rnn/lstm.py`` (``LSTMCell``,
``LSTM.__init__``/``LSTM.call``, ``standard_lstm``), ``base_rnn.py``
(``RNN``), ``backend.py`` (``rnn``, ``hard_sigmoid``), ``activations.py``
(``get``).  Every point below was checked by running TF 2.21 / tf_keras 2.21
on the CPU, eagerly (``tf.function`` and ``Model.predict`` gave the same bits
as eager on the ``standard_lstm`` path).

Code paths.  ``LSTM.__init__`` sets ``_could_use_gpu_kernel`` when
activation is tanh, recurrent_activation is sigmoid, ``recurrent_dropout ==
0``, ``not unroll`` and ``use_bias``.  Then ``LSTM.call`` runs
``standard_lstm`` on the CPU (cuDNN only with a GPU); otherwise it runs the
layer's own ``LSTMCell.call`` through ``backend.rnn``.  Both do, per step,
``z = dot(x, kernel); z += dot(h, recurrent_kernel); z = bias_add(z, bias)``
-- the bias is added last -- with masking done by the same ``backend.rnn``.
They differ in one respect only:

  * ``standard_lstm`` has no ``implementation`` argument: on that path
    ``implementation=1`` computes exactly what 2 does (bitwise, measured).
    On the cell path ``implementation=1`` splits the kernels per gate and
    adds the bias *before* the recurrent term, ``(x k_g + b_g) + h r_g``
    (``LSTMCell.call``, ``if self.implementation == 1``); it differs from 2
    by an ulp, never by more;
  * any ``implementation`` other than 1 -- 0 included -- takes the fused
    branch of ``LSTMCell.call`` (``else:``), although ``LSTM.__init__`` logs
    that 0 "defaults to 1" (only ``LSTM.from_config`` maps 0 to 1; this
    reference, like the oracle, mirrors the constructor).  Measured: 0 equals
    2 bitwise on the cell path.  ``recurrent_dropout != 0`` forces 1
    (``LSTMCell.__init__``).

Everything else, checked against TF:
  * gate order in kernel columns is i, f, c, o; weights are ``kernel``
    (features, 4u), ``recurrent_kernel`` (u, 4u) and ``bias`` (4u,) when
    ``use_bias``;
  * masking (``backend.rnn``): a masked step keeps the carried (h, c) and
    outputs the previous step's *output* -- zeros before the first valid
    step, even with a non-zero ``h0`` (``flat_zero_output``) -- or zeros
    with ``zero_output_for_mask=True`` (an ``RNN`` kwarg that ``LSTM``
    forwards).  Same on both paths and with ``unroll``; left padding, holes
    and a fully masked row (final state = ``h0``/``c0``, outputs all zero)
    all measured;
  * ``go_backwards=True``: processed in reverse, the mask reversed with the
    input, and the sequence is returned in processing (reversed) order;
  * one TF bug is reproduced: ``unroll=True`` with ``go_backwards=True``
    and ``zero_output_for_mask=True`` zeroes the (processing-order) outputs
    with the *unreversed* mask (``backend.rnn``, unrolled branch: ``outputs
    = tf.where(_expand_mask(mask, outputs, fixed_dim=2), ...)`` uses
    ``mask``, while the steps used the reversed ``mask_list``).  A masked
    step whose mirror is valid keeps the previous output, and a valid step
    whose mirror is masked outputs zeros.  Measured on both activations;
  * ``time_major`` only transposes (measured bitwise); TF then takes the
    mask as (time, batch).  This reference, and the oracle wire, always use
    batch-major x and (batch, time) masks;
  * ``unroll`` changes only the code path (see above): the unrolled Python
    loop computes the same bits as the while loop;
  * ``unit_forget_bias`` only shapes the initial bias
    (``LSTMCell.build``); ``dropout``/``recurrent_dropout`` multiply by
    ones at inference (exact), apart from the implementation switch above;
  * activations are resolved by ``tf_keras.activations.get``: ``None`` is
    *linear* (unlike the legacy TF1 cells, where a falsy activation is
    tanh); ``hard_sigmoid`` is Keras 2's ``clip(0.2 x + 0.5, 0, 1)``
    (``backend.hard_sigmoid``); Keras-3-only names (``hard_tanh``,
    ``celu``, ``hard_silu``, ...) are unknown to tf_keras;
  * dtype policies: ``float16``/``float64`` keep variables and compute in
    that dtype; ``mixed_float16`` keeps float32 variables, read as float16
    (autocast, also on the ``standard_lstm`` path).  ``get_config()`` gives
    ``"float32"`` for plain policies and ``{"class_name": "Policy",
    "config": {"name": "mixed_float16"}, ...}`` for mixed ones.  TF rejects
    initial states that are not in the compute dtype (a float32 ``h0`` on a
    mixed_float16 layer: ``InvalidArgumentError`` in MatMul); this reference
    rounds them to it, which is what TF computes from such rounded states;
  * ``stateful=True`` is refused (the reference has no memory between
    calls).  ``return_sequences``/``return_state`` do not change the numbers
    (the trace has them all); names, initializers, regularizers,
    constraints, ``activity_regularizer``, ``enable_caching_device`` and
    ``batch_input_shape`` (emitted by ``get_config()`` of a layer built with
    ``input_shape``) are inert.
"""

import numpy as np

from . import activations
from .errors import ConfigError
from .keras_lstm import KERAS_LSTM_VARIANTS, KerasLSTM
from .reference import KERAS_CELL_INERT, register
from .variants import Variant, activation_read_as, has_partial_mask, mask_output_flipped


@register
class TfKerasLSTM(KerasLSTM):
    """Keras 3's recurrence and weights (``KerasLSTM.recurrence``: ``z = (x_t
    @ kernel + h @ recurrent_kernel) + bias``, gate order i, f, c, o, with
    ``implementation=1`` adding the bias first), which is also what
    ``standard_lstm``'s ``step`` and ``LSTMCell.call``'s fused branch do
    (both call ``tf.sigmoid``/``tf.tanh``, the ops tf_keras' ``sigmoid`` and
    ``tanh`` end in); what differs is configured here: Keras 2 activations,
    which code path honours ``implementation``, and TF's unrolled masking
    bug (module docstring)."""

    kind = "tf_keras.layers.LSTM"
    OPTIONS = {
        "units": None,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "go_backwards": False,
        "zero_output_for_mask": False,  # an RNN kwarg that LSTM forwards
        "implementation": 2,  # 1 adds the bias before the recurrent term, off the standard_lstm path only
        "unroll": False,  # picks the code path, hence whether implementation counts
        "dtype": None,
    }
    INERT = KERAS_CELL_INERT | {
        "return_sequences",
        "return_state",
        "time_major",
        "stateful",
        "activity_regularizer",
        "enable_caching_device",
        "batch_input_shape",
    }
    REFUSED = {"stateful": KerasLSTM.REFUSED["stateful"]}

    def _configure(self, options):
        self._configure_layer(options)
        self.unroll = self._bool("unroll")
        for key in ("time_major", "return_sequences", "return_state"):
            value = self.config.get(key, False)
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{self.kind}: config[{key!r}] must be True or False, got {value!r}")
        implementation = options["implementation"]
        if isinstance(implementation, (bool, np.bool_)) or implementation not in (0, 1, 2):
            raise ConfigError(f"{self.kind}: config['implementation'] must be 0, 1 or 2, got {implementation!r}")
        self._dropout_rates()
        recurrent_dropout = self.config.get("recurrent_dropout", 0)
        # LSTM.__init__'s _could_use_gpu_kernel: then standard_lstm, always fused.
        self.standard_path = (
            self.activation is activations.tanh
            and self.recurrent_activation is activations.sigmoid
            and recurrent_dropout == 0
            and not self.unroll
            and self.use_bias
        )
        # LSTMCell.__init__ forces 1 under recurrent dropout; LSTMCell.call fuses unless == 1.
        cell_implementation = 1 if (recurrent_dropout != 0 or implementation == 1) else 2
        self.implementation = 2 if self.standard_path else cell_implementation
        # backend.rnn, unrolled: outputs zeroed with the unreversed mask (module docstring).
        self.zero_by_unreversed_mask = self.unroll and self.go_backwards and self.zero_output_for_mask
        if self.zero_by_unreversed_mask:
            self.zero_output_for_mask = False  # the steps chain previous outputs; run() zeroes after

    # Reference.grad: KerasLSTM's grad_cell (implementation 0/1/2 and the two
    # code paths only move the bias, the same gradient); Keras 2's hard_sigmoid
    # has its own derivative (activations.py).
    GRAD = True

    def _grad_output_rule(self, fields, up, mask):
        """TF's unrolled go_backwards bug, differentiated: the output zeroed
        by the unreversed mask after the steps takes no gradient there."""
        if not self.zero_by_unreversed_mask or mask is None:
            return fields, up
        keep = mask[..., None]
        fields = {**fields, "h": np.where(keep, fields["h"], 0.0)}
        if "h" in up:
            up = {**up, "h": np.where(keep, up["h"], 0.0)}
        return fields, up

    def resolve_activation(self, name, role):
        """``tf_keras.activations.get``: ``None`` is linear, ``hard_sigmoid``
        is Keras 2's, Keras-3-only names are unknown."""
        return activations.get_keras2(name, role=role, platform=self.platform)

    def run(self, x, weights, *, mask=None, oracle=False, **initial_state):
        trace = super().run(x, weights, mask=mask, oracle=oracle, **initial_state)
        if not self.zero_by_unreversed_mask or mask is None:
            return trace
        # TF's unrolled go_backwards bug: processing-order outputs, input-order mask.
        m = self._mask(mask, *trace.h.shape[:2])
        return trace.replace(h=np.where(m[..., None], trace.h, np.zeros((), trace.h.dtype)))


# -- wrong ports this kind is confused with (the report's discrimination column)


class _UnrollBugIgnored(TfKerasLSTM):
    """A port that zeroes masked outputs in processing order under unroll +
    go_backwards, as the while loop does (i.e. without TF's bug)."""

    def _configure(self, options):
        super()._configure(options)
        if self.zero_by_unreversed_mask:
            self.zero_by_unreversed_mask, self.zero_output_for_mask = False, True


class _ImplementationAlwaysHonoured(TfKerasLSTM):
    """A port that adds the bias first with implementation=1 even on the
    standard_lstm path (which has no implementation switch)."""

    def _configure(self, options):
        super()._configure(options)
        if self.standard_path and options["implementation"] == 1:
            self.implementation = 1


class _ImplementationZeroIsOne(TfKerasLSTM):
    """A port that believes LSTM's warning: implementation=0 "defaults to 1"."""

    def _configure(self, options):
        super()._configure(options)
        if not self.standard_path and options["implementation"] == 0:
            self.implementation = 1


_SHARED = {v.name: v for v in KERAS_LSTM_VARIANTS}

TF_KERAS_LSTM_VARIANTS = tuple(
    _SHARED[name]
    for name in (
        "gate order i,f,o,c",
        "gate order i,c,f,o (TF1's i,j,f,o)",
        "forget bias +1 at run time (TF1 habit)",
        "go_backwards output flipped back",
        "mask ignored",
        "h0 as the output before the first valid step",
        "tanh in place of the configured activation",
    )
) + (
    Variant(
        "Keras 3 hard_sigmoid",
        reference=activation_read_as(TfKerasLSTM, "hard_sigmoid", activations.hard_sigmoid),
        applies=lambda case: (
            "hard_sigmoid"
            in (case.config.get("activation", "tanh"), case.config.get("recurrent_activation", "sigmoid"))
        ),
    ),
    Variant(
        "activation=None as tanh (TF1 cells' rule)",
        reference=activation_read_as(TfKerasLSTM, None, activations.tanh),
        applies=lambda case: (
            None in (case.config.get("activation", "tanh"), case.config.get("recurrent_activation", "sigmoid"))
        ),
    ),
    Variant("mask zeroes the output", applies=has_partial_mask, reference=mask_output_flipped(TfKerasLSTM)),
    Variant(
        "unrolled go_backwards zeroing without TF's bug",
        reference=_UnrollBugIgnored,
        applies=lambda case: (
            has_partial_mask(case)
            and all(case.config.get(k, False) for k in ("unroll", "go_backwards", "zero_output_for_mask"))
        ),
    ),
    Variant(
        "implementation=1 honoured on the standard_lstm path",
        reference=_ImplementationAlwaysHonoured,
        applies=lambda case: case.config.get("implementation", 2) == 1,
    ),
    Variant(
        "implementation=0 taken as 1",
        reference=_ImplementationZeroIsOne,
        applies=lambda case: case.config.get("implementation", 2) == 0,
    ),
)
