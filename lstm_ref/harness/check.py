"""``lstm-ref check MODEL``: every LSTM layer of a user's saved Keras model,
reference against TF, on the user's inputs or on random ones.

The model is opened inside the Keras 3 oracle worker (``.keras`` or ``.h5``);
the worker returns each ``keras.layers.LSTM``'s config, weights and the
input it receives (computed by the model's own preceding layers).  Each layer
is then compared exactly as the tests compare: ``lstm_ref.harness.compare`` and the
one tolerance table.  A TF1 checkpoint is checked by scope, with the cell's
kind and config given on the command line.
"""

import json

import numpy as np

from ..case import Case
from .compare import run_and_compare
from .oracles.client import OraclePool


def _row(name, case, desired):
    ref = case.reference()
    *_, result = run_and_compare(case, desired, ref)
    h, c = result.fields[ref.OUTPUT], result.fields[ref.TRACED_STATES[0]]
    x = case.x
    return {
        "layer": name, "kind": case.kind, "dtype": ref.policy.name, "shape": "x".join(map(str, x.shape)),
        "h_max_abs": h.max_abs, "h_worst": h.worst, "c_max_abs": c.max_abs, "c_worst": c.worst,
        "ratio": result.ratio, "passed": result.passed,
    }


def check_keras_model(path, x=None, batch=2, time=7, seed=0, pool=None):
    own_pool = pool is None
    pool = pool or OraclePool()
    try:
        worker = pool.get("keras3")
        arrays = {} if x is None else {"x": x}
        meta, out = worker.request({"op": "model_lstm_layers", "path": str(path), "batch": batch, "time": time,
                                    "seed": seed}, arrays)
        rows = []
        for i, layer in enumerate(meta["layers"]):
            weights = {k[len(f"{i}:w:"):]: v for k, v in out.items() if k.startswith(f"{i}:w:")}
            case = Case("keras.layers.LSTM", layer["config"], out[f"{i}:x"], weights, name=layer["name"])
            desired = {k: out[f"{i}:{k}"] for k in case.reference().fields()}
            rows.append(_row(layer["name"], case, desired))
        return rows, meta.get("skipped", [])
    finally:
        if own_pool:
            pool.close()


def check_checkpoint(path, scope, kind, config, x, pool=None):
    from .checkpoints import load_weights

    case = Case(kind, config, x, load_weights(path, scope), name=scope)
    own_pool = pool is None
    pool = pool or OraclePool()
    try:
        desired = pool.for_kind(kind).run(case)
        return [_row(scope, case, desired)], []
    finally:
        if own_pool:
            pool.close()


def print_rows(rows, skipped):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for r in rows:
            print(r)
        return
    table = Table(title="lstm-ref check")
    for col in ("layer", "kind", "dtype", "x shape", "h max abs", "h worst (step,row,unit)", "c max abs",
                "c worst (step,row,unit)", "ratio", "verdict"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["layer"], r["kind"], r["dtype"], r["shape"], f"{r['h_max_abs']:.2e}", str(r["h_worst"]),
                      f"{r['c_max_abs']:.2e}", str(r["c_worst"]), f"{r['ratio']:.3g}",
                      "[green]PASS" if r["passed"] else "[red]FAIL")
    Console(width=160).print(table)
    for name, why in skipped:
        print(f"skipped {name}: {why}")


def main(args):
    x = None if args.input is None else np.load(args.input, allow_pickle=False)
    if args.scope:
        if not (args.kind and args.config) or x is None:
            raise SystemExit("a checkpoint needs --scope, --kind, --config (JSON) and --input x.npy")
        rows, skipped = check_checkpoint(args.model, args.scope, args.kind, json.loads(args.config), x)
    else:
        rows, skipped = check_keras_model(args.model, x, batch=args.batch, time=args.time, seed=args.seed)
    if not rows:
        print(f"no keras.layers.LSTM layer found in {args.model}")
        return 2
    print_rows(rows, skipped)
    return 0 if all(r["passed"] for r in rows) else 1
