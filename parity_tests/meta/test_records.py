"""Every registered kind has a complete record, and each part of it works.

A kind cannot join the registry without a record, nor a record go stale:
these tests fail on a missing or empty part (no variant, no error input, no
golden, a strategy drawing another kind, a sweep that does not run ...).
They need NumPy and Hypothesis only.
"""

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstm_ref
from lstm_ref.harness.error_inputs import valid_call
from lstm_ref.harness.golden import store
from lstm_ref.harness.records import RECORDS, KindRecord, golden_cases, throughput_example, unrecorded_kinds
from lstm_ref.variants import Variant
from parity_tests.pytest_helpers import modules_checking

ROOT = Path(__file__).resolve().parents[2]
BY_RECORD = pytest.mark.parametrize("record", RECORDS, ids=[r.id for r in RECORDS])


def test_every_registered_kind_has_a_record():
    assert unrecorded_kinds() == []
    assert sorted(r.kind for r in RECORDS) == sorted(lstm_ref.KINDS)


def test_record_ids_are_unique_and_select_one_kind():
    ids = [r.id for r in RECORDS]
    assert len(set(ids)) == len(ids)
    for a in ids:  # `-k id` and test ids must not select another kind too
        assert [b for b in ids if a in b] == [a], a


@BY_RECORD
def test_record_is_complete(record):
    optional = {"tolerances", "float64_twin", "targets", "backends", "grad"}  # grad None: no gradient oracle
    for f in dataclasses.fields(KindRecord):
        value = getattr(record, f.name)
        if f.name not in optional:
            assert value not in (None, "", ()), f"{record.kind}: record field {f.name!r} is empty"
    assert record.reference.kind == record.kind
    assert record.label and record.label != record.kind
    assert all(isinstance(v, Variant) for v in record.variants)
    assert len({v.name for v in record.variants}) == len(record.variants)
    assert modules_checking(record.id), f"no test module declares pytest.mark.kinds({record.id!r})"
    module = importlib.util.find_spec(record.oracle.module)
    assert module is not None, record.oracle.module


@BY_RECORD
def test_tolerance_overrides_are_per_dtype(record):
    from lstm_ref.harness.tolerances import TOLERANCES, Tolerance

    for dtype, tol in (record.tolerances or {}).items():
        assert dtype in TOLERANCES and isinstance(tol, Tolerance)


@BY_RECORD
def test_error_inputs_cover_config_weights_and_inputs(record):
    kinds = {row.exception.__name__ for row in record.error_inputs}
    assert {"ConfigError", "WeightError", "InputError"} <= kinds, kinds
    assert len({row.id for row in record.error_inputs}) == len(record.error_inputs)


@BY_RECORD
def test_goldens_exist_and_are_listed(record):
    cases = golden_cases()
    listed = set(store.case_ids())
    mine = [cid for cid, fn in cases.items() if fn().kind == record.kind]
    assert mine, f"{record.kind} has no golden case"
    assert {cases[c].__module__ for c in mine} == {record.sweep.__module__}, "golden cases live in the kind's slice"
    assert set(mine) <= listed


def test_golden_case_functions_reproduce_the_stored_inputs():
    """Each golden's inputs are what its case function builds, bitwise: the
    case code and the fixture cannot drift apart unnoticed."""
    cases = golden_cases()
    for cid in store.case_ids():
        built, stored = cases[cid](), store.load(cid).case
        assert built.kind == stored.kind and built.config == stored.config, cid
        a, b = built.arrays(), stored.arrays()
        assert a.keys() == b.keys(), cid
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], strict=True, err_msg=f"{cid}: {k}")


@BY_RECORD
def test_sweep_runs_cases_of_its_kind(record):
    cases = list(record.sweep())
    assert cases and len({c.name for c in cases}) == len(cases)
    for case in cases:
        assert case.kind == record.kind
        case.run()  # a valid call


@BY_RECORD
def test_variants_apply_and_differ_from_the_truth(record):
    """Each variant applies to some sweep case and computes something else there."""
    cases = list(record.sweep())
    for variant in record.variants:
        applicable = [c for c in cases if variant.applies(c)]
        assert applicable, f"{variant.name}: applies to no sweep case of {record.kind}"
        differs = False
        for case in applicable:
            with np.errstate(all="ignore"):  # a wrong epsilon may divide by zero
                truth, wrong = case.run(), variant.run(case)
            differs |= any(not np.array_equal(truth[k], wrong[k], equal_nan=True) for k in truth.fields)
        assert differs, f"{variant.name}: computes the truth on every sweep case"


