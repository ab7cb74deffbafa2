"""Measure the frameworks' gradients against ``Reference.grad``: the numbers
behind the records' ``grad`` bounds (``KindRecord.grad``).

    python -m tools.measure_grad [DRAWS] [--seed N]

Per kind and dtype policy, the worst ``t = max |d| / (1 + |g_ref|)`` (over
every gradient array: x, initial states, weights, per-step states), next to
the reference's own rounding spread (``grad_oracle.rounding_spread``), over
``parity_tests/test_grad_live.py``'s fixed cases (both seeds, the
half-precision ones) and ``DRAWS`` (default 40) of each record's own
Hypothesis examples, derandomized and then random (``--seed``), as the
live test draws them (``--only ID ...``: those records' draws alone).  The
conditioning factor and each record's bound are 3x what this prints.
"""

import argparse
import pickle
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from lstm_ref.convert import ConversionError
from lstm_ref.errors import ConfigError
from lstm_ref.harness import grad_oracle
from lstm_ref.harness.oracles.client import OracleInputError
from lstm_ref.harness.oracles.pool import OraclePool
from lstm_ref.harness.records import RECORDS
from parity_tests import test_grad_live as live

ROWS = []  # (kind, policy, array, t, the reference's rounding spread, where)
ERRORS = []


def measure(pool, case, upstream, where):
    """Every array's t against the framework and the reference's own
    rounding spread (grad_oracle.rounding_spread)."""
    policy = case.reference().policy.name
    verdicts = grad_oracle.check(pool.for_kind, case, upstream, 0.0)
    for name, v in verdicts.items():
        ROWS.append((case.kind, policy, name, v.t, v.spread, f"{where}: {case.config}"))
    worst = max(v.t for v in verdicts.values())
    if worst > WORST_CASE.get((case.kind, policy), (0.0,))[0]:
        WORST_CASE[case.kind, policy] = (worst, case, upstream)


WORST_CASE = {}  # (kind, policy) -> (t, case, upstream): pickled next to the rows, to look into


def draws(pool, record, n, derandomize, rng_seed):
    @settings(
        max_examples=n,
        derandomize=derandomize,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one(data):
        case = live.torch_comparable(data.draw(record.examples()))
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        try:
            upstream = grad_oracle.draw_upstream(case, rng)
            grad_oracle.reference_grads(case, upstream)
            measure(pool, case, upstream, "draw")
        except (ConfigError, ConversionError, OracleInputError):
            pass  # no exact derivative, or a config the oracle's grad does not take
        except Exception as exc:  # noqa: BLE001 - a crash is a finding: listed, and the draws go on
            ERRORS.append(f"{case.describe()} {case.config}: {type(exc).__name__}: {str(exc)[-1500:]}")

    (one if derandomize else seed(rng_seed)(one))()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.measure_grad")
    parser.add_argument("draws", nargs="?", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="record ids: draw only these, and skip the fixed cases")
    args = parser.parse_args(argv)
    pool = OraclePool()
    try:
        if args.only:
            for record in RECORDS:
                if record.id in args.only:
                    draws(pool, record, args.draws, True, args.seed)
                    draws(pool, record, args.draws, False, args.seed)
            return
        fixed = [(c, (0, 1)) for c in live.FULL] + [(c, (0,)) for c in live.HALF]
        for i, (params, seeds) in enumerate(fixed):
            for s in seeds:
                measure(pool, *live.make_case(*params, s), f"case {i} seed {s}")
        for name, (kind, config, weights_for) in live.BOUNDARY_CASES.items():
            for dtype in ("float64", "float32"):
                measure(pool, *live.make_case(kind, config, live.MASK_RIGHT, "c0=0", dtype, 0, weights_for), name)
        for record in RECORDS:
            if not record.reference.__dict__.get("GRAD", False):  # no backward: nothing to measure
                continue
            print(f"drawing {record.id}...", file=sys.stderr, flush=True)
            draws(pool, record, args.draws, True, args.seed)
            draws(pool, record, args.draws, False, args.seed)
    finally:
        pool.close()
        report()


def report(path="/tmp/measure_grad.json"):
    """Per kind and dtype: the worst t; the worst t / spread where the
    spread is at least FLOOR (10 eps: the conditioning factor's data); the
    worst t left over with k = grad_oracle.CONDITIONING (the plain bound's
    data).  All rows go to ``path``, the worst cases next to it (``.pkl``)."""
    import json

    Path(path).write_text(json.dumps(ROWS))
    Path(path).with_suffix(".pkl").write_bytes(pickle.dumps(WORST_CASE))
    by_key = defaultdict(list)
    for row in ROWS:
        by_key[row[0], row[1]].append(row)
    print(f"{'kind':42s} {'dtype':14s} {'n':>5s} {'worst t':>9s} {'t/spread':>9s} {'t-k sprd':>9s}  where")
    for (kind, policy), rows in sorted(by_key.items()):
        worst = max(rows, key=lambda r: r[3])
        floor = FLOOR[policy]
        cond = [r[3] / r[4] for r in rows if r[4] >= floor]
        k = grad_oracle.CONDITIONING[policy]
        left = max(rows, key=lambda r: r[3] - k * r[4])
        print(
            f"{kind:42s} {policy:14s} {len(rows):5d} {worst[3]:9.2g} {max(cond, default=0):9.2g} "
            f"{max(0.0, left[3] - k * left[4]):9.2g}  {worst[2]} {worst[5][:150]}"
        )
    for line in ERRORS:
        print("ERROR", line)


# Where the spread counts as conditioning (not one rounding): 10 eps of the compute dtype.
FLOOR = {"float64": 2.2e-15, "float32": 1.2e-6, "float16": 9.8e-3, "mixed_float16": 9.8e-3}


if __name__ == "__main__":
    main()
