"""``make bench``'s helpers: the floor times the reference's own GEMMs, the
profile's steps are the reference's own steps, rounds pair their timings,
the BLAS thread pin is undone, and the goal lines say why a goal is missed.
NumPy only; no timing is asserted."""

import itertools

import numpy as np
import pytest

import lstm_ref
from lstm_ref.harness import bench
from lstm_ref.runner import run_sequence


@pytest.fixture
def small():
    b, t, d, u = 3, 5, 4, 6
    x, w = bench.make_case(b, t, d, u)
    return lstm_ref.from_config("keras.layers.LSTM", {"units": u}), x, w


def test_floor_input_gemm_is_the_references_projection(small):
    ref, x, w = small
    input_gemm, _ = bench.floor_gemms(x, w)
    params = ref.params(w, x.shape[-1], np.dtype(np.float32))
    assert input_gemm().tobytes() == ref.project_input(params, x).tobytes()


def test_floor_makes_one_recurrent_gemm_per_step(small, monkeypatch):
    ref, x, w = small
    calls = []

    class Counting(np.ndarray):
        def __rmatmul__(self, other):
            calls.append((other.shape, self.shape))
            return np.asarray(other) @ np.asarray(self)

    w = {**w, "recurrent_kernel": w["recurrent_kernel"].view(Counting)}
    _, recurrent_gemms = bench.floor_gemms(x, w)
    recurrent_gemms()
    units = w["recurrent_kernel"].shape[0]
    assert calls == [((x.shape[0], units), (units, 4 * units))] * x.shape[1]


def test_steps_only_are_the_references_steps(small):
    ref, x, w = small
    h, c = bench.steps_only(ref, x, w)()
    trace = ref.run(x, w)
    assert h.tobytes() == trace.final_h.tobytes() and c.tobytes() == trace.final_c.tobytes()


def test_runner_fields_are_batch_major_and_contiguous(small):
    """The runner hands out its storage, not copies: every field must still
    be a C-contiguous (batch, time, width) array of its own, bitwise the
    steps taken one by one."""
    ref, x, w = small
    params = ref.params(w, x.shape[-1], np.dtype(np.float32))
    state = tuple(np.zeros((x.shape[0], ref.units), np.float32) for _ in ref.STATE)
    trace = run_sequence(ref, params, x, state, None)
    xz = ref.project_input(params, x)
    hs, cs = [], []
    for t in range(x.shape[1]):
        h, state = ref.recurrence(params, xz[:, t], state)
        hs.append(h)
        cs.append(state[1])
    assert trace.h.tobytes() == np.stack(hs, axis=1).tobytes()
    assert trace.c.tobytes() == np.stack(cs, axis=1).tobytes()
    for name in ("h", "c"):
        assert trace[name].shape == (x.shape[0], x.shape[1], ref.units) and trace[name].flags.c_contiguous
    assert not np.shares_memory(trace.h, trace.c)


def test_paired_times_every_function_once_a_round():
    ticks = itertools.count()
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = bench.paired(fns, min_time=0, min_rounds=4, max_rounds=9, clock=lambda: next(ticks))
    assert calls == ["a", "b"] * 5  # warm-up, then 4 rounds
    assert len(times["a"]) == len(times["b"]) == 4
    assert times["a"] == times["b"] == [1, 1, 1, 1]  # one tick between each function's two reads


def test_paired_stops_at_max_rounds():
    ticks = itertools.count()
    times = bench.paired({"a": lambda: None}, min_time=1e9, min_rounds=1, max_rounds=7, clock=lambda: next(ticks))
    assert len(times["a"]) == 7


def test_ratio_is_taken_round_by_round():
    assert bench.ratio([2, 30, 4], [1, 10, 4]) == 2.0  # median of 2, 3, 1
    with pytest.raises(ValueError):
        bench.ratio([1, 2], [1])


def test_blas_threads_pin_is_undone():
    blas = bench._openblas()
    if blas is None:
        with bench.blas_threads(1) as n:
            assert n is None
        return
    get, _ = blas
    before = get()
    with bench.blas_threads(1) as n:
        assert n == 1 == get()
    assert get() == before
    with bench.blas_threads(0) as n:
        assert n == before


def _row(shape, floor, onnx, onnx_floor=3.0, keras=0.5):
    return dict(
        shape=shape,
        ref_over_floor=floor,
        onnx_over_ref=onnx,
        onnx_over_floor=onnx_floor,
        ref_over_keras=keras,
        profile=f"profile of {shape}",
        ref=0.01,
        floor=0.005,
        peers={n: "1.00" for n, _ in bench.PEERS},
    )


def test_goal_lines_met():
    lines = bench.goal_lines([_row((32, 10, 4, 8), 1.4, 2.0), _row((8, 10, 4, 8), 3.0, 1.6)])
    assert lines[0].startswith("goal: reference <= 1.5x its GEMM floor") and ": met;" in lines[0]
    assert "(8, 10, 4, 8)" not in lines[0]  # batch 8 is not held to the floor goal
    assert lines[1].startswith("goal: reference >= 1.5x faster than ONNX") and ": met;" in lines[1]
    assert len(lines) == 3


def test_goal_lines_missed_say_why():
    lines = bench.goal_lines([_row((32, 10, 4, 8), 1.7, 1.1, onnx_floor=1.3), _row((64, 10, 4, 8), 1.2, 1.2)])
    text = "\n".join(lines)
    assert "floor at every shape with batch >= 32: NOT met" in text
    assert "  (32, 10, 4, 8): profile of (32, 10, 4, 8)" in lines  # the floor miss, with its profile
    assert "faster than ONNX's NumPy evaluator at every shape: NOT met" in text
    assert "(32, 10, 4, 8): the evaluator is 1.30x the reference's GEMM floor" in text  # the bound
    assert "(64, 10, 4, 8): the evaluator is 3.00x the floor; the reference is 1.20x it" in text


def test_goal_lines_onnx_not_installed():
    lines = bench.goal_lines([_row((32, 10, 4, 8), 1.4, None)])
    assert lines[1].endswith("not measured")


def test_table_has_a_row_per_shape():
    rows = [_row((32, 10, 4, 8), 1.4, 2.0), _row((8, 10, 4, 8), 3.0, None)]
    lines = bench.table(rows, [n for n, _ in bench.PEERS])
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == lines[3].count("|")
    assert lines[3].endswith("| n/a | 3.00 |")


def test_measure_numpy_pairs_the_reference_with_its_floor(small):
    ref, x, w = small
    m = bench.measure_numpy(ref, x, w, min_time=0)
    assert m["rounds"] >= 3 and m["floor"] > 0 and m["ref_over_floor"] > 0
    assert set(m["shares"]) == {"x@K", "h@R", "element-wise", "runner"}
    line = bench.profile_line(m, *x.shape[:2], ref.units)
    assert line.startswith("x@K ") and "step() element-wise" in line and line.endswith("%")


@pytest.mark.parametrize("oracle", ["tf1", "tfa"])
def test_the_bench_names_each_traced_workers_own_threshold(oracle):
    """throughput.HOW says after how many requests a worker traces; it must
    be the worker's TRACE_AFTER (read from its source: importing a worker
    starts its framework)."""
    import re
    from pathlib import Path

    from lstm_ref.harness import throughput

    source = (Path(lstm_ref.__file__).parent / "harness" / "oracles" / f"{oracle}_worker.py").read_text()
    after = re.search(r"^TRACE_AFTER = (\d+)$", source, re.M).group(1)
    assert f"asked {after} times" in throughput.HOW[oracle]
