"""Suite throughput: live parity examples per second against each oracle
worker, and the worker's memory over many examples (part of ``make bench``).

An example is what a live test does: draw a small case, ask the oracle,
run the reference (and its oracle mode), compare.
"""

import time

import numpy as np

from . import from_config
from .compare import run_and_compare
from .oracles.client import ORACLE_OF_KIND, OraclePool

SMALL = {  # kind -> config builder over a seeded rng: small shapes, varied options
    "keras.layers.LSTM": lambda rng: {"units": int(rng.integers(1, 7)), "go_backwards": bool(rng.integers(2)),
                                      "activation": str(rng.choice(["tanh", "relu", "gelu"])),
                                      "recurrent_activation": str(rng.choice(["sigmoid", "hard_sigmoid"]))},
    "tf.compat.v1.nn.rnn_cell.LSTMCell": lambda rng: {"num_units": int(rng.integers(1, 7)),
                                                      "use_peepholes": bool(rng.integers(2)),
                                                      "cell_clip": float(rng.choice([0.5, 3.0]))},
    "tf.contrib.rnn.LayerNormBasicLSTMCell": lambda rng: {"num_units": int(rng.integers(2, 7))},  # 1: noise
    "tfa.rnn.LayerNormLSTMCell": lambda rng: {"units": int(rng.integers(1, 7))},
}


def _weights(ref, rng, features):
    return {name: (0.5 * rng.standard_normal(shape) + (1.0 if name.endswith("gamma") else 0.0)).astype(np.float32)
            for name, shape in ref.weight_shapes(features).items()}


def example(kind, rng):
    config = SMALL[kind](rng)
    ref = from_config(kind, config)
    batch, time_, features = int(rng.integers(1, 4)), int(rng.integers(1, 10)), int(rng.integers(1, 6))
    x = rng.standard_normal((batch, time_, features)).astype(np.float32)
    return ref, config, x, _weights(ref, rng, features)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(kind, pool, n, seed=0):
    """(examples per second, worker RSS MB after warm-up, peak RSS growth MB)
    over n examples; RSS is sampled every 100 examples (the client recycles a
    worker every ``max_requests``, so the peak is what a long run holds)."""
    rng = np.random.default_rng(seed)
    oracle = pool.for_kind(kind)
    oracle.hello()
    for _ in range(20):  # warm-up: TF's first traces and allocations
        ref, config, x, w = example(kind, rng)
        oracle.run(kind, config, x, w)
    rss0 = peak = rss_mb(oracle.proc.pid)
    start = time.perf_counter()
    for i in range(1, n + 1):
        ref, config, x, w = example(kind, rng)
        desired = oracle.run(kind, config, x, w)
        *_, result = run_and_compare(ref, desired, x, w)
        if not result.passed:
            raise AssertionError(f"throughput example failed parity: {kind} {config}")
        if i % 100 == 0:
            peak = max(peak, rss_mb(oracle.proc.pid))
    seconds = time.perf_counter() - start
    return n / seconds, rss0, peak - rss0


def main(n=2000, memory_n=2000):
    pool = OraclePool()
    try:
        print("\nLive parity examples per second (small shapes, one worker each, this machine):")
        for kind in SMALL:
            count = memory_n if kind == "keras.layers.LSTM" else n
            rate, rss0, growth = measure(kind, pool, count)
            print(f"  {kind:40s} ({ORACLE_OF_KIND[kind]}): {rate:6.1f} examples/s; worker RSS {rss0:.0f} MB, "
                  f"peak growth {growth:+.1f} MB over {count} examples", flush=True)
    finally:
        pool.close()
