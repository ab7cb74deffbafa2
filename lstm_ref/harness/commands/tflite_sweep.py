"""``lstm-ref tflite-sweep``: a Keras model converted to TFLite in every mode,
each compared with the model."""

import json
import os
import sys

from .. import check, schemas, tflite_cli
from ..model_format import model_format
from ..oracles.client import ORACLES, OracleUnavailable
from ..tflite.modes import BY_NAME
from ..tflite.spec import TARGET
from ._common import EXIT_FAIL, EXIT_PASS, UsageError, finite, json_target, positive_int, seed, user_path

NAME = "tflite-sweep"

FAIL_ON = ("never", "crash", "mismatch")

SWEEP_EPILOG = """exit codes (the table is the answer; --fail-on picks what fails the run):
  0  the sweep ran and every mode asked for has its row; with --fail-on crash or mismatch, nothing it
     names happened.  Under the default, --fail-on never, 0 says the sweep ran, not that a mode is deployable
  1  --fail-on crash: a mode gave no runnable .tflite (the converter crashed, hung or refused it, or
     LiteRT could not run it); --fail-on mismatch: that, or a mode over its tolerance (or with none measured)
  2  usage or input error, or a model that cannot be loaded and run: a short message names the culprit
     (--debug shows the traceback)
  3  a framework worker crashed or hung (its stderr is shown under --debug), or lstm-ref failed (a bug)
"""


def add_parser(sub):
    tfl = sub.add_parser(
        "tflite-sweep",
        help="convert a Keras model to TFLite in every mode and compare each with the model",
        description="Convert MODEL with TF's TFLiteConverter in every mode (float32, float16, dynamic_range, int8, "
        "int16x8; each in a process of its own: a converter crash is a row), run each in LiteRT "
        "(variables reset before every invoke) and compare it with the Keras model on the same drawn "
        "inputs: which mode can you afford?  The model is converted with a static input of --batch "
        "rows and --time steps (TFLite deploys static shapes); an integer input (token ids into an "
        "Embedding) is drawn in [1, 10) and passed as it is, never quantised.",
        epilog=SWEEP_EPILOG,
    )
    tfl.add_argument("model", help="a Keras 3 .keras/.h5 or Keras 2 (tf_keras) .h5/SavedModel with one input")
    tfl.add_argument("--modes", nargs="+", metavar="MODE", help="only these modes (default: all five)")
    tfl.add_argument("--batch", type=positive_int, default=1, help="rows of drawn input")
    tfl.add_argument(
        "--time",
        type=positive_int,
        help="steps of drawn input (default: the model's own, where its input fixes them, else 20; a time "
        "the model fixes otherwise is refused)",
    )
    tfl.add_argument("--seed", type=seed, default=0, help="seed of the drawn inputs")
    tfl.add_argument(
        "--save-dir",
        metavar="DIR",
        help="write each converted mode's .tflite to DIR/<model>.<mode>.tflite (created if missing, "
        "files overwritten): static batch and time, so `lstm-ref check FILE --source MODEL` "
        "takes it",
    )
    tfl.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="never",
        help="what makes the exit code 1: never (the table is the answer), crash (a mode without a "
        "runnable .tflite), mismatch (that, or a mode over its tolerance)",
    )
    tfl.add_argument(
        "--json",
        metavar="PATH",
        help="also write the table as JSON to PATH (its schema: lstm_ref/harness/schemas/tflite-sweep.schema.json)",
    )
    tfl.add_argument("--debug", action="store_true", help="show tracebacks and workers' stderr on errors")


