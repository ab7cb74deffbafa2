"""``lstm-ref tflite-sweep MODEL`` and ``lstm-ref check MODEL.tflite --source MODEL``.

``tflite-sweep`` converts the user's own Keras model in every TFLite mode
(``tflite/convert_file.py``, in a process of its own: a converter crash is a
row), runs each ``.tflite`` in LiteRT (the ``litert`` worker: variables reset
before every invoke, two invokes compared bitwise), and compares it with
the Keras model on the same drawn inputs: the model's output per step when
it is a sequence, else the final output; the step at which the mode first
leaves float32's TFLite tolerance.  It answers, before deployment, which
mode the model can afford.  An integer input (token ids) is passed to
LiteRT as it is; ``save_dir`` keeps each mode's ``.tflite`` (static batch
and time); a mode that does not convert or does not run is a row, a model
that cannot be loaded and run an :class:`InputError`.

``check MODEL.tflite --source MODEL`` runs a deployed file against the
model it came from the same way (inputs drawn for the ``.tflite``'s own
input shape, which must be static: one that leaves its batch or time open
is refused, saying how to make one).  Without ``--source``, each fused LSTM op is checked against
the reference loaded with the op's own weights, dequantised, on what the op
received (:func:`check_alone`).
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..case import Case
from ..errors import InputError
from ..trace import Trace
from .compare import compare, per_step_max_abs
from .oracles.client import OracleError, OracleUnavailable
from .tflite import converter
from .tflite.modes import MODES, conversion_order
from .tolerances import TFLITE_TOLERANCES, Tolerance

CONVERT_FILE = "lstm_ref.harness.tflite.convert_file"
FUSED_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"  # TFLite's fused LSTM op (litert_worker.py), a check row's kind


@dataclass
class Row:
    mode: str
    status: str  # pass, fail, crashed, unsupported, hung, failed, run failed
    message: str = ""
    lowering: str = ""
    compared: str = ""
    max_abs: float = None
    leaves_float32_at: int = None  # first step over float32's tolerance (None: never)
    bitwise_repeat: bool = None
    seconds: float = 0.0
    per_step: list = None
    saved: str = None  # where --save-dir wrote the mode's .tflite
    # the comparison's figures, as a check row has them (check.LayerResult):
    # worst |d| / bound, the compared output's shape (rows x steps x width;
    # a final output as 1 step), the bound, and where the worst value is
    # (``ref``: the Keras model or the reference, ``tf``: LiteRT)
    ratio: float = None
    shape: str = ""
    tolerance: dict = None
    worst: dict = None


# Statuses of a mode that gave no runnable .tflite (``--fail-on crash``).
NOT_DEPLOYABLE = ("crashed", "hung", "unsupported", "failed", "run failed")


def _convert(path, legacy, modes, batch, time, seed, workdir):
    spec = converter.ModelSpec(
        "model", {"path": str(path), "batch": batch, "time": time, "seed": seed}, np.zeros(1), {}, np.zeros(1)
    )
    jobs = [("model", m) for m in conversion_order(modes)]
    return converter.convert({"model": spec}, jobs, workdir, legacy=legacy, module=CONVERT_FILE)


def _outputs(path, prefix):
    with np.load(path, allow_pickle=False) as f:
        return [f[f"{prefix}{i}"] for i in range(len(f.files))]


def _run(worker, blob, x):
    """LiteRT on ``blob`` with input ``x`` (its variables reset before each invoke): ``(meta, outputs)``."""
    meta, arrays = worker.request(
        {"op": "run", "reset": True}, {"model": np.frombuffer(blob, np.uint8), "in:0": np.asarray(x)}
    )
    return meta, [arrays[f"out:{i}"] for i in range(len(meta["outputs"]))]


def _figures(stats, tol, shape):
    """A row's comparison figures (:class:`Row`'s ``ratio`` to ``worst``) from one field's stats."""
    step, row, unit = stats.worst
    return {
        "ratio": float(stats.ratio),
        "shape": "x".join(str(int(n)) for n in shape),
        "tolerance": {"atol": float(tol.atol), "rtol": float(tol.rtol), "rounding": float(tol.rounding)},
        "worst": {
            "field": stats.name,
            "step": None if step is None else int(step),
            "row": int(row),
            "unit": int(unit),
            "ref": float(stats.worst_ref),
            "tf": float(stats.worst_tf),
        },
    }


