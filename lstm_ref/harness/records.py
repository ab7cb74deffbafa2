"""One record per kind: everything the harness knows about it, in one place.

In the spirit of PyTorch's ``OpInfo``: tests, the report, ``check``, the
bench, ``make mutants`` and ``measure_tolerances`` iterate :data:`RECORDS`
and hard-code no kind.  ``parity_tests/meta/test_records.py`` fails when a
registered kind has no record or a record is incomplete.

Adding a kind is one family module in ``lstm_ref/`` (the reference, its
variants) plus one record here (and its goldens).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import keras_lstm, layer_norm_cells, onnx_lstm, tf1_cells, tf_keras_lstm, torch_lstm
from ..reference import load_families
from ..variants import always, never
from . import error_inputs, sweep
from .oracles.client import ORACLES, OracleSpec
from .tflite.spec import TARGET as TFLITE
from .tolerances import OneStepBound, Tolerance, tolerance_for


def _strategy(name, *args):
    """The Hypothesis strategy ``strategies.<name>(*args)``, built on demand
    (Hypothesis is a test dependency, not the core's)."""
    def build():
        from . import strategies

        return getattr(strategies, name)(*args)
    build.__name__ = name
    return build


@dataclass(frozen=True)
class KindRecord:
    kind: str  # the TF class path, as lstm_ref.from_config takes it
    id: str  # short, unique, not a substring of another id: test ids, -k, report rows
    label: str  # what a reader calls it
    reference: type  # the family's Reference subclass
    oracle: OracleSpec  # the worker and environment that run the real thing
    examples: Callable  # () -> Hypothesis strategy of lstm_ref.case.Case
    sweep: Callable  # (seed) -> iterator of named Cases, for the report
    goldens: str  # module of lstm_ref.harness.golden holding its @golden cases
    variants: tuple  # lstm_ref.variants.Variant: the wrong ports it is confused with
    error_inputs: tuple  # error_inputs.ErrorInput rows
    throughput_config: Callable  # (rng) -> a small config, for `make bench`'s examples/s
    tests: tuple  # its own test modules, run by `make mutants` (with test_kinds.py -k id)
    # Per compute dtype, joined with the dtype table by taking the max; each
    # with the measurement that justifies it.
    tolerances: dict = None
    # Whether TF run in float64 on the rounded inputs is what oracle mode
    # computes (contrib's float16 epsilon differs from its float64 one).
    float64_twin: Callable = always
    # Deployment targets the kind can be converted to (tflite.TFLiteTarget: its modes, its oracle).
    targets: tuple = ()

    def tolerance(self, dtype) -> Tolerance:
        """The table's entry for compute ``dtype``, with this kind's overrides."""
        return tolerance_for(dtype, self.tolerances)


RECORDS = (
    KindRecord(
        kind="keras.layers.LSTM", id="keras3", label="LSTM (Keras 3)", reference=keras_lstm.KerasLSTM,
        oracle=ORACLES["keras3"], examples=_strategy("keras_lstm_examples"), sweep=sweep.keras_sweep,
        goldens="keras_cases", variants=keras_lstm.KERAS_LSTM_VARIANTS, error_inputs=error_inputs.KERAS_LSTM,
        throughput_config=lambda rng: {
            "units": int(rng.integers(1, 7)), "go_backwards": bool(rng.integers(2)),
            "activation": str(rng.choice(["tanh", "relu", "gelu"])),
            "recurrent_activation": str(rng.choice(["sigmoid", "hard_sigmoid"]))},
        tests=("parity_tests/test_keras_lstm.py", "parity_tests/test_float16.py", "parity_tests/test_platforms.py"),
        targets=(TFLITE,),
        tolerances={
            # float16 free-running: worst t 1.4e-3 over the wide draws (a 1-ulp
            # GEMM-order difference carried by the recurrence; tolerances.py),
            # 9.5e-4 live (log_softmax gates); 5e-3 is 3.5x.
            "float16": Tolerance(atol=5e-3, rtol=5e-3),
        },
    ),
    KindRecord(
        kind="tf_keras.layers.LSTM", id="tf_keras", label="LSTM (Keras 2, tf_keras)",
        reference=tf_keras_lstm.TfKerasLSTM, oracle=ORACLES["tf_keras"], examples=_strategy("tf_keras_lstm_examples"),
        sweep=sweep.tf_keras_sweep, goldens="tf_keras_cases", variants=tf_keras_lstm.TF_KERAS_LSTM_VARIANTS,
        error_inputs=error_inputs.TF_KERAS_LSTM,
        throughput_config=lambda rng: {
            "units": int(rng.integers(1, 7)), "go_backwards": bool(rng.integers(2)),
            "activation": str(rng.choice(["tanh", "tanh", "relu"])),
            "recurrent_activation": str(rng.choice(["sigmoid", "hard_sigmoid"]))},
        tests=("parity_tests/test_tf_keras_lstm.py", "parity_tests/test_float16.py"), targets=(TFLITE,),
        tolerances={
            # float16 free-running: as Keras 3 (the same TF ops): 1.4e-3 wide,
            # 1.1e-3 live (softmax gates); 5e-3 is 3.5x.
            "float16": Tolerance(atol=5e-3, rtol=5e-3),
        },
    ),
    KindRecord(
        kind="tf.compat.v1.nn.rnn_cell.BasicLSTMCell", id="tf1_basic", label="BasicLSTMCell (TF1)",
        reference=tf1_cells.BasicLSTMCell, oracle=ORACLES["tf1"],
        examples=_strategy("tf1_examples", "tf.compat.v1.nn.rnn_cell.BasicLSTMCell"), sweep=sweep.basic_sweep,
        goldens="tf1_cases", variants=tf1_cells.BASIC_LSTM_CELL_VARIANTS, error_inputs=error_inputs.BASIC_LSTM_CELL,
        throughput_config=lambda rng: {"num_units": int(rng.integers(1, 7)),
                                       "forget_bias": float(rng.choice([0.0, 1.0]))},
        tests=("parity_tests/test_tf1_cells.py",),
    ),
    KindRecord(
        kind="tf.compat.v1.nn.rnn_cell.LSTMCell", id="tf1_lstmcell", label="LSTMCell (TF1)",
        reference=tf1_cells.LSTMCell, oracle=ORACLES["tf1"],
        examples=_strategy("tf1_examples", "tf.compat.v1.nn.rnn_cell.LSTMCell"), sweep=sweep.lstmcell_sweep,
        goldens="tf1_cases", variants=tf1_cells.LSTM_CELL_VARIANTS, error_inputs=error_inputs.LSTM_CELL,
        throughput_config=lambda rng: {"num_units": int(rng.integers(1, 7)), "use_peepholes": bool(rng.integers(2)),
                                       "cell_clip": float(rng.choice([0.5, 3.0]))},
        tests=("parity_tests/test_tf1_cells.py",),
    ),
    KindRecord(
        kind="tf.contrib.rnn.LayerNormBasicLSTMCell", id="contrib", label="LayerNormBasicLSTMCell (contrib)",
        reference=layer_norm_cells.LayerNormBasicLSTMCell, oracle=ORACLES["contrib"],
        examples=_strategy("layer_norm_examples", "tf.contrib.rnn.LayerNormBasicLSTMCell"), sweep=sweep.contrib_sweep,
        goldens="layer_norm_cases", variants=layer_norm_cells.CONTRIB_VARIANTS, error_inputs=error_inputs.CONTRIB,
        throughput_config=lambda rng: {"num_units": int(rng.integers(2, 7))},  # 1 unit: rounding noise
        tests=("parity_tests/test_layer_norm_cells.py", "parity_tests/test_platforms.py"),
        tolerances={
            # Layer norm divides by sqrt(var + eps): rounding in a gate block is
            # amplified by gamma / sigma, up to 1e6 with contrib's eps = 1e-12.
            # Worst float32 measured: 7.1e-6 (golden ln_contrib_per_gate: 3.7e-6 in h,
            # 7.1e-6 in c; oracle mode 9.9e-6), 1.4e-6 over 194 live draws; 2e-5 is 2.8x.
            "float32": Tolerance(atol=2e-5, rtol=2e-5),
            # float16: every live draw bitwise (48); on the wide draws
            # (tolerances.py) a 1-ulp difference in z (TF 2.21's float32 GEMM
            # order) is spread by the layer norm over its gate block: one step
            # 96.65% bitwise at worst, t 8.9e-4; free-running t 4.7e-3.
            # >= 90% (3x the inexact share), 3e-3 (3.4x); 1.5e-2 (3.2x).
            "float16": Tolerance(atol=1.5e-2, rtol=1.5e-2, one_step=OneStepBound(exact=0.90, atol=3e-3)),
        },
        # contrib's layer-norm epsilon is 1e-3 in float16 but 1e-12 in float64.
        float64_twin=lambda case: case.config.get("dtype") != "float16",
    ),
    KindRecord(
        kind="tfa.rnn.LayerNormLSTMCell", id="tfa", label="LayerNormLSTMCell (tfa)",
        reference=layer_norm_cells.LayerNormLSTMCell, oracle=ORACLES["tfa"],
        examples=_strategy("layer_norm_examples", "tfa.rnn.LayerNormLSTMCell"), sweep=sweep.tfa_sweep,
        goldens="layer_norm_cases", variants=layer_norm_cells.TFA_VARIANTS, error_inputs=error_inputs.TFA,
        throughput_config=lambda rng: {"units": int(rng.integers(1, 7))},
        tests=("parity_tests/test_layer_norm_cells.py",),
        tolerances={
            # Worst float32 over 209 live draws: 3.0e-6 (oracle mode 3.8e-6); 1e-5 is 3.3x.
            "float32": Tolerance(atol=1e-5, rtol=1e-5),
            # float16: bitwise TF on every live draw (42) since tf215_matmul
            # follows Eigen's orders; on the wide draws (tolerances.py) some
            # shapes sum in orders not modelled: one step 0.55% of values not
            # bitwise at worst, t 1.1e-3; free-running t 2.4e-3.  3.5e-3
            # (3.1x), 7.5e-3 (3.1x); the 98% share stands.
            "float16": Tolerance(atol=7.5e-3, rtol=7.5e-3, one_step=OneStepBound(exact=0.98, atol=3.5e-3)),
        },
    ),
    KindRecord(
        kind="torch.nn.LSTM", id="torch", label="LSTM (PyTorch)", reference=torch_lstm.TorchLSTM,
        oracle=ORACLES["torch"], examples=_strategy("torch_lstm_examples"), sweep=sweep.torch_sweep,
        goldens="torch_cases", variants=torch_lstm.TORCH_LSTM_VARIANTS, error_inputs=error_inputs.TORCH_LSTM,
        throughput_config=lambda rng: {
            "input_size": 3, "hidden_size": int(rng.integers(1, 7)), "num_layers": int(rng.integers(1, 3)),
            "bidirectional": bool(rng.integers(2))},
        tests=("parity_tests/test_torch_lstm.py", "parity_tests/test_converters.py"),
    ),
    KindRecord(
        kind="onnx.LSTM", id="onnx", label="LSTM (ONNX, run by ONNX Runtime)", reference=onnx_lstm.OnnxLSTM,
        oracle=ORACLES["onnxruntime"], examples=_strategy("onnx_lstm_examples"), sweep=sweep.onnx_sweep,
        goldens="onnx_cases", variants=onnx_lstm.ONNX_LSTM_VARIANTS, error_inputs=error_inputs.ONNX_LSTM,
        throughput_config=lambda rng: {
            "hidden_size": int(rng.integers(1, 7)),
            "direction": str(rng.choice(["forward", "reverse", "bidirectional"]))},
        tests=("parity_tests/test_onnx_lstm.py", "parity_tests/test_converters.py"),
        float64_twin=never,  # ONNX Runtime's CPU kernel is float32 only
    ),
)

BY_KIND = {record.kind: record for record in RECORDS}


def record_of(kind: str) -> KindRecord:
    try:
        return BY_KIND[kind]
    except (KeyError, TypeError):
        raise KeyError(f"no record for kind {kind!r}; records exist for {sorted(BY_KIND)}") from None


def tolerance_of(kind, dtype) -> Tolerance:
    """The tolerance a case of ``kind`` in compute ``dtype`` is judged by
    (the table's entry; the kind's record's overrides where it has one)."""
    record = BY_KIND.get(kind)
    return record.tolerance(dtype) if record else tolerance_for(dtype)


def unrecorded_kinds() -> list:
    """Registered reference kinds that have no record (must be empty)."""
    return sorted(set(load_families()) - set(BY_KIND))


def throughput_example(record, rng):
    """A small live example for `make bench`: config, x and weights drawn from ``rng``."""
    from ..case import Case, build_weights

    config = record.throughput_config(rng)
    ref = record.reference(config)
    batch, time, features = int(rng.integers(1, 4)), int(rng.integers(1, 10)), int(rng.integers(1, 6))
    features = config.get("input_size", features)
    x = rng.standard_normal((batch, time, features)).astype(np.float32)
    return Case(record.kind, config, x, build_weights(ref, rng, features))
