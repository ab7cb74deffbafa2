"""The golden-case registry: ``@golden(id)`` functions returning a
:class:`~lstm_ref.case.Case`."""

from ...case import Case, one_hot_the_mice_had, per_gate  # noqa: F401  (what case modules build with)

CASES: dict = {}


def golden(name: str):
    """Register ``fn() -> Case`` under the unique id ``name``."""

    def register(fn):
        if name in CASES:
            raise ValueError(f"duplicate golden case id {name!r}")
        CASES[name] = fn
        fn.case_id = name
        return fn

    return register
