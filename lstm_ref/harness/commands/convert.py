"""``lstm-ref convert``: a Keras model's LSTMs (or a .pt/.onnx's) written as
a PyTorch state_dict or an ONNX model; a Keras 2 weights-only .h5's also as a
Keras 3 model (``--to keras``, built and saved by the Keras 3 worker)."""

import os

from .. import artifacts, check, keras_weights
from ..model_format import model_format
from ._common import ARTIFACTS, CONVERT_EPILOG, DRAWN, EXIT_FAIL, EXIT_PASS, UsageError, user_path

NAME = "convert"


def add_parser(sub):
    cnv = sub.add_parser(
        "convert",
        help="write a Keras model's LSTMs (or a .pt/.onnx's) as a PyTorch state_dict or an ONNX model",
        description="Convert every LSTM of MODEL with lstm_ref.convert and write them:\n"
        "  --to torch: a .pt state_dict (keys <layer>.weight_ih_l0 ..., plain keys for one LSTM);\n"
        "              a Keras Bidirectional is one bidirectional LSTM, ONNX nodes that chain (an\n"
        "              exported nn.LSTM(num_layers=L)) one LSTM of L layers;\n"
        "  --to keras: (a weights-only .h5 only) a Keras 3 .keras model, one keras.Input per LSTM\n"
        "              feeding keras.layers.LSTM(return_sequences=True, return_state=True) named as in\n"
        "              the file (a Bidirectional: keras.layers.Bidirectional, merge_mode concat), its\n"
        "              weights checked bitwise after saving; check it: lstm-ref check OUT.keras;\n"
        "  --to onnx:  an .onnx model (opset 14), one LSTM node per LSTM (a Bidirectional: one\n"
        "              bidirectional node), chained as in the Keras model (node k's output, merged,\n"
        "              is node k+1's X), each chain with its input <first>/X (time, batch, features)\n"
        "              and <first>/sequence_lens where the model ran masked; outputs <layer>/Y,\n"
        "              <layer>/Y_h, <layer>/Y_c (<layer>/merged: a Bidirectional's merge).  Each chain\n"
        "              is run in ONNX Runtime against the source before the command ends (exit 1\n"
        "              if it disagrees).  Layers that are not LSTMs (Embedding, Dense...) are listed\n"
        "              as left out.\n"
        "A Keras 2 weights-only .h5 (save_weights) is read as `lstm-ref check` reads it: its LSTMs\n"
        "found by their weights, the rest assumed from its keras_version (--config overrides), each\n"
        "LSTM with its own input (the file stores no topology).\n"
        "What the target cannot express (go_backwards or relu in PyTorch, a projection in ONNX, Keras 2's\n"
        "hard_sigmoid, ...) is refused with the reason.  Check the result: lstm-ref check OUT --source MODEL.",
        epilog=CONVERT_EPILOG,
    )
    cnv.add_argument(
        "model",
        help="a Keras .keras/.h5/SavedModel, a Keras 2 weights-only .h5 (save_weights), or a .pt/.onnx "
        "(to the other framework)",
    )
    cnv.add_argument("--to", required=True, choices=["torch", "onnx", "keras"], help="the target framework")
    cnv.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="the file to write (.pt/.pth, .onnx or .keras)"
    )
    cnv.add_argument(
        "--custom-objects",
        action="append",
        default=[],
        metavar="FILE.py",
        help="a Python file defining the Keras model's custom layers; repeatable",
    )
    cnv.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="[NAME=]JSON",
        help="a weights-only .h5 only: LSTM arguments overriding what the file implies, for the layer NAME "
        "or, without NAME=, every LSTM, as `lstm-ref check` takes them; repeatable",
    )
    cnv.add_argument("--debug", action="store_true", help="show tracebacks and workers' stderr on errors")


