"""Measure the errors that justify ``lstm_ref/harness/tolerances.py`` and the records' overrides.

    python -m parity_tests.measure_tolerances [N] [KIND or record id ...]

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

from lstm_ref.harness.compare import own_rounding
from lstm_ref.harness.oracles.client import OraclePool
from lstm_ref.harness.records import RECORDS
from lstm_ref.harness.tolerances import tolerance_for

from . import pytest_helpers as ph


def _pairs(trace, desired):
    for name in trace.fields:
        a = np.asarray(trace[name], np.float64)
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
        own = np.broadcast_to(own_rounding(a, exact[name]), a.shape)
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
        for kind_record in RECORDS:
            kind = kind_record.kind
            if kinds and kind not in kinds and kind_record.id not in kinds:
                continue
            oracle = pool.for_kind(kind)

            @settings(max_examples=n, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=kind_record.examples())
            def run(case):
                ref = case.reference()
                dtype = ref.policy.compute
                desired = oracle.run(case)
                trace = case.run(ref)
                key = (kind, dtype.name)
                stats[key]["n"] += 1
                record(key, "plain", plain_t(trace, desired), case.config, case.x, case)
                if dtype == np.float64:
                    return
                exact = case.run(ref, oracle=True)
                record(key, "rounding", rounding_k(trace, exact, desired, tolerance_for(dtype, kind)), case.config,
                       case.x, case)
                if kind_record.float64_twin(case):
                    twin = oracle.run(ph.float64_twin(case, ref))
                    key64 = (kind, "float64 twin")
                    stats[key64]["n"] += 1
                    record(key64, "plain", plain_t(exact, twin), case.config, case.x, case)

            run()
    finally:
        pool.close()
    return stats


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    for (kind, dtype), s in sorted(measure(n, sys.argv[2:] or None).items()):
        print(f"{kind:40s} {dtype:13s} n={s['n']:4d}  plain t {s['plain']:.3e}  rounding k {s['rounding']:.3g}\n"
              f"    worst {s['worst']}")