def compare_outputs(mode, lite, keras_outs, meta, seconds=0.0):
    """One row: the first output of the model, LiteRT against Keras."""
    want, got = np.asarray(keras_outs[0], np.float64), np.asarray(lite[0], np.float64)
    if want.shape != got.shape:
        return Row(mode, "fail", f"LiteRT's output has shape {got.shape}, the model's {want.shape}")
    sequence = want.ndim == 3
    ref = Trace(h=want if sequence else want.reshape(want.shape[0], 1, -1))
    desired = {"h": got if sequence else got.reshape(got.shape[0], 1, -1)}
    mode_tol = TFLITE_TOLERANCES.get(mode)
    out = meta.get("outputs", [{}])[0]
    scale = out.get("scale", 0.0) if str(out.get("dtype", "float32")).startswith("int") else 0.0
    # a quantised output's bound includes ``steps`` codes of its own scale (int8: 25 codes, atol 0 otherwise)
    tol = mode_tol.for_output(scale) if hasattr(mode_tol, "for_output") else mode_tol
    bound = tol or Tolerance(0.0, 0.0)
    stats = compare(ref, desired, "float32", tolerance=bound).fields["h"]
    f32 = compare(ref, desired, "float32", tolerance=TFLITE_TOLERANCES["float32"].for_output(0.0)).fields["h"]
    row = Row(
        mode,
        "pass" if tol is not None and stats.passed else "fail",
        lowering=meta.get("lowering", ""),
        compared=f"output per step ({want.shape[1]} steps)" if sequence else "final output",
        max_abs=stats.max_abs,
        bitwise_repeat=meta.get("repeat", {}).get("bitwise"),
        seconds=seconds,
        leaves_float32_at=(f32.first_fail[0] if f32.first_fail else None) if sequence else None,
        per_step=per_step_max_abs(ref, desired, "h").tolist() if sequence else None,
        **_figures(stats, bound, np.shape(desired["h"])),
    )
    if tol is None:
        row.message = f"no measured tolerance for {mode}"
    elif not stats.passed:
        row.message = f"over the {mode} tolerance (atol={tol.atol:g}): max |d| {stats.max_abs:.3g}"
    if row.bitwise_repeat is False:
        row.message = (row.message + "; " if row.message else "") + "two invokes after a reset differ"
    return row


def saved_name(path, mode):
    """The file ``--save-dir`` writes a mode's ``.tflite`` to: ``<model stem>.<mode>.tflite``."""
    return f"{Path(path).stem}.{mode}.tflite"


def sweep(path, legacy, pool, modes=None, batch=1, time=None, seed=0, progress=None, save_dir=None):
    """Every mode of the model at ``path``: ``(rows, input shape)``, a
    :class:`Row` per mode and the static shape the modes were converted and
    run at (``time`` None: the model's own fixed time, else 20 steps; a
    ``time`` the model fixes otherwise is refused).  A mode that does not
    convert, or that LiteRT cannot run, is a row; a model that cannot be
    loaded and run at all is an :class:`InputError`.
    ``save_dir``: copy each converted ``.tflite`` there (:func:`saved_name`;
    static batch and time, as ``check`` takes it)."""
    modes = [m.name for m in MODES] if modes is None else list(modes)
    with tempfile.TemporaryDirectory(prefix="lstm-tflite-") as work:
        if progress:
            progress(f"converting {Path(path).name} in {len(modes)} modes (one process; a crash costs one row)")
        conversions = _convert(path, legacy, modes, batch, time, seed, work)
        x_file, keras_file = Path(work) / "model.x.npz", Path(work) / "model.keras.npz"
        if not keras_file.exists():  # the model did not even load and run: nothing any mode could be compared with
            first = conversions[("model", conversion_order(modes)[0])]
            why = first.message.removeprefix("unsupported: ")
            raise InputError(
                f"{path}: the model could not be loaded and run with a static input of batch {batch}, "
                f"time {'as the model fixes it' if time is None else time} ({why})"
            )
        with np.load(x_file) as f:
            x = f["x"]
        keras_outs = _outputs(keras_file, "out:")
        worker = pool.get("litert")
        rows = []
        for mode in modes:
            conv = conversions[("model", mode)]
            if not conv.ok:
                rows.append(Row(mode, conv.status, conv.message, seconds=conv.seconds))
                continue
            saved = None
            if save_dir is not None:
                saved = str(Path(save_dir) / saved_name(path, mode))
                shutil.copyfile(conv.path, saved)
            try:
                meta, lite = _run(worker, Path(conv.path).read_bytes(), x)
            except OracleUnavailable:
                raise
            except OracleError as exc:  # LiteRT refused or crashed on this mode's model: a row, not the run
                lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                rows.append(
                    Row(
                        mode,
                        "run failed",
                        f"LiteRT failed: {lines[-1] if lines else exc}"[:400],
                        seconds=conv.seconds,
                        saved=saved,
                    )
                )
                continue
            row = compare_outputs(mode, lite, keras_outs, meta, conv.seconds)
            row.saved = saved
            rows.append(row)
        return rows, tuple(int(n) for n in x.shape)


