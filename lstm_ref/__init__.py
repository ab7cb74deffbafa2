"""lstm_ref: NumPy LSTMs that reproduce TensorFlow's, step by step.

    >>> import lstm_ref
    >>> ref = lstm_ref.from_config("keras.layers.LSTM", {"units": 5})
    >>> trace = ref.run(x, weights)          # weights keyed by TF variable name
    >>> trace.h, trace.c, trace.final_h, trace.final_c

``lstm_ref.KINDS`` lists the TF classes covered.  This package is the core:
it needs NumPy (and SciPy for exact gelu) and nothing else.  Everything that
talks to a framework lives in :mod:`lstm_ref.harness`.

The families are loaded on first use, so that importing a submodule (an
oracle worker imports ``lstm_ref.harness.oracles.protocol`` and nothing
else) does not load them.
"""

from .errors import ConfigError, FixtureError, InputError, LstmRefError, WeightError

__all__ = [
    "KINDS",
    "Case",
    "ConfigError",
    "FixtureError",
    "InputError",
    "LstmRefError",
    "Reference",
    "Trace",
    "WeightError",
    "from_config",
]
__version__ = "0.3.0"


def __getattr__(name):
    if name in ("from_config", "REGISTRY", "Reference", "load_families"):
        from . import reference

        reference.load_families()
        return getattr(reference, name)
    if name == "KINDS":
        from .reference import load_families

        return tuple(sorted(load_families()))
    if name == "Trace":
        from .trace import Trace

        return Trace
    if name == "Case":
        from .case import Case

        return Case
    raise AttributeError(f"module 'lstm_ref' has no attribute {name!r}")
