"""A custom LSTM with a bug, as a user's model may hold one: ``lstm-ref
check`` must fail on it and name the layer (``test_check_command.py``).

Imported only by the worker that loads the model (``--custom-objects``)
and by the script that saves it, never by the test process.
"""

import keras


@keras.saving.register_keras_serializable(package="lstm_parity_tests")
class LeakyLSTM(keras.layers.LSTM):
    """A port with a bug: the output it returns leaks 1% (it is not what
    keras.layers.LSTM computes with the same config and weights)."""

    def call(self, sequences, initial_state=None, mask=None, training=False):
        out = super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        if isinstance(out, (list, tuple)):
            return [out[0] * 0.99, *out[1:]]
        return out * 0.99
