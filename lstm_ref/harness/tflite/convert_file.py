"""Convert a user's saved Keras model to TFLite, one mode at a time, in a
process of its own: ``python -m lstm_ref.harness.tflite.convert_file SPEC.json``.

The same contract as ``convert_one.py`` (its markers, its result files, a
crash costing one row), for a model file instead of a case: each model's
``config`` is ``{"path": "<model file>", "batch": B, "time": T, "seed": S}``
(its ``.npz`` is not read).  The model is loaded (Keras 3, or tf_keras under
``TF_USE_LEGACY_KERAS=1``), given a static batch and time (TFLite deploys
static shapes), and run once on inputs drawn for its input: floats from a
normal distribution, or token ids in [1, 10) for an integer input (kept
integers, in calibration too: LiteRT takes them as they are).  Those
inputs go to ``<model>.x.npz`` and the model's own outputs to
``<model>.keras.npz``, so that the parent compares every mode with the model
it came from.  A model with more than one input is refused.
"""

import os
import sys

import numpy as np

from lstm_ref.harness.tflite import convert_one
from lstm_ref.harness.tflite.convert_one import keras


def input_dtype(tensor) -> np.dtype:
    """The NumPy dtype of a model input: Keras 3 names it ("int32"), tf_keras
    gives a ``tf.DType`` (``<dtype: 'int32'>``)."""
    dtype = getattr(tensor, "dtype", "float32")
    return np.dtype(getattr(dtype, "as_numpy_dtype", None) or str(dtype))


DEFAULT_TIME = 20  # steps of drawn input where the model leaves time open and --time is not given


def load(path, batch, time_, seed):
    """The model with a static (batch, time) input, and inputs drawn for it.
    ``time_``: None takes the model's own fixed time, else
    :data:`DEFAULT_TIME`; a time the model fixes otherwise is refused."""
    model = keras.models.load_model(path, compile=False)
    if len(model.inputs) != 1:
        raise ValueError(f"the model has {len(model.inputs)} inputs; tflite-sweep converts single-input models")
    shape = tuple(model.inputs[0].shape)[1:]
    if len(shape) >= 1 and shape[0] is None:
        shape = (DEFAULT_TIME if time_ is None else time_,) + tuple(shape[1:])
    elif time_ is not None and len(shape) >= 1 and shape[0] != time_:
        raise ValueError(
            f"the model fixes its input at {shape[0]} steps, and --time {time_} asks for another "
            "(leave --time out to take the model's)"
        )
    if any(d is None for d in shape):
        raise ValueError(f"the model's input shape {tuple(model.inputs[0].shape)} has unknown sizes besides time")
    dtype = input_dtype(model.inputs[0])
    inp = keras.Input(shape=shape, batch_size=batch, dtype=model.inputs[0].dtype)
    fixed = keras.Model(inp, model(inp))
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        x = rng.integers(1, 10, size=(batch,) + shape).astype(dtype)
    else:
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
    return fixed, x


def representative(x, seed, samples=8):
    """Calibration inputs of the model's static shape: x with noise (floats)
    or other drawn token ids (integers)."""
    rng = np.random.default_rng(seed + 1)
    if np.issubdtype(x.dtype, np.integer):
        return np.stack([rng.integers(1, 10, size=x.shape).astype(x.dtype) for _ in range(samples)])
    return np.stack([(x + 0.3 * rng.standard_normal(x.shape)).astype(np.float32) for _ in range(samples)])


def build_file_model(desc, model_id, out_dir):
    """The user's model with a static input, x drawn for it (saved beside
    its Keras outputs), and calibration inputs."""
    config = desc["config"]
    seed = int(config["seed"])
    time_ = None if config["time"] is None else int(config["time"])
    model, x = load(config["path"], int(config["batch"]), time_, seed)
    np.savez(os.path.join(out_dir, f"{model_id}.x.npz"), x=x)
    return model, x, representative(x, seed)


if __name__ == "__main__":
    convert_one.run_jobs(sys.argv[1], build_file_model)
