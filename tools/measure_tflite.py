"""Measure the errors that justify ``TFLITE_TOLERANCES`` (lstm_ref/harness/tolerances.py),
and draw the per-step error growth of the closing scenarios.

    python -m tools.measure_tflite [N] [--closing OUT_DIR]

Sweep: N seeded draws per lowering (Keras 3's WHILE loop, tf_keras' fused
``UNIDIRECTIONAL_SEQUENCE_LSTM``; a few tf_keras draws with
``return_state=True``, which lowers to WHILE), over units (1, 4, 16, 32:
dynamic range quantises only weight tensors of >= 1024 elements, which the
fused op's per-gate matrices reach at 32 units), features, batch, steps up to
40, go_backwards, with or without bias, x at several scales, per-gate
weights from ``lstm_ref.case.build_weights``.  No masks (the target compares
unmasked cases), default activations.  Each draw is converted in all five
modes and run by LiteRT.  Per mode it prints:

* the worst ``t`` with ``|ref - tflite| <= t (1 + |tflite|)`` everywhere, and
  where (case, step), and the suggested tolerance (2.5 t, rounded up); for
  an integer output also the worst |d| in codes of its scale;
* the worst error at step 0 and, per step bucket, the worst error at the
  steps in it: how the error grows with the step;
* how many draws crashed or were refused, with the messages.

``--closing OUT_DIR``: the seed scenario (one-hot "the mice had", 5 units,
every weight 0.1) and one long sequence (T=200, 8 features, 16 units,
per-gate weights), both lowerings: a Markdown table and a growth plot each.
"""

import argparse
import math
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lstm_ref import from_config
from lstm_ref.case import Case, build_weights
from lstm_ref.harness.oracles.pool import OraclePool
from lstm_ref.harness.tflite import MODES
from lstm_ref.harness.tflite.target import convert_cases, error_growth, markdown_table, plot_growth, sweep_rows

KINDS = ("keras.layers.LSTM", "tf_keras.layers.LSTM")
BUCKETS = ((0, 1), (1, 5), (5, 10), (10, 20), (20, 40))


def sweep_cases(n, seed=0):
    """N draws per kind, derandomized."""
    cases = []
    for k, kind in enumerate(KINDS):
        rng = np.random.default_rng(seed + 1000 * k)
        for i in range(n):
            units = int(rng.choice([1, 4, 16, 32]))
            features = int(rng.choice([1, 3, 8]))
            time_ = int(rng.choice([5, 12, 20, 40]))
            batch = int(rng.choice([1, 2, 3]))
            config = {"units": units, "go_backwards": bool(rng.integers(2)), "use_bias": bool(rng.random() < 0.85)}
            if kind.startswith("tf_keras") and rng.random() < 0.2:
                config["return_state"] = True
            ref = from_config(kind, config)
            scale = float(rng.choice([0.5, 1.0, 2.0]))
            gate = float(rng.choice([0.5, 1.0, 1.5]))
            w = build_weights(ref, rng, features, scales=tuple(gate * s for s in (0.7, -0.5, 1.1, 0.4)))
            x = (scale * rng.standard_normal((batch, time_, features))).astype("float32")
            cases.append(
                Case(
                    kind,
                    config,
                    x,
                    w,
                    name=f"{kind.split('.')[0]}#{i} u{units} f{features} T{time_} "
                    f"b{batch} x{scale} w{gate}"
                    + (" back" if config["go_backwards"] else "")
                    + ("" if config["use_bias"] else " nobias")
                    + (" state" if config.get("return_state") else ""),
                )
            )
    return cases


def closing_cases():
    from lstm_ref.harness.kinds.keras3 import keras_seed_the_mice_had
    from lstm_ref.harness.kinds.tf_keras import tf_keras_seed_the_mice_had

    cases = [
        keras_seed_the_mice_had().replace(name="seed (Keras 3)"),
        tf_keras_seed_the_mice_had().replace(name="seed (tf_keras)"),
    ]
    for kind, label in zip(KINDS, ("Keras 3", "tf_keras")):
        rng = np.random.default_rng(200)
        ref = from_config(kind, {"units": 16})
        w = build_weights(ref, rng, 8)
        x = rng.standard_normal((2, 200, 8)).astype("float32")
        cases.append(Case(kind, {"units": 16}, x, w, name=f"T=200 (8 features, 16 units, {label})"))
    return cases


def _convert_both(cases, workdir):
    """Keras 3 and tf_keras conversions side by side (two processes)."""
    by_kind = {kind: [i for i, c in enumerate(cases) if c.kind == kind] for kind in KINDS}
    out = {}
    with ThreadPoolExecutor(2) as pool:
        futures = {
            kind: pool.submit(convert_cases, [cases[i] for i in idx], None, Path(workdir) / kind)
            for kind, idx in by_kind.items()
            if idx
        }
        for kind, fut in futures.items():
            for (j, mode), conv in fut.result().items():
                out[(by_kind[kind][j], mode)] = conv
    return out


