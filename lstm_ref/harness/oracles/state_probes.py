"""Per-step gradients from inside a framework's recurrent loop.

``tf.GradientTape`` cannot watch the states a ``while`` loop carries, so a
worker reads dL/dh_t and dL/dc_t another way: it runs the real cell again,
wrapped so that its new state is ``(h + e_h, c + e_c)`` with the zero
perturbations ``e`` read from extra input columns, and takes dL/de.  Adding
a zero changes no bit of the forward; dL/de at step t is dL/d(the state the
cell computes at step t), c's with that step's h held (the perturbation is
added after the cell computed h from c).  The wrapped run's dL/dx must equal
the real layer's bitwise (the workers check it), so the probe differentiates
the same computation.

Framework-agnostic over the module it is given (as ``traced.py``): TF 1's
``dynamic_rnn`` cells here (the TF1 and contrib workers, TF 2.21), and
Keras 2 RNN cells (tf_keras 2.21, Keras 2.15 under tfa).  The Keras 3
worker has its own (``keras3_worker._PerturbedState``).
"""


class TF1PerturbedState:
    """A cell for ``tf.compat.v1.nn.dynamic_rnn`` (duck-typed: ``state_size``,
    ``output_size``, ``zero_state``, ``__call__``) over ``cell`` (a TF1
    ``RNNCell``, or contrib's port) whose inputs are ``concat([x, e_h,
    e_c])``: it returns ``m + e_h`` and the state ``(c + e_c, m + e_h)``.
    TF1 cells output their new h (``m``, projected where the cell projects),
    so the output and the state's h move together."""

    def __init__(self, tf, cell, features):
        self._tf, self._cell, self._features = tf, cell, features

    @property
    def state_size(self):
        return self._cell.state_size

    @property
    def output_size(self):
        return self._cell.output_size

    def zero_state(self, batch_size, dtype):
        return self._cell.zero_state(batch_size, dtype)

    def __call__(self, inputs, state, scope=None):
        d, width = self._features, self._cell.state_size.h
        m, new = self._cell(inputs[:, :d], state)
        h = m + inputs[:, d : d + width]
        c = new.c + inputs[:, d + width :]
        return h, self._tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c, h)


def keras2_perturbed_state(layers, cell, features, **kwargs):
    """A Keras 2 layer (``layers`` is ``tf_keras.layers`` or Keras 2.15's
    ``tf.keras.layers``) wrapping the built ``cell`` for ``layers.RNN``: its
    input is ``concat([x, e_h, e_c])`` and its new state ``(h + e_h, c +
    e_c)``, its output ``h + e_h``."""

    class PerturbedState(layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.cell = cell
            self.state_size = cell.state_size
            self.output_size = cell.units

        def build(self, input_shape):
            self.built = True

        def call(self, inputs, states, training=None):
            units = self.cell.units
            h, (_, c) = self.cell(inputs[:, :features], states, training=training)
            h = h + inputs[:, features : features + units]
            c = c + inputs[:, features + units :]
            return h, [h, c]

        def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
            return self.cell.get_initial_state(inputs=inputs, batch_size=batch_size, dtype=dtype)

    return PerturbedState(**kwargs)
