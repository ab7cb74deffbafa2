"""``lstm-ref tflite-sweep``: a Keras model converted to TFLite in every mode,
each compared with the model."""

import sys

from .. import check, tflite_cli
from ..model_format import model_format
from ..tflite.modes import BY_NAME
from ._common import EPILOG, EXIT_PASS, UsageError, json_target, positive_int, seed, user_path

NAME = "tflite-sweep"


def add_parser(sub):
    tfl = sub.add_parser(
        "tflite-sweep", help="convert a Keras model to TFLite in every mode and compare each with the model",
        description="Convert MODEL with TF's TFLiteConverter in every mode (float32, float16, dynamic_range, int8, "
                    "int16x8; each in a process of its own: a converter crash is a row), run each in LiteRT "
                    "(variables reset before every invoke) and compare it with the Keras model on the same drawn "
                    "inputs: which mode can you afford?", epilog=EPILOG)
    tfl.add_argument("model", help="a Keras 3 .keras/.h5 or Keras 2 (tf_keras) .h5/SavedModel with one input")
    tfl.add_argument("--modes", nargs="+", metavar="MODE", help="only these modes (default: all five)")
    tfl.add_argument("--batch", type=positive_int, default=1, help="rows of drawn input")
    tfl.add_argument("--time", type=positive_int, default=20, help="steps of drawn input")
    tfl.add_argument("--seed", type=seed, default=0, help="seed of the drawn inputs")
    tfl.add_argument("--json", metavar="PATH", help="also write the table as JSON to PATH")
    tfl.add_argument("--debug", action="store_true", help="show tracebacks and workers' stderr on errors")


def run(args):

    path = json_target(args)
    model = user_path(args.model)
    unknown = sorted(set(args.modes or ()) - set(BY_NAME))
    if unknown:
        raise UsageError(f"--modes: unknown {unknown}; the modes are {list(BY_NAME)}")
    oracle_name, description = model_format(model)
    if oracle_name not in ("keras3", "tf_keras"):
        raise UsageError(f"{args.model} is {description}: tflite-sweep converts Keras models")
    pool = check.open_pool()
    try:
        rows = tflite_cli.sweep(model, oracle_name == "tf_keras", pool, args.modes, args.batch, args.time, args.seed,
                                progress=lambda text: print(text, file=sys.stderr))
    finally:
        pool.close()
    tflite_cli.print_rows(f"{args.model} ({description}): TFLite modes against the Keras model", rows)
    tflite_cli.write_json(path, {"model": str(model), "rows": tflite_cli.as_json(rows)})
    return EXIT_PASS
