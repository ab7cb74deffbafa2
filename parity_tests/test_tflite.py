"""The TFLite target, live: each Keras lowering converted in all five modes,
run by LiteRT, compared with the reference step by step.

One small model per lowering (batch 2, 12 steps, 3 features, 16 units: the
fewest at which dynamic range quantises a weight of the WHILE loop -- it
leaves tensors under 1024 elements float, and the recurrent kernel is
units x 4 units), converted once per test run and
shared between pytest-xdist processes (``_converted_once``).  Each
converter process pays one TF import, so the modes share a process and the
ones that may crash go last (``converter.py``).
"""

import fcntl
import os
from pathlib import Path

import numpy as np
import pytest

from lstm_ref import from_config
from lstm_ref.case import Case, build_weights
from lstm_ref.harness.tflite import MODES
from lstm_ref.harness.tflite.target import (
    KNOWN_REFUSALS,
    TARGET,
    convert_cases,
    dump_conversions,
    evaluate,
    load_conversions,
)
from lstm_ref.harness.tolerances import TFLITE_TOLERANCES

KINDS = {"keras3": "keras.layers.LSTM", "tf_keras": "tf_keras.layers.LSTM"}
LOWERING = {"keras3": "while", "tf_keras": "fused"}  # measured: TRANSPOSE + WHILE, and UNIDIRECTIONAL_SEQUENCE_LSTM
BATCH, TIME, FEATURES, UNITS = 2, 12, 3, 16


def small_case(kind):
    ref = from_config(kind, {"units": UNITS})
    rng = np.random.default_rng(14)
    return Case(
        kind,
        {"units": UNITS},
        rng.standard_normal((BATCH, TIME, FEATURES)).astype("float32"),
        build_weights(ref, rng, FEATURES),
        name=f"tflite small {kind}",
    )


def _converted_once(kind_id, tmp_path_factory):
    """Convert the kind's small case in every mode once per test run: under
    pytest-xdist the processes share the base temp directory; the first to
    take the kind's lock converts, the other waits and reuses."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    done = root / f"tflite_{kind_id}.json"
    with open(root / f"tflite_{kind_id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            conversions = convert_cases([small_case(KINDS[kind_id])], MODES, root / f"tflite_{kind_id}")
            dump_conversions(conversions, done)
    return load_conversions(done)


@pytest.fixture(scope="session")
def tflite_rows(oracle_pool, tmp_path_factory):
    """``rows(kind_id)`` -> {mode: TFLiteRow} of the kind's small case."""
    cache = {}

    def rows(kind_id):
        if kind_id not in cache:
            case = small_case(KINDS[kind_id])
            conversions = _converted_once(kind_id, tmp_path_factory)
            worker = oracle_pool.get(TARGET.oracle.name)
            cache[kind_id] = {
                m.name: evaluate(case, m.name, conversions[(0, m.name)], conversions.get((0, "keras")), worker)
                for m in MODES
            }
        return cache[kind_id]

    return rows


def _note(row):
    return (
        f"{row.kind} {row.mode}: {row.status} {row.message!r}; lowering {row.lowering}; max |d| {row.max_abs:.3g}; "
        f"per step {None if row.per_step is None else np.array2string(row.per_step, precision=2)}\n{row.detail[-1500:]}"
    )


@pytest.mark.parametrize("kind_id", KINDS)
@pytest.mark.parametrize("mode", ["float32", "float16"])
def test_float_modes_match_the_reference_per_step(tflite_rows, kind_id, mode):
    row = tflite_rows(kind_id)[mode]
    assert row.status == "pass", _note(row)
    assert row.compared == f"h per step ({TIME} steps)"
    assert row.lowering == LOWERING[kind_id], row.ops
    assert row.keras_max_abs < 1e-5  # the converted model is the case's
    assert row.bitwise_repeat, _note(row)


