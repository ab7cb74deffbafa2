"""Every golden fixture, every kind: the reference against stored TF outputs.

Golden files are verified (manifest sha256, format version) as they load.
"""

import numpy as np
import pytest

import lstm_ref
from lstm_ref.compare import assert_parity, assert_run_parity
from lstm_ref.golden import store

from . import pytest_helpers as ph

CASE_IDS = store.case_ids()


def _run(golden, **kwargs):
    ref = lstm_ref.from_config(golden.kind, golden.config)
    inputs = golden.inputs
    return ref, ref.run(inputs["x"], inputs["weights"], h0=inputs["h0"], c0=inputs["c0"], mask=inputs["mask"], **kwargs)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_golden(case_id):
    golden = store.load(case_id)
    ref = lstm_ref.from_config(golden.kind, golden.config)
    inputs = golden.inputs
    assert_run_parity(ref, golden.expected, inputs["x"], inputs["weights"], inputs["h0"], inputs["c0"], inputs["mask"],
                      context=f"golden case {case_id!r}: {golden.kind} {golden.config}")


@pytest.mark.live
@pytest.mark.parametrize("case_id", [c for c in CASE_IDS if ph.has_float64_twin(store.load(c).kind, store.load(c).config)])
def test_oracle_mode_is_tf_in_float64(oracle_for, case_id):
    """Oracle mode is float64 arithmetic on the inputs as TF holds them: it
    must match TF itself run in float64, to the float64 tolerance."""
    golden = store.load(case_id)
    ref, trace = _run(golden, oracle=True)
    assert trace.h.dtype == trace.c.dtype == np.float64
    inputs = golden.inputs
    config, x, weights, h0, c0, mask = ph.float64_twin(ref, golden.config, inputs["x"], inputs["weights"],
                                                       inputs["h0"], inputs["c0"], inputs["mask"])
    desired = oracle_for(golden.kind).run(golden.kind, config, x, weights, h0, c0, mask)
    assert_parity(trace, desired, np.float64, kind=ref.kind, context=f"golden case {case_id!r}, oracle mode vs TF float64")
