"""Every gradient golden (``lstm_ref/harness/golden/grad.py``), replayed with
no framework: ``Reference.grad`` against the framework's stored gradient of
the same case and upstream (every input, initial state, weight and stored
per-step state), under the kind's gradient bound for the case's dtype
(``KindRecord.grad``).  Files are verified (manifest sha256, format
version) as they load."""

from pathlib import Path

import numpy as np
import pytest

from lstm_ref.harness import grad_oracle
from lstm_ref.harness.golden import grad, store
from lstm_ref.harness.records import RECORDS, record_of

GRAD_IDS = store.grad_case_ids()


@pytest.mark.parametrize("case_id", GRAD_IDS)
def test_grad_golden(case_id):
    golden = grad.load(case_id)
    case = golden.case
    tol = record_of(case.kind).grad_tolerance(case.reference().policy.name)
    ours = grad_oracle.reference_grads(case, golden.upstream)
    verdicts = grad_oracle.verdicts(case, golden.upstream, ours, golden.expected, tol)
    bad = {
        k: f"t {v.t:.3g} > {v.allowed:.3g} (spread {v.spread:.3g}) at {v.worst}, first step over {v.first_step}"
        for k, v in verdicts.items()
        if not v.passed
    }
    assert not bad, f"gradient golden {case_id!r} ({case.kind} {case.config}): over tol={tol:g}: {bad}"


def test_every_registered_grad_case_has_a_listed_golden_file():
    """A gradient golden cannot drop out of the suite by leaving the manifest."""
    on_disk = {p.stem for p in store.FIXTURES.glob(f"*/{store.GRAD}/*.npz")}
    assert set(GRAD_IDS) == set(grad.GRAD_CASES) == on_disk


def test_each_grad_golden_lies_in_its_kinds_folder():
    for case_id in GRAD_IDS:
        path = store.path_of(case_id)
        assert path.parent.name == store.GRAD, path
        assert path.parent.parent.name == record_of(grad.load(case_id).case.kind).id, path


def test_grad_golden_functions_reproduce_the_stored_inputs():
    """Each gradient golden's inputs and upstream are what its function
    builds, bitwise."""
    for case_id in GRAD_IDS:
        built, stored = grad.GRAD_CASES[case_id](), grad.load(case_id)
        assert built.case.kind == stored.case.kind and built.case.config == stored.case.config, case_id
        for a, b in ((built.case.arrays(), stored.case.arrays()), (built.upstream, stored.upstream)):
            assert a.keys() == b.keys(), case_id
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], strict=True, err_msg=f"{case_id}: {k}")


def test_every_kind_with_gradient_bounds_has_grad_goldens_with_provenance():
    """A kind whose record has gradient bounds (``KindRecord.grad``: a
    gradient oracle, measured) has gradient goldens, each saying where its
    numbers come from."""
    kinds = {grad.load(c).case.kind: grad.load(c).meta["provenance"] for c in GRAD_IDS}
    for record in RECORDS:
        if record.grad:
            assert record.kind in kinds, f"{record.kind} has gradient bounds and no gradient golden"
            assert kinds[record.kind].get("oracle"), kinds[record.kind]


def test_the_run_goldens_list_leaves_the_gradient_goldens_out():
    """The run goldens' list leaves the gradient goldens out (their files
    hold an upstream and gradients, not a run's outputs)."""
    assert not set(store.case_ids()) & set(GRAD_IDS)
    assert all(Path(store.path_of(c)).parent.name != store.GRAD for c in store.case_ids())
