"""``make bench``: the reference's forward pass against ``keras.layers.LSTM``
compiled with ``tf.function``, on the CPU, float32 -- always as a ratio
taken in one run on one machine.

Prints, per shape (batch, time, input, units): the time ratio reference /
Keras compiled, the reference's GFLOP/s, and its fraction of this machine's
float32 GEMM peak (measured here with a large ``a @ b``); then the peers
(PyTorch ``nn.LSTM``, ONNX Runtime ``LSTM``, ONNX's NumPy reference
evaluator) as time relative to Keras compiled, each one whose package is
installed.
"""

import argparse
import os
import statistics
import time

import numpy as np

SHAPES = [(1, 3, 10, 5), (32, 100, 128, 256), (64, 200, 256, 512), (8, 1000, 64, 128)]


def timeit(fn, min_time=1.0, min_repeats=3, max_repeats=50):
    fn()  # warm-up: tracing, allocation, thread pools
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < min_time and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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


def make_case(b, t, d, u, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, t, d), dtype=np.float32)
    w = {
        "kernel": (rng.standard_normal((d, 4 * u), dtype=np.float32) / np.sqrt(d)).astype(np.float32),
        "recurrent_kernel": (rng.standard_normal((u, 4 * u), dtype=np.float32) / np.sqrt(u)).astype(np.float32),
        "bias": rng.standard_normal(4 * u, dtype=np.float32) * np.float32(0.1),
    }
    return x, w


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
        [node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [x.shape[1], x.shape[0], x.shape[2]])],
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


def gemm_profile(x, w, t_ref):
    """Where the reference's time goes: the hoisted x @ kernel GEMM, the T
    small-M h @ recurrent_kernel GEMMs, and the rest (NumPy ufunc passes
    for gates and state, Python dispatch), as shares of one run."""
    b, t, _ = x.shape
    h = np.zeros((b, w["recurrent_kernel"].shape[0]), np.float32)
    t_xk = timeit(lambda: x @ w["kernel"], 0.3)
    t_hr = timeit(lambda: [h @ w["recurrent_kernel"] for _ in range(t)], 0.3)
    rest = max(t_ref - t_xk - t_hr, 0.0)
    return (f"x@K {100 * t_xk / t_ref:.0f}%, h@R {100 * t_hr / t_ref:.0f}% "
            f"({lstm_flops(b, t, 0, h.shape[1]) / t_hr / 1e9:.0f} GFLOP/s), elementwise+Python {100 * rest / t_ref:.0f}%")


PEERS = [("PyTorch nn.LSTM (CPU)", torch_lstm), ("ONNX Runtime LSTM", onnxruntime_lstm),
         ("ONNX NumPy reference evaluator", onnx_reference)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lstm_ref.harness.bench")
    parser.add_argument("--shapes", default="all", help="'all' or indices, e.g. 0,1")
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--no-suite", action="store_true", help="skip the live-examples-per-second section")
    parser.add_argument("--suite-examples", type=int, default=2000)
    parser.add_argument("--memory-examples", type=int, default=2000)
    args = parser.parse_args(argv)
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(i)] for i in args.shapes.split(",")]

    import lstm_ref

    peak = gemm_peak()
    print(f"float32 GEMM peak (2048^3 a @ b, NumPy {np.__version__}): {peak:.1f} GFLOP/s\n")
    rows, peer_rows = [], {name: [] for name, _ in PEERS}
    for b, t, d, u in shapes:
        x, w = make_case(b, t, d, u)
        ref = lstm_ref.from_config("keras.layers.LSTM", {"units": u})
        # The reference first, then a pause: TF's thread pools spin for a
        # while after work and would steal the CPU from whatever runs next.
        t_ref = timeit(lambda: ref.run(x, w), args.min_time)
        t_keras = timeit(keras_compiled(x, w, u), args.min_time)
        settle()
        gflops = lstm_flops(b, t, d, u) / t_ref / 1e9
        rows.append(((b, t, d, u), t_ref / t_keras, gflops, gflops / peak))
        profile = gemm_profile(x, w, t_ref)
        for name, make in PEERS:
            try:
                fn = make(x, w, u)
            except ImportError:
                peer_rows[name].append("not installed")
                continue
            if name.startswith("ONNX NumPy") and b * t * u > 2_000_000:
                peer_rows[name].append("too slow to time")
                continue
            peer_rows[name].append(f"{timeit(fn, args.min_time, min_repeats=1) / t_keras:.2f}")
            settle()
        peer_rows.setdefault("lstm_ref", []).append(f"{t_ref / t_keras:.2f}")
        print(f"{(b, t, d, u)}: lstm_ref / Keras compiled = {t_ref / t_keras:.2f}, {gflops:.1f} GFLOP/s "
              f"({100 * gflops / peak:.0f}% of GEMM peak); profile: {profile}", flush=True)
    header = "| peer | " + " | ".join(str(s) for s in shapes) + " |"
    print("\nTime relative to keras.layers.LSTM compiled with tf.function (below 1 is faster):\n")
    print(header)
    print("|---" * (len(shapes) + 1) + "|")
    for name in ["lstm_ref"] + [n for n, _ in PEERS]:
        print(f"| {name} | " + " | ".join(peer_rows[name]) + " |")
    goal = all(r[1] <= 0.85 for r in rows)
    print(f"\ngoal time ratio <= 0.85 at every shape: {'met' if goal else 'NOT met'}")
    if not args.no_suite:
        from . import throughput

        throughput.main(n=args.suite_examples, memory_n=args.memory_examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
