"""``keras.layers.LSTM`` on Keras 3's JAX and torch backends, each in its own
worker, against the same reference (``config["backend"]``) and the same
goldens: every golden on both, live draws, oracle mode against the backend
in float64, each backend difference pinned (the real layer shows it, the
reference of that backend reproduces it, the TF reading of it fails), the
cuDNN glue through a fake GPU, and ``lstm-ref check --backend``.

Few worker starts (one per backend per xdist process) and small shapes:
JAX recompiles its ``lax.scan`` for every new shape (0.2-0.6 s a case),
so it draws a fifth of torch's live examples; every golden runs on both.
"""

import json
import os
import subprocess
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from lstm_ref import keras_backends
from lstm_ref.case import Case
from lstm_ref.errors import InputError
from lstm_ref.harness import backends
from lstm_ref.harness.commands import main as cli
from lstm_ref.harness.compare import compare, failure_note
from lstm_ref.harness.golden import store
from lstm_ref.harness.kinds.keras3 import _weights, _x
from lstm_ref.harness.oracles.client import ORACLES, OracleError
from lstm_ref.harness.oracles.pool import OraclePool
from lstm_ref.harness.records import record_of
from lstm_ref.trace import Trace

from . import pytest_helpers as ph

pytestmark = pytest.mark.kinds("keras3")

