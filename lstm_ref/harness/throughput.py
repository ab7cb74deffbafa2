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


# Why a worker is short of the goal, from its profile and the trace costs
# measured for this issue (README, "The bench also measures the suite").
SHORT = {
    name: "the framework's eager forward pass; a traced tf.function answers in 2-3 ms but costs 150-300 ms "
          "to trace, and live examples seldom repeat a configuration"
    for name in ("keras3", "tf_keras", "tf1", "tfa")
}
SHORT["contrib"] = "its traced function is built per configuration (about 0.3 s a trace)"

PHASES = ("build", "run", "real layer", "request")  # what the workers mark (oracles/protocol.py)


def measure(record, pool, n, seed=0):
    """``(examples per second, worker RSS MB after warm-up, peak RSS growth
    MB, profile)`` over n examples.  RSS is sampled every 100 examples (the
    client recycles a worker every ``max_requests``, so the peak is what a
    long run holds).  The profile is ms per example: the worker's phases
    (``build``: a layer or trace built for a configuration not in its cache;
    ``run``: the framework's forward pass that answers; ``real layer``: the
    framework's own layer re-run to cross-check it; ``request``: converting
    and assigning, the checks), ``wire``: the rest of the round trip
    (encoding, pipes, a worker restart), and ``here``: the reference, its
    oracle mode, the comparison and drawing the case; ``builds``: the share
    of requests that built; ``steps``: the mean time steps of an example."""
    rng = np.random.default_rng(seed)
    oracle = pool.for_kind(record.kind)
    oracle.hello()
    for _ in range(20):  # warm-up: TF's first traces and allocations
        oracle.run(throughput_example(record, rng))
    rss0 = peak = rss_mb(oracle.proc.pid)
    phases0, counts0, seconds0 = dict(oracle.phases), dict(oracle.phase_counts), oracle.seconds
    start, steps = time.perf_counter(), 0
    for i in range(1, n + 1):
        case = throughput_example(record, rng)
        steps += case.x.shape[1]
        desired = oracle.run(case)
        *_, result = run_and_compare(case, desired)
        if not result.passed:
            raise AssertionError(f"throughput example failed parity: {case.describe()}")
        if i % 100 == 0:
            peak = max(peak, rss_mb(oracle.proc.pid))
    seconds = time.perf_counter() - start
    ms = {p: 1e3 * (oracle.phases.get(p, 0.0) - phases0.get(p, 0.0)) / n for p in oracle.phases}
    waiting = 1e3 * (oracle.seconds - seconds0) / n
    profile = {p: ms.get(p, 0.0) for p in PHASES}
    profile["wire"] = waiting - sum(ms.values())
    profile["here"] = 1e3 * seconds / n - waiting
    profile["builds"] = (oracle.phase_counts.get("build", 0) - counts0.get("build", 0)) / n
    profile["steps"] = steps / n
    return n / seconds, rss0, peak - rss0, profile


def describe(profile) -> str:
    """Where an example's time goes, largest first, and what the largest is."""
    times = {k: v for k, v in profile.items() if k not in ("builds", "steps")}
    parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(times.items(), key=lambda kv: -kv[1]))
    line = f"{parts} ms; {100 * profile['builds']:.0f}% of requests built"
    if times["run"] > 0:
        line += f"; the run is {times['run'] / profile['steps']:.2f} ms a step over {profile['steps']:.1f} steps"
    return line


def main(n=2000, memory_n=2000):
    pool = OraclePool()
    try:
        print("\nLive parity examples per second (small shapes, one worker each, this machine):")
        for record in RECORDS:
            count = memory_n if record is RECORDS[0] else n
            rate, rss0, growth, profile = measure(record, pool, count)
            verdict = "met" if rate >= GOAL else f"NOT met ({SHORT.get(record.oracle.name, 'see the profile')})"
            print(f"  {record.kind:40s} ({record.oracle.name}): {rate:6.1f} examples/s; worker RSS {rss0:.0f} MB, "
                  f"peak growth {growth:+.1f} MB over {count} examples; goal >= {GOAL:g}/s {verdict}\n"
                  f"    per example: {describe(profile)}", flush=True)
    finally:
        pool.close()
