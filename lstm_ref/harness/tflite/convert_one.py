"""Convert Keras LSTM models to TFLite, one mode at a time, in a process of
its own: ``python -m lstm_ref.harness.tflite.convert_one SPEC.json``.

Run by ``converter.py`` (the parent), never imported by it: TF's converter
can crash the whole process (a SIGSEGV in the calibrator, measured with
Keras 3's WHILE lowering), and a crash must cost one row, not the run.

Keras 3 or tf_keras is chosen by ``TF_USE_LEGACY_KERAS`` (``1``: tf_keras),
read by TF when it loads, as in the oracle workers.

SPEC.json::

    {"out_dir": "...", "jobs": [{"model": "<id>", "mode": "<mode name>"}, ...],
     "models": {"<id>": {"config": {...}, "arrays": "<.npz>", "return_sequences": true}}}

The ``.npz`` holds ``x`` (batch, time, features), the layer's weights as
``w:<name>`` and the representative dataset ``rep`` (samples, batch, time,
features).  Jobs run in order.  For each one this writes
``<out_dir>/<model>.<mode>.tflite`` (when the converter succeeds) and
``<model>.<mode>.json``: ``{"status": "ok" | "unsupported", "message",
"seconds", "bytes", "versions"}``.  A Python error from the converter is an
``unsupported`` row and the next job runs.  Each model's Keras outputs on
``x`` go to ``<model>.keras.npz`` (``out:0``, ``out:1``, ... in the model's
output order), for the record.

Progress goes to stdout as ``@@tflite <model> <mode> <phase>`` lines, flushed
(phases: ``build``, ``convert``, ``calibration`` at the first representative
sample, ``quantization`` after the last, ``written``), so that the parent
can say in which phase a process died; ``faulthandler`` writes the Python
stack of a fatal signal to stderr.

``LSTM_PARITY_TFLITE_CRASH=<mode>:<phase>`` calls ``os.abort()`` on entering
that phase of that mode: a deterministic crash for the parent's tests, used
only where a real one does not reproduce.
"""

import faulthandler
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from lstm_ref.harness.tflite.modes import mode_of

faulthandler.enable()  # a fatal signal prints the Python stack on stderr

import tensorflow as tf  # noqa: E402

LEGACY = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
if LEGACY:
    import tf_keras as keras  # noqa: E402
else:
    import keras  # noqa: E402

_CRASH_AT = os.environ.get("LSTM_PARITY_TFLITE_CRASH", "")


def marker(model_id, mode, phase):
    print(f"@@tflite {model_id} {mode} {phase}", flush=True)
    if _CRASH_AT == f"{mode}:{phase}":
        os.abort()


def versions() -> dict:
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "legacy": LEGACY}


def save_once():
    """tf_keras only: ``from_keras_model`` saves the model as a SavedModel
    anew on every ``convert()`` (``lite.py``, ``_convert_keras_to_saved_model``:
    ``_save.save``), 3 of the 3.5 s a mode costs here.  The first save of a
    model is kept and copied into the converter's temporary directory for
    the next modes; everything after the save (load, MLIR import, the
    fusion into ``UNIDIRECTIONAL_SEQUENCE_LSTM``, quantisation) runs as it
    does for ``from_keras_model``.  Measured: the same .tflite bytes in
    every mode, with and without."""

    from tensorflow.lite.python import lite

    real_save, saved = lite._save.save, {}

    def save(obj, export_dir, *args, **kwargs):
        if id(obj) not in saved:
            real_save(obj, export_dir, *args, **kwargs)
            saved[id(obj)] = (obj, tempfile.mkdtemp(prefix="lstm_parity_saved_"))
            shutil.copytree(export_dir, saved[id(obj)][1], dirs_exist_ok=True)
        else:
            shutil.copytree(saved[id(obj)][1], export_dir, dirs_exist_ok=True)

    lite._save.save = save


def _short_name(var):
    # Keras 3: "kernel"; tf_keras: "lstm/lstm_cell/kernel:0" -> "kernel"
    return var.name.rsplit("/", 1)[-1].split(":", 1)[0]


