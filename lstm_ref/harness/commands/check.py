"""``lstm-ref check``: every LSTM of a saved model (or a checkpoint's cell,
an .onnx/.pt artifact, a deployed .tflite) against the reference."""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import lstm_ref

from ... import platform
from ...platform import PROFILES
from .. import artifacts, backends, check_grad, flax_checkpoints, keras_weights, schemas, tflite_cli
from .. import check as check_lib
from ..check import LayerResult
from ..model_format import model_format
from ..records import BY_KIND
from ._common import (
    ARTIFACTS,
    DRAWN,
    EPILOG,
    EXIT_FAIL,
    EXIT_PASS,
    UsageError,
    finite,
    json_target,
    one_line,
    positive_int,
    refuse_unused,
    seed,
    user_path,
)

NAME = "check"


@dataclass
class Report:
    """One MODEL's check: its rows and skips, as printed and as ``--json``
    writes them (``schemas/check.schema.json``)."""

    model: Path
    description: str  # what the file is, in words: the table's title, the JSON's "format"
    results: list  # [LayerResult]
    skipped: list  # [(name, why)]
    casts: list = field(default_factory=list)
    reader: str = ""  # what opened it: model_format's oracle name, "keras_weights", "checkpoint", "tflite"
    source: Path = None  # --source


def add_parser(sub):
    chk = sub.add_parser(
        "check",
        help="check every LSTM of a saved model (or a checkpoint's cell) against the reference",
        description="Run the model once and check every LSTM in it (Bidirectional directions, RNN(LSTMCell) "
        "cells, ...) step by step, h and c, on exactly the sequence, mask and initial state it "
        "receives, against the reference.  Relative paths are taken from the current directory.",
        epilog=EPILOG,
    )
    chk.add_argument(
        "model",
        nargs="+",
        help="a Keras 3 .keras or .h5 file, a Keras 2 (tf_keras) .h5 file or "
        "SavedModel directory, a Keras 2 weights-only .h5 (save_weights), an "
        "ONNX .onnx model, a PyTorch .pt state_dict or TorchScript archive "
        "(several: each is checked); with --scope, one TF checkpoint or "
        "SavedModel directory",
    )
    chk.add_argument(
        "--source",
        metavar="SOURCE",
        help="with one .onnx/.pt MODEL: the model it was made from (a .pt it was exported from, or the "
        "Keras .keras/.h5 `lstm-ref convert` read); its weights, converted, are compared with "
        "MODEL's, and both frameworks run the same input, compared step by step",
    )
    chk.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="[NAME=]FILE",
        help="the model's input: FILE.npy for a single-input model, NAME=FILE.npy per input "
        "(repeat), or one FILE.npz keyed by input name (default: random inputs, see "
        "--batch/--time/--seed)",
    )
    chk.add_argument(
        "--calls",
        type=positive_int,
        help="with an .onnx MODEL and --input: run the model N consecutive times, each state output (stateN, "
        "hn, h_out...) fed back as its input (state, h0, h_in...), and check every LSTM node on every call "
        "(default: 1)",
    )
    chk.add_argument("--batch", type=positive_int, help="rows of random input when no --input (default: 2)")
    chk.add_argument(
        "--time", type=positive_int, help="steps of random input when the model leaves time open (default: 7)"
    )
    chk.add_argument("--seed", type=seed, help="seed of the random inputs (default: 0)")
    chk.add_argument(
        "--batch-size",
        type=positive_int,
        help="rows sent to the framework at a time, so that memory stays flat for large inputs (default: 256)",
    )
    chk.add_argument(
        "--custom-objects",
        action="append",
        default=[],
        metavar="FILE.py",
        help="a Python file defining the model's custom layers (registered with "
        "keras.saving.register_keras_serializable), imported before the model loads; repeatable",
    )
    chk.add_argument(
        "--grad",
        action="store_true",
        default=None,  # None when not given: refuse_unused refuses it where it has no use
        help="a Keras model: also check each LSTM layer's gradient (x, initial state, every weight, per step) "
        "as TF computes it through the whole model, the loss a seeded random projection of the model's "
        "outputs, against the reference fed the upstream gradient the layer received: rows NAME (grad); "
        "with --source: each pair's gradients, both frameworks against their references and dL/dx, "
        "dL/d(state) across (does the port train the same?)",
    )
    chk.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch", "all"),
        help="a Keras 3 model: run it under Keras on this backend (all: the three, one column each) and "
        "check every LSTM against the reference of that backend (lstm_ref/keras_backends.py); each "
        "backend's worker runs in its own venv (make venv-jax, make venv-torch)",
    )
    chk.add_argument("--scope", help="checkpoint mode: the cell's variable scope, e.g. rnn/lstm_cell")
    chk.add_argument("--kind", help="checkpoint mode: the cell's kind, e.g. tf.compat.v1.nn.rnn_cell.LSTMCell")
    chk.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="[NAME=]JSON",
        help="checkpoint mode: the cell's constructor kwargs as JSON, e.g. '{\"num_units\": 8}'; "
        "on a weights-only .h5: LSTM arguments overriding what the file implies, for the layer "
        'NAME (e.g. lstm_1=\'{"recurrent_activation": "sigmoid"}\') or, without NAME=, for '
        "every LSTM; repeatable",
    )
    chk.add_argument(
        "--json",
        metavar="PATH",
        help="also write the result as JSON to PATH (for CI; one schema for every format: "
        "lstm_ref/harness/schemas/check.schema.json)",
    )
    chk.add_argument(
        "--platform",
        metavar="PROFILE",
        help="the platform profile the reference reproduces "
        "(default: this machine's, or $LSTM_PARITY_PLATFORM): " + ", ".join(PROFILES),
    )
    chk.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    chk.add_argument("--debug", action="store_true", help="show tracebacks and workers' stderr on errors")


