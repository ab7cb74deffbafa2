"""Oracle workers that crash or hang are restarted; the request that hit it
fails with a clear message and never hangs the suite."""

import json
import sys
import time

import numpy as np
import pytest

from lstm_ref.harness.oracles import protocol
from lstm_ref.harness.oracles.client import Oracle, OracleError, OracleInputError, OracleSpec, OracleUnavailable
from lstm_ref.harness.oracles.memory import LayerCache

SPEC = OracleSpec("fake", "parity_tests.meta.fake_worker", "sys.executable")


@pytest.fixture
def worker():
    oracle = Oracle(SPEC, timeout=3.0)
    yield oracle
    oracle.close()


def test_round_trip_keeps_arrays_exact(worker):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float16)
    _, out = worker.request({"op": "echo"}, {"x": x})
    np.testing.assert_array_equal(out["x"], x, strict=True)


@pytest.mark.parametrize(
    "array",
    [
        np.float32(3.5),  # 0-d
        np.zeros((0, 3), np.float16),  # empty
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),  # not C-ordered
        np.arange(10, dtype=">i4")[::3],  # strided, big-endian
        np.array([[True, False]]),
    ],
)
def test_wire_keeps_dtype_shape_and_values(array):
    meta, out = protocol.decode(protocol.encode({"op": "x", "config": {"units": 2}}, {"a": array})[8:])
    assert meta == {"op": "x", "config": {"units": 2}}
    np.testing.assert_array_equal(out["a"], array, strict=True)
    assert out["a"].dtype == array.dtype and out["a"].flags.writeable


def test_wire_refuses_pickles_records_and_broken_bodies():
    with pytest.raises(TypeError, match="'o' has dtype object"):
        protocol.encode({}, {"o": np.array([None])})
    with pytest.raises(TypeError, match="no pickles or records"):
        protocol.encode({}, {"r": np.zeros(2, [("a", "f4")])})
    body = protocol.encode({}, {"x": np.ones(4)})[8:]
    for broken, why in (
        (body + b"\0", "header accounts for"),
        (body[:-1], "runs past the end"),
        (body[:3], "shorter than its header"),
        (body[:20], "header says"),
    ):
        with pytest.raises(ValueError, match=why):
            protocol.decode(broken)


def test_the_workers_profile_is_summed_and_kept_out_of_replies(worker):
    assert "phases" not in worker.hello()
    for _ in range(2):
        reply, _ = worker.request({"op": "slow"}, {})
        assert reply == {}
    assert worker.phase_counts["run"] == 2 and 0.1 <= worker.phases["run"] < worker.seconds
    assert worker.phase_counts["request"] == 2 and worker.phase_counts["worker start"] == 1  # the hello apart


def test_layer_cache_builds_once_per_configuration_and_stays_bounded():
    built, cleared = [], []
    cache = LayerCache(
        lambda config, dim: built.append((config["units"], dim)) or object(),
        lambda: cleared.append(len(built)),
        size=2,
        every=4,
    )
    first = cache({"units": 3}, 5)
    assert cache({"units": 3}, 5) is first and built == [(3, 5)]
    cache({"units": 3}, 6), cache({"units": 4}, 5)  # (3, 5) is now the oldest: dropped
    assert list(map(json.loads, cache.layers)) == [[{"units": 3}, 6], [{"units": 4}, 5]]
    cache({"units": 3}, 5)  # the 4th build clears the session and the cache first
    assert cleared == [3] and list(map(json.loads, cache.layers)) == [[{"units": 3}, 5]]


def test_crash_fails_the_request_and_the_next_one_restarts(worker):
    first = worker.request({"op": "echo"}, {})[0]["pid"]
    with pytest.raises(OracleError, match=r"oracle 'fake' exited \(code 3\)"):
        worker.request({"op": "crash"}, {})
    assert worker.request({"op": "echo"}, {})[0]["pid"] != first


def test_hang_times_out_and_the_next_request_restarts(worker):
    first = worker.request({"op": "echo"}, {})[0]["pid"]
    start = time.monotonic()
    with pytest.raises(OracleError, match=r"did not answer within 3s"):
        worker.request({"op": "hang"}, {})
    assert time.monotonic() - start < 10
    assert worker.request({"op": "echo"}, {})[0]["pid"] != first


def test_framework_error_is_reported_and_the_worker_survives(worker):
    first = worker.request({"op": "echo"}, {})[0]["pid"]
    with pytest.raises(OracleError, match="the framework raised"):
        worker.request({"op": "fail"}, {})
    assert worker.request({"op": "echo"}, {})[0]["pid"] == first


def test_a_refused_request_gives_the_message_alone(worker):
    first = worker.request({"op": "echo"}, {})[0]["pid"]
    with pytest.raises(OracleInputError, match=r"^input 'x' expects 3 dims, got 2$"):
        worker.request({"op": "refuse"}, {})
    assert worker.request({"op": "echo"}, {})[0]["pid"] == first


def test_missing_environment_is_named():
    oracle = Oracle(OracleSpec("ghost", "x", "/nonexistent/python"))
    with pytest.raises(OracleUnavailable, match="interpreter /nonexistent/python not found"):
        oracle.hello()


def test_interpreter_override(monkeypatch):
    monkeypatch.setenv("LSTM_PARITY_FAKE_PYTHON", sys.executable)
    assert OracleSpec("fake", "m", "/nope").interpreter() == sys.executable


def test_worker_is_recycled_after_max_requests():
    oracle = Oracle(SPEC, timeout=5.0, max_requests=3)
    try:
        pids = [oracle.request({"op": "echo"}, {})[0]["pid"] for _ in range(7)]
    finally:
        oracle.close()
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
