"""The TFLite target's parts that need no framework: the converter's
handling of a crash, a refusal and a hang (a fake ``convert_one``), the
mode table and its tolerances."""

import numpy as np
import pytest

from lstm_ref.case import Case
from lstm_ref.harness.records import BY_KIND
from lstm_ref.harness.tflite import MODES, TARGET, converter
from lstm_ref.harness.tflite.modes import conversion_order
from lstm_ref.harness.tflite.target import KNOWN_REFUSALS, check_case, representative_dataset
from lstm_ref.harness.tolerances import TFLITE_TOLERANCES

FAKE = "parity_tests.meta.fake_convert"


def _convert(tmp_path, modes, timeout=30.0):
    spec = converter.ModelSpec("m", {"units": 1}, np.zeros((1, 2, 1)), {}, np.zeros((1, 1, 2, 1)))
    return converter.convert(
        {"m": spec}, [("m", m) for m in modes], tmp_path, legacy=False, timeout=timeout, module=FAKE
    )


def test_a_crash_a_refusal_and_a_hang_are_rows_and_the_other_jobs_still_run(tmp_path):
    rows = _convert(tmp_path, ["ok", "segv", "refuse", "abort", "hang", "ok2"], timeout=4.0)  # a slow start is no hang
    assert [rows[("m", m)].status for m in ("ok", "segv", "refuse", "abort", "hang", "ok2")] == [
        "ok",
        "crashed",
        "unsupported",
        "crashed",
        "hung",
        "ok",
    ]
    assert rows[("m", "segv")].message == "converter crashed: SIGSEGV in calibration"
    assert rows[("m", "abort")].message == "converter crashed: SIGABRT in calibration"
    assert rows[("m", "refuse")].message == "unsupported: not yet supported for op: 'X'."
    assert rows[("m", "hang")].message == "converter hung: no progress for 4s in convert"
    assert rows[("m", "ok2")].path.read_bytes() == b"TFL3"


def test_a_converter_that_cannot_start_fails_every_job(tmp_path):
    rows = converter.convert({}, [("m", "ok")], tmp_path, legacy=False, module="parity_tests.meta.no_such_module")
    assert rows[("m", "ok")].status == "failed"
    assert "start-up" in rows[("m", "ok")].message and "No module named" in rows[("m", "ok")].detail


def test_every_mode_has_a_tolerance_a_scheme_and_the_risky_ones_go_last():
    assert [m.name for m in MODES] == list(TFLITE_TOLERANCES)
    assert all(m.scheme and m.label for m in MODES)
    order = conversion_order([m.name for m in MODES])
    assert [m for m in order if m in ("int8", "int16x8")] == order[-2:]
    for mode, tol in TFLITE_TOLERANCES.items():  # no tolerance only where no lowering converts
        assert tol is not None or {("while", mode), ("fused", mode)} <= set(KNOWN_REFUSALS), mode
    for (lowering, mode), (status, message) in KNOWN_REFUSALS.items():
        assert lowering in ("while", "fused") and mode in TFLITE_TOLERANCES
        assert message.startswith({"crashed": "converter crashed: ", "unsupported": "unsupported: "}[status])


def test_the_keras_records_carry_the_target():
    for kind in TARGET.kinds:
        assert TARGET in BY_KIND[kind].targets
    assert all(not r.targets for k, r in BY_KIND.items() if k not in TARGET.kinds)


def test_the_representative_dataset_reuses_the_inputs_vectors_never_the_sequence():
    x = np.eye(10, dtype="float32")[[0, 1, 2]][None]  # the seed: one-hot
    rep = representative_dataset(Case("keras.layers.LSTM", {"units": 5}, x, {}), samples=8)
    assert rep.shape == (8, 1, 3, 10)
    assert set(map(tuple, rep.reshape(-1, 10))) <= set(map(tuple, x[0]))
    assert np.array_equal(rep, representative_dataset(Case("keras.layers.LSTM", {"units": 5}, x, {}), samples=8))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "torch.nn.LSTM"}, "converts"),
        ({"mask": np.ones((1, 3), bool)}, "unmasked"),
        ({"h0": np.zeros((1, 5), "float32")}, "zero initial state"),
        ({"config": {"units": 5, "dtype": "float16"}}, "float32 models"),
    ],
)
def test_what_the_target_does_not_compare_is_refused(change, message):
    case = Case("keras.layers.LSTM", {"units": 5}, np.zeros((1, 3, 10), "float32"), {}).replace(**change)
    with pytest.raises(ValueError, match=message):
        check_case(case)
