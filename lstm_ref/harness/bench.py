"""``make bench``: the reference's forward pass, float32 on the CPU, against
its own GEMM floor and against its peers -- always as ratios taken in one run
on one machine.

First, before it changes any process setting, it prints the reference /
its GEMM floor per shape in a default process -- NumPy's own BLAS threads,
glibc's malloc defaults: what a user's process gets -- and the floor goal's
verdict there (:func:`default_process`).  Then, with its own settings (below),
per shape (batch, time, input, units):

* the reference / its GEMM floor.  The floor is the time of the GEMMs the
  reference cannot avoid, made as the reference makes them: one ``x @
  kernel`` over all steps (NumPy's 3-D matmul, one GEMM per row of the batch)
  and ``time`` GEMMs ``h @ recurrent_kernel`` at (batch, units) @ (units,
  4 units), in NumPy with the same BLAS threads, timed in the same rounds as
  the reference (each round times the reference, then the floor's GEMMs, so
  both see the same load);
* the reference / ``keras.layers.LSTM`` compiled with ``tf.function``, and
  each peer's time relative to Keras compiled: PyTorch ``nn.LSTM``, ONNX
  Runtime ``LSTM``, and ONNX's NumPy ``ReferenceEvaluator`` (every shape:
  one call is enough at the large ones);
* ONNX's NumPy evaluator / the reference (how many times faster the
  reference is), timed in the same rounds, and the evaluator / the floor:
  the reference cannot go below its floor, so no runner change can make it
  more than that many times faster than the evaluator;
* where the reference's time goes (the profile line): ``x @ kernel``, the
  ``h @ recurrent_kernel`` GEMMs, the rest of ``step()`` (the gates'
  element-wise NumPy passes, each a separate call over (batch, units)), and
  the runner around it.

NumPy's BLAS is pinned to ``--blas-threads`` (1 by default) while the NumPy
side (reference, floor, ONNX's evaluator) is timed, and restored after.  On
a 2-core machine that other jobs share, a threaded OpenBLAS GEMM waits for a
second core that is busy, and its idle worker spins against the main
thread's element-wise work: at (32, 100, 128, 256), load average 4, the
reference took 57-78 ms with one BLAS thread and 562 ms with two (medians
of ``make bench`` runs), and the order of two NumPy programs became noise.
The thread count and the load average are printed with the table;
``--blas-threads 0`` leaves NumPy's default.  (OpenBLAS' result bits depend
on its thread count, so such a run is not bitwise the default one; speed is
all this measures.)

Last, with the same BLAS threads, how long ``diagnose`` takes to localise a
fault no catalogue lists on its default probe, per kind
(:mod:`lstm_ref.harness.localise.timing`; goal < 10 s; ``--no-localise``
skips it).
"""

import argparse
import contextlib
import ctypes
import glob
import os
import statistics
import time

import numpy as np

from ..runner import stepper

SHAPES = [(1, 3, 10, 5), (32, 100, 128, 256), (64, 200, 256, 512), (8, 1000, 64, 128)]
FLOOR_GOAL = 1.5  # reference / GEMM floor, at every shape with batch >= FLOOR_GOAL_BATCH
FLOOR_GOAL_BATCH = 32
ONNX_GOAL = 1.5  # ONNX's NumPy evaluator / reference, at every shape
KERAS_GOAL = 0.85  # reference / Keras compiled, at every shape
GRAD_GOAL = 3.0  # backward pass / forward pass (both float64), at every shape with batch >= FLOOR_GOAL_BATCH


def timeit(fn, min_time=1.0, min_repeats=3, max_repeats=50):
    fn()  # warm-up: tracing, allocation, thread pools
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < min_time and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired(fns, min_time=1.0, min_rounds=3, max_rounds=50, clock=time.perf_counter):
    """Time every function of ``fns`` (name -> callable) once per round, in
    order, until each has had ``min_time`` seconds and ``min_rounds`` rounds
    (or ``max_rounds``).  Returns name -> list of seconds, one per round:
    times of one round were taken under the same load, so ratios are taken
    round by round (:func:`ratio`)."""
    for fn in fns.values():
        fn()  # warm-up
    times = {name: [] for name in fns}
    start = clock()
    rounds = 0
    while rounds < min_rounds or (clock() - start < min_time * len(fns) and rounds < max_rounds):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
        rounds += 1
    return times


