"""The registry of kinds: every kind's record, from its slice.

Tests, the report, ``check``, the bench, ``make mutants`` and
``measure_tolerances`` iterate :data:`RECORDS` and hard-code no kind.
``parity_tests/meta/test_records.py`` fails when a registered kind has no
record or a record is incomplete.

Adding a kind is one family module in ``lstm_ref/`` (the reference, its
variants), one slice in ``lstm_ref/harness/kinds/`` (its record, strategy,
sweep, error inputs and golden cases) listed here, its oracle's worker and
its test module; see ``docs/contributing.md``.
"""

import numpy as np

from ..case import Case, build_weights
from ..reference import load_families
from .golden.case import CASES
from .kinds import flax_nnx, keras3, layer_norm, onnx_lstm, record, tf1, tf_keras, torch_cell, torch_nn
from .tolerances import Tolerance, tolerance_for

KindRecord = record.KindRecord

RECORDS = (
    keras3.RECORD,
    tf_keras.RECORD,
    tf1.BASIC_RECORD,
    tf1.LSTM_CELL_RECORD,
    layer_norm.CONTRIB_RECORD,
    layer_norm.TFA_RECORD,
    torch_nn.RECORD,
    torch_cell.RECORD,
    onnx_lstm.RECORD,
    flax_nnx.CELL_RECORD,
    flax_nnx.OPTIMIZED_RECORD,
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


def golden_cases() -> dict:
    """Every kind's golden cases, ``{case id: fn() -> Case}`` (each slice
    registers its ``@golden`` functions when it is imported, above)."""
    return CASES


def unrecorded_kinds() -> list:
    """Registered reference kinds that have no record (must be empty)."""
    return sorted(set(load_families()) - set(BY_KIND))


def throughput_example(record, rng):
    """A small live example for `make bench`: config, x and weights drawn from ``rng``."""
    config = record.throughput_config(rng)
    ref = record.reference(config)
    batch, time, features = int(rng.integers(1, 4)), int(rng.integers(1, 10)), int(rng.integers(1, 6))
    features = config.get("input_size", features)
    x = rng.standard_normal((batch, time, features)).astype(np.float32)
    return Case(record.kind, config, x, build_weights(ref, rng, features))
