"""``lstm-ref check MODEL --grad``: each LSTM layer's gradient through the
whole model (TF's tape) against the reference fed the upstream the layer
received (``lstm_ref/harness/check_grad.py``), through the CLI, on the real
saved models of ``saved_models.py``.

It must be able to fail: a layer whose forward is TF's bit for bit but whose
backward is halved (a custom ``LSTM`` subclass) passes the forward rows and
fails every gradient row; the upstream mapped wrong by the harness
(the last step's upstream put on the first step) fails too.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from .test_check_artifacts import lstm_ref  # noqa: F401  (the fixture: the CLI in-process on the session's pool)
from .test_json_schema import validator
from .test_keras_weights import lstm_weights, write

pytestmark = pytest.mark.kinds("keras3", "tf_keras")


def _check(lstm_ref, path, *extra):  # noqa: F811
    code, out, err = lstm_ref("check", str(path), "--grad", "--json", "r.json", *extra, cwd=path.parent)
    result = json.loads((path.parent / "r.json").read_text()) if (path.parent / "r.json").exists() else None
    return code, out, err, result


def _grad_rows(result):
    return {r["layer"]: r for r in result["layers"] if r["layer"].endswith("(grad)")}


@pytest.mark.parametrize(
    "framework, name, expected",
    [
        ("keras3", "encdec_masked.keras", None),  # masks, an initial state from the encoder
        ("keras3", "shared.keras", ["shared (call 1) (grad)", "shared (call 2) (grad)"]),  # one layer, two calls
        ("keras3", "mixed_policy.keras", None),  # mixed_float16, a Bidirectional, return_state
        ("tf_keras", "tf_embed_lstm.h5", ["lstm (grad)"]),
        ("tf_keras", "tf_encdec_masked.h5", None),
        # RNN(StackedRNNCells): one row per cell, top down (masked, return_state, go_backwards)
        ("keras3", "rnn_cells.keras", ["rnn_stack/c0 (grad)", "rnn_stack/c1 (grad)", "rnn_stack_back/c0 (grad)"]),
        ("tf_keras", "tf_cells.h5", ["rnn_stack/c0 (grad)", "rnn_stack/c1 (grad)"]),
    ],
)
def test_every_lstm_layers_gradient_through_the_model_is_tfs(
    request,
    lstm_ref,  # noqa: F811
    tmp_path,
    framework,
    name,
    expected,
):
    models = request.getfixturevalue(f"{framework}_models")
    path = tmp_path / name
    path.symlink_to(models[name])
    code, out, err, result = _check(lstm_ref, path)
    assert code == 0, out[-3000:] + err[-3000:]
    validator("check.schema.json").validate(result)
    rows = _grad_rows(result)
    forward = [r["layer"] for r in result["layers"] if r["status"] == "pass" and "(grad)" not in r["layer"]]
    if expected is not None:
        assert set(expected) <= set(rows), sorted(rows)
    # one gradient row per LSTM layer checked forward (merged Bidirectional rows have none)
    assert len(rows) == len([f for f in forward if "(merged)" not in f]), (sorted(rows), forward)
    for row in rows.values():
        assert row["status"] == "pass" and row["ratio"] <= 1, row
        arrays = row["grad"]["arrays"]
        stacked = "StackedRNNCells" in row["source"]
        # TF's tape gives a StackedRNNCells' dL/dx for its bottom cell only (the others' x is inside its loop)
        x = set() if stacked and not row["source"].endswith("[0]") else {"x"}
        assert x | {"w:kernel", "w:recurrent_kernel"} <= set(arrays), arrays
        if framework == "keras3" and not stacked:  # the Keras 3 worker gives the per-step view too
            assert {"steps:h", "steps:c_carried"} <= set(arrays), arrays
        # a gradient that is all zeros would pass anything: the loss reaches every layer
        assert row["grad"]["upstream"], row


HALF_GRAD = textwrap.dedent('''
    import keras

    @keras.saving.register_keras_serializable(package="mutants")
    class HalfGradLSTM(keras.layers.LSTM):
        """Forward: TF's, bit for bit (0.5 t + 0.5 t == t); backward: halved."""

        def call(self, sequences, initial_state=None, mask=None, training=False):
            out = super().call(sequences, initial_state=initial_state, mask=mask, training=training)
            return keras.tree.map_structure(lambda t: 0.5 * t + 0.5 * keras.ops.stop_gradient(t), out)