def run(args):

    args.json_path = json_target(args)
    models = [user_path(m) for m in args.model]
    if args.backend is not None and (args.scope is not None or any(m.suffix == ".tflite" for m in models)):
        raise UsageError("--backend runs a Keras 3 .keras/.h5 model on Keras' backends, not a checkpoint or a .tflite")
    if args.scope is None and any(flax_checkpoints.describe(m) for m in models):
        return _check_flax(args, models)
    weights_only = (
        args.scope is None
        and bool(args.config)
        and (
            all(keras_weights.probe(m) == "keras2" for m in models)
            or (args.source is not None and keras_weights.probe(user_path(args.source)) == "keras2")
        )
    )
    if args.scope is None and (args.kind or (args.config and not weights_only)):
        raise UsageError(
            "--kind and --config describe a checkpoint's cell and need --scope; "
            "a .keras/.h5 model carries its own config (--config NAME=JSON also applies to a "
            "weights-only .h5)"
        )
    if args.scope is not None:
        if len(models) != 1:
            raise UsageError("--scope checks one checkpoint at a time")
        refuse_unused(args, ("source", "grad"), "on a checkpoint (--scope)")
        refuse_unused(args, ("batch", "time", "seed", "batch_size", "custom_objects"), "on a checkpoint (--scope)")
        return _check_checkpoint(args, models[0], check_lib)
    if any(m.suffix == ".tflite" for m in models):
        refuse_unused(args, ("grad",), "on a .tflite (TFLite has no gradients)")
        return _check_tflite(args, models)

    inputs = _read_inputs(args.input)
    if inputs and len(models) > 1:
        raise UsageError("--input goes with one model; check several models on drawn inputs, or one at a time")
    onnx_model = len(models) == 1 and models[0].suffix.lower() == ".onnx"
    if inputs and not onnx_model:
        refuse_unused(args, ("batch", "time", "seed"), "with --input (they shape drawn inputs)")
    if args.calls is not None and not (onnx_model and inputs):
        raise UsageError(
            "--calls runs an .onnx model several times on its --input, feeding its state back; give one .onnx "
            "MODEL and --input"
        )
    custom = [user_path(p) for p in args.custom_objects]
    for path in custom:
        if not path.is_file():
            raise UsageError(f"--custom-objects {path}: no such file")
    formats = [model_format(m, weights=True) for m in models]  # every file is vetted before any TF starts
    if args.grad:
        _refuse_grad(args, models, formats)
    if args.backend is not None:
        return _check_backends(args, models, formats, inputs, custom)
    source = _source(args, models, formats, inputs, custom)
    weight_files = _weight_files(args, models, formats, inputs, custom)
    drawn = _drawn(args)
    pool = check_lib.open_pool()
    reports = []
    try:
        for model, (oracle_name, description) in zip(models, formats):
            if oracle_name == keras_weights.FORMAT:
                results, skipped = keras_weights.check_file(weight_files[model], pool, **drawn)
                casts = []
            elif oracle_name in ARTIFACTS:
                results, skipped, description, casts = _check_artifact(
                    model, oracle_name, description, source, pool, drawn, custom, inputs, args.calls or 1, args.grad
                )
            else:
                results, skipped, described = check_lib.check_model(
                    model,
                    pool.get(oracle_name),
                    inputs,
                    **drawn,
                    batch_size=args.batch_size or 256,
                    progress=_progress(args, "batches"),
                    custom_objects=custom,
                )
                casts = (described or {}).get("casts", [])
                if args.grad:
                    rows, more, _ = check_grad.check_model_grads(
                        model, pool.get(oracle_name), inputs, **drawn, custom_objects=custom
                    )
                    results += rows
                    skipped += more
                if source is not None:  # a Keras port of --source: its LSTMs, each run by its oracle, paired
                    lstms, _, _ = artifacts.read_lstms(model, oracle_name, pool, custom_objects=custom, **drawn)
                    _keras_runners(lstms, pool.get(oracle_name))
                    pairs, more, against = _check_pairs(model, lstms, source, pool, drawn, custom, args.grad)
                    results += pairs
                    skipped += more
                    description += against
            if not results:
                _nothing_to_check(model, skipped)
            reports.append(
                Report(
                    model,
                    description,
                    results,
                    skipped,
                    casts,
                    oracle_name,
                    source[0] if source is not None else None,
                )
            )
    finally:
        pool.close()
    return _finish(args, reports)


