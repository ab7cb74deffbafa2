"""Helpers shared by the parity tests (array-api-tests' ``ph`` in spirit)."""

import ast
from pathlib import Path

import numpy as np

from lstm_ref.harness.compare import assert_parity
from lstm_ref.harness.records import record_of


def float64_twin(case, ref=None):
    """The case TF runs in float64 on the inputs oracle mode sees: x and states
    rounded to the compute dtype, weights to the variable dtype, then widened.
    Oracle mode must match TF on this twin to the float64 tolerance."""
    ref = ref or case.reference()
    compute, variable = ref.policy.compute, ref.policy.variable

    def widen(a, dtype):
        return np.asarray(a).astype(dtype).astype(np.float64)

    return case.replace(
        config=ref.float64_config(),
        x=widen(case.x, compute),
        weights={k: widen(v, variable) for k, v in case.weights.items()},
        **{k: widen(v, compute) for k, v in case.initial_state.items()},
    )


def has_float64_twin(case):
    return record_of(case.kind).float64_twin(case)


def assert_oracle_mode_is_tf_float64(oracle, case, context=""):
    """Oracle mode must match TF run in float64 on :func:`float64_twin`, to
    the float64 tolerance."""
    ref = case.reference()
    trace = case.run(ref, oracle=True)
    assert all(np.asarray(v).dtype == np.float64 for v in trace.fields.values())
    desired = oracle.run(float64_twin(case, ref))
    return assert_parity(
        trace, desired, np.float64, kind=case.kind, context="oracle mode vs TF float64: " + (context or case.describe())
    )


TESTS = Path(__file__).resolve().parent


def modules_checking(record_id, tests=TESTS):
    """The test modules that declare ``pytestmark = pytest.mark.kinds(...)``
    with ``record_id`` among them (read from their source: nothing is
    imported), as paths relative to the repository root."""
    found = []
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "kinds"
                and record_id in [a.value for a in node.args if isinstance(a, ast.Constant)]
            ):
                found.append(str(path.relative_to(tests.parent)))
                break
    return found


def central_difference_errors(wrt, loss_with, eps):
    """``{name: max |ours - fd| / max(1, max |fd|)}`` for ``wrt`` = ``{name:
    (value, our gradient)}``, the finite differences of ``loss_with(name,
    value)`` central at ``eps`` in every element (float64)."""
    errors = {}
    for name, (value, ours) in wrt.items():
        assert ours.shape == value.shape and ours.dtype == np.float64, name
        fd = np.zeros(value.shape)
        for idx in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[idx] += eps
            minus[idx] -= eps
            fd[idx] = (loss_with(name, plus) - loss_with(name, minus)) / (2 * eps)
        errors[name] = float(np.max(np.abs(ours - fd)) / max(1.0, np.max(np.abs(fd))))
    return errors