''')


@pytest.fixture(scope="module")
def half_grad_model(tmp_path_factory, tensorflow_process):
    tmp_path = tmp_path_factory.mktemp("half")
    (tmp_path / "half.py").write_text(HALF_GRAD)
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        import keras
        import half
        keras.utils.set_random_seed(0)
        x = keras.Input((None, 3), name="x")
        y = half.HalfGradLSTM(4, return_sequences=True, bias_initializer="random_normal", name="half")(x)
        y = keras.layers.LSTM(3, bias_initializer="random_normal", name="plain")(y)
        keras.Model(x, keras.layers.Dense(2, name="dense")(y)).save(sys.argv[1] + "/half.keras")
        frozen = keras.layers.LSTM(4, name="frozen")
        frozen.trainable = False
        keras.Model(x, keras.layers.Dense(2, name="dense")(frozen(x))).save(sys.argv[1] + "/frozen.keras")
    """)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "half.keras"


def test_a_layer_whose_backward_is_wrong_fails_its_gradient_row_only(lstm_ref, half_grad_model):  # noqa: F811
    path = half_grad_model
    code, out, err, result = _check(lstm_ref, path, "--custom-objects", "half.py")
    assert code == 1, out[-3000:] + err[-3000:]
    validator("check.schema.json").validate(result)
    status = {r["layer"]: r["status"] for r in result["layers"]}
    # forward: TF's own bit for bit, so the forward rows pass
    assert status["half"] == "pass" and status["plain"] == "pass", status
    assert status["half (grad)"] == "fail" and status["plain (grad)"] == "pass", status
    arrays = _grad_rows(result)["half (grad)"]["grad"]["arrays"]
    assert all(not a["passed"] for k, a in arrays.items() if k.startswith("w:")), arrays
    assert "FAIL" in out and "half (grad)" in out


def test_an_upstream_mapped_to_the_wrong_step_fails(lstm_ref, keras3_models, tmp_path, monkeypatch):  # noqa: F811
    """The harness's own mapping is under test too: the upstream of a
    ``return_sequences=False`` layer (its last step) moved to step 0."""
    from lstm_ref import reference

    real = reference.Reference.grad

    def moved(self, x, weights, upstream, **kwargs):
        upstream = dict(upstream)
        h = np.array(upstream["h"])
        if not h[:, :-1].any():
            h = np.roll(h, 1, axis=1)
        return real(self, x, weights, {**upstream, "h": h}, **kwargs)

    monkeypatch.setattr(reference.Reference, "grad", moved)
    from lstm_ref.harness.cli import main

    path = tmp_path / "embed_lstm.keras"
    path.symlink_to(keras3_models["embed_lstm.keras"])
    monkeypatch.chdir(tmp_path)
    code = main(["check", str(path), "--grad", "--json", "r.json", "--no-progress"])
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 1
    assert {r["layer"]: r["status"] for r in result["layers"]}["lstm (grad)"] == "fail"


@pytest.mark.parametrize(
    "args, message",
    [
        (["w.h5", "--grad"], "--grad checks Keras models (.keras, .h5, SavedModel: TF's tape through the whole"),
        (["m.tflite", "--grad"], "--grad has no effect on a .tflite"),
        (["ckpt", "--scope", "rnn", "--kind", "x", "--grad"], "--grad has no effect on a checkpoint"),
    ],
)
def test_grad_where_it_has_no_use_is_refused(tmp_path, capsys, monkeypatch, args, message):
    from lstm_ref.harness.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.tflite").write_bytes(b"")
    write(tmp_path / "w.h5", {"lstm_1": lstm_weights(np.random.default_rng(0), "lstm_1/lstm_cell", 3, 2)}, "2.15.0")
    (tmp_path / "ckpt").mkdir()
    code = main(["check", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err


def test_grad_on_a_model_without_trainable_lstm_weights_is_exit_2(lstm_ref, half_grad_model):  # noqa: F811
    code, out, err, result = _check(lstm_ref, half_grad_model.parent / "frozen.keras")
    assert code == 2, out[-3000:] + err[-3000:]
    assert "--grad: no LSTM in the model has trainable weights (frozen: trainable=False)" in err, err
    assert "Traceback" not in err


@pytest.fixture
def torch_port(lstm_ref, keras3_models, tmp_path):  # noqa: F811
    """bidi_plain.keras (Bidirectionals of every merge mode) converted to a torch state_dict."""
    source = tmp_path / "bidi_plain.keras"
    source.symlink_to(keras3_models["bidi_plain.keras"])
    code, out, err = lstm_ref("convert", "bidi_plain.keras", "--to", "torch", "-o", "b.pt", cwd=tmp_path)
    assert code == 0, out + err
    return tmp_path / "b.pt"


def test_a_port_trains_as_its_source_pair_by_pair(lstm_ref, torch_port):  # noqa: F811
    code, out, err, result = _check(lstm_ref, torch_port, "--source", "bidi_plain.keras")
    assert code == 0, out[-3000:] + err[-3000:]
    validator("check.schema.json").validate(result)
    rows = _grad_rows(result)
    pairs = [r["layer"] for r in result["layers"] if " -> " in r["layer"] and "(grad)" not in r["layer"]]
    assert pairs and sorted(rows) == sorted(f"{p} (grad)" for p in pairs), (sorted(rows), pairs)
    for row in rows.values():
        assert row["status"] == "pass", row
        arrays = row["grad"]["arrays"]
        # both directions of the Keras source, the torch port, and dL/dx across the two frameworks
        assert {"source[0]:x", "source[1]:x", "artifact:x", "artifact:w:weight_ih_l0_reverse"} <= set(arrays)
        assert "source vs artifact:x" in arrays and row["pair"]["source"]["kind"] == "keras.layers.LSTM"


def test_an_upstream_given_to_the_wrong_direction_fails_across(lstm_ref, torch_port, monkeypatch):  # noqa: F811
    """Each side against its own reference cannot see a wrong pull-back (both
    get the same wrong upstream); dL/dx across the two frameworks does."""
    from lstm_ref.convert import GroupConversion

    real = GroupConversion.pull_back
    monkeypatch.setattr(GroupConversion, "pull_back", lambda self, upstream: real(self, upstream)[::-1])
    code, out, err, result = _check(lstm_ref, torch_port, "--source", "bidi_plain.keras")
    assert code == 1, out[-3000:] + err[-3000:]
    rows = _grad_rows(result)
    assert rows and all(r["status"] == "fail" for r in rows.values()), rows
    for row in rows.values():
        arrays = row["grad"]["arrays"]
        assert not arrays["source vs artifact:x"]["passed"], arrays
        assert all(a["passed"] for k, a in arrays.items() if not k.startswith("source vs")), arrays