def _check_backends(args, models, formats, inputs, custom):
    """``--backend``: every LSTM of a Keras 3 model, run by Keras on each
    named backend and checked against that backend's reference
    (:mod:`~lstm_ref.harness.backends`); one table, one column per backend.
    A named backend whose worker cannot start is refused (exit 2, with the
    ``make`` target that builds it); under ``all`` it is a row saying so."""
    refuse_unused(args, ("source", "grad", "calls"), "with --backend")
    for model, (oracle_name, description) in zip(models, formats):
        if oracle_name != "keras3":
            raise UsageError(f"--backend runs a Keras 3 model on Keras' backends; {model.name} is {description}")
    names = backends.parse(args.backend)
    drawn = _drawn(args)
    pool = check_lib.open_pool()
    reports = []
    try:
        usable, missing = backends.available(names, pool)
        if missing and (args.backend != "all" or not usable):
            raise UsageError(f"--backend {missing[0].backend}: {missing[0].reason}")
        for model, (oracle_name, description) in zip(models, formats):
            results, skipped, described = backends.check_model_on(
                model,
                usable,
                pool,
                inputs,
                **drawn,
                batch_size=args.batch_size or 256,
                progress=_progress(args, "batches"),
                custom_objects=custom,
            )
            if not results:
                _nothing_to_check(model, skipped)
            results += [
                LayerResult(layer=f"backend {m.backend}", kind="", status="skipped", reason=m.reason, backend=m.backend)
                for m in missing
            ]
            casts = (described or {}).get("casts", [])
            description = f"{description}; Keras on {', '.join(names)}"
            reports.append(Report(model, description, results, skipped, casts, oracle_name))
    finally:
        pool.close()
    for r in reports:
        backends.print_table(r.model, r.description, r.results, r.skipped, names)
    payload = result_json(reports)
    _write_json(args.json_path, reports, payload)
    return EXIT_PASS if payload["passed"] else EXIT_FAIL


def _drawn(args):
    """``--batch``, ``--time``, ``--seed`` of the drawn inputs, defaults filled in."""
    return {
        "batch": args.batch or DRAWN["batch"],
        "time": args.time or DRAWN["time"],
        "seed": DRAWN["seed"] if args.seed is None else args.seed,
    }


def _refuse_grad(args, models, formats):
    """``--grad`` checks Keras models (TF's tape through the whole model),
    and with ``--source`` any port's pairs; other uses are refused."""
    if args.source is not None:
        return
    for model, (oracle_name, description) in zip(models, formats):
        if oracle_name not in KERAS_PORTS:
            raise UsageError(
                f"--grad checks Keras models (.keras, .h5, SavedModel: TF's tape through the whole model), and "
                f"with --source a port's pairs; {model.name} is {description}"
            )


def _weight_files(args, models, formats, inputs, custom):
    """Keras 2 weights-only files, read, their ``--config`` applied
    (:mod:`~lstm_ref.harness.keras_weights`): ``{path: WeightsFile}``; the
    options that have no use for them, and ``--config`` on other files,
    are refused."""
    paths = [m for m, (name, _) in zip(models, formats) if name == keras_weights.FORMAT]
    if not paths:
        return {}
    why = "on a weights-only .h5 (each LSTM in it runs alone on drawn x: --batch, --time, --seed)"
    if inputs:
        raise UsageError(f"--input has no effect {why}; leave it out")
    if custom:
        raise UsageError(f"--custom-objects has no effect {why}; leave it out")
    refuse_unused(args, ("batch_size",), why)
    others = [m for m, (name, _) in zip(models, formats) if name != keras_weights.FORMAT]
    if args.config and others:
        raise UsageError(
            f"--config applies to weights-only .h5 files; {others[0].name} carries its own config: check it separately"
        )
    configs = keras_weights.parse_configs(args.config)
    files = {path: keras_weights.read(path) for path in paths}
    unknown = keras_weights.unmatched(configs, files.values())
    if unknown:
        raise UsageError(f"--config {unknown[0]}=...: in {', '.join(p.name for p in paths)}, {unknown[1]}")
    return {path: keras_weights.assume(wfile, configs) for path, wfile in files.items()}


