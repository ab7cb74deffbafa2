"""The pytest plugin: test your own LSTM against lstm_ref, in your own CI.

Installed with lstm-parity (the ``pytest11`` entry point ``lstm_ref``), so
it is active in every pytest run of that environment.  It ships fixtures,
strategies and a marker, never test functions, and it leaves alone every
test that uses none of them.  It needs NumPy, Hypothesis and pytest: no
framework is imported and no oracle worker is started (the reference plays
the oracle).

- :func:`cases` -- a Hypothesis strategy of :class:`~lstm_ref.case.Case`
  for a kind: the project's own strategy for it, or a fixed config (your
  port's scope) with drawn arrays; filters for dtype, sizes, mask, state.
- ``lstm_reference`` -- fixture: ``lstm_reference(case)`` is the reference's
  :class:`~lstm_ref.trace.Trace` of the case.
- ``assert_lstm_parity`` -- fixture: ``assert_lstm_parity(case, outputs)``
  compares your outputs with the reference by the project's own comparison
  and tolerance table (:func:`lstm_ref.harness.compare.assert_run_parity`).
- ``@pytest.mark.lstm_parity(kind=...)`` declares the kind a test checks;
  ``--lstm-parity-examples N`` sets Hypothesis' ``max_examples`` for the
  tests that carry it.

The building blocks are here too: :func:`~lstm_ref.case.build_weights`
(weights from a reference's own shapes, every gate block at its own scale)
and :func:`~lstm_ref.case.make_mask` (NumPy), and the Hypothesis strategies
``gate_blocks``, ``masks`` and ``initial_states``
(:mod:`lstm_ref.harness.strategies`, imported on first use).

Hypothesis is imported on first use, not here: this module is loaded by
every pytest run in an environment where lstm-parity is installed, and the
package itself needs NumPy and SciPy only.
"""

import contextvars

import pytest

from lstm_ref.case import build_weights, make_mask, per_gate
from lstm_ref.errors import ConfigError, LstmRefError

__all__ = [
    "build_weights",
    "cases",
    "check_parity",
    "gate_blocks",
    "initial_states",
    "make_mask",
    "masks",
    "per_gate",
    "record_for",
]

_STRATEGY_BLOCKS = ("gate_blocks", "masks", "initial_states")

# The kind declared by the lstm_parity marker of the test now running (None
# outside one): the fixtures are session-scoped, so that a @given test can
# use them, and cannot read the marker of their caller themselves.
_DECLARED_KIND = contextvars.ContextVar("lstm_parity_kind", default=None)


def __getattr__(name):
    """The Hypothesis building blocks, imported on first use."""
    if name in _STRATEGY_BLOCKS:
        from . import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def record_for(kind_or_id):
    """The :class:`~lstm_ref.harness.records.KindRecord` of a record id
    (``"keras3"``) or a kind (``"keras.layers.LSTM"``)."""
    from .records import RECORDS

    for record in RECORDS:
        if kind_or_id in (record.id, record.kind):
            return record
    raise ConfigError(
        f"unknown kind {kind_or_id!r}; expected a record id {[r.id for r in RECORDS]} "
        f"or a kind {[r.kind for r in RECORDS]}"
    )


