"""Measure what ``BACKEND_TOLERANCES`` (``lstm_ref/harness/kinds/keras3.py``) rests on.

    python -m tools.measure_backends [N] [jax|torch ...]
    python -m tools.measure_backends --wide [N] [jax|torch ...]

Draws N derandomized Keras 3 examples (the live tests' strategy) and runs
each on the named backends' workers against the reference of that backend
(``config["backend"]``).  Per backend and the dtype a case is judged in
(``KerasLSTM.tolerance_dtype``) it prints, as ``tools/measure_tolerances.py``
does: the plain ``t`` (``|ref - fw| <= t (1 + |fw|)``), the rounding factor
``k`` over the kind's atol/rtol, the oracle-mode ``t`` against the backend
run in float64 (a float64 layer that rounds to float32 inside is no twin:
left out), and, for float16, the share of one-step (teacher-forced) values
that are not bitwise the backend's.  ``--wide``: the wide float16 cases
(``golden.case.wide_float16_case``) instead.  The goldens are run too
(``golden`` rows).
"""

import sys
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings

from lstm_ref.harness import backends
from lstm_ref.harness.compare import one_step_exemption, teacher_of, ulps_apart
from lstm_ref.harness.golden import store
from lstm_ref.harness.oracles.pool import OraclePool
from lstm_ref.harness.records import record_of
from lstm_ref.trace import Trace
from parity_tests import pytest_helpers as ph
from tools.measure_tolerances import plain_t, rounding_k

KIND = "keras.layers.LSTM"


def _one(pool, case, stats, tag):
    ref = case.reference()
    dtype = np.dtype(ref.tolerance_dtype(case.mask))
    name = backends.backend_of(case)
    desired = backends.run(pool, case)
    trace = case.run(ref)
    key = (name, f"{dtype.name}{tag}")
    s = stats[key]
    s["n"] += 1
    t = plain_t(trace, desired)
    if t > s["plain"]:
        s["plain"], s["worst"] = t, case.describe()
    if ref.policy.compute == np.float64:
        return
    exact = case.run(ref, oracle=True)
    s["rounding"] = max(s["rounding"], rounding_k(trace, exact, desired, backends.tolerance(case, ref)))
    teacher = ref.policy.compute == np.float16 and teacher_of(ref, case, desired)
    exempt = backends._torch_half_exemption(ref, case) or one_step_exemption(ref, case, desired)
    if teacher and not exempt:  # the cases that make a one-step claim
        forced = case.run(ref, teacher=teacher)
        fields = [f for f in forced.fields if not f.startswith("final_")]
        s1 = stats[(name, f"float16 1 step{tag}")]
        s1["n"] += 1
        s1["plain"] = max(s1["plain"], plain_t(Trace({f: forced[f] for f in fields}), desired))
        inexact = max(float(np.mean(ulps_apart(forced[f], desired[f], np.float16) != 0)) for f in fields)
        if inexact > s1["inexact"]:
            s1["inexact"], s1["worst"] = inexact, case.describe()
    twin = ph.float64_twin(case, ref)
    if np.dtype(twin.reference().tolerance_dtype(case.mask)) == np.float64:
        s64 = stats[(name, f"float64 twin{tag}")]
        s64["n"] += 1
        s64["plain"] = max(s64["plain"], plain_t(exact, backends.run(pool, twin)))


def _draws(pool, stats, n, name):
    """N derandomized live-test examples on backend ``name``."""

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=record_of(KIND).examples())
    def run(case):
        _one(pool, backends.on_backend(case, name), stats, "")

    run()


def measure(n, names, wide=False):
    pool = OraclePool()
    stats = defaultdict(lambda: {"n": 0, "plain": 0.0, "rounding": 0.0, "inexact": 0.0, "worst": ""})
    try:
        for name in names:
            if wide:
                from lstm_ref.harness.golden.case import wide_float16_case

                for seed in range(n):
                    rng = np.random.default_rng(seed)
                    case = wide_float16_case(
                        KIND,
                        {"units": int(rng.choice([32, 64])), "dtype": "float16", "backend": name},
                        seed,
                        batch=int(rng.integers(1, 5)),
                        features=int(rng.choice([128, 256])),
                        time=int(rng.integers(5, 31)),
                    )
                    _one(pool, case, stats, " wide")
                continue
            for case_id in store.case_ids():
                golden = store.load(case_id)
                if golden.kind == KIND:
                    _one(pool, backends.on_backend(golden.case, name), stats, " golden")

            _draws(pool, stats, n, name)
    finally:
        pool.close()
    return stats


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        sys.exit(0)
    wide = sys.argv[1:2] == ["--wide"]
    args = sys.argv[2:] if wide else sys.argv[1:]
    n = int(args[0]) if args and args[0].isdigit() else (10 if wide else 100)
    names = [a for a in args if not a.isdigit()] or ["jax", "torch"]
    for (name, dtype), s in sorted(measure(n, names, wide).items()):
        print(
            f"{name:6s} {dtype:22s} n={s['n']:4d}  plain t {s['plain']:.3e}  rounding k {s['rounding']:.3g}"
            f"  one step not bitwise {100 * s['inexact']:.2f}%" + (f"\n    worst {s['worst']}" if s["worst"] else "")
        )
