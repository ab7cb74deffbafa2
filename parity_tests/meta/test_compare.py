"""The comparison helper itself: it must fail when it should, and say where."""

import numpy as np
import pytest

from lstm_ref.harness.compare import assert_parity, compare
from lstm_ref.trace import Trace


def trace_of(h, c):
    return Trace(h=h, c=c, final_h=h[:, -1], final_c=c[:, -1])


def outputs_of(h, c):
    return {"h": h, "c": c, "final_h": h[:, -1], "final_c": c[:, -1]}


def test_identical_passes_with_zero_error():
    h = np.random.default_rng(0).standard_normal((2, 3, 4)).astype("float32")
    result = assert_parity(trace_of(h, h), outputs_of(h, h), "float32")
    assert result.fields["h"].max_abs == 0 and result.fields["h"].max_ulp == 0


def test_reports_first_divergence_step_row_unit():
    h = np.zeros((2, 5, 3), "float32")
    bad = h.copy()
    bad[1, 3, 2] = 0.5
    bad[0, 4, 0] = 0.9
    with pytest.raises(AssertionError, match=r"h: first divergence at step 3, row 1, unit 2: ref=.*0\.5.* tf=.*0\.0"):
        assert_parity(trace_of(bad, h), outputs_of(h, h), "float32", context="cfg")
    result = compare(trace_of(bad, h), outputs_of(h, h), "float32")
    assert result.fields["h"].worst == (4, 0, 0)  # largest error, not first


def test_one_ulp_is_within_float32_but_not_many():
    h = np.full((1, 2, 1), 0.75, "float32")
    near = np.nextafter(h, np.float32(1))
    assert compare(trace_of(near, h), outputs_of(h, h), "float32").passed
    far = h + np.float32(1e-3)
    assert not compare(trace_of(far, h), outputs_of(h, h), "float32").passed


def test_nan_must_match_nan():
    h = np.zeros((1, 2, 1), "float32")
    nan = h.copy()
    nan[0, 1, 0] = np.nan
    assert not compare(trace_of(nan, h), outputs_of(h, h), "float32").passed
    assert compare(trace_of(nan, h), outputs_of(nan, h), "float32").passed
    inf = h.copy()
    inf[0, 0, 0] = np.inf
    assert compare(trace_of(inf, h), outputs_of(inf, h), "float32").passed
    assert not compare(trace_of(inf, h), outputs_of(h, h), "float32").passed


def test_shape_mismatch_is_an_error():
    h = np.zeros((1, 2, 1), "float32")
    with pytest.raises(AssertionError, match="shape"):
        compare(trace_of(h[:, :1], h[:, :1]), outputs_of(h, h), "float32")
