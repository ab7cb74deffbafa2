"""Measure the errors that justify ``lstm_ref/tolerances.py``.

    python -m parity_tests.measure_tolerances [N]

Draws N derandomized examples per kind from the live-test strategies, runs
the reference (in the case dtype and in oracle mode) and the oracle, and
prints, per compute dtype, the worst ``t`` such that ``|ref - tf| <= t (1 +
|tf|)`` holds everywhere (the table uses atol = rtol = tolerance / margin).
"""

import sys
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings

import lstm_ref
from lstm_ref.oracles.client import OraclePool

from . import strategies as hh

EXAMPLES = {"keras.layers.LSTM": hh.keras_lstm_examples}


def needed(trace, desired):
    worst = 0.0
    for name in ("h", "c", "final_h", "final_c"):
        a = np.asarray(getattr(trace, name), np.float64)
        d = np.asarray(desired[name], np.float64)
        ok = np.isfinite(a) & np.isfinite(d)
        if ok.any():
            worst = max(worst, float(np.max(np.abs(a - d)[ok] / (1 + np.abs(d)[ok]))))
    return worst


def measure(n):
    pool = OraclePool()
    stats = defaultdict(lambda: {"n": 0, "dtype_mode": 0.0, "oracle_mode": 0.0, "worst_case": None})
    try:
        for kind, strategy in EXAMPLES.items():
            oracle = pool.for_kind(kind)

            @settings(max_examples=n, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(example=strategy())
            def run(example):
                config, x, weights, h0, c0, mask = example
                ref = lstm_ref.from_config(kind, config)
                desired = oracle.run(kind, config, x, weights, h0, c0, mask)
                s = stats[(kind, ref.policy.compute.name)]
                s["n"] += 1
                t = needed(ref.run(x, weights, h0=h0, c0=c0, mask=mask), desired)
                if t > s["dtype_mode"]:
                    s["dtype_mode"], s["worst_case"] = t, f"{config} x{x.shape}"
                s["oracle_mode"] = max(s["oracle_mode"], needed(ref.run(x, weights, h0=h0, c0=c0, mask=mask, oracle=True), desired))

            run()
    finally:
        pool.close()
    return stats


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    for (kind, dtype), s in sorted(measure(n).items()):
        print(f"{kind:40s} {dtype:8s} n={s['n']:4d}  worst t (dtype mode) {s['dtype_mode']:.3e}  "
              f"(oracle mode) {s['oracle_mode']:.3e}\n    worst: {s['worst_case']}")
