"""lstm_ref: NumPy LSTMs that reproduce TensorFlow's, step by step.

    >>> import lstm_ref
    >>> ref = lstm_ref.from_config("keras.layers.LSTM", {"units": 5})
    >>> trace = ref.run(x, weights)          # weights keyed by TF variable name
    >>> trace.h, trace.c, trace.final_h, trace.final_c

``lstm_ref.KINDS`` lists the TF classes covered.
"""

from . import keras_lstm  # noqa: F401  (each family module registers its kinds)

for _family in ("tf1_cells", "layer_norm_cells"):
    try:
        __import__(f"{__name__}.{_family}")
    except ModuleNotFoundError as _exc:  # a family not written yet
        if _exc.name != f"{__name__}.{_family}":
            raise
from .errors import ConfigError, FixtureError, InputError, LstmRefError, WeightError
from .reference import REGISTRY, Reference, from_config
from .trace import Trace

KINDS = tuple(sorted(REGISTRY))

__all__ = [
    "KINDS", "ConfigError", "FixtureError", "InputError", "LstmRefError", "Reference",
    "Trace", "WeightError", "from_config",
]
__version__ = "0.1.0"