ROOT = Path(__file__).resolve().parents[1]
KIND = "keras.layers.LSTM"
OTHERS = ("jax", "torch")
GOLDENS = [c for c in store.case_ids() if store.load(c).kind == KIND]
# Live draws per backend: torch a third of the profile (5 in CI; it was all 30
# until make test passed 6 min: the tolerances in docs/backends.md were
# measured on 300 draws), JAX a fifth (each new shape recompiles its scan).
# Every golden runs on every backend too.
LIVE = {"torch": max(2, settings().max_examples // 3), "jax": max(2, settings().max_examples // 5)}
TWINS = {"torch": max(2, settings().max_examples // 6), "jax": 2}


def judged(case, desired, context=""):
    """The backend's reference against its framework, under its tolerance."""
    trace, _, _, result = backends.judge(case, desired)
    if not result.passed:
        raise AssertionError(failure_note(result, trace, desired, context or case.describe()))
    return result


def wrong(case, desired, **config):
    """The reference configured otherwise (a wrong reading of the backend),
    judged under the right case's tolerance: its Comparison."""
    ref = case.reference({**case.config, **config})
    return compare(case.run(ref), desired, ref.policy.compute, backends.tolerance(case))


def small(config, seed, batch=3, time=6, features=3, mask=None, states=False, dtype="float32"):
    rng = np.random.default_rng(seed)
    units = config["units"]
    initial = {}
    if states:
        initial = {s: rng.standard_normal((batch, units)).astype(dtype) for s in ("h0", "c0")}
    return Case(
        KIND,
        config,
        _x(rng, batch, time, features, dtype),
        _weights(rng, features, units, dtype=dtype),
        mask,
        **initial,
    )


LEFT_AND_HOLES = np.array([[0, 0, 1, 1, 1, 1], [1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 1, 0]], bool)


# -- every golden, every backend ---------------------------------------------------------------


@pytest.mark.parametrize("case_id", GOLDENS)
@pytest.mark.parametrize("backend", OTHERS)
def test_golden_on_backend(oracle_pool, backend, case_id):
    """The golden's inputs run by Keras on ``backend`` (torch: the real layer
    re-run and compared bitwise on each; JAX: on every masked one and 1 in 8)."""
    case = backends.on_backend(store.load(case_id).case, backend)
    desired = backends.run(oracle_pool, case, cross_check=backend == "torch")
    judged(case, desired, f"golden case {case_id!r} on {backend}")


# -- live draws and oracle mode ------------------------------------------------------------------


@pytest.mark.parametrize("backend", OTHERS)
def test_live_draws_on_backend(oracle_pool, backend):
    @settings(max_examples=LIVE[backend])
    @given(data=st.data())
    def draw(data):
        case = backends.on_backend(data.draw(record_of(KIND).examples(), label="case"), backend)
        note(case.describe())
        judged(case, backends.run(oracle_pool, case))

    draw()


@pytest.mark.parametrize("backend", OTHERS)
def test_oracle_mode_is_the_backend_in_float64(oracle_pool, backend):
    """Oracle mode against the backend run in float64 on the rounded inputs
    (a case whose float64 layer rounds to float32 inside is no twin)."""

    @settings(max_examples=TWINS[backend])
    @given(data=st.data())
    def draw(data):
        case = backends.on_backend(data.draw(record_of(KIND).examples(), label="case"), backend)
        ref = case.reference()
        twin = ph.float64_twin(case, ref)
        assume(np.dtype(twin.reference().tolerance_dtype(case.mask)) == np.float64)
        note(case.describe())
        exact = case.run(ref, oracle=True)
        desired = backends.run(oracle_pool, twin)
        result = compare(exact, desired, np.float64, backends.tolerance(twin))
        assert result.passed, failure_note(result, exact, desired, "oracle mode vs the backend in float64")

    draw()


# -- each difference, pinned ---------------------------------------------------------------------


def test_jax_outputs_the_carried_h_before_the_first_valid_step(oracle_pool):
    """``lax.scan``'s masked step outputs ``states[0]``: h0 before a row's first
    valid step, where TF and torch output zeros (keras/src/backend/jax/rnn.py)."""
    base = small({"units": 4}, 1, mask=LEFT_AND_HOLES, states=True)
    jax_case = backends.on_backend(base, "jax")
    desired = backends.run(oracle_pool, jax_case)
    np.testing.assert_array_equal(desired["h"][0, :2], np.repeat(base.initial_state["h0"][:1], 2, axis=0))
    judged(jax_case, desired)
    assert not wrong(jax_case, desired, backend="tensorflow").passed
    torch_case = backends.on_backend(base, "torch")
    torch_out = backends.run(oracle_pool, torch_case)
    assert not np.any(torch_out["h"][0, :2]) and not np.any(torch_out["h"][2, :1])
    judged(torch_case, torch_out)
    assert not wrong(torch_case, torch_out, backend="jax").passed


def test_jax_unrolled_ignores_zero_output_for_mask(oracle_pool):
    """JAX's unrolled loop repeats the previous output at a masked step even
    with ``zero_output_for_mask=True``; its scan loop zeroes it."""
    config = {"units": 3, "unroll": True, "zero_output_for_mask": True, "backend": "jax"}
    case = small(config, 2, mask=LEFT_AND_HOLES, states=True)
    desired = backends.run(oracle_pool, case)
    assert np.any(desired["h"][1, 4:])  # masked steps after a valid one: not zeroed
    judged(case, desired)
    assert not wrong(case, desired, backend="torch").passed  # torch zeroes them


def test_tf_unrolled_go_backwards_zeroes_by_the_unreversed_mask(tensorflow_process):
    """Keras 3's TF backend, unrolled, zeroes processing-order outputs with the
    input-order mask (keras/src/backend/tensorflow/rnn.py, unrolled branch),
    as tf_keras does; the reference had taken ``unroll`` as inert.  Run here
    by Keras itself: the TF worker rebuilds the per-step c from its probe's
    outputs, which this zeroing scrambles, so it refuses the config."""
    import keras

    config = {"units": 3, "unroll": True, "go_backwards": True, "zero_output_for_mask": True}
    case = small(config, 3, mask=LEFT_AND_HOLES)
    layer = keras.layers.LSTM(**config, return_sequences=True, return_state=True)
    layer.build((None, 6, 3))
    layer.set_weights([case.weights[k] for k in ("kernel", "recurrent_kernel", "bias")])
    desired = dict(zip(("h", "final_h", "final_c"), (np.asarray(t) for t in layer(case.x, mask=case.mask))))
    ref = case.reference()
    fields = Trace({k: v for k, v in case.run(ref).fields.items() if k in desired})
    assert compare(fields, desired, np.float32, backends.tolerance(case)).passed
    unrolled_as_inert = case.run(case.reference({**config, "unroll": False}))
    assert not compare(
        Trace({k: unrolled_as_inert[k] for k in desired}), desired, np.float32, backends.tolerance(case)
    ).passed


def test_torch_fails_on_a_mask_under_unroll_and_go_backwards(oracle_pool):
    """torch's unrolled loop calls ``torch.flip`` on the tuple ``torch.unbind``
    returns: any mask with ``unroll=True, go_backwards=True`` raises.  The
    reference refuses the same call; a fixed Keras fails this test."""
    case = small({"units": 3, "unroll": True, "go_backwards": True, "backend": "torch"}, 4, mask=LEFT_AND_HOLES)
    with pytest.raises(OracleError, match="'tuple' object has no attribute 'shape'"):
        backends.run(oracle_pool, case)
    with pytest.raises(InputError, match="unroll=True and go_backwards=True"):
        case.run()
    unmasked = case.replace(mask=None)
    judged(unmasked, backends.run(oracle_pool, unmasked))


def test_torch_without_a_mask_adds_the_bias_first(oracle_pool):
    """Without a mask torch runs ``_fallback_lstm``: ``(x @ kernel + bias) + h @
    recurrent_kernel``.  In float16, where the order shows, one step from
    torch's own state is bitwise the reference's; the bias added last (the
    ``rnn`` path, ``use_cudnn=False``) is not."""
    case = small({"units": 8, "dtype": "float16", "backend": "torch"}, 5, batch=4, time=6, features=8, dtype="float16")
    desired = backends.run(oracle_pool, case)
    result = judged(case, desired)
    assert result.one_step and all(f.exact_share == 1.0 for f in result.one_step.values()), result.one_step
    ref = case.reference({**case.config, "use_cudnn": False})
    from lstm_ref.harness.compare import teacher_of

    forced = case.run(ref, teacher=teacher_of(ref, case, desired))
    assert np.mean(forced.h == desired["h"]) < 0.98


def test_torch_float64_under_rnn_multiplies_in_float32(oracle_pool):
    """A float64 layer with a mask runs the cell under ``rnn``, whose
    ``ops.matmul`` casts to ``result_type`` -- float32 off TF.  Measured on
    this case: the reference of that, max |d| 4.4e-16 (NumPy's and torch's
    float32 products agree here); float64 throughout, 5.8e-8."""
    mask = np.ones((3, 6), bool)
    case = small({"units": 4, "dtype": "float64", "backend": "torch"}, 6, mask=mask, dtype="float64")
    desired = backends.run(oracle_pool, case)
    judged(case, desired)
    exact = case.run(case.reference({**case.config, "backend": "tensorflow"}))
    modelled = case.run()
    assert max(np.abs(modelled[k] - desired[k]).max() for k in desired) < 1e-12
    assert max(np.abs(exact[k] - desired[k]).max() for k in desired) > 1e-10
    unmasked = case.replace(mask=None)  # _fallback_lstm: torch.matmul, float64 throughout
    judged(unmasked, backends.run(oracle_pool, unmasked))


def test_jax_tanh_on_float64_runs_in_float32(oracle_pool):
    """``ops.tanh`` casts to ``result_type(x.dtype, float)``: float32 on JAX.
    Pinned on the op (its dtype): in a layer, XLA's float32 tanh is not
    NumPy's (measured on this case: the reference of it 6.0e-8 off, float64
    throughout 7.0e-8), so only float32's tolerance holds."""
    x = np.linspace(-3, 3, 28).reshape(4, 7)
    meta, out = oracle_pool.get("keras3_jax").request({"op": "activation", "name": "tanh"}, {"x": x})
    assert out["y"].dtype == np.float32
    np.testing.assert_allclose(out["y"], np.tanh(x.astype(np.float32)), rtol=4e-7, atol=1e-7)
    case = small({"units": 3, "dtype": "float64", "backend": "jax"}, 7, dtype="float64")
    assert case.reference().tolerance_dtype(None) == np.float32
    judged(case, backends.run(oracle_pool, case))


@pytest.mark.parametrize("backend", OTHERS)
def test_gelu_and_leaky_relu_take_float64_constants(oracle_pool, backend):
    """JAX and torch multiply by 1/sqrt(2) and 0.2 in float64, where TF
    rounds them to float32 first (5e-9 apart: over float64's tolerance)."""
    config = {"units": 3, "activation": "gelu", "recurrent_activation": "leaky_relu", "dtype": "float64"}
    case = small({**config, "backend": backend}, 8, dtype="float64")
    desired = backends.run(oracle_pool, case)
    judged(case, desired)
    assert not wrong(case, desired, backend="tensorflow").passed


def test_torch_float16_activations_round_once(oracle_pool):
    """torch evaluates a half activation in float32 and rounds once; TF's
    sigmoid rounds op by op in half.  One step from torch's own state is
    bitwise only with the former."""
    case = small({"units": 8, "dtype": "float16", "backend": "torch"}, 9, batch=4, features=8, dtype="float16")
    case = case.replace(mask=np.ones((4, 6), bool))  # the rnn path, where the bias order is TF's
    desired = backends.run(oracle_pool, case)
    judged(case, desired)
    ref = case.reference({**case.config, "backend": "tensorflow"})
    forced = case.run(ref, teacher={"h": desired["h"], "c": desired["c"]})
    assert np.mean(forced.h == desired["h"]) < 0.98


# -- a GPU's cuDNN path, through a fake ----------------------------------------------------------


def test_jax_cudnn_glue_through_a_fake_gpu():
    """Keras told it has a GPU, with JAX's own reference of the cuDNN op in
    place of cuDNN (``keras_backend_worker.fake_gpu``): the cuDNN path runs
    Keras' weight packing and flips, returns no per-step c, and under
    ``go_backwards`` the sequence in input order; a mask keeps ``rnn``."""
    pool = OraclePool(env={"LSTM_PARITY_KERAS_DEVICE": "fake-gpu"})
    try:
        case = small({"units": 3, "go_backwards": True, "backend": "jax"}, 10, states=True)
        desired = backends.run(pool, case)
        assert case.meta["path"] == "backend.lstm (cuDNN)" and "c" not in desired
        judged(case, desired)
        trace = case.run()
        assert not np.allclose(trace.h, desired["h"], atol=1e-3)  # the CPU's processing order
        masked = case.replace(mask=LEFT_AND_HOLES, meta={})
        out = backends.run(pool, masked)
        assert masked.meta["path"].startswith("rnn") and "c" in out
        judged(masked, out)
    finally:
        pool.close()


def test_which_configs_take_cudnn():
    rule = dict(unroll=False, activation="tanh", recurrent_activation="sigmoid", use_bias=True)
    rule.update(use_cudnn="auto", recurrent_dropout=0)
    right = np.array([[1, 1, 0], [1, 1, 1]], bool)
    assert keras_backends.cudnn_path("jax", mask=None, **rule)
    assert not keras_backends.cudnn_path("jax", mask=right, **rule)
    assert not keras_backends.cudnn_path("torch", mask=right, **rule)
    assert keras_backends.cudnn_path("tensorflow", mask=right, **rule)
    assert not keras_backends.cudnn_path("tensorflow", mask=LEFT_AND_HOLES, **rule)
    assert not keras_backends.cudnn_path("jax", mask=None, **{**rule, "activation": "relu"})
    assert not keras_backends.cudnn_path("torch", mask=None, **{**rule, "use_cudnn": False})
    assert keras_backends.cudnn_output_order("jax", True) == "input"
    assert keras_backends.cudnn_output_order("torch", True) == keras_backends.cudnn_output_order("jax", False)


# -- lstm-ref check --backend --------------------------------------------------------------------

BIDI_STATE = textwrap.dedent("""
    import sys, keras
    from keras import layers as L
    keras.utils.set_random_seed(0)
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(12, 3, mask_zero=True, name="embed")(tok)
    y, fh, fc, bh, bc = L.Bidirectional(L.LSTM(2, return_sequences=True, return_state=True,
                                               bias_initializer="random_normal"), name="bi")(e)
    top = L.RNN(L.StackedRNNCells([L.LSTMCell(2, name="c0"), L.LSTMCell(2, name="c1")]), name="stack")(y)
    keras.Model(tok, [top, fh, bc]).save(sys.argv[1])
""")


@pytest.fixture(scope="module")
def bidi_state_model(tmp_path_factory):
    """Bidirectional(LSTM(return_state=True)) over masked tokens, then a stack
    of LSTMCells, built and saved by Keras on JAX (keras#18861 failed there)."""
    path = tmp_path_factory.mktemp("backends") / "bidi_state.keras"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    python = ORACLES["keras3_jax"].interpreter()
    subprocess.run([python, "-c", BIDI_STATE, str(path)], check=True, env=env, capture_output=True, timeout=300)
    return path


class _Borrowed:
    """The session's pool, lent to the command (its workers already started); not closed."""

    def __init__(self, pool):
        self.pool = pool

    def __getattr__(self, name):
        return getattr(self.pool, name)

    def close(self):
        pass


def test_check_backend_all(oracle_pool, bidi_state_model, tmp_path, capsys, monkeypatch):
    from lstm_ref.harness import check as check_lib

    monkeypatch.setattr(check_lib, "open_pool", lambda: _Borrowed(oracle_pool))
    code = cli(
        ["check", str(bidi_state_model), "--backend", "all", "--json", str(tmp_path / "r.json"), "--no-progress"]
    )
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    header = next(line for line in out.splitlines() if "layer" in line and "tensorflow" in line)
    assert header.index("tensorflow") < header.index("jax") < header.index("torch")
    result = json.loads((tmp_path / "r.json").read_text())
    import jsonschema

    from lstm_ref.harness import schemas

    jsonschema.validate(result, schemas.load("check.schema.json"))
    rows = [r for r in result["layers"] if r["status"] != "skipped"]
    by_backend = {b: {r["layer"] for r in rows if r["backend"] == b} for b in ("tensorflow", "jax", "torch")}
    assert by_backend["jax"] == by_backend["torch"] == by_backend["tensorflow"]
    assert {"bi/forward_lstm", "bi/backward_lstm", "bi (merged)", "stack/c0", "stack/c1"} <= by_backend["jax"]
    assert all(r["status"] == "pass" and r["tf_bitwise"] is not False for r in rows)


def test_check_backend_refusals(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ORACLES["keras3_jax"].env_var, str(tmp_path / "no-python"))
    model = tmp_path / "m.keras"
    with zipfile.ZipFile(model, "w") as archive:  # vetted as a Keras 3 .keras; refused before any worker opens it
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", "{}")
    assert cli(["check", str(model), "--backend", "jax"]) == 2
    assert "make venv-jax" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's choices
        cli(["check", str(model), "--backend", "theano"])
    assert exited.value.code == 2
    assert "invalid choice: 'theano'" in capsys.readouterr().err
    assert cli(["check", str(model), "--backend", "torch", "--grad"]) == 2
    assert "--grad has no effect with --backend" in capsys.readouterr().err
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07")
    assert cli(["check", str(onnx), "--backend", "torch"]) == 2


@pytest.mark.live  # which backends are usable depends on the frameworks installed (TF for tensorflow)
def test_an_unavailable_backend_is_a_row_under_all(monkeypatch, tmp_path):
    monkeypatch.setenv(ORACLES["keras3_jax"].env_var, str(tmp_path / "no-python"))

    class Worker:
        def hello(self):
            return {}

    class Pool:
        def get(self, name):
            return Worker()

    usable, missing = backends.available(backends.parse("all"), Pool())
    assert usable == ["tensorflow", "torch"]
    assert [m.backend for m in missing] == ["jax"] and "make venv-jax" in missing[0].reason