@pytest.mark.parametrize("kind_id", KINDS)
@pytest.mark.parametrize("mode", ["dynamic_range", "int8", "int16x8"])
def test_quantised_modes_are_within_their_measured_tolerance_or_refused_as_measured(tflite_rows, kind_id, mode):
    """A refusal in KNOWN_REFUSALS must happen exactly so: if TF stops
    crashing, this fails and the table (and the tolerance) gets measured."""
    row = tflite_rows(kind_id)[mode]
    expected = KNOWN_REFUSALS.get((LOWERING[kind_id], mode))
    if expected:
        assert (row.status, row.message) == expected, _note(row)
        return
    assert row.status == "pass", _note(row)
    assert row.lowering == LOWERING[kind_id], row.ops
    assert row.bitwise_repeat, _note(row)
    # What the mode quantised: int8 weight data, except dynamic range on the
    # fused op, which keeps every weight float32 (measured up to 64 units).
    quantised = not (mode == "dynamic_range" and LOWERING[kind_id] == "fused")
    assert (row.constants.get("int8", 0) > 0) == quantised, row.constants
    if mode == "int8":  # full integer: int8 input and output, (de)quantised with the model's own scale
        assert [d["dtype"] for d in row.io["inputs"] + row.io["outputs"]] == ["int8", "int8"]
        assert all(d["scale"] > 0 for d in row.io["inputs"] + row.io["outputs"])


def test_a_converter_crash_is_a_row_with_the_signal_and_the_phase(tflite_rows):
    """Keras 3's int8 conversion segfaults in TF's calibrator: the run goes
    on, the row names the signal (from the return code), the phase (from
    convert_one's progress markers) and the Python frame (faulthandler)."""
    row = tflite_rows("keras3")["int8"]
    assert row.status == "crashed" and row.message == "converter crashed: SIGSEGV in calibration", _note(row)
    assert "calibrator.py" in row.detail.splitlines()[0], row.detail[:500]
    assert tflite_rows("keras3")["int16x8"].status == "crashed"  # the next process after the crash ran


@pytest.mark.parametrize("kind_id", KINDS)
def test_two_invokes_after_reset_are_bitwise_identical(tflite_rows, kind_id):
    rows = [r for r in tflite_rows(kind_id).values() if r.lowering]
    assert rows and all(r.bitwise_repeat for r in rows), [(r.mode, r.repeat_max_abs) for r in rows]


def _run(oracle_pool, row_path, case, reset):
    worker = oracle_pool.get(TARGET.oracle.name)
    meta, out = worker.request(
        {"op": "run", "reset": reset}, {"model": np.frombuffer(Path(row_path).read_bytes(), np.uint8), "in:0": case.x}
    )
    return meta, out


def test_the_fused_op_leaks_its_state_between_invokes_without_a_reset(oracle_pool, tmp_path_factory):
    """tensorflow#47813: UNIDIRECTIONAL_SEQUENCE_LSTM keeps h and c in
    variable tensors.  Without reset_all_variables() the second invoke on
    the same input is the LSTM run from the first one's final state -- the
    reference says so -- which is why the worker resets before every invoke."""
    case = small_case(KINDS["tf_keras"])
    conversion = _converted_once("tf_keras", tmp_path_factory)[(0, "float32")]
    meta, out = _run(oracle_pool, conversion.path, case, reset=False)
    assert meta["lowering"] == "fused"
    assert not meta["repeat"]["bitwise"] and meta["repeat"]["max_abs"] > 1e-2, meta["repeat"]
    first = case.run()
    carried = case.run(h0=first.final_h, c0=first.final_c)
    tol = TFLITE_TOLERANCES["float32"]
    np.testing.assert_allclose(carried.h, out["second:0"], atol=tol.atol, rtol=tol.rtol)
    np.testing.assert_allclose(first.h, out["out:0"], atol=tol.atol, rtol=tol.rtol)


def test_the_while_loop_keeps_no_state_between_invokes(oracle_pool, tmp_path_factory):
    """Keras 3's WHILE lowering carries h and c in loop variables: two
    invokes agree bitwise even without a reset (the reset matters for the
    fused op only)."""
    case = small_case(KINDS["keras3"])
    conversion = _converted_once("keras3", tmp_path_factory)[(0, "float32")]
    meta, _ = _run(oracle_pool, conversion.path, case, reset=False)
    assert meta["lowering"] == "while" and meta["repeat"]["bitwise"], meta