def cases(kind_or_id, config=None, *, dtype=None, max_batch=None, max_time=None, masked=None, initial_state=None):
    """A Hypothesis strategy of :class:`~lstm_ref.case.Case` for a kind.

    Without ``config``: the kind record's own strategy, the whole option
    space the project tests the kind on.  With ``config`` (constructor
    kwargs; a value may be a strategy, drawn per example): that config,
    with drawn shapes, per-gate weights (:func:`build_weights`), an initial
    state or none, and a right-padded mask or none -- the padding every kind
    can express.  Use it to draw exactly the scope your port implements.

    The keywords filter the drawn cases: ``dtype`` (the compute policy,
    e.g. ``"float32"``), ``max_batch``, ``max_time``, ``masked`` and
    ``initial_state`` (True: only cases with one; False: the drawn case
    without it, as every kind runs without either).  A filter that rejects
    most draws fails Hypothesis' ``filter_too_much`` health check: narrow
    such a space with ``config`` instead.
    """
    from hypothesis import strategies as st

    from ..dtypes import resolve_policy

    record = record_for(kind_or_id)
    if config is None:
        strategy = record.examples()
    elif isinstance(config, dict):
        strategy = _fixed_config_cases(
            record.kind,
            st.fixed_dictionaries(
                {k: v if isinstance(v, st.SearchStrategy) else st.just(v) for k, v in config.items()}
            ),
        )
    else:
        raise ConfigError(f"cases(): config must be a dict of constructor kwargs, got {type(config).__name__}")
    checks = []
    if dtype is not None:
        policy = resolve_policy(dtype).name  # refuses an unknown policy name
        checks.append(lambda case: case.reference().policy.name == policy)
    for name, limit, axis in (("max_batch", max_batch, 0), ("max_time", max_time, 1)):
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigError(f"cases(): {name} must be a positive integer, got {limit!r}")
            checks.append(lambda case, limit=limit, axis=axis: case.x.shape[axis] <= limit)
    for name, flag in (("masked", masked), ("initial_state", initial_state)):
        if flag is not None and not isinstance(flag, bool):
            raise ConfigError(f"cases(): {name} must be True, False or None, got {flag!r}")
    if masked is False:  # every kind runs without a mask; mapping shrinks better than filtering
        strategy = strategy.map(lambda case: case.replace(mask=None))
    if initial_state is False:  # and from zero states
        strategy = strategy.map(lambda case: case.replace(**dict.fromkeys(case.initial_state)))
    if masked:
        checks.append(lambda case: case.mask is not None)
    if initial_state:
        checks.append(lambda case: bool(case.initial_state))
    return strategy.filter(lambda case: all(check(case) for check in checks)) if checks else strategy


def _fixed_config_cases(kind, configs):
    """Cases of ``kind`` for each config drawn from ``configs``, arrays by
    :func:`~lstm_ref.harness.strategies.stacked_run` (the one weight
    builder, per-gate scales drawn; it serves every kind)."""
    from hypothesis import strategies as st

    from ..case import Case
    from ..reference import from_config
    from .strategies import stacked_run

    @st.composite
    def build(draw):
        config = draw(configs, label="config")
        x, weights, mask, states = draw(stacked_run(from_config(kind, config)), label="run")
        return Case(kind, config, x, weights, mask, **states)

    return build()


class _Only:
    """A reference whose traces hold only ``fields``: given to
    :func:`~lstm_ref.harness.compare.assert_run_parity`, the project's one
    comparison then measures, and its note names, only those fields."""

    def __init__(self, ref, fields):
        self._ref, self._fields = ref, fields

    def run(self, *args, **kwargs):
        from ..trace import Trace

        trace = self._ref.run(*args, **kwargs)
        return Trace({name: trace[name] for name in self._fields})

    def __getattr__(self, name):
        return getattr(self._ref, name)


def check_parity(case, outputs, *, fields=None):
    """Compare a port's ``outputs`` for ``case`` with the reference, by the
    project's comparison and tolerance table; raise ``AssertionError`` with
    the project's failure note (first diverging step, row and unit, both
    values, ratio to tolerance, ulp, and a line that reproduces the case).

    ``outputs`` is a dict holding every field of the kind
    (``Reference.fields()``: h, c, final_h, final_c for the Keras and TF1
    kinds; h, final_h, final_c for torch and onnx), shaped as the reference
    returns them.  A port that computes fewer states them in ``fields``:
    only those are compared, and the note says which.  A missing or
    unexpected key fails, naming it: nothing is dropped silently.
    """
    from .compare import assert_run_parity

    __tracebackhide__ = True  # a failure shows the caller's line and the note, not this function
    ref = case.reference()
    declared = _DECLARED_KIND.get()
    if declared is not None and case.kind != declared:
        raise ConfigError(f"this test is marked lstm_parity(kind={declared!r}) but the case is of {case.kind!r}")
    every = ref.fields()
    if fields is None:
        compared = every
    else:
        compared = tuple(fields) if isinstance(fields, (tuple, list)) else None
        if not compared or any(f not in every for f in compared):
            raise LstmRefError(f"{case.kind}: fields must be a non-empty tuple drawn from {every}, got {fields!r}")
        compared = tuple(f for f in every if f in compared)
    if not isinstance(outputs, dict):
        raise LstmRefError(f"{case.kind}: outputs must be a dict keyed by field {every}, got {type(outputs).__name__}")
    missing = [f for f in compared if f not in outputs]
    unexpected = sorted(set(outputs) - set(compared), key=str)
    if missing or unexpected:
        problems = ([f"missing {missing}"] if missing else []) + ([f"unexpected {unexpected}"] if unexpected else [])
        raise AssertionError(
            f"{case.kind}: the port's outputs do not match the fields compared, {list(compared)}: "
            f"{'; '.join(problems)}.  A port that returns fewer fields names them: "
            f"assert_lstm_parity(case, outputs, fields=(...)), from {every}"
        )
    left_out = [f for f in every if f not in compared]
    try:
        return assert_run_parity(case, outputs, _Only(ref, compared) if left_out else ref)
    except AssertionError as exc:
        raise AssertionError(
            f"{case.kind}: the port differs from lstm_ref (compared {', '.join(compared)}"
            f"{'; not ' + ', '.join(left_out) if left_out else ''}; in the note ref= is lstm_ref, tf= is the port)"
            f"\n{exc}"
        ) from None


