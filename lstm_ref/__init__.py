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

import importlib
import pkgutil

from .errors import ConfigError, FixtureError, InputError, LstmRefError, WeightError

__all__ = [
    "KINDS", "Case", "ConfigError", "FixtureError", "InputError", "LstmRefError", "Reference", "Trace",
    "WeightError", "from_config",
]
__version__ = "0.3.0"

# Modules of the core that are not cell families; every other module of this
# package is a family, and registers its kinds with ``@register`` on import.
_INFRASTRUCTURE = {"activations", "case", "convert", "dtypes", "errors", "faults", "platform", "reference", "runner",
                   "stacked", "trace", "variants"}


def load_families():
    """Import every family module (a failing one raises) and return the registry."""
    from .reference import REGISTRY

    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg and not info.name.startswith("_") and info.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def __getattr__(name):
    if name in ("from_config", "REGISTRY", "Reference"):
        load_families()
        from . import reference

        return getattr(reference, name)
    if name == "KINDS":
        return tuple(sorted(load_families()))
    if name == "Trace":
        from .trace import Trace

        return Trace
    if name == "Case":
        from .case import Case

        return Case
    raise AttributeError(f"module 'lstm_ref' has no attribute {name!r}")
