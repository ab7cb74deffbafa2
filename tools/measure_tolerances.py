"""Measure the errors that justify ``lstm_ref/harness/tolerances.py`` and the records' overrides.

    python -m tools.measure_tolerances [N] [KIND or record id ...]
    python -m tools.measure_tolerances --wide [N] [KIND or record id ...]

Draws N derandomized examples per kind from the live-test strategies and
runs the reference (in the case dtype and in oracle mode) and the oracle.
Per kind and compute dtype it prints:

* ``plain``: the worst ``t`` with ``|ref - tf| <= t (1 + |tf|)`` everywhere;
* ``rounding``: the worst factor ``k`` such that ``|ref - tf| <= atol +
  rtol |tf| + k * own_rounding`` (``compare.own_rounding``) under the table's
  atol/rtol: how far TF sits from the reference, in units of how far the
  reference's own rounding has carried it from exact arithmetic;
* ``float64 twin``: oracle mode against TF run in float64 on the same inputs
  (``pytest_helpers.float64_twin``), the plain ``t``;
* ``one step`` (float16 compute): the reference teacher-forced with TF's
  states (``compare.teacher_of``): the plain ``t`` of one step, and the
  smallest share of a case's h/c values that are bitwise TF's
  (``tolerances.OneStepBound``).

``--wide`` draws N float16 cases per kind with long reductions instead
(``golden.case.wide_float16_case``; seed i draws 128 or 256 inputs, 32 or
64 units, batch 1-4 and 5-30 steps), where TF 2.21's float32 GEMM order
leaves its 1-ulp residue.
"""

import sys
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings

from lstm_ref.harness.compare import own_rounding, teacher_of, ulps_apart
from lstm_ref.harness.oracles.pool import OraclePool
from lstm_ref.harness.records import RECORDS, tolerance_of
from lstm_ref.trace import Trace
from parity_tests import pytest_helpers as ph


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
    stats = defaultdict(
        lambda: {"n": 0, "plain": 0.0, "rounding": 0.0, "worst": "", "worst_example": None, "inexact": 0.0}
    )

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

            @settings(
                max_examples=n, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
            )
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
                record(
                    key,
                    "rounding",
                    rounding_k(trace, exact, desired, tolerance_of(kind, dtype)),
                    case.config,
                    case.x,
                    case,
                )
                teacher = dtype == np.float16 and teacher_of(ref, case, desired)
                if teacher:
                    forced = case.run(ref, teacher=teacher)
                    key1 = (kind, f"{dtype.name} 1 step")
                    stats[key1]["n"] += 1
                    fields = [n for n in forced.fields if not n.startswith("final_")]
                    record(
                        key1,
                        "plain",
                        plain_t(Trace({n: forced[n] for n in fields}), desired),
                        case.config,
                        case.x,
                        case,
                    )
                    inexact = max(float(np.mean(ulps_apart(forced[n], desired[n], dtype) != 0)) for n in fields)
                    record(key1, "inexact", inexact, case.config, case.x, case)
                if kind_record.float64_twin(case):
                    twin = oracle.run(ph.float64_twin(case, ref))
                    key64 = (kind, "float64 twin")
                    stats[key64]["n"] += 1
                    record(key64, "plain", plain_t(exact, twin), case.config, case.x, case)

            run()
    finally:
        pool.close()
    return stats


def measure_wide(n, kinds=None):
    from lstm_ref.harness.golden.case import wide_float16_case

    pool = OraclePool()
    stats = defaultdict(lambda: {"n": 0, "plain": 0.0, "rounding": 0.0, "worst": "", "inexact": 0.0})
    try:
        for kind_record in RECORDS:
            if kinds and kind_record.kind not in kinds and kind_record.id not in kinds:
                continue
            options = kind_record.reference.OPTIONS
            if "dtype" not in options or "num_layers" in options or "direction" in options:
                continue  # PyTorch and ONNX Runtime: no float16 kind here
            units = "units" if "units" in options else "num_units"
            for seed in range(n):
                rng = np.random.default_rng(seed)
                case = wide_float16_case(
                    kind_record.kind,
                    {units: int(rng.choice([32, 64])), "dtype": "float16"},
                    seed,
                    batch=int(rng.integers(1, 5)),
                    features=int(rng.choice([128, 256])),
                    time=int(rng.integers(5, 31)),
                )
                ref = case.reference()
                desired = pool.for_kind(kind_record.kind).run(case)
                forced = case.run(ref, teacher=teacher_of(ref, case, desired))
                fields = [f for f in forced.fields if not f.startswith("final_")]
                for key, trace in (
                    ((kind_record.kind, "float16 wide"), case.run(ref)),
                    ((kind_record.kind, "float16 wide 1 step"), Trace({f: forced[f] for f in fields})),
                ):
                    st = stats[key]
                    st["n"] += 1
                    st["plain"] = max(st["plain"], plain_t(trace, desired))
                    st["inexact"] = max(
                        st["inexact"],
                        max(float(np.mean(ulps_apart(trace[f], desired[f], np.float16) != 0)) for f in fields),
                    )
    finally:
        pool.close()
    return stats


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        sys.exit(0)
    wide = sys.argv[1:2] == ["--wide"]
    args = sys.argv[2:] if wide else sys.argv[1:]
    if args and not args[0].isdigit():
        print(f"measure_tolerances: N must be a whole number, got {args[0]!r} (see --help)", file=sys.stderr)
        sys.exit(2)
    n = int(args[0]) if args else (30 if wide else 300)
    for (kind, dtype), s in sorted((measure_wide if wide else measure)(n, args[1:] or None).items()):
        print(
            f"{kind:40s} {dtype:13s} n={s['n']:4d}  plain t {s['plain']:.3e}  rounding k {s['rounding']:.3g}"
            f"  not bitwise {100 * s['inexact']:.2f}%\n"
            f"    worst {s['worst']}"
        )