def build_model(config, arrays, return_sequences=True):
    """``Input(shape=(T, F), batch_size=B) -> LSTM(**config)`` with the
    case's weights; a static batch, as TFLite deploys it (a dynamic batch
    converts too, but then the fused op's state tensors have no size)."""
    batch, time_, features = arrays["x"].shape
    inp = keras.Input(shape=(time_, features), batch_size=batch)
    layer = keras.layers.LSTM(**{**config, "return_sequences": return_sequences})
    out = layer(inp)
    given = {k[2:] for k in arrays if k.startswith("w:")}
    wanted = {_short_name(v) for v in layer.weights}
    if given != wanted:
        raise ValueError(f"weights {sorted(given)} do not match the layer's variables {sorted(wanted)}")
    for var in layer.weights:
        var.assign(np.asarray(arrays[f"w:{_short_name(var)}"], np.float32))
    return keras.Model(inp, out)


def convert(model, model_id, mode, rep):
    """The mode's ``.tflite`` bytes; progress markers on the way."""

    def representative_dataset():
        for i, sample in enumerate(rep):
            if i == 0:
                marker(model_id, mode.name, "calibration")
            sample = np.asarray(sample)  # token ids stay integers: the model's input takes them as they are
            yield [sample if np.issubdtype(sample.dtype, np.integer) else sample.astype(np.float32)]
        marker(model_id, mode.name, "quantization")

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    mode.apply(converter, tf, representative_dataset)
    marker(model_id, mode.name, "convert")
    return converter.convert()


def _message(exc) -> str:
    """The converter's own words: the first MLIR ``error:`` line without its
    location prefix, else the exception's first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    errors = [ln.split("error:", 1)[1].strip() for ln in lines if "error:" in ln]
    return (errors or lines)[0][:400]


def build_case_model(desc, model_id, out_dir):
    """A case's model (``desc``: config, arrays, return_sequences): ``(model, x,
    representative dataset)``."""
    with np.load(desc["arrays"], allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return build_model(desc["config"], arrays, desc.get("return_sequences", True)), arrays["x"], arrays["rep"]


def run_jobs(spec_path, build=build_case_model):
    """Every job of the spec, in order: the model built once (``build(desc,
    model id, out dir) -> (model, x, rep)``, its Keras outputs on x saved),
    then converted in the job's mode; a converter error is a row."""
    spec = json.loads(open(spec_path).read())
    if LEGACY and os.environ.get("LSTM_PARITY_TFLITE_RESAVE") != "1":
        save_once()
    out_dir = spec["out_dir"]
    models, loaded = spec["models"], {}
    for job in spec["jobs"]:
        model_id, mode = job["model"], mode_of(job["mode"])
        base = os.path.join(out_dir, f"{model_id}.{mode.name}")
        started = time.monotonic()
        result = {"model": model_id, "mode": mode.name, "versions": versions()}
        try:
            if model_id not in loaded:
                marker(model_id, mode.name, "build")
                model, x, rep = build(models[model_id], model_id, out_dir)
                outs = model(x)
                outs = outs if isinstance(outs, (list, tuple)) else [outs]
                np.savez(
                    os.path.join(out_dir, f"{model_id}.keras.npz"),
                    **{f"out:{i}": np.asarray(o) for i, o in enumerate(outs)},
                )
                loaded[model_id] = (model, rep)
            model, rep = loaded[model_id]
            blob = convert(model, model_id, mode, rep)
            with open(base + ".tflite", "wb") as f:
                f.write(blob)
            result.update(status="ok", message="", bytes=len(blob))
            marker(model_id, mode.name, "written")
        except Exception as exc:  # noqa: BLE001 - the converter's refusal is a row
            import traceback

            result.update(
                status="unsupported",
                message=_message(exc),
                error_type=type(exc).__name__,
                detail=traceback.format_exc()[-4000:],
            )
        result["seconds"] = round(time.monotonic() - started, 3)
        with open(base + ".json", "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    run_jobs(sys.argv[1])