def save_dir_target(text):
    """--save-dir, checked before any work: a writable directory, made if
    missing (its parent must exist)."""
    if text is None:
        return None
    path = user_path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--save-dir {text}: is a file; give a directory")
    if not path.exists():
        if not path.parent.is_dir():
            raise UsageError(f"--save-dir {text}: no directory {path.parent} to make it in")
        try:
            path.mkdir()
        except OSError as exc:
            raise UsageError(f"--save-dir {text}: cannot make it ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"--save-dir {text}: cannot write there")
    return path


def failing(rows, fail_on):
    """The rows that ``--fail-on`` counts against the run."""
    if fail_on == "crash":
        return [r for r in rows if r.status in tflite_cli.NOT_DEPLOYABLE]
    if fail_on == "mismatch":
        return [r for r in rows if r.status != "pass"]
    return []


def summary(rows, fail_on):
    """The line the sweep ends with: what passed, what gave no .tflite, and what --fail-on made of it."""
    passed = [r for r in rows if r.status == "pass"]
    text = f"{len(passed)}/{len(rows)} modes within tolerance"
    over = [r.mode for r in rows if r.status == "fail"]
    broken = [f"{r.mode} ({r.status})" for r in rows if r.status in tflite_cli.NOT_DEPLOYABLE]
    if over:
        text += f"; over tolerance: {', '.join(over)}"
    if broken:
        text += f"; no runnable .tflite: {', '.join(broken)}"
    bad = failing(rows, fail_on)
    if fail_on == "never":
        return text + "; exit 0 (--fail-on never: the exit code says the sweep ran, not which mode deploys)"
    if bad:
        return f"FAIL (--fail-on {fail_on}: {', '.join(r.mode for r in bad)}): {text}"
    return f"PASS (--fail-on {fail_on}): {text}"


def result_json(model, description, batch, time, seed, fail_on, rows):
    """What ``--json`` writes (``lstm_ref/harness/schemas/tflite-sweep.schema.json``; docs/check.md)."""
    return finite(
        {
            "schema_version": schemas.SCHEMA_VERSION,
            "command": NAME,
            "model": str(model),
            "format": description,
            "batch": batch,
            "time": time,
            "seed": seed,
            "fail_on": fail_on,
            "failing": [r.mode for r in failing(rows, fail_on)],
            "rows": tflite_cli.as_json(rows),
        }
    )


def run(args):

    path = json_target(args)
    model = user_path(args.model)
    unknown = sorted(set(args.modes or ()) - set(BY_NAME))
    if unknown:
        raise UsageError(f"--modes: unknown {unknown}; the modes are {list(BY_NAME)}")
    oracle_name, description = model_format(model)
    if oracle_name not in ("keras3", "tf_keras"):
        raise UsageError(f"{args.model} is {description}: tflite-sweep converts Keras models")
    save_dir = save_dir_target(args.save_dir)
    # What runs the model and what runs its .tflite files: said before minutes of conversion, not after.
    for spec in (ORACLES[oracle_name], TARGET.oracle):
        problem = spec.locate().problem
        if problem:
            raise OracleUnavailable(problem)
    pool = check.open_pool()
    try:
        rows, shape = tflite_cli.sweep(
            model,
            oracle_name == "tf_keras",
            pool,
            args.modes,
            args.batch,
            args.time,
            args.seed,
            progress=lambda text: print(text, file=sys.stderr),
            save_dir=save_dir,
        )
    finally:
        pool.close()
    tflite_cli.print_rows(f"{args.model} ({description}): TFLite modes against the Keras model", rows)
    saved = [os.path.join(args.save_dir, os.path.basename(r.saved)) for r in rows if r.saved]
    if save_dir is not None:
        print(
            f"saved {len(saved)} of {len(rows)} modes' .tflite (batch {shape[0]}, time {shape[1]}): "
            + (", ".join(saved) or "none: no mode converted")
            + (f"; check one as deployed: lstm-ref check {saved[0]} --source {args.model}" if saved else "")
        )
    if path:
        payload = result_json(model, description, shape[0], shape[1], args.seed, args.fail_on, rows)
        path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    print(summary(rows, args.fail_on))
    return EXIT_FAIL if failing(rows, args.fail_on) else EXIT_PASS