def _nothing_to_check(model, skipped):
    """No row to check: what was found and skipped, listed on stdout,
    then the usage error (exit 2)."""
    for name, why in skipped:
        print(f"{model.name}: skipped {name}: {why}")
    reasons = "; ".join(f"{name}: {why}" for name, why in skipped)
    if not skipped:
        raise UsageError(f"{model}: nothing to check: no LSTM found in it")
    if any("not an LSTM" in why for _, why in skipped):
        raise UsageError(
            f"{model}: nothing to check: no LSTM the reference reproduces; found and skipped {len(skipped)} ({reasons})"
        )
    raise UsageError(f"{model}: nothing to check: every LSTM was skipped ({reasons})")


def _check_tflite(args, models):
    """A deployed .tflite against the Keras model it came from (``--source``)."""

    if len(models) != 1:
        raise UsageError("check one .tflite at a time")
    refuse_unused(
        args,
        ("input", "batch", "time", "batch_size", "custom_objects"),
        "on a .tflite (x is drawn for its static input shape; --seed picks it)",
    )
    if not models[0].is_file():
        raise UsageError(f"{args.model[0]}: no such file")
    seed = DRAWN["seed"] if args.seed is None else args.seed
    if args.source is None:
        pool = check_lib.open_pool()
        try:
            rows, mode, lowering = tflite_cli.check_alone(models[0], pool, seed)
        finally:
            pool.close()
        tflite_cli.print_rows(
            f"{args.model[0]} (deployed in {mode}, {lowering}): each LSTM op against the reference on its own weights",
            rows,
        )
        description = f"TFLite flatbuffer, deployed in {mode} ({lowering})"
        results = tflite_cli.layer_results(rows, mode, lowering, models[0])
        _write_json(args.json_path, [Report(models[0], description, results, [], [], "tflite")])
        print(_tflite_summary(rows))
        return EXIT_PASS if all(r.status in ("pass", "skipped") for r in rows) else EXIT_FAIL
    source = user_path(args.source)
    oracle_name, description = model_format(source)
    if oracle_name not in ("keras3", "tf_keras"):
        raise UsageError(f"--source {args.source} is {description}: a .tflite's source is a Keras model")
    pool = check_lib.open_pool()
    try:
        row, mode = tflite_cli.check_file(models[0], source, oracle_name == "tf_keras", pool, seed)
    finally:
        pool.close()
    tflite_cli.print_rows(f"{args.model[0]} (deployed in {mode}, read from its types) against {args.source}", [row])
    description = (
        f"TFLite flatbuffer, deployed in {mode} ({row.lowering or 'no lowering read'}), read from its types; "
        f"against --source {source.name} ({description})"
    )
    results = tflite_cli.layer_results([row], mode, row.lowering, models[0], source, oracle_name)
    _write_json(args.json_path, [Report(models[0], description, results, [], [], "tflite", source)])
    print(_tflite_summary([row]))
    return EXIT_PASS if row.status == "pass" else EXIT_FAIL


def _tflite_summary(rows):
    """The one PASS/FAIL line every check ends with, for .tflite rows."""
    checked = [r for r in rows if r.status != "skipped"]
    failed = [r for r in checked if r.status != "pass"]
    text = f"{'FAIL' if failed else 'PASS'}: {len(checked) - len(failed)}/{len(checked)} within tolerance"
    worst = max((r.max_abs for r in checked if r.max_abs is not None), default=None)
    if worst is not None:
        text += f" (worst max |d| {worst:.3g})"
    if failed:
        text += "; over tolerance: " + ", ".join(f"{r.mode} ({r.status})" for r in failed)
    if len(rows) > len(checked):
        text += f"; {len(rows) - len(checked)} skipped"
    return text


# The Keras models `check PORT --source MODEL` takes as a port: those
# `convert --to keras` writes (a Keras 3 .keras) and tf_keras models.
KERAS_PORTS = ("keras3", "tf_keras")


