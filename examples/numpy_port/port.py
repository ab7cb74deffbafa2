"""A small NumPy port of ``keras.layers.LSTM`` (Keras 3), as a user might
write one -- with one deliberate, realistic bug.

Scope: float32, ``activation="tanh"``, ``recurrent_activation="sigmoid"``,
with or without a bias, an optional initial state, no mask, forward in
time.  Weights as Keras holds them: ``kernel`` (features, 4 units),
``recurrent_kernel`` (units, 4 units), ``bias`` (4 units,), their gate
blocks in the order i, f, c, o (``keras/src/layers/rnn/lstm.py``,
``LSTMCell.call``)::

    z = x_t @ kernel + h @ recurrent_kernel + bias
    i = sigmoid(z_i)   f = sigmoid(z_f)   o = sigmoid(z_o)
    c = f * c_prev + i * tanh(z_c)        h = o * tanh(c)

The bug: :func:`lstm_forward` reads the blocks in TF1's order i, j, f, o
(``BasicLSTMCell``, where j is the candidate), i.e. the forget and cell
blocks swapped -- what a port copied from a TF1 tutorial does.
:func:`lstm_forward_fixed` reads them in Keras' order.
"""

import numpy as np

KERAS_GATES = ("i", "f", "c", "o")
TF1_GATES = ("i", "c", "f", "o")  # TF1's i, j, f, o: j is the cell candidate


def sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) is inf below z = -88 (float32): 1 / inf is the right 0
        return 1 / (1 + np.exp(-z))


def _forward(gate_order, x, kernel, recurrent_kernel, bias=None, h0=None, c0=None):
    batch, time, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units), x.dtype) if h0 is None else h0
    c = np.zeros((batch, units), x.dtype) if c0 is None else c0
    hs, cs = [], []
    for t in range(time):
        z = x[:, t] @ kernel + h @ recurrent_kernel
        if bias is not None:
            z = z + bias
        gate = dict(zip(gate_order, np.split(z, 4, axis=-1)))
        c = sigmoid(gate["f"]) * c + sigmoid(gate["i"]) * np.tanh(gate["c"])
        h = sigmoid(gate["o"]) * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return {"h": np.stack(hs, axis=1), "c": np.stack(cs, axis=1), "final_h": h, "final_c": c}


def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None):
    """The port as first written (the bug: gate blocks in TF1's order).
    Returns ``{"h", "c"}`` per step, (batch, time, units), and
    ``{"final_h", "final_c"}``, (batch, units)."""
    return _forward(TF1_GATES, x, kernel, recurrent_kernel, bias, h0, c0)


def lstm_forward_fixed(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None):
    """The port with the gate blocks in Keras' order i, f, c, o."""
    return _forward(KERAS_GATES, x, kernel, recurrent_kernel, bias, h0, c0)