@BY_RECORD
def test_throughput_examples_are_valid(record):
    rng = np.random.default_rng(0)
    for _ in range(5):
        throughput_example(record, rng).run()


@BY_RECORD
@settings(max_examples=15, suppress_health_check=list(HealthCheck), deadline=None)
@given(data=st.data())
def test_examples_draw_valid_cases_of_the_kind(record, data):
    case = data.draw(record.examples(), label="case")
    assert case.kind == record.kind
    ref = case.reference()
    assert case.x.ndim == 3
    expected = ref.weight_shapes(case.x.shape[-1])
    optional = set(getattr(ref, "OPTIONAL_WEIGHTS", ()))  # ONNX's B and P may be absent
    assert set(expected) - optional <= set(case.weights) <= set(expected)
    assert all(expected[k] == v.shape for k, v in case.weights.items())
    assert set(case.initial_state) in (set(), {f"{s}0" for s in ref.STATE})
    trace = case.run(ref)
    assert list(trace.fields) == list(ref.fields())


def test_valid_call_is_valid_for_every_kind():
    for record in RECORDS:
        ref = lstm_ref.from_config(record.kind, next(iter(record.sweep())).config)
        ref.run(**valid_call(ref))


def test_the_core_and_the_wire_need_no_framework():
    """Importing the reference and running it, or importing the wire protocol
    (all a worker takes from lstm_ref), loads no framework, no Hypothesis;
    the protocol loads none of the families either."""
    probe = (
        "import sys, lstm_ref.harness.oracles.protocol as p; "
        "assert not [m for m in sys.modules if m.startswith(('lstm_ref.keras', 'lstm_ref.tf1', 'scipy'))]; "
        "import numpy as np, lstm_ref; kinds = lstm_ref.KINDS; "
        "lstm_ref.from_config('keras.layers.LSTM', {'units': 2}).run(np.ones((1, 2, 3), 'float32'), "
        "{'kernel': np.ones((3, 8), 'float32'), 'recurrent_kernel': np.ones((2, 8), 'float32'), "
        "'bias': np.ones(8, 'float32')}); "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras', 'torch', 'hypothesis', 'jax')]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_two_faults_compose_into_both():
    """A pair of variants is both faults at once: each part's change shows
    in the composed port (the search over pairs relies on it)."""
    from lstm_ref import activations
    from lstm_ref.tf_keras_lstm import TF_KERAS_LSTM_VARIANTS
    from lstm_ref.variants import compose

    by_name = {v.name: v for v in TF_KERAS_LSTM_VARIANTS}
    pair = compose(by_name["Keras 3 hard_sigmoid"], by_name["activation=None as tanh (TF1 cells' rule)"])
    case = lstm_ref.Case(
        "tf_keras.layers.LSTM",
        {"units": 2, "activation": None, "recurrent_activation": "hard_sigmoid"},
        np.ones((1, 2, 3), "float32"),
        {},
    )
    ref, _ = pair.port(case)
    assert ref.activation is activations.tanh and ref.recurrent_activation is activations.hard_sigmoid
    weights = build_weights_for(ref)
    moved = compose(by_name["gate order i,f,o,c"], by_name["forget bias +1 at run time (TF1 habit)"]).weights(
        dict(weights), case
    )
    assert not np.array_equal(moved["kernel"], weights["kernel"])
    assert not np.array_equal(moved["bias"][2:4], weights["bias"][2:4])


def build_weights_for(ref):
    from lstm_ref.case import build_weights

    return build_weights(ref, np.random.default_rng(0), 3)


def test_every_oracle_venv_is_an_extra_the_makefile_builds():
    """ORACLES runs each framework of its own in .venv-<name>, which `make
    venvs` builds from pyproject.toml's `oracle-<name>` extra: one list."""
    import tomllib

    from lstm_ref.harness.oracles.client import ORACLES

    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    built = {f".venv-{name[len('oracle-') :]}/bin/python" for name in extras if name.startswith("oracle-")}
    own = {spec.python for spec in ORACLES.values() if spec.python != "sys.executable"}
    assert own == built