def run(args):

    model, out = user_path(args.model), user_path(args.output)
    target = artifacts.TARGETS[args.to]
    suffixes = {"torch": (".pt", ".pth"), "onnx": (".onnx",), "keras": (".keras",)}[args.to]
    if out.suffix not in suffixes:
        raise UsageError(f"-o {args.output}: --to {args.to} writes a {' or '.join(suffixes)} file")
    if out.is_dir() or not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise UsageError(f"-o {args.output}: cannot write there (no writable directory {out.parent})")
    if out == model:
        raise UsageError(f"-o {args.output} is MODEL itself")
    custom = [user_path(p) for p in args.custom_objects]
    for path in custom:
        if not path.is_file():
            raise UsageError(f"--custom-objects {path}: no such file")
    oracle_name, description = model_format(model, weights=True)
    artifacts.refuse_same_framework(oracle_name, target, model)
    if custom and oracle_name in ARTIFACTS:
        raise UsageError("--custom-objects has no effect on an .onnx/.pt file (it is for Keras layers); leave it out")
    wfile = None
    if args.to == "keras" and oracle_name != keras_weights.FORMAT:
        raise UsageError(
            f"--to keras converts a Keras 2 weights-only .h5 (save_weights); {model.name} is {description}"
        )
    if oracle_name == keras_weights.FORMAT:
        if custom:
            raise UsageError(
                "--custom-objects has no effect on a weights-only .h5 (it holds no layers' code); leave it out"
            )
        wfile = _weights_file(model, args.config)
        keras_weights.refuse_unportable(wfile, target)
    elif args.config:
        raise UsageError(f"--config applies to a weights-only .h5; {model.name} ({description}) carries its own config")
    pool = check.open_pool()
    try:
        if wfile is not None:
            lstms, skipped = keras_weights.convert_units(wfile), list(wfile.skipped)
        else:
            lstms, skipped, _ = artifacts.read_lstms(model, oracle_name, pool, custom_objects=custom, **DRAWN)
        if not lstms:
            raise UsageError(
                f"{model}: nothing to convert: no LSTM found"
                + (" (" + "; ".join(f"{n}: {w}" for n, w in skipped) + ")" if skipped else "")
            )
        converted = artifacts.convert_lstms(lstms, target)
        written = artifacts.write_artifact(converted, target, out, pool)
        chains = artifacts.check_chains(converted, out, pool) if target == artifacts.ONNX else []
    finally:
        pool.close()
    what = {
        "torch": "a PyTorch state_dict",
        "onnx": "an ONNX model (opset 14)",
        "keras": "a Keras 3 model, its weights equal to the converted ones bitwise, read back",
    }[args.to]
    print(f"lstm-ref convert: wrote {out} ({what}) from {model.name} ({description})")
    for (name, where), item in zip(written, converted):
        print(f"  {name} -> {where}")
        for note in item.notes:
            print(f"    note: {note}")
    for name, why in skipped:
        print(f"  skipped {name}: {why}")
    others = getattr(lstms, "others", ())
    if others:
        print("  left out (not LSTMs; not in the file): " + ", ".join(f"{p} ({c})" for p, c in others))
    for row in chains:
        figures = ", ".join(
            f"{what} max |d| {value:.3g}"
            for what, value in (("h", row.h_max_abs), ("c", row.c_max_abs))
            if value is not None
        )
        print(f"  parity: {row.layer}: {row.status.upper()} (ratio {row.ratio:.3g}, {figures}; {row.source})")
    if wfile is not None:
        print(
            "  assumed (not stored in a weights-only file): "
            + "; ".join(
                f"{lstm.name}: "
                + ", ".join(
                    f"{k}={v!r} [{lstm.origin[k]['from']}]"
                    for k, v in lstm.config.items()
                    if lstm.origin[k]["from"] != keras_weights.FILE
                )
                for lstm in wfile.lstms
            )
        )
        print(
            "  a weights-only file stores no topology, merge_mode or return_sequences: each LSTM has its own "
            "input, a Bidirectional's module returns both directions concatenated"
        )
    if args.to == "keras":  # `check --source` pairs .onnx/.pt ports only: the .keras runs against the reference
        print(f"check it: lstm-ref check {args.output}")
    else:
        print(
            f"check it: lstm-ref check {args.output} --source {args.model}"
            + "".join(f" --config '{c}'" for c in args.config)
        )
    if any(row.status != "pass" for row in chains):
        print("the chained model disagrees with its source: see the parity lines above")
        return EXIT_FAIL
    return EXIT_PASS


def _weights_file(model, specs):
    """A weights-only .h5, read and its ``--config`` applied as ``check`` does."""
    configs = keras_weights.parse_configs(specs)
    wfile = keras_weights.read(model)
    unknown = keras_weights.unmatched(configs, [wfile])
    if unknown:
        raise UsageError(f"--config {unknown[0]}=...: in {model.name}, {unknown[1]}")
    wfile = keras_weights.assume(wfile, configs)
    if not wfile.lstms:
        raise UsageError(
            f"{model}: nothing to convert: no LSTM whose semantics are known"
            + (" (" + "; ".join(f"{n}: {w}" for n, w in wfile.skipped) + ")" if wfile.skipped else "")
        )
    return wfile