def _source(args, models, formats, inputs, custom):
    """``(path, (oracle, description))`` of ``--source``, vetted, or None;
    the options an .onnx/.pt check has no use for are refused."""

    artifacts = [name in ARTIFACTS for name, _ in formats]
    if any(artifacts):
        if inputs and formats[0][0] != "onnxruntime":
            raise UsageError(
                "--input has no effect on an .onnx/.pt file but an .onnx model (run whole on it): each LSTM "
                "of a .pt file is checked on drawn x (--batch, --time, --seed); leave it out"
            )
        refuse_unused(args, ("batch_size",), "on an .onnx/.pt file (each LSTM gets --batch drawn rows)")
    if args.source is None:
        if custom and all(artifacts):
            raise UsageError(
                "--custom-objects has no effect on an .onnx/.pt file (it is for Keras layers); leave it out"
            )
        return None
    if len(models) != 1 or formats[0][0] not in (*ARTIFACTS, *KERAS_PORTS):
        raise UsageError(
            "--source compares ONE .onnx/.pt/.keras file with the model it was made from; give one "
            ".onnx, .pt or .keras MODEL"
        )
    if formats[0][0] in KERAS_PORTS and inputs:
        raise UsageError("--input has no effect with --source on a Keras port (pairs run on drawn x); leave it out")
    path = user_path(args.source)
    fmt = model_format(path, weights=True)
    if custom and fmt[0] in (*ARTIFACTS, keras_weights.FORMAT):
        raise UsageError(
            "--custom-objects has no effect with an .onnx/.pt or weights-only --source (it is for Keras "
            "layers); leave it out"
        )
    if path == models[0]:
        raise UsageError(f"--source {args.source} is MODEL itself; give the model MODEL was made from")
    if fmt[0] == keras_weights.FORMAT:  # its --config applies to it, as on `check WEIGHTS.h5`
        configs = keras_weights.parse_configs(args.config)
        wfile = keras_weights.read(path)
        unknown = keras_weights.unmatched(configs, [wfile])
        if unknown:
            raise UsageError(f"--config {unknown[0]}=...: in --source {path.name}, {unknown[1]}")
        return path, fmt, keras_weights.assume(wfile, configs)
    if args.config:
        raise UsageError(f"--config applies to a weights-only .h5; --source {path.name} carries its own config")
    return path, fmt, None


def _check_artifact(model, oracle_name, description, source, pool, drawn, custom, inputs=None, calls=1, grad=False):
    """An .onnx/.pt file's rows: each LSTM alone on drawn x; with --input
    (an .onnx), each node also on what it received in the whole model's
    run (``calls`` times, states fed back); with --source, the pairs.
    ``(results, skipped, description, casts)``."""
    lstms, skipped, detail = artifacts.read_lstms(model, oracle_name, pool)
    description = f"{description}: {detail}" if detail else description
    results, more = artifacts.check_artifact(lstms, **drawn)
    skipped += more
    casts = []
    if inputs:
        ran, more, casts, meta = artifacts.check_as_run(model, lstms, pool.get(oracle_name), inputs, calls)
        results += ran
        skipped += more
        description += "; run whole in ONNX Runtime on --input" + (
            f", {calls} calls, state fed back: {', '.join(f'{a} <- {b}' for a, b in meta['pairs'])}"
            if calls > 1
            else ""
        )
    if source is not None:
        pairs, more, against = _check_pairs(model, lstms, source, pool, drawn, custom, grad)
        results += pairs
        skipped += more
        description += against
    return results, skipped, description, casts


def _check_pairs(model, lstms, source, pool, drawn, custom, grad=False):
    """``--source``'s LSTMs against ``model``'s (an .onnx/.pt file or a
    Keras port): ``(pair rows, skipped, what the description gains)``."""
    path, (src_oracle, src_description), wfile = source
    skipped = []
    if wfile is not None:  # a weights-only .h5: each LSTM run by tf_keras on drawn x
        src_lstms = keras_weights.source_lstms(wfile, pool, **drawn)
        skipped += [(f"{name} (in --source)", why) for name, why in wfile.skipped]
    else:
        src_lstms, _, _ = artifacts.read_lstms(path, src_oracle, pool, custom_objects=custom, **drawn)
    pairs, more = artifacts.check_pairs(
        path, src_lstms, model, lstms, pool.get("torch"), **drawn, grads=pool if grad else None
    )
    if wfile is not None:
        for row in pairs:
            unit = next((u for u in wfile.lstms if row.layer.startswith((f"{u.name} -> ", f"{u.layer} -> "))), None)
            if unit is not None:
                row.assumed = keras_weights.assumed_json(wfile, unit)
    skipped += [(f"{name} (vs --source)", why) for name, why in more]
    return pairs, skipped, f"; against --source {path.name} ({src_description})"


def _keras_runners(lstms, worker):
    """A Keras port's LSTMs, read from its model run, each given a runner:
    its kind's layer built by the oracle from the config and weights read
    from the port (what ``worker.run`` runs for a live test)."""
    for lstm in lstms:
        lstm.runner = worker.run
        lstm.how = f"{lstm.kind} built from the port's config and weights"


