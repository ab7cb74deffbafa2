"""Every golden fixture, every kind: the reference against stored TF outputs.

Golden files are verified (manifest sha256, format version) as they load.
"""

import numpy as np
import pytest

import lstm_ref
from lstm_ref.compare import assert_parity
from lstm_ref.golden import store

CASE_IDS = store.case_ids()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_golden(case_id):
    golden = store.load(case_id)
    ref = lstm_ref.from_config(golden.kind, golden.config)
    inputs = golden.inputs
    trace = ref.run(inputs["x"], inputs["weights"], h0=inputs["h0"], c0=inputs["c0"], mask=inputs["mask"])
    assert_parity(
        trace, golden.expected, ref.policy.compute,
        context=f"golden case {case_id!r}: {golden.kind} {golden.config}",
    )


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_golden_oracle_mode_is_float64(case_id):
    """Oracle mode computes in float64 and stays within the case's tolerance."""
    golden = store.load(case_id)
    ref = lstm_ref.from_config(golden.kind, golden.config)
    inputs = golden.inputs
    trace = ref.run(inputs["x"], inputs["weights"], h0=inputs["h0"], c0=inputs["c0"], mask=inputs["mask"], oracle=True)
    assert trace.h.dtype == np.float64
    assert_parity(trace, golden.expected, ref.policy.compute, context=f"golden case {case_id!r}, oracle mode")