def print_rows(title, rows):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in (
        "mode",
        "status",
        "lowering",
        "compared",
        "max |d| vs Keras",
        "leaves float32 at step",
        "invokes bitwise",
        "message",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r.mode,
            r.status,
            r.lowering,
            r.compared,
            "" if r.max_abs is None else f"{r.max_abs:.2g}",
            "" if r.compared == "" else ("never" if r.leaves_float32_at is None else str(r.leaves_float32_at)),
            "" if r.bitwise_repeat is None else str(r.bitwise_repeat),
            r.message,
        )
    Console(width=200).print(table)


def as_json(rows):
    """``tflite-sweep --json``'s rows (``schemas/tflite-sweep.schema.json``)."""
    return [{k: v for k, v in r.__dict__.items()} for r in rows]


def layer_results(rows, mode, lowering, model, source=None, source_reader=None):
    """A ``check FILE.tflite`` run's rows as :class:`~lstm_ref.harness.check.LayerResult`,
    so that its ``--json`` has every check's schema (``schemas/check.schema.json``):
    without ``source``, one row per fused LSTM op (its name the layer, checked
    against the reference on its own weights); with it, one row for the
    model's first output, LiteRT against the Keras model, with a ``pair``
    saying which two models it compares.  What only a TFLite row has
    (its mode, lowering, what was compared, max |d|, the step it leaves
    float32's tolerance, whether two invokes agreed bitwise, per-step
    |d|) is its ``tflite``."""
    from .check import LayerResult

    out = []
    for r in rows:
        name = r.mode.split(": ", 1)[1] if ": " in r.mode else r.mode
        tflite = {
            "mode": mode,
            "lowering": r.lowering or lowering,
            "compared": r.compared,
            "max_abs": r.max_abs,
            "leaves_float32_at": r.leaves_float32_at,
            "bitwise_repeat": r.bitwise_repeat,
            "per_step": r.per_step,
        }
        if source is None:
            layer, kind = name, f"tflite.{FUSED_OP}"
            how = "the op in LiteRT vs the reference on the op's own weights, dequantised"
            pair = None
        else:
            framework = "Keras 2 (tf_keras)" if source_reader == "tf_keras" else "Keras 3"
            layer, kind = "model output", "tflite model"
            how = f"TF ({framework}) vs LiteRT"
            pair = {
                "source": {"model": str(source), "layer": "model output", "kind": f"{framework} model", "ran": "TF"},
                "artifact": {
                    "model": str(model),
                    "layer": "model output",
                    "kind": "tflite model",
                    "ran": f"LiteRT ({mode}, {r.lowering or lowering})",
                },
            }
        rows_compared = int(r.shape.split("x")[0]) if r.shape else 0
        out.append(
            LayerResult(
                layer=layer,
                kind="" if r.status == "skipped" else kind,
                status=r.status,
                reason=r.message,
                dtype="",
                shape=r.shape,
                ratio=r.ratio,
                h_max_abs=r.max_abs if source is None else None,
                worst=dict(r.worst or {}),
                tolerance=dict(r.tolerance or {}),
                rows=rows_compared,
                source="" if r.status == "skipped" else how,
                pair=pair,
                tflite=tflite,
            )
        )
    return out


def deployed_mode(meta):
    """Which mode a ``.tflite`` was converted in, from its input type and
    its constants' types (``litert_worker.run``'s ``inputs``/``constants``)."""
    io = meta["inputs"][0]["dtype"]
    consts = meta.get("constants", {})
    if io == "int8":
        return "int8"
    if io == "int16":
        return "int16x8"
    if consts.get("float16"):
        return "float16"
    if consts.get("int8"):
        return "dynamic_range"
    return "float32"


STATIC_HOW = (
    "convert keras.Model(inp, model(inp)) with inp = keras.Input((T, ...), batch_size=B), or let "
    "`lstm-ref tflite-sweep MODEL --batch B --time T --save-dir DIR` write one per mode"
)


def _static_input(artifact, worker):
    """The ``.tflite``'s bytes and its one input (``litert_worker``'s
    description), refused (:class:`InputError`, saying how to make one
    that is accepted) unless it is one (batch, time, ...) input of a static
    batch and time: LiteRT runs a size the model leaves open as 1, and a
    1-step check of a 1-row batch is not what the user deployed."""
    blob = Path(artifact).read_bytes()
    if not blob:
        raise InputError(f"{artifact}: the file is empty (a conversion that failed may have left it)")
    meta, _ = worker.request({"op": "inputs"}, {"model": np.frombuffer(blob, np.uint8)})
    if len(meta["inputs"]) != 1 or len(meta["inputs"][0]["shape"]) < 2:
        raise InputError(
            f"{artifact}: check takes a .tflite with one (batch, time, ...) input; it has "
            f"{[i['shape'] for i in meta['inputs']]}"
        )
    inp = meta["inputs"][0]
    signature = inp.get("shape_signature", inp["shape"])
    open_dims = [name for name, size in zip(("batch", "time"), signature[:2]) if size < 0]
    if open_dims or any(size < 0 for size in signature):
        what = " and ".join(open_dims) or "feature size"
        raise InputError(
            f"{artifact}: input {inp['name']!r} leaves its {what} open (shape signature {signature}; "
            f"LiteRT would run it as {inp['shape']}); check takes a .tflite of a static batch and "
            f"time: {STATIC_HOW}"
        )
    return blob, inp