def _rows(cases, workdir):
    """Every case in every mode, both lowerings converted at once."""
    conversions = _convert_both(cases, workdir)
    pool = OraclePool()
    try:
        return sweep_rows(cases, pool=pool, conversions=conversions)
    finally:
        pool.close()


def measure(n, workdir):
    cases = sweep_cases(n)
    started = time.monotonic()
    rows = _rows(cases, workdir)
    print(f"{len(cases)} draws, {len(rows)} rows in {time.monotonic() - started:.0f}s")
    by = defaultdict(list)
    lowering_of = {}  # a case's lowering, from any mode that converted (a crashed row has none)
    for row in rows:
        lowering_of.setdefault(row.case, row.lowering or None)
        lowering_of[row.case] = lowering_of[row.case] or row.lowering or None
    for row, case in zip(rows, [c for c in cases for _ in MODES]):
        by[(row.mode, f"{lowering_of[row.case] or '?'} ({case.kind.split('.')[0]})")].append((row, case))
    summary = {}
    for mode in [m.name for m in MODES]:
        print(f"\n== {mode}")
        for key in sorted(k for k in by if k[0] == mode):
            entries = by[key]
            ok = [(r, c) for r, c in entries if r.per_step is not None]
            bad = Counter(r.message for r, _ in entries if r.per_step is None)
            label = key[1]
            if ok:
                worst_t, where = 0.0, None
                for r, _ in ok:
                    t = r.t_worst
                    if t > worst_t:
                        worst_t, where = t, (r.case, r.worst)
                step0 = max(r.per_step[0] for r, _ in ok)
                buckets = []
                for lo, hi in BUCKETS:
                    vals = [r.per_step[lo:hi].max() for r, _ in ok if len(r.per_step) > lo]
                    if vals:
                        buckets.append(f"[{lo},{hi}): {max(vals):.2g}")
                codes = [(r.max_codes, r.case) for r, _ in ok if r.max_codes is not None]
                if codes:
                    worst_codes = max(codes)
                    summary.setdefault(f"{mode} (output codes)", []).append(worst_codes[0])
                    print(
                        f"  {label}: worst |d| in output codes (|d| / the int output's scale): "
                        f"{worst_codes[0]:.3g} at {worst_codes[1]!r}"
                    )
                fails = sum(1 for r, _ in ok if not r.passed)
                bitwise = sum(1 for r, _ in ok if r.bitwise_repeat)
                summary.setdefault(mode, []).append(worst_t)
                print(
                    f"  {label}: {len(ok)} compared, worst t = {worst_t:.3g} at {where}; step 0 worst {step0:.2g}; "
                    f"by step {'; '.join(buckets)}; over the current tolerance: {fails}; "
                    f"invokes bitwise: {bitwise}/{len(ok)}"
                )
                dr = Counter(tuple(sorted(r.constants)) for r, _ in ok)
                print(f"    weight types: {dict(dr)}")
            for msg, count in bad.items():
                print(f"  {label}: {count} x {msg}")
    print("\nsuggested (2.5 x worst, rounded up to 2 significant digits):")
    for mode, ts in summary.items():
        t = max(ts)
        sug = _round_up(2.5 * t)
        print(f"  {mode}: worst {t:.3g} -> {sug:g}")
    return rows


def _round_up(v):
    if v <= 0:
        return 0.0
    e = math.floor(math.log10(v)) - 1
    return math.ceil(v / 10**e) * 10**e


def closing(out_dir, workdir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = closing_cases()
    rows = _rows(cases, workdir)
    md = ["# TFLite per-mode error (TF 2.21, Keras 3.15, tf_keras 2.21, ai-edge-litert 2.3.0)", ""]
    for case in cases:
        mine = [r for r in rows if r.case == case.name]
        slug = (
            case.name.split(" (")[0].replace("=", "").replace(" ", "_").lower()
            + "_"
            + ("tf_keras" if case.kind.startswith("tf_keras") else "keras3")
        )
        png = plot_growth(mine, out_dir / f"growth_{slug}.png", title=f"{case.name}: max |tflite - reference| per step")
        md += [
            f"## {case.name}",
            "",
            f"x {case.x.shape}, config {case.config}; plot: {png}",
            "",
            markdown_table(mine),
            "",
        ]
        growth = error_growth(mine)
        md.append("per-step max |err| (first 10 steps, then every 20th):")
        md.append("")
        for mode, g in growth.items():
            if g["per_step"] is None:
                continue
            ps = g["per_step"]
            shown = list(ps[:10]) + (list(ps[10::20]) if len(ps) > 10 else [])
            md.append(f"- {mode}: " + ", ".join(f"{v:.2g}" for v in shown))
        md.append("")
    (out_dir / "tflite_results.md").write_text("\n".join(md))
    print("\n".join(md))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=24)
    parser.add_argument("--closing", metavar="OUT_DIR")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    import tempfile

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="measure_tflite_"))
    if args.closing:
        closing(args.closing, workdir / "closing")
    else:
        measure(args.n, workdir / "sweep")


if __name__ == "__main__":
    sys.exit(main())
