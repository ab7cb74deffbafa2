"""Golden cases: named, seeded, tiny inputs whose expected outputs come from
the real frameworks and are stored under ``fixtures/``.

One module of cases per cell family (``keras_cases.py``, ...); ``store.py``
writes and verifies the files; ``python -m lstm_ref.harness.golden`` regenerates.
"""

from .case import CASES, golden  # noqa: F401


def load_all_cases():
    """Import every record's case module so that its ``@golden`` functions register."""
    import importlib

    from ..records import RECORDS

    for module in sorted({record.goldens for record in RECORDS}):
        importlib.import_module(f"{__name__}.{module}")
    return CASES