def check_file(artifact, source, legacy, pool, seed=0):
    """A deployed ``.tflite`` against the Keras model it came from, on inputs
    drawn for the ``.tflite``'s own (static) input: ``(row, mode)``."""

    worker = pool.get("litert")
    blob, inp = _static_input(artifact, worker)
    batch, time = inp["shape"][:2]
    with tempfile.TemporaryDirectory(prefix="lstm-tflite-") as work:
        # the source runs on the same drawn x (and is converted once in float32, which is ignored)
        conversion = _convert(source, legacy, ["float32"], batch, time, seed, work)[("model", "float32")]
        keras_file = Path(work) / "model.keras.npz"
        if not keras_file.exists():
            raise InputError(f"--source {source}: the model could not be loaded and run ({conversion.message})")
        with np.load(Path(work) / "model.x.npz") as f:
            x = f["x"]
        keras_outs = _outputs(keras_file, "out:")
    run_meta, lite = _run(worker, blob, x)
    mode = deployed_mode(run_meta)
    return compare_outputs(mode, lite, keras_outs, run_meta), mode


def check_alone(artifact, pool, seed=0):
    """A deployed ``.tflite`` without its source: every fused LSTM op against
    the reference loaded with the op's own weights (dequantised), on what
    the op received in one run on drawn x: ``(rows, mode, lowering)``.  A
    WHILE-lowered LSTM keeps its weights inside the loop's body: nothing to
    read them from, say so (``--source`` checks it against its model)."""

    worker = pool.get("litert")
    blob, inp = _static_input(artifact, worker)
    shape, dtype = inp["shape"], inp["dtype"]
    rng = np.random.default_rng(seed)
    x = (
        rng.integers(1, 10, size=shape)
        if dtype.startswith("int") and not inp["scale"]
        else rng.standard_normal(shape).astype(np.float32)
    )
    run_meta, _ = _run(worker, blob, x)
    mode = deployed_mode(run_meta)
    fused, arrays = worker.request({"op": "fused_lstms"}, {"model": np.frombuffer(blob, np.uint8), "in:0": x})
    rows = []
    for k, op in enumerate(fused["ops"]):
        if "refused" in op:
            rows.append(Row(f"{mode}: {op['name']}", "skipped", op["refused"]))
            continue
        weights = {w: arrays[f"{k}:{w}"] for w in ("kernel", "recurrent_kernel", "bias")}
        units = weights["recurrent_kernel"].shape[0]
        case = Case("keras.layers.LSTM", {"units": int(units)}, arrays[f"{k}:x"], weights)
        tol = TFLITE_TOLERANCES.get(mode)
        if tol is not None and hasattr(tol, "for_output"):
            tol = tol.for_output(op["output_scale"])
        trace = case.run()
        desired = {"h": arrays[f"{k}:h"]}
        bound = tol or Tolerance(0.0, 0.0)
        stats = compare(Trace(h=trace.h), desired, "float32", tolerance=bound).fields["h"]
        f32 = compare(Trace(h=trace.h), desired, "float32", tolerance=TFLITE_TOLERANCES["float32"]).fields["h"]
        row = Row(
            f"{mode}: {op['name']}",
            "pass" if tol is not None and stats.passed else "fail",
            lowering="fused",
            compared=f"h per step ({trace.h.shape[1]} steps), the op's own weights "
            f"({', '.join(op['weight_types'])}) dequantised",
            max_abs=stats.max_abs,
            bitwise_repeat=run_meta["repeat"]["bitwise"],
            leaves_float32_at=f32.first_fail[0] if f32.first_fail else None,
            **_figures(stats, bound, np.shape(desired["h"])),
        )
        if tol is None:
            row.message = f"no measured tolerance for {mode}"
        elif not stats.passed:
            row.message = f"over the {mode} tolerance: max |d| {stats.max_abs:.3g} ({stats.ratio:.3g}x)"
        rows.append(row)
    if not rows:
        why = (
            "its LSTM is a WHILE loop (Keras 3's lowering): the weights sit inside the loop's body"
            if fused["lowering"] == "while"
            else "it holds no LSTM op"
        )
        raise InputError(f"{artifact}: nothing to check alone: {why}; give --source MODEL (the model it came from)")
    return rows, mode, fused["lowering"]