@pytest.fixture(scope="session")
def lstm_reference():
    """``lstm_reference(case, oracle=False)``: the reference's
    :class:`~lstm_ref.trace.Trace` of ``case`` (``oracle=True``: in float64
    from the rounded inputs).  Session-scoped, so a ``@given`` test can use it."""

    def run(case, oracle=False):
        return case.run(oracle=oracle)

    return run


@pytest.fixture(scope="session")
def assert_lstm_parity():
    """``assert_lstm_parity(case, outputs, fields=None)``: :func:`check_parity`.
    Session-scoped, so a ``@given`` test can use it."""
    return check_parity


def pytest_addoption(parser):
    group = parser.getgroup("lstm_parity", "lstm_ref parity plugin")
    group.addoption(
        "--lstm-parity-examples",
        type=int,
        default=None,
        metavar="N",
        help="Hypothesis max_examples for tests marked lstm_parity (default: their own settings)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "lstm_parity(kind): checks a port of lstm_ref kind `kind` (record id or TF class path); "
        "--lstm-parity-examples sets its Hypothesis max_examples",
    )
    examples = config.getoption("lstm_parity_examples")
    if examples is not None and examples < 1:
        raise pytest.UsageError(f"--lstm-parity-examples must be at least 1, got {examples}")
    from .. import platform

    try:
        platform.current()
    except platform.PlatformError as exc:  # LSTM_PARITY_PLATFORM names no profile
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config):
    from .. import __version__, platform
    from .tolerances import TOLERANCES

    table = "; ".join(
        f"{name} atol={t.atol:g} rtol={t.rtol:g}" + (f" +{t.rounding:g}x own rounding" if t.rounding else "")
        for name, t in TOLERANCES.items()
    )
    profile = platform.current()
    return [
        f"lstm_ref {__version__}, tolerances (lstm_ref.harness.tolerances, per-kind overrides in records): {table}",
        f"lstm_ref platform profile: {profile} ({platform.source()}; {profile.summary})",
    ]


def pytest_collection_modifyitems(config, items):
    examples = config.getoption("lstm_parity_examples")
    if examples is None:
        return
    from hypothesis import settings

    for item in items:
        if item.get_closest_marker("lstm_parity") is None or not isinstance(item, pytest.Function):
            continue
        fn = getattr(item.obj, "__func__", item.obj)
        if getattr(fn, "is_hypothesis_test", False):
            # As Hypothesis' own pytest plugin adjusts a collected test's
            # settings (_hypothesis_pytestplugin.py, pytest_runtest_call).
            fn._hypothesis_internal_use_settings = settings(fn._hypothesis_internal_use_settings, max_examples=examples)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("lstm_parity")
    kind = None
    if marker is not None:
        if marker.args or set(marker.kwargs) - {"kind"}:
            raise ConfigError(f"the lstm_parity marker takes kind= only, got {marker}")
        if "kind" in marker.kwargs:
            kind = record_for(marker.kwargs["kind"]).kind
    token = _DECLARED_KIND.set(kind)
    try:
        return (yield)
    finally:
        _DECLARED_KIND.reset(token)
