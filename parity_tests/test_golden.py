"""Every golden fixture, every kind: the reference against stored TF outputs.

Golden files are verified (manifest sha256, format version) as they load.
"""

import pytest

from lstm_ref.harness.compare import assert_run_parity
from lstm_ref.harness.golden import store
from lstm_ref.harness.records import record_of

from . import pytest_helpers as ph

CASE_IDS = store.case_ids()
_CASES = {c: store.load(c).case for c in CASE_IDS}
TWIN_IDS = [c for c in CASE_IDS if record_of(_CASES[c].kind).float64_twin(_CASES[c])]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_golden(case_id):
    golden = store.load(case_id)
    assert_run_parity(golden.case, golden.expected, context=f"golden case {case_id!r}: {golden.kind} {golden.config}")


@pytest.mark.parametrize("case_id", TWIN_IDS)
def test_oracle_mode_is_tf_in_float64(oracle_for, case_id):
    """Oracle mode is float64 arithmetic on the inputs as TF holds them: it
    must match TF itself run in float64, to the float64 tolerance."""
    golden = store.load(case_id)
    ph.assert_oracle_mode_is_tf_float64(oracle_for(golden.kind), golden.case, context=f"golden case {case_id!r}")
