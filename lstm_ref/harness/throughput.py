"""Suite throughput: live parity examples per second against each oracle
worker, and the worker's memory over many examples (part of ``make bench``).

An example is what a live test does: draw a small case, ask the oracle,
run the reference (and its oracle mode), compare.
"""

import time

import numpy as np

from .compare import run_and_compare
from .oracles.client import OraclePool
from .records import RECORDS, throughput_example


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


GOAL = 50.0  # live examples per second per worker (issue 16)


def measure(record, pool, n, seed=0):
    """(examples per second, worker RSS MB after warm-up, peak RSS growth MB,
    share of the time spent waiting on the oracle) over n examples; RSS is
    sampled every 100 examples (the client recycles a worker every
    ``max_requests``, so the peak is what a long run holds).  The rest of the
    time is the reference (and its oracle mode), the comparison and drawing
    the case."""
    rng = np.random.default_rng(seed)
    oracle = pool.for_kind(record.kind)
    oracle.hello()
    for _ in range(20):  # warm-up: TF's first traces and allocations
        oracle.run(throughput_example(record, rng))
    rss0 = peak = rss_mb(oracle.proc.pid)
    waiting = 0.0
    start = time.perf_counter()
    for i in range(1, n + 1):
        case = throughput_example(record, rng)
        t0 = time.perf_counter()
        desired = oracle.run(case)
        waiting += time.perf_counter() - t0
        *_, result = run_and_compare(case, desired)
        if not result.passed:
            raise AssertionError(f"throughput example failed parity: {case.describe()}")
        if i % 100 == 0:
            peak = max(peak, rss_mb(oracle.proc.pid))
    seconds = time.perf_counter() - start
    return n / seconds, rss0, peak - rss0, waiting / seconds


def main(n=2000, memory_n=2000):
    pool = OraclePool()
    try:
        print("\nLive parity examples per second (small shapes, one worker each, this machine):")
        for record in RECORDS:
            count = memory_n if record is RECORDS[0] else n
            rate, rss0, growth, oracle_share = measure(record, pool, count)
            verdict = "met" if rate >= GOAL else (
                f"NOT met: {100 * oracle_share:.0f}% of the time waits on the oracle (a layer build and the "
                f"framework's eager loop per request), {100 * (1 - oracle_share):.0f}% is the reference, its "
                "oracle mode and the comparison")
            print(f"  {record.kind:40s} ({record.oracle.name}): {rate:6.1f} examples/s; worker RSS {rss0:.0f} MB, "
                  f"peak growth {growth:+.1f} MB over {count} examples; goal >= {GOAL:g}/s {verdict}", flush=True)
    finally:
        pool.close()
