"""Measure the errors that justify ``lstm_ref/tolerances.py``.

    python -m parity_tests.measure_tolerances [N] [KIND ...]

Draws N derandomized examples per kind from the live-test strategies and
runs the reference (in the case dtype and in oracle mode) and the oracle.
Per kind and compute dtype it prints:

* ``plain``: the worst ``t`` with ``|ref - tf| <= t (1 + |tf|)`` everywhere;
* ``rounding``: the worst factor ``k`` such that ``|ref - tf| <= atol +
  rtol |tf| + k * own_rounding`` (``compare.own_rounding``) under the table's
  atol/rtol: how far TF sits from the reference, in units of how far the
  reference's own rounding has carried it from exact arithmetic;
* ``float64 twin``: oracle mode against TF run in float64 on the same inputs
  (``pytest_helpers.float64_twin``), the plain ``t``.
"""

import sys
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings

import lstm_ref
from lstm_ref.compare import own_rounding
from lstm_ref.oracles.client import OraclePool
from lstm_ref.tolerances import tolerance_for

from . import pytest_helpers as ph
from . import strategies as hh


def _tf1(kind):
    return hh.tf1_examples(kind=kind).map(lambda e: e[1:])


EXAMPLES = {
    "keras.layers.LSTM": hh.keras_lstm_examples,
    hh.BASIC: lambda: _tf1(hh.BASIC),
    hh.FULL: lambda: _tf1(hh.FULL),
    hh.CONTRIB: lambda: hh.layer_norm_examples(hh.CONTRIB),
    hh.TFA: lambda: hh.layer_norm_examples(hh.TFA),
}
FIELDS = ("h", "c", "final_h", "final_c")


def _pairs(trace, desired):
    for name in FIELDS:
        a = np.asarray(getattr(trace, name), np.float64)
        d = np.asarray(desired[name], np.float64)
        ok = np.isfinite(a) & np.isfinite(d)
        yield name, a, d, ok


def plain_t(trace, desired):
    worst = 0.0
    for _, a, d, ok in _pairs(trace, desired):
        if ok.any():
            worst = max(worst, float(np.max(np.abs(a - d)[ok] / (1 + np.abs(d)[ok]))))
    return worst


def rounding_k(trace, exact, desired, tol):
    worst = 0.0
    for name, a, d, ok in _pairs(trace, desired):
        own = np.broadcast_to(own_rounding(a, getattr(exact, name)), a.shape)
        excess = np.abs(a - d) - (tol.atol + tol.rtol * np.abs(d))
        bad = ok & (excess > 0)
        if bad.any():
            with np.errstate(divide="ignore"):
                worst = max(worst, float(np.max(excess[bad] / own[bad])))
    return worst


def measure(n, kinds=None):
    pool = OraclePool()
    stats = defaultdict(lambda: {"n": 0, "plain": 0.0, "rounding": 0.0, "worst": "", "worst_example": None})

    def record(key, field, value, config, x, example=None):
        s = stats[key]
        if value > s[field]:
            s[field] = value
            s["worst"] = f"{field}: {config} x{x.shape}"
            s["worst_example"] = example

    try:
        for kind, strategy in EXAMPLES.items():
            if kinds and kind not in kinds:
                continue
            oracle = pool.for_kind(kind)

            @settings(max_examples=n, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(example=strategy())
            def run(example):
                config, x, weights, h0, c0, mask = example
                ref = lstm_ref.from_config(kind, config)
                dtype = ref.policy.compute
                desired = oracle.run(kind, config, x, weights, h0, c0, mask)
                trace = ref.run(x, weights, h0=h0, c0=c0, mask=mask)
                key = (kind, dtype.name)
                stats[key]["n"] += 1
                record(key, "plain", plain_t(trace, desired), config, x, example)
                if dtype == np.float64:
                    return
                exact = ref.run(x, weights, h0=h0, c0=c0, mask=mask, oracle=True)
                record(key, "rounding", rounding_k(trace, exact, desired, tolerance_for(dtype, kind)), config, x, example)
                if ph.has_float64_twin(kind, config):
                    twin = oracle.run(kind, *ph.float64_twin(ref, config, x, weights, h0, c0, mask))
                    key64 = (kind, "float64 twin")
                    stats[key64]["n"] += 1
                    record(key64, "plain", plain_t(exact, twin), config, x, example)

            run()
    finally:
        pool.close()
    return stats


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    for (kind, dtype), s in sorted(measure(n, sys.argv[2:] or None).items()):
        print(f"{kind:40s} {dtype:13s} n={s['n']:4d}  plain t {s['plain']:.3e}  rounding k {s['rounding']:.3g}\n"
              f"    worst {s['worst']}")
