"""The five TFLite conversion modes: converter settings and the quantisation
scheme of each, in one place.

NumPy and the standard library only: the parent process (tests, report)
reads the modes without importing TensorFlow; :meth:`Mode.apply` is called
by ``convert_one.py``, in its own process, with TF's module.

TFLite's own documentation of the schemes: ``tensorflow/lite/g3doc/
performance/post_training_quantization.md`` (and ``..._integer_quant_16x8``).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str  # the key of TFLITE_TOLERANCES and of every result row
    label: str  # what a reader calls it
    scheme: str  # the quantisation scheme, one line
    optimize: bool = False  # converter.optimizations = [tf.lite.Optimize.DEFAULT]
    supported_types: tuple = ()  # converter.target_spec.supported_types, as tf dtype names
    ops_set: str = ""  # converter.target_spec.supported_ops = [tf.lite.OpsSet.<ops_set>]
    representative: bool = False  # needs a representative dataset (calibration)
    io_type: str = ""  # inference_input_type / inference_output_type; "" keeps float32
    # Known to crash the converter process for some lowering (measured:
    # Keras 3's WHILE lowering segfaults in calibration, TF 2.21): converted
    # last, so that a crash loses no other mode's work.
    may_crash: bool = False

    def apply(self, converter, tf, representative_dataset=None):
        """Set ``converter`` (a ``tf.lite.TFLiteConverter``) up for this mode."""
        if self.optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.supported_types:
            converter.target_spec.supported_types = [getattr(tf, t) for t in self.supported_types]
        if self.ops_set:
            converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, self.ops_set)]
        if self.representative:
            if representative_dataset is None:
                raise ValueError(f"mode {self.name!r} needs a representative dataset")
            converter.representative_dataset = representative_dataset
        if self.io_type:
            converter.inference_input_type = getattr(tf, self.io_type)
            converter.inference_output_type = getattr(tf, self.io_type)


FLOAT32 = Mode(
    "float32",
    "float32",
    "no quantisation: float32 weights and activations, TFLite's float kernels (XNNPACK where it applies)",
)
FLOAT16 = Mode(
    "float16",
    "float16 weights",
    "weights stored as float16 and dequantised to float32 at load (DEQUANTIZE ops); all arithmetic in float32",
    optimize=True,
    supported_types=("float16",),
)
DYNAMIC_RANGE = Mode(
    "dynamic_range",
    "dynamic range",
    "weights int8 (symmetric, per-channel scale = max|w| / 127) for tensors of >= 1024 elements, smaller ones "
    "stay float32; activations quantised to int8 on the fly at each such op (per batch row), accumulated in "
    "int32, rescaled to float32.  Measured: the fused UNIDIRECTIONAL_SEQUENCE_LSTM keeps all its weights "
    "float32 (4 to 64 units), so for tf_keras the mode is float32",
    optimize=True,
)
INT8 = Mode(
    "int8",
    "int8 (full integer)",
    "weights int8 (symmetric, per-channel scales), activations int8 (asymmetric, per-tensor scale and zero "
    "point from the min/max seen on a representative dataset), the fused LSTM's cell state int16; input and "
    "output int8, so the caller (de)quantises with the model's scale and zero point",
    optimize=True,
    ops_set="TFLITE_BUILTINS_INT8",
    representative=True,
    io_type="int8",
    may_crash=True,
)
INT16X8 = Mode(
    "int16x8",
    "16x8 (int16 activations, int8 weights)",
    "weights int8 (symmetric, per-channel), activations int16 (symmetric, per-tensor scale from the "
    "representative dataset); input and output int16; no float fallback (TFLite's "
    "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 alone)",
    optimize=True,
    ops_set="EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",
    representative=True,
    io_type="int16",
    may_crash=True,
)

MODES = (FLOAT32, FLOAT16, DYNAMIC_RANGE, INT8, INT16X8)
BY_NAME = {m.name: m for m in MODES}


def mode_of(name: str) -> Mode:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no TFLite mode {name!r}; the modes are {[m.name for m in MODES]}") from None


def conversion_order(names) -> list:
    """``names`` with the modes that may crash the converter last (stable
    otherwise): everything before a crash is already written."""
    modes = [mode_of(n) for n in names]
    return [m.name for m in sorted(modes, key=lambda m: m.may_crash)]