def ratio(numerator, denominator):
    """The median over rounds of numerator / denominator, round by round."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def settle(seconds=0.5):
    time.sleep(seconds)


def lstm_flops(b, t, d, u):
    """Multiply-adds of the two matmuls, counted as 2 flops each."""
    return 2.0 * b * t * (d + u) * 4 * u


def gemm_peak(n=2048):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    seconds = timeit(lambda: a @ b, min_time=1.0)
    return 2.0 * n**3 / seconds / 1e9


# -- NumPy's BLAS threads ------------------------------------------------------

# NumPy's bundled OpenBLAS names its entry points with a prefix and a suffix
# that depend on the wheel (scipy-openblas64 for NumPy 2, openblas64_ for
# NumPy 1); a system OpenBLAS has the plain names.
_OPENBLAS_NAMES = [
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
]


def _openblas():
    """(get, set) of NumPy's OpenBLAS thread count through ctypes (what
    threadpoolctl does), or None where NumPy's BLAS is not an OpenBLAS found
    beside it."""
    here = os.path.dirname(np.__file__)
    for path in sorted(
        glob.glob(os.path.join(here + ".libs", "*openblas*")) + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))
    ):
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same library
        except OSError:
            continue
        for get_name, set_name in _OPENBLAS_NAMES:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                get, set_ = getattr(lib, get_name), getattr(lib, set_name)
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                return get, set_
    return None


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with NumPy's OpenBLAS on ``n`` threads (``n`` = 0:
    leave it).  Yields the thread count in force, or None where it cannot be
    read."""
    blas = _openblas()
    if blas is None:
        yield None
        return
    get, set_ = blas
    before = get()
    if n:
        set_(n)
    try:
        yield get()
    finally:
        set_(before)


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory():
    """Tell glibc's malloc to keep freed memory for reuse instead of handing
    it back to the kernel after every step (``mallopt``; what TF's BFC
    allocator and PyTorch's caching allocator do for their own tensors).
    Where glibc handed the reference's per-step temporaries back, at (64,
    200, 256, 512) -- 512 KB for z alone -- they were faulted in again at
    every step: 34% of its time, measured (1.96x its GEMM floor, 1.19x with
    this).  The runner now reuses a workspace across steps
    (:class:`lstm_ref.runner.Workspace`), so the reference no longer needs
    this; the evaluator and the peers may.  Returns whether glibc took the
    settings (False off glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # 32 MB is glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on
    # 64-bit); larger blocks (the hoisted x @ kernel) are mapped anyway.
    return all(
        mallopt(p, v) == 1
        for p, v in ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))
    )


# -- the case and its runs -----------------------------------------------------


def make_case(b, t, d, u, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, t, d), dtype=np.float32)
    w = {
        "kernel": (rng.standard_normal((d, 4 * u), dtype=np.float32) / np.sqrt(d)).astype(np.float32),
        "recurrent_kernel": (rng.standard_normal((u, 4 * u), dtype=np.float32) / np.sqrt(u)).astype(np.float32),
        "bias": rng.standard_normal(4 * u, dtype=np.float32) * np.float32(0.1),
    }
    return x, w


def floor_gemms(x, w):
    """The GEMMs every run of the reference makes, as two functions:
    ``x @ kernel`` as ``project_input`` makes it (the 3-D matmul), and the
    ``time`` products ``h @ recurrent_kernel`` of the steps, on an h of the
    size and range the steps see (tanh-bounded, not zeros)."""
    batch, steps = x.shape[:2]
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]
    h = np.tanh(np.random.default_rng(1).standard_normal((batch, recurrent.shape[0]), dtype=np.float32))

    def input_gemm():
        return x @ kernel

    def recurrent_gemms():
        for _ in range(steps):
            h @ recurrent

    return input_gemm, recurrent_gemms


def steps_only(ref, x, w):
    """The reference's ``recurrence`` over every step, on its own projected
    input, without the runner (for the profile: steps minus the recurrent
    GEMMs is the element-wise part of ``step()``)."""
    batch, steps, features = x.shape
    params = ref.params(w, features, np.dtype(np.float32))
    xz = ref.project_input(params, x)
    state0 = tuple(np.zeros((batch, ref.state_width(s)), np.float32) for s in ref.STATE)

    def run():
        state, step = state0, stepper(ref)  # as the runner: one workspace a run, where the family takes one
        with np.errstate(over="ignore", under="ignore"):  # as the runner: a saturated gate's exp overflows
            for t in range(steps):
                _, state = step(params, xz[:, t], state)
        return state

    return run


def keras_compiled(x, w, u):
    import keras
    import tensorflow as tf

    layer = keras.layers.LSTM(u, return_sequences=True)
    layer.build(x.shape)
    for var in layer.weights:
        var.assign(w[var.name])
    xt = tf.constant(x)
    fn = tf.function(lambda v: layer(v))
    return lambda: fn(xt).numpy()


def torch_lstm(x, w, u):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    m = torch.nn.LSTM(x.shape[2], u, batch_first=True)
    with torch.no_grad():  # torch gate order i, f, g, o == Keras i, f, c, o
        m.weight_ih_l0.copy_(torch.from_numpy(w["kernel"].T.copy()))
        m.weight_hh_l0.copy_(torch.from_numpy(w["recurrent_kernel"].T.copy()))
        m.bias_ih_l0.copy_(torch.from_numpy(w["bias"]))
        m.bias_hh_l0.zero_()
    xt = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            return m(xt)[0].numpy()

    return run


def _onnx_model(x, w, u):
    from onnx import TensorProto, helper, numpy_helper

    def iofc(a):  # Keras i, f, c, o -> ONNX i, o, f, c on the last axis
        i, f, c, o = np.split(a, 4, axis=-1)
        return np.concatenate([i, o, f, c], axis=-1)

    W = iofc(w["kernel"]).T[None]
    R = iofc(w["recurrent_kernel"]).T[None]
    B = np.concatenate([iofc(w["bias"]), np.zeros(4 * u, np.float32)])[None]
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=u)  # time-major: ORT has no layout=1
    graph = helper.make_graph(
        [node],
        "lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [x.shape[1], x.shape[0], x.shape[2]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(a.astype(np.float32), n) for a, n in ((W, "W"), (R, "R"), (B, "B"))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def onnxruntime_lstm(x, w, u):
    import onnxruntime as ort

    sess = ort.InferenceSession(_onnx_model(x, w, u).SerializeToString(), providers=["CPUExecutionProvider"])
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))
    return lambda: sess.run(None, {"X": xt})[0]


def onnx_reference(x, w, u):
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(_onnx_model(x, w, u))
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))
    return lambda: ev.run(None, {"X": xt})[0]


ONNX_NUMPY = "ONNX NumPy reference evaluator"
PEERS = [("PyTorch nn.LSTM (CPU)", torch_lstm), ("ONNX Runtime LSTM", onnxruntime_lstm), (ONNX_NUMPY, onnx_reference)]


def measure_numpy(ref, x, w, min_time, onnx=True):
    """The NumPy side of one shape, in shared rounds: the reference, the
    floor's two GEMM sets, the steps alone and (if installed and ``onnx``)
    ONNX's NumPy evaluator.  Returns a dict of medians (seconds) and
    round-by-round ratios."""
    input_gemm, recurrent_gemms = floor_gemms(x, w)
    fns = {"ref": lambda: ref.run(x, w), "x@K": input_gemm, "h@R": recurrent_gemms, "steps": steps_only(ref, x, w)}
    try:
        if onnx:
            fns["onnx"] = onnx_reference(x, w, w["recurrent_kernel"].shape[0])
    except ImportError:
        pass
    times = paired(fns, min_time, min_rounds=5)  # the large shapes: 5 rounds, not 3, against the load
    floor = [a + b for a, b in zip(times["x@K"], times["h@R"])]
    # The profile's parts, round by round: step() beyond its GEMM, and what
    # the run adds to its projection and steps (runner, fresh memory).
    parts = {
        "x@K": times["x@K"],
        "h@R": times["h@R"],
        "element-wise": [max(s - g, 0.0) for s, g in zip(times["steps"], times["h@R"])],
        "runner": [max(r - p - s, 0.0) for r, p, s in zip(times["ref"], times["x@K"], times["steps"])],
    }
    out = {name: statistics.median(v) for name, v in times.items()}
    out.update(
        floor=statistics.median(floor),
        rounds=len(floor),
        ref_over_floor=ratio(times["ref"], floor),
        shares={name: ratio(v, times["ref"]) for name, v in parts.items()},
        element_wise=statistics.median(parts["element-wise"]),
    )
    if "onnx" in times:
        out.update(onnx_over_ref=ratio(times["onnx"], times["ref"]), onnx_over_floor=ratio(times["onnx"], floor))
    return out


def profile_line(m, b, t, u):
    """Where the reference's time goes: each part's share of the run, as the
    median over rounds of part / run."""
    share = {name: 100 * v for name, v in m["shares"].items()}
    gflops = lstm_flops(b, t, 0, u) / m["h@R"] / 1e9
    return (
        f"x@K {share['x@K']:.0f}%, h@R {share['h@R']:.0f}% ({t} GEMMs of {1e6 * m['h@R'] / t:.0f} us, "
        f"{gflops:.0f} GFLOP/s), step() element-wise {share['element-wise']:.0f}% "
        f"({1e6 * m['element_wise'] / t:.0f} us a step: the gates' NumPy passes over ({b}, {u}) each), "
        f"runner and allocation {share['runner']:.0f}%"
    )


def floor_goal_lines(rows, where=""):
    """The floor goal's verdict (``where``: in which process), and the
    profile of each shape that misses it."""
    floor_rows = [r for r in rows if r["shape"][0] >= FLOOR_GOAL_BATCH]
    miss = [r for r in floor_rows if r["ref_over_floor"] > FLOOR_GOAL]
    lines = [
        f"goal: reference <= {FLOOR_GOAL}x its GEMM floor{where} at every shape with batch >= {FLOOR_GOAL_BATCH}: "
        + ("NOT met" if miss else "met" if floor_rows else "no such shape measured")
        + "".join(f"; {r['shape']}: {r['ref_over_floor']:.2f}x" for r in floor_rows)
    ]
    lines.extend(f"  {r['shape']}: {r['profile']}" for r in miss)
    return lines


def goal_lines(rows):
    """The goals' verdicts, each with the evidence of the shapes that miss it.
    ``rows``: dicts with ``shape``, ``ref_over_floor``, ``onnx_over_ref``
    (or None), ``onnx_over_floor``, ``ref_over_keras`` and ``profile``."""
    lines = floor_goal_lines(rows)
    timed = [r for r in rows if r.get("onnx_over_ref") is not None]
    miss = [r for r in timed if r["onnx_over_ref"] < ONNX_GOAL]
    lines.append(
        f"goal: reference >= {ONNX_GOAL}x faster than ONNX's NumPy evaluator at every shape: "
        + ("NOT met" if miss else "met" if timed and len(timed) == len(rows) else "not measured")
        + "".join(f"; {r['shape']}: {r['onnx_over_ref']:.2f}x" for r in timed)
    )
    for r in miss:
        bound = r["onnx_over_floor"]
        why = (
            f"the evaluator is {bound:.2f}x the reference's GEMM floor (it makes the same GEMMs, x_t @ W^T per "
            f"step instead of hoisted), so no reference that makes these GEMMs can be {ONNX_GOAL}x faster than it"
            if bound < ONNX_GOAL
            else f"the evaluator is {bound:.2f}x the floor; the reference is {r['ref_over_floor']:.2f}x it"
        )
        lines.append(f"  {r['shape']}: {why}; profile: {r['profile']}")
    keras = [r for r in rows if r.get("ref_over_keras") is not None]
    ok = all(r["ref_over_keras"] <= KERAS_GOAL for r in keras)
    lines.append(f"goal: reference / Keras compiled <= {KERAS_GOAL} at every shape: {'met' if ok else 'NOT met'}")
    return lines


def table(rows, peer_names):
    head = (
        ["shape (b, t, d, u)", "ref ms", "floor ms", "ref / floor", "ref / Keras"]
        + [f"{n} / Keras" for n in peer_names]
        + ["ONNX-np / ref", "ONNX-np / floor"]
    )
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = (
            [
                str(r["shape"]),
                f"{1e3 * r['ref']:.1f}",
                f"{1e3 * r['floor']:.1f}",
                f"{r['ref_over_floor']:.2f}",
                _fmt(r.get("ref_over_keras")),
            ]
            + [r["peers"][n] for n in peer_names]
            + [_fmt(r.get("onnx_over_ref")), _fmt(r.get("onnx_over_floor"))]
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _fmt(value):
    return "n/a" if value is None else f"{value:.2f}"


# What makes a process not a default one, where the environment sets it.
PROCESS_ENV = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MALLOC_ARENA_MAX",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "GLIBC_TUNABLES",
)


def default_process(shapes, min_time):
    """The reference / its GEMM floor in the process as a user has it:
    NumPy's own BLAS threads and glibc's malloc defaults.  Run before the
    bench changes either (``mallopt`` cannot be undone).  Returns the
    lines to print and the rows (``shape``, ``ref_over_floor``,
    ``profile``)."""
    import lstm_ref

    with blas_threads(0) as threads:
        env = [f"{k}={os.environ[k]}" for k in PROCESS_ENV if k in os.environ]
        lines = [
            f"Default process (what a user's process runs at): NumPy's BLAS threads "
            f"{threads if threads is not None else 'unknown'}, glibc's malloc defaults"
            + (f"; set in the environment: {', '.join(env)}" if env else "")
            + ":"
        ]
        rows = []
        for b, t, d, u in shapes:
            x, w = make_case(b, t, d, u)
            m = measure_numpy(lstm_ref.from_config("keras.layers.LSTM", {"units": u}), x, w, min_time, onnx=False)
            rows.append(dict(shape=(b, t, d, u), ref_over_floor=m["ref_over_floor"], profile=profile_line(m, b, t, u)))
            lines.append(
                f"  {(b, t, d, u)}: reference {1e3 * m['ref']:.1f} ms = {m['ref_over_floor']:.2f}x its GEMM "
                f"floor ({1e3 * m['floor']:.1f} ms), {m['rounds']} rounds; profile: {rows[-1]['profile']}"
            )
    return lines + floor_goal_lines(rows, " in a default process"), rows


def grad_floor_gemms(x, w):
    """The float64 GEMMs ``Reference.grad`` makes (:mod:`lstm_ref.grad`):
    ``x @ Wx``, ``time`` products ``h @ Wh`` in its forward; ``time``
    products ``dz @ Wh.T``, then ``dz @ Wx.T`` and the two weight
    gradients as one product each over every (row, step) in its backward."""
    batch, steps = x.shape[:2]
    x64 = x.astype(np.float64)
    kernel, recurrent = (w[k].astype(np.float64) for k in ("kernel", "recurrent_kernel"))
    rng = np.random.default_rng(1)
    h = np.tanh(rng.standard_normal((batch, recurrent.shape[0])))
    dz = rng.standard_normal((batch, steps, recurrent.shape[1]))
    hs = np.tanh(rng.standard_normal((batch, steps, recurrent.shape[0])))

    def run():
        x64 @ kernel
        for _ in range(steps):
            h @ recurrent
        for t in range(steps):
            dz[:, t] @ recurrent.T
        dz @ kernel.T
        x64.reshape(-1, x64.shape[-1]).T @ dz.reshape(-1, dz.shape[-1])
        hs.reshape(-1, hs.shape[-1]).T @ dz.reshape(-1, dz.shape[-1])

    return run


def grad_lines(shapes, min_time):
    """``Reference.grad`` against the reference's forward, round by round.

    The gradient is taken in float64 (:mod:`lstm_ref.grad`), so its passes
    are timed against ``Reference.run`` of the same layer in float64 (its
    forward in the arithmetic the gradient runs in), and against the
    float32 run the bench's other lines time.  ``backward`` is
    :func:`lstm_ref.grad.backward` alone, on the tape ``forward`` keeps;
    ``grad`` the whole call (validation, the taped forward, the backward);
    the floor the float64 GEMMs the call makes.  The goal is the backward
    pass's: its GEMMs are twice the forward's (``dz Wh^T`` per step, then
    ``dx`` and the two weight gradients), so 2x is its floor."""
    import lstm_ref
    from lstm_ref import grad as G

    lines, rows = [], []
    for b, t, d, u in shapes:
        x, w = make_case(b, t, d, u)
        config = {"units": u, "return_sequences": True}
        ref = lstm_ref.from_config("keras.layers.LSTM", config)
        ref64 = lstm_ref.from_config("keras.layers.LSTM", {**config, "dtype": "float64"})
        x64, w64 = x.astype(np.float64), {k: v.astype(np.float64) for k, v in w.items()}
        up = np.random.default_rng(2).standard_normal((b, t, u))
        cell, state0 = ref.grad_cell(w64), (np.zeros((b, u)), np.zeros((b, u)))
        tape, _ = G.forward(cell, x64, state0, None, False)
        times = paired(
            {
                "run": lambda ref=ref, x=x, w=w: ref.run(x, w),
                "run64": lambda ref=ref64, x=x64, w=w64: ref.run(x, w),
                "forward": lambda cell=cell, x=x64, s=state0: G.forward(cell, x, s, None, False),
                "backward": lambda cell=cell, tape=tape, up=up: G.backward(cell, tape, up, None, None, None),
                "grad": lambda ref=ref, x=x, w=w, up=up: ref.grad(x, w, {"h": up}),
                "floor": grad_floor_gemms(x, w),
            },
            min_time,
        )
        r = {k: ratio(times[k], times["run64"]) for k in ("backward", "forward", "grad")}
        rows.append(dict(shape=(b, t, d, u), backward_over_run=r["backward"], grad_over_run=r["grad"]))
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        lines.append(
            f"  {(b, t, d, u)}: backward {ms['backward']:.1f} ms = {r['backward']:.2f}x the float64 forward "
            f"(Reference.run, {ms['run64']:.1f} ms); taped forward {ms['forward']:.1f} ms = {r['forward']:.2f}x; "
            f"whole grad {ms['grad']:.1f} ms = {r['grad']:.2f}x, = {ratio(times['grad'], times['run']):.2f}x the "
            f"float32 forward ({ms['run']:.1f} ms), = {ratio(times['grad'], times['floor']):.2f}x its float64 "
            f"GEMM floor ({ms['floor']:.1f} ms); {len(times['run'])} rounds"
        )
    miss = [r for r in rows if r["shape"][0] >= FLOOR_GOAL_BATCH and r["backward_over_run"] > GRAD_GOAL]
    measured = [r for r in rows if r["shape"][0] >= FLOOR_GOAL_BATCH]
    lines.append(
        f"goal: the backward pass <= {GRAD_GOAL}x the forward (both float64) at every shape with batch >= "
        f"{FLOOR_GOAL_BATCH}: "
        + ("NOT met" if miss else "met" if measured else "no such shape measured")
        + "".join(f"; {r['shape']}: {r['backward_over_run']:.2f}x" for r in measured)
        + " (the whole grad call, taped forward included: "
        + ", ".join(f"{r['grad_over_run']:.2f}x" for r in measured)
        + ")"
    )
    return ["Reference.grad against its forward (keras.layers.LSTM; the gradient is float64):", *lines]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lstm_ref.harness.bench", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--shapes", default="all", help="'all' or indices into SHAPES, e.g. 0,1; SHAPES = " + str(SHAPES)
    )
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds each timed function gets at least")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="NumPy's BLAS threads while the NumPy side is timed (0: NumPy's default)",
    )
    parser.add_argument(
        "--malloc",
        choices=["keep", "default"],
        default="keep",
        help="keep: glibc keeps freed memory for reuse (mallopt), as TF's and PyTorch's allocators "
        "do; default: glibc's defaults",
    )
    parser.add_argument(
        "--no-default-process",
        action="store_true",
        help="skip the first section: the reference / its floor in a default process (NumPy's BLAS "
        "threads, glibc's malloc defaults)",
    )
    parser.add_argument("--no-suite", action="store_true", help="skip the live-examples-per-second section")
    parser.add_argument(
        "--no-localise", action="store_true", help="skip the line timing diagnose's localisation (localise/timing.py)"
    )
    parser.add_argument("--suite-examples", type=int, default=2000)
    parser.add_argument("--memory-examples", type=int, default=2000)
    args = parser.parse_args(argv)
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(i)] for i in args.shapes.split(",")]

    import lstm_ref

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if not args.no_default_process:
        lines, _ = default_process(shapes, args.min_time)
        print("\n".join(lines) + "\n", flush=True)
        print("With the bench's own process settings (below: the peers' comparison and the profile):")
    kept = args.malloc == "keep" and keep_freed_memory()
    with blas_threads(args.blas_threads) as threads:
        peak = gemm_peak()
    print(
        f"NumPy {np.__version__}, BLAS threads {threads if threads is not None else 'unknown'} "
        f"(--blas-threads {args.blas_threads}) on {os.cpu_count()} cores, load average {load:.1f}; "
        f"malloc: {'glibc keeps freed memory (--malloc keep)' if kept else 'defaults'}; "
        f"float32 GEMM peak (2048^3 a @ b): {peak:.1f} GFLOP/s\n"
    )
    rows, peer_names = [], [n for n, _ in PEERS if n != ONNX_NUMPY] + [ONNX_NUMPY]
    for b, t, d, u in shapes:
        x, w = make_case(b, t, d, u)
        ref = lstm_ref.from_config("keras.layers.LSTM", {"units": u})
        # The NumPy side first, then a pause: TF's thread pools spin for a
        # while after work and would steal the CPU from whatever runs next.
        with blas_threads(args.blas_threads):
            m = measure_numpy(ref, x, w, args.min_time)
        t_keras = timeit(keras_compiled(x, w, u), args.min_time)
        settle()
        row = dict(
            shape=(b, t, d, u),
            ref=m["ref"],
            floor=m["floor"],
            ref_over_floor=m["ref_over_floor"],
            ref_over_keras=m["ref"] / t_keras,
            onnx_over_ref=m.get("onnx_over_ref"),
            onnx_over_floor=m.get("onnx_over_floor"),
            profile=profile_line(m, b, t, u),
            peers={},
        )
        for name, make in PEERS:
            if name == ONNX_NUMPY:  # timed with the reference, in its rounds
                row["peers"][name] = f"{m['onnx'] / t_keras:.2f}" if "onnx" in m else "not installed"
                continue
            try:
                fn = make(x, w, u)
            except ImportError:
                row["peers"][name] = "not installed"
                continue
            row["peers"][name] = f"{timeit(fn, args.min_time, min_repeats=1) / t_keras:.2f}"
            settle()
        rows.append(row)
        gflops = lstm_flops(b, t, d, u) / m["ref"] / 1e9
        print(
            f"{(b, t, d, u)}: reference {1e3 * m['ref']:.1f} ms = {m['ref_over_floor']:.2f}x its GEMM floor "
            f"({1e3 * m['floor']:.1f} ms), {m['rounds']} rounds; {gflops:.1f} GFLOP/s "
            f"({100 * gflops / peak:.0f}% of GEMM peak); profile: {row['profile']}",
            flush=True,
        )
    print(
        "\nPer shape, one run (peers: time relative to keras.layers.LSTM compiled with tf.function, below 1 is "
        "faster; ONNX-np is ONNX's NumPy evaluator, above 1 means the reference is faster):\n"
    )
    print("\n".join(table(rows, peer_names)))
    print()
    print("\n".join(goal_lines(rows)))
    with blas_threads(args.blas_threads):
        print("\n" + "\n".join(grad_lines(shapes, args.min_time)), flush=True)
    if not args.no_localise:
        from .localise import timing

        with blas_threads(args.blas_threads):
            print("\n" + "\n".join(timing.lines()), flush=True)
    if not args.no_suite:
        from . import throughput

        throughput.main(n=args.suite_examples, memory_n=args.memory_examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
