"""Every golden fixture, every kind: the reference against stored TF outputs.

Golden files are verified (manifest sha256, format version) as they load.
"""

import pytest

import lstm_ref
from lstm_ref.compare import assert_run_parity
from lstm_ref.golden import store

from . import pytest_helpers as ph

CASE_IDS = store.case_ids()
_META = {c: store.load(c).meta for c in CASE_IDS}
TWIN_IDS = [c for c in CASE_IDS if ph.has_float64_twin(_META[c]["kind"], _META[c]["config"])]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_golden(case_id):
    golden = store.load(case_id)
    ref = lstm_ref.from_config(golden.kind, golden.config)
    inputs = golden.inputs
    assert_run_parity(ref, golden.expected, inputs["x"], inputs["weights"], inputs["h0"], inputs["c0"], inputs["mask"],
                      context=f"golden case {case_id!r}: {golden.kind} {golden.config}")


@pytest.mark.live
@pytest.mark.parametrize("case_id", TWIN_IDS)
def test_oracle_mode_is_tf_in_float64(oracle_for, case_id):
    """Oracle mode is float64 arithmetic on the inputs as TF holds them: it
    must match TF itself run in float64, to the float64 tolerance."""
    golden = store.load(case_id)
    ref = lstm_ref.from_config(golden.kind, golden.config)
    inputs = golden.inputs
    ph.assert_oracle_mode_is_tf_float64(oracle_for(golden.kind), ref, inputs["x"], inputs["weights"], inputs["h0"],
                                        inputs["c0"], inputs["mask"], context=f"golden case {case_id!r}")