def _check_checkpoint(args, model, check_lib):

    if not (args.kind and args.config):
        raise UsageError("a checkpoint needs --scope, --kind and --config (and --input x.npy)")
    if len(args.config) > 1:
        raise UsageError("a checkpoint's cell takes one --config (its constructor kwargs as one JSON object)")
    args.config = args.config[0]
    if args.kind not in lstm_ref.KINDS:
        raise UsageError(f"unknown --kind {args.kind!r}; expected one of {list(lstm_ref.KINDS)}")
    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--config is not valid JSON ({exc.msg} at column {exc.colno}); write it like '{{\"num_units\": 8}}'"
        ) from None
    if not isinstance(config, dict):
        raise UsageError(f"--config must be a JSON object of constructor kwargs, got {args.config!r}")
    lstm_ref.from_config(args.kind, config)  # an unknown or bad key fails here, before TF runs
    inputs = _read_inputs(args.input)
    if len(inputs) != 1:
        raise UsageError("a checkpoint needs exactly one --input x.npy (batch, time, features)")
    (x,) = inputs.values()
    if x.ndim != 3 or x.dtype.kind != "f":
        raise UsageError(
            f"--input {args.input[0]}: expected a float array (batch, time, features), got {x.dtype} of shape {x.shape}"
        )
    if not model.exists() and not Path(str(model) + ".index").exists():
        raise UsageError(f"{args.model[0]}: no such checkpoint or SavedModel ({model})")
    pool = check_lib.open_pool()
    try:
        results, skipped = check_lib.check_checkpoint(model, args.scope, args.kind, config, x, pool)
    finally:
        pool.close()
    return _finish(args, [Report(model, f"checkpoint, scope {args.scope!r}", results, skipped, [], "checkpoint")])


