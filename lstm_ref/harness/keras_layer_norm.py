"""Layer-norm LSTM cells for Keras 3, built from ``keras.layers.LayerNormalization``.

For users on Keras 3, where neither ``tf.contrib`` nor tensorflow-addons
exists.  Two cells, one per semantics (see ``lstm_ref/layer_norm_cells.py``
for the sources they follow):

``ContribLayerNormLSTMCell``
    ``tf.contrib.rnn.LayerNormBasicLSTMCell``: one kernel over
    ``concat([x, h])``, gate order i, j, f, o, no bias, *each* gate block
    normalised separately, ``forget_bias`` added inside the sigmoid, the new
    ``c`` normalised; epsilon 1e-12 (1e-3 for float16).

``TfaLayerNormLSTMCell``
    ``tfa.rnn.LayerNormLSTMCell``: gate order i, f, c, o, ``x @ kernel`` and
    ``h @ recurrent_kernel`` each normalised *jointly* over all four gates,
    the bias added after the norms, the new ``c`` normalised;
    ``norm_epsilon`` default 1e-3.

Both run under ``keras.layers.RNN`` and return ``h, [h, c]``.  Weights can
be loaded from a dict keyed like the original checkpoints with
:func:`assign_weights` (``kernel``, ``input/gamma``, ...; ``kernel``,
``kernel_norm/gamma``, ...).  Keras 3's layer norm differs from TF 1.x's
``batch_normalization`` form and from Keras 2's fused kernel only in
rounding.  Pure Keras: no NumPy reference here.
"""

import keras
from keras import ops

CONTRIB_NORMS = ("input", "transform", "forget", "output", "state")


def _contrib_epsilon(dtype_policy):
    # contrib/layers/python/layers/layers.py: 1e-12 unless float16
    return 1e-3 if dtype_policy.compute_dtype == "float16" else 1e-12


class ContribLayerNormLSTMCell(keras.layers.Layer):
    """``tf.contrib.rnn.LayerNormBasicLSTMCell`` (layer_norm=True) in Keras 3."""

    def __init__(self, units, forget_bias=1.0, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.forget_bias = forget_bias
        self.activation = keras.activations.get(activation)
        self.state_size = [units, units]
        self.output_size = units
        eps = _contrib_epsilon(self.dtype_policy)
        self.norms = {
            scope: keras.layers.LayerNormalization(axis=-1, epsilon=eps, dtype=self.dtype_policy, name=scope)
            for scope in CONTRIB_NORMS
        }

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1] + self.units, 4 * self.units), name="kernel")
        for norm in self.norms.values():
            norm.build((None, self.units))

    def call(self, inputs, states, training=False):
        h, c = states
        z = ops.matmul(ops.concatenate([inputs, h], axis=-1), self.kernel)
        i, j, f, o = ops.split(z, 4, axis=-1)
        i = self.norms["input"](i)
        j = self.norms["transform"](j)
        f = self.norms["forget"](f)
        o = self.norms["output"](o)
        new_c = c * ops.sigmoid(f + self.forget_bias) + ops.sigmoid(i) * self.activation(j)
        new_c = self.norms["state"](new_c)
        new_h = self.activation(new_c) * ops.sigmoid(o)
        return new_h, [new_h, new_c]

    def named_weights(self):
        out = {"kernel": self.kernel}
        for scope, norm in self.norms.items():
            out[f"{scope}/gamma"] = norm.gamma
            out[f"{scope}/beta"] = norm.beta
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "forget_bias": self.forget_bias,
            "activation": keras.activations.serialize(self.activation),
        }


class TfaLayerNormLSTMCell(keras.layers.Layer):
    """``tfa.rnn.LayerNormLSTMCell`` in Keras 3."""

    def __init__(
        self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True, norm_epsilon=1e-3, **kwargs
    ):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.norm_epsilon = norm_epsilon
        self.state_size = [units, units]
        self.output_size = units
        self.kernel_norm, self.recurrent_norm, self.state_norm = (
            keras.layers.LayerNormalization(axis=-1, epsilon=norm_epsilon, dtype=self.dtype_policy, name=name)
            for name in ("kernel_norm", "recurrent_norm", "state_norm")
        )

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 4 * u), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * u,), name="bias", initializer="zeros") if self.use_bias else None
        self.kernel_norm.build((None, 4 * u))
        self.recurrent_norm.build((None, 4 * u))
        self.state_norm.build((None, u))

    def call(self, inputs, states, training=False):
        h, c = states
        z = self.kernel_norm(ops.matmul(inputs, self.kernel))
        z = z + self.recurrent_norm(ops.matmul(h, self.recurrent_kernel))
        if self.use_bias:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        new_c = f * c + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        new_c = self.state_norm(new_c)
        new_h = o * self.activation(new_c)
        return new_h, [new_h, new_c]

    def named_weights(self):
        out = {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel}
        if self.use_bias:
            out["bias"] = self.bias
        for norm in (self.kernel_norm, self.recurrent_norm, self.state_norm):
            out[f"{norm.name}/gamma"] = norm.gamma
            out[f"{norm.name}/beta"] = norm.beta
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "norm_epsilon": self.norm_epsilon,
        }


def assign_weights(cell, weights):
    """Load ``weights`` (a dict keyed by the original TF variable names, the
    same keys ``lstm_ref`` uses) into a built cell.  Names must match exactly."""
    variables = cell.named_weights()
    if sorted(weights) != sorted(variables):
        raise ValueError(f"weights {sorted(weights)} do not match the cell's {sorted(variables)}")
    for name, var in variables.items():
        var.assign(ops.cast(weights[name], var.dtype))
