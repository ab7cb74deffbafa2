"""Golden cases: named, seeded, tiny inputs whose expected outputs come from
the real frameworks and are stored under ``fixtures/``.

One module of cases per cell family (``keras_cases.py``, ...); ``store.py``
writes and verifies the files; ``python -m lstm_ref.golden`` regenerates.
"""

from .case import CASES, Case, golden  # noqa: F401


def load_all_cases():
    """Import every case module so that its ``@golden`` functions register."""
    from . import keras_cases  # noqa: F401

    for optional in ("tf1_cases", "layer_norm_cases"):
        try:
            __import__(f"{__name__}.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{optional}":
                raise
    return CASES