def _check_flax(args, models):
    """A Flax checkpoint (msgpack'd tree, orbax directory): its cells of ``--kind``
    (:mod:`~lstm_ref.harness.flax_checkpoints`), ``--config`` the JSON of what the
    arrays cannot say (gate_fn, activation_fn, reverse, keep_order)."""
    why = "on a Flax checkpoint (each cell runs alone on drawn x: --batch, --time, --seed)"
    refuse_unused(args, ("source", "input", "calls", "batch_size", "custom_objects", "grad", "backend"), why)
    if len(args.config) > 1:
        raise UsageError("a Flax checkpoint takes one --config (the cells' kwargs as one JSON object)")
    config = {}
    if args.config:
        try:
            config = json.loads(args.config[0])
        except json.JSONDecodeError as exc:
            raise UsageError(f"--config is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(config, dict):
            raise UsageError(f"--config must be a JSON object of kwargs, got {args.config[0]!r}")
    for model in models:
        flax_checkpoints.needs_kind(model, args.kind)
    drawn = {k: getattr(args, k) or DRAWN[k] for k in ("batch", "time")}
    drawn["seed"] = DRAWN["seed"] if args.seed is None else args.seed
    pool = check_lib.open_pool()
    reports = []
    try:
        for model in models:
            results, skipped, description = flax_checkpoints.check_file(model, args.kind, config, pool, **drawn)
            reports.append(Report(model, description, results, skipped, [], "checkpoint"))
    finally:
        pool.close()
    return _finish(args, reports)


def _read_inputs(specs) -> dict:
    """``--input`` values to ``{name: array}`` ("" for the model's only input)."""
    import numpy as np

    inputs = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep:
            name, file = "", spec
        path = user_path(file)
        if not path.is_file():
            raise UsageError(f"--input {spec}: no such file ({path})")
        try:
            loaded = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any reading failure names the file
            raise UsageError(f"--input {spec}: cannot be read as .npy/.npz ({one_line(exc)})") from None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            if sep:
                raise UsageError(f"--input {spec}: an .npz holds every input by name; give it without NAME=")
            arrays = {k: loaded[k] for k in loaded.files}
        else:
            arrays = {name: loaded}
        for key, value in arrays.items():
            if value.ndim == 0 or value.shape[0] == 0:
                raise UsageError(
                    f"--input {spec}: {key or 'the array'} has shape {value.shape}; expected at least one row"
                )
            if key in inputs:
                raise UsageError(f"--input: input {key or '(the only one)'!r} is given twice")
            if value.dtype.kind not in "fiub":
                raise UsageError(f"--input {spec}: {key or 'the array'} has dtype {value.dtype}; expected numbers")
            inputs[key] = value
    if "" in inputs and len(inputs) > 1:
        raise UsageError("--input: give every input as NAME=FILE when there are several")
    return inputs


def _progress(args, unit):
    if args.no_progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the report extra
        return None

    def bar(chunks):
        return tqdm(
            chunks,
            desc="lstm-ref check",
            unit=unit,
            file=sys.stderr,
            disable=None if len(chunks) > 1 else True,
            leave=False,
        )

    return bar


def _finish(args, reports):
    """Print every model's table, write the JSON, and give the exit code."""

    for r in reports:
        print_results(r.model, r.description, r.results, r.skipped, r.casts)
    payload = result_json(reports)
    _write_json(args.json_path, reports, payload)
    return EXIT_PASS if payload["passed"] else EXIT_FAIL


def _passed(results):
    return all(r.status == "pass" for r in results if r.status != "skipped")


def result_json(reports):
    """What ``--json`` writes, one schema for every format
    (``lstm_ref/harness/schemas/check.schema.json``; docs/check.md): the
    models, every row (checked and skipped) with the model it belongs to,
    the inputs cast, the platform profile, and whether all passed."""
    profile = platform.current()
    layers, casts, models = [], [], []
    for r in reports:
        models.append(
            {
                "model": str(r.model),
                "format": r.description,
                "reader": r.reader,
                "source": None if r.source is None else str(r.source),
            }
        )
        rows = r.results + [LayerResult(layer=name, kind="", status="skipped", reason=why) for name, why in r.skipped]
        layers += [{"model": str(r.model), "format": r.description, **row.as_json()} for row in rows]
        casts += [{"model": str(r.model), **cast} for cast in r.casts]
    return finite(
        {
            "schema_version": schemas.SCHEMA_VERSION,
            "command": NAME,
            "passed": all(_passed(r.results) for r in reports),
            "platform": {"profile": profile.name, "source": platform.source(), "summary": profile.summary},
            "models": models,
            "input_casts": casts,
            "layers": layers,
        }
    )


def _write_json(path, reports, payload=None):
    """``--json PATH``: :func:`result_json`, strict JSON."""
    if path:
        payload = result_json(reports) if payload is None else payload
        path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")


def _fmt(value, spec=".2e"):
    return "" if value is None else format(value, spec)


def _where(worst):
    if not worst:
        return ""
    if "index" in worst:  # a --grad row: the worst array and the index in it
        return f"{worst['field']}: at {tuple(worst['index'])}"
    step = "" if worst.get("step") is None else f"step {worst['step']}, "
    return f"{worst['field']}: {step}row {worst['row']}, unit {worst['unit']}"


def _label(kind):

    record = BY_KIND.get(kind)
    return record.label if record else kind


def print_results(model, description, results, skipped, casts=()):
    """The table, the tolerances and profile it was judged by, the inputs
    cast to the model's dtype, the failures' worst values, then one summary
    line.  On a terminal the table fits its width (a narrow one loses the
    optional columns, and a line says which); piped or redirected, every
    column is printed at the table's own width, never cut to 80."""
    failed = [r for r in results if r.status != "pass"]
    summary = _summary(results, failed, skipped)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich comes with the report extra
        for r in results:
            print(f"{r.layer}  {r.kind}  ratio {_fmt(r.ratio, '.3g')}  {r.status.upper()}  {r.reason}")
        for name, why in skipped:
            print(f"skipped {name}: {why}")
        for cast in casts:
            print(check_lib.cast_note(cast))
        for line in _assumed_lines(results):
            print(line)
        print(summary)
        return
    console = Console(highlight=False)
    terminal = console.is_terminal
    columns = _columns(results, console.width if terminal else None)
    table = Table(title=f"lstm-ref check {model.name} ({description})", title_justify="left")
    for name, _ in columns:
        table.add_column(
            name, justify="left" if name in ("layer", "kind", "worst at", "verdict") else "right", overflow="fold"
        )
    for r in results:
        table.add_row(*(get(r) for _, get in columns))
    if not terminal:  # piped: the table's natural width, whatever COLUMNS says
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        console = Console(highlight=False, width=max(80, natural))
    console.print(table)
    left_out = [name for name, _ in _columns(results, None) if name not in dict(columns)]
    if left_out:
        console.print(
            f"(a {console.width}-column terminal: {', '.join(left_out)} left out; a wider terminal, a pipe "
            "or --json shows them)"
        )
    _print_footer(console, results, failed, skipped)
    for cast in casts:
        console.print(check_lib.cast_note(cast))
    for line in _assumed_lines(results):
        console.print(line, markup=False, soft_wrap=True)
    console.print(("[red]" if failed else "[green]") + summary)


def _assumed_lines(results):
    """For the rows of a weights-only file: per row the config it was checked
    under, each value tagged with where it came from, then (once each) why
    for every value the weights do not show (``keras_weights.py``)."""
    lines, whys = [], {}
    for r in results:
        if not r.assumed:
            continue
        origin = r.assumed["from"]
        values = ", ".join(f"{k}={v!r} [{origin[k]['from']}]" for k, v in r.assumed["config"].items())
        lines.append(f"{r.layer} assumed: {values}")
        for k, v in r.assumed["config"].items():
            if origin[k]["from"] != keras_weights.FILE:
                whys.setdefault(f"  {k}={v!r} [{origin[k]['from']}]: {origin[k]['why']}", None)
        if r.assumed.get("converted"):
            whys.setdefault(f"  {r.layer}: {r.assumed['converted']}", None)
    if lines:
        lines += list(whys)
        lines.append(
            "each LSTM of a weights-only file ran alone on drawn x (no mask, zero initial state); "
            "--config NAME='{...}' overrides an assumption"
        )
    return lines


def _summary(results, failed, skipped):
    worst = max((r.ratio for r in results if r.ratio is not None), default=0.0)
    summary = (
        f"{'FAIL' if failed else 'PASS'}: {len(results) - len(failed)}/{len(results)} within tolerance "
        f"(worst ratio {worst:.3g}, margin {(1 / worst) if worst else float('inf'):.3g}x)"
    )
    if failed:
        summary += "; over tolerance: " + ", ".join(r.layer for r in failed)
    if skipped:
        summary += f"; {len(skipped)} skipped"
    return summary


def _columns(results, width):
    """(name, getter) per column; under 150 characters only what decides
    (where, how far, the verdict), and "worst at" from 100; every column
    when ``width`` is None (not a terminal)."""
    columns = [
        ("layer", lambda r: r.layer),
        ("kind", lambda r: _label(r.kind)),
        ("dtype", lambda r: r.dtype),
        ("x", lambda r: r.shape),
        ("h max |d|", lambda r: _fmt(r.h_max_abs)),
        ("c max |d|", lambda r: _fmt(r.c_max_abs)),
        ("worst at", lambda r: _where(r.worst)),
        ("atol / rtol", _tolerance_cell),
        ("ratio", lambda r: _fmt(r.ratio, ".3g")),
        ("verdict", lambda r: "[green]PASS" if r.status == "pass" else "[red]FAIL"),
    ]
    if any(r.weights_max_abs for r in results):  # --source: the converted source's weights against the artifact's
        columns.insert(
            -2,
            (
                "weights |d|",
                lambda r: _fmt(max(r.weights_max_abs.values(), default=0.0)) if r.weights_max_abs is not None else "",
            ),
        )
    if width is not None and width < 150:
        columns = [
            c
            for c in columns
            if c[0] in ("layer", "x", "h max |d|", "c max |d|", "weights |d|", "ratio", "verdict")
            or (c[0] == "worst at" and width >= 100)
        ]
    return columns


def _tolerance_cell(r):
    if "grad" in r.tolerance:  # a --grad row: the kind's gradient bound
        return f"grad {r.tolerance['grad']:.2g}"
    return f"{r.tolerance.get('atol', 0):g} / {r.tolerance.get('rtol', 0):g}"


def _print_footer(console, results, failed, skipped):
    tolerances = sorted(
        {
            (r.dtype, r.tolerance.get("atol"), r.tolerance.get("rtol"), r.tolerance.get("rounding"))
            for r in results
            if r.tolerance and "grad" not in r.tolerance
        }
    )
    for dtype, atol, rtol, rounding in tolerances:
        console.print(
            f"tolerance ({dtype}): |ref - tf| <= {atol:g} + {rtol:g} |tf| + {rounding:g} x the "
            "reference's own rounding (lstm_ref/harness/tolerances.py)"
        )
    if any("grad" in r.tolerance for r in results if r.tolerance):
        console.print(
            "(grad) rows: every gradient array (x, h0, c0, w:<weight>, steps:h, steps:c_carried) within "
            "|g_ref - g_tf| <= grad x (1 + |g_ref|), grad the kind's measured bound (KindRecord.grad)"
        )
    console.print(f"platform profile: {platform.current()} ({platform.source()}; lstm_ref/platform.py)")
    if any(r.pair for r in results):
        console.print(
            "SOURCE -> ARTIFACT rows: the source framework's outputs, in the artifact's layout, against "
            "the artifact's, same tolerance; weights |d|: max |converted source weights - artifact weights|"
        )
    for r in failed:
        if not r.worst:
            console.print(f"[red]{r.layer}[/]: {r.reason}")
            continue
        names = ("source", "artifact") if r.pair else ("ref", "tf")
        console.print(
            f"[red]{r.layer}[/]: {r.reason or 'over tolerance'}; worst at {_where(r.worst)}: "
            f"{names[0]}={r.worst.get('ref')!r} {names[1]}={r.worst.get('tf')!r}"
        )
    for name, why in skipped:
        console.print(f"skipped {name}: {why}")
