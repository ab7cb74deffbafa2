"""Golden cases: named, seeded, tiny inputs whose expected outputs come from
the real frameworks and are stored under ``fixtures/``.

Each kind's slice (``lstm_ref/harness/kinds/<id>.py``) holds its ``@golden``
cases (``lstm_ref.harness.records.golden_cases()`` gathers them);
``store.py`` writes and verifies the files; ``python -m
lstm_ref.harness.golden`` regenerates.
"""

from .case import CASES, golden  # noqa: F401
