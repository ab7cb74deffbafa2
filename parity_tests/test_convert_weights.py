"""``lstm-ref convert WEIGHTS.h5 --to torch|onnx``: a Keras 2 weights-only
file (``save_weights``) ported, and ``check PORT --source WEIGHTS.h5``
proving the port (issue 26 item B).

The file is read as ``check WEIGHTS.h5`` reads it
(``lstm_ref/harness/keras_weights.py``, whose tests hold the reader to
tf_keras' ``load_weights``; ``test_json_schema.py`` ports a file tf_keras
wrote); the ports are written by the converters of ``lstm_ref/convert.py``.
What a target cannot compute is refused with the reason before anything is
written: Keras 2's ``hard_sigmoid`` (the default before Keras 2.3.0) for
``torch.nn.LSTM`` (sigmoid gates only), saying where the value came from and
the ``--config`` that states another.  For ONNX it is ``HardSigmoid`` with
alpha 0.2 and beta 0.5, the same function, and the port passes ``check``.
``--to keras`` writes a Keras 3 model (built and saved by the Keras 3
worker), refuses Keras 2's ``hard_sigmoid`` (Keras 3's is another function),
and is proven by ``check OUT.keras`` and by its stored weights, equal to the
converted ones bitwise (``check --source`` pairs ``.onnx``/``.pt`` ports only).
"""

import io
import json
import zipfile

import numpy as np
import pytest

from lstm_ref.harness import keras_weights

from .test_check_artifacts import lstm_ref  # noqa: F401  (the fixture: the CLI in-process on the session's pool)
from .test_keras_weights import lstm_weights, per_gate, write

SIGMOID = '{"recurrent_activation": "sigmoid"}'


def layers(rng):
    """An LSTM (tf_keras 2.21's names), a Bidirectional, a CuDNNLSTM and a Dense."""
    return {
        "input_1": {},
        "lstm_1": lstm_weights(rng, "lstm_1/lstm_cell", 3, 4),
        "bi": {
            **lstm_weights(rng, "bi/forward_lstm_2/lstm_cell", 4, 2),
            **lstm_weights(rng, "bi/backward_lstm_2/lstm_cell", 4, 2),
        },
        "cu": lstm_weights(rng, "cu", 4, 3, bias=8),
        "dense_1": {"dense_1/kernel:0": per_gate(rng, (3, 8)), "dense_1/bias:0": per_gate(rng, (8,))},
    }


@pytest.fixture
def files(tmp_path):
    """The same weights as Keras 2.15 (sigmoid) and Keras 2.2.4 (hard_sigmoid) wrote them."""
    write(tmp_path / "w215.h5", layers(np.random.default_rng(0)), keras_version="2.15.0")
    write(tmp_path / "w224.h5", layers(np.random.default_rng(0)), keras_version="2.2.4")
    return tmp_path


def cli(capsys, monkeypatch, cwd, *args):
    """The CLI in-process, without the session's workers (for what is refused before any starts)."""
    from lstm_ref.harness.cli import main

    monkeypatch.chdir(cwd)
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_a_weights_file_is_ported_and_the_port_proven(files, lstm_ref, target):  # noqa: F811
    port = f"w.{'pt' if target == 'torch' else 'onnx'}"
    code, out, err = lstm_ref("convert", "w215.h5", "--to", target, "-o", port, cwd=files)
    assert code == 0, out + err
    assert "skipped dense_1: not an LSTM" in out, out
    assert "recurrent_activation='sigmoid' [version default]" in out, out
    assert "stores no topology, merge_mode or return_sequences" in out, out
    assert f"check it: lstm-ref check {port} --source w215.h5" in out, out

    code, out, err = lstm_ref("check", port, "--source", "w215.h5", "--json", "r.json", cwd=files)
    assert code == 0, out + err
    result = json.loads((files / "r.json").read_text())
    pairs = {r["layer"]: r for r in result["layers"] if r["pair"]}
    # one module per file layer: the Bidirectional's two directions are one bidirectional LSTM
    assert set(pairs) == {"lstm_1 -> lstm_1", "bi -> bi", "cu -> cu"}, pairs
    for row in pairs.values():
        assert row["status"] == "pass" and row["ratio"] <= 1, row
        assert set(row["weights_max_abs"].values()) == {0.0}, row  # the port holds the converted weights exactly
        assert row["pair"]["source"]["kind"] == "tf_keras.layers.LSTM", row
    assert pairs["cu -> cu"]["assumed"]["converted"].startswith("CuDNNLSTM -> LSTM"), pairs["cu -> cu"]
    assert {r["layer"] for r in result["layers"] if r["status"] == "skipped"} == {"dense_1 (in --source)"}


def test_keras2_hard_sigmoid_is_refused_for_torch_with_the_reason(files, capsys, monkeypatch):
    target, why = "torch", "torch.nn.LSTM computes its gates with sigmoid only"
    port = files / "h.pt"
    code, out, err = cli(capsys, monkeypatch, files, "convert", "w224.h5", "--to", target, "-o", port)
    assert code == 2 and not port.exists(), out + err
    assert len(err.strip().splitlines()) == 1, err
    assert "lstm_1: cannot convert to " in err and "its recurrent_activation is Keras 2's hard_sigmoid" in err, err
    assert "[version default: Keras 2.2.4: LSTM's default before 2.3.0]" in err, err
    assert why in err and "Keras 3's hard_sigmoid, relu6(x + 3) / 6, is another function" in err, err
    assert '--config lstm_1=\'{"recurrent_activation": "sigmoid"}\'' in err, err


def test_keras2_hard_sigmoid_is_ported_to_onnx_as_hardsigmoid(files, lstm_ref):  # noqa: F811
    """Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1), is ONNX's
    HardSigmoid(alpha 0.2, beta 0.5): the 2.2.4 file converts and ``check``
    proves the port, each module against its source layer."""
    code, out, err = lstm_ref("convert", "w224.h5", "--to", "onnx", "-o", "h.onnx", cwd=files)
    assert code == 0, out + err
    assert "recurrent_activation='hard_sigmoid' [version default" in out, out
    assert "note: Keras 2's hard_sigmoid written as HardSigmoid(alpha=0.2, beta=0.5)" in out, out
    code, out, err = lstm_ref("check", "h.onnx", "--source", "w224.h5", "--json", "r.json", cwd=files)
    assert code == 0, out + err
    pairs = {r["layer"]: r for r in json.loads((files / "r.json").read_text())["layers"] if r["pair"]}
    assert set(pairs) == {"lstm_1 -> lstm_1", "bi -> bi", "cu -> cu"}, pairs
    for row in pairs.values():
        assert row["status"] == "pass" and row["ratio"] <= 1, row
        assert set(row["weights_max_abs"].values()) == {0.0}, row


def test_a_port_under_another_activation_fails_against_its_source(files, lstm_ref):  # noqa: F811
    """Stated sigmoid, the 2.2.4 file converts; its port is then checked
    against the file as it is (hard_sigmoid assumed): no torch.nn.LSTM
    computes that, so its pairs are failures (exit 1), not skips (the
    CuDNNLSTM, sigmoid in any version, passes), and with the same --config
    the port passes."""
    code, out, err = lstm_ref("convert", "w224.h5", "--to", "torch", "-o", "h.pt", "--config", SIGMOID, cwd=files)
    assert code == 0, out + err
    assert f"--config '{SIGMOID}'" in out.splitlines()[-1], out
    code, out, err = lstm_ref("check", "h.pt", "--source", "w224.h5", "--json", "r.json", cwd=files)
    assert code == 1, out + err
    pairs = {r["layer"]: r for r in json.loads((files / "r.json").read_text())["layers"] if r["pair"]}
    assert {k: r["status"] for k, r in pairs.items()} == {
        "lstm_1 -> lstm_1": "fail",
        "bi -> bi": "fail",
        "cu -> cu": "pass",
    }
    assert "hard_sigmoid" in pairs["lstm_1 -> lstm_1"]["reason"], pairs  # a CuDNNLSTM is sigmoid whatever the version
    code, out, err = lstm_ref("check", "h.pt", "--source", "w224.h5", "--config", SIGMOID, cwd=files)
    assert code == 0, out + err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "nope={}"], "--config nope=...: in w215.h5, no LSTM or layer named 'nope'"),
        (["--config", "{"], "--config '{': not valid JSON"),
        (["--config", '{"units": 7}'], "units=7 contradicts lstm_1's weights"),
        (["--custom-objects", "w215.h5"], "--custom-objects has no effect on a weights-only .h5"),
    ],
)
def test_bad_options_on_a_weights_file_exit_2(files, capsys, monkeypatch, args, message):
    code, out, err = cli(capsys, monkeypatch, files, "convert", "w215.h5", "--to", "torch", "-o", "x.pt", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (files / "x.pt").exists()


def test_config_is_refused_on_a_whole_model(files, capsys, monkeypatch):
    (files / "m.onnx").write_bytes(bytes([0x08, 0x07, 0x12]) + b"\0" * 20)  # model_format: an ONNX model
    code, out, err = cli(
        capsys, monkeypatch, files, "convert", "m.onnx", "--to", "torch", "-o", "x.pt", "--config", "{}"
    )
    assert code == 2 and "--config applies to a weights-only .h5; m.onnx (ONNX model) carries its own config" in err


def test_nothing_to_convert_when_no_lstm_has_known_semantics(files, capsys, monkeypatch):
    """2.2.4-tf leaves recurrent_activation unknown: every LSTM is skipped, and the message says why."""
    rng = np.random.default_rng(1)
    write(files / "tf.h5", {"lstm_1": lstm_weights(rng, "lstm_1", 3, 2)}, keras_version="2.2.4-tf")
    code, out, err = cli(capsys, monkeypatch, files, "convert", "tf.h5", "--to", "onnx", "-o", "x.onnx")
    assert code == 2 and "nothing to convert: no LSTM whose semantics are known" in err, err
    assert "TF 1.13-1.15" in err, err


def keras_archive(path):
    """A .keras archive's config and its weights per layer name: ``{name: [arrays]}``
    (a Bidirectional's ``{name/forward_layer: ..., name/backward_layer: ...}``),
    read with h5py: ``model.weights.h5`` names layers by class in model order."""
    import h5py

    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        data = z.read("model.weights.h5")
    snake = {"LSTM": "lstm", "Bidirectional": "bidirectional", "InputLayer": "input_layer"}
    counts, stored = {}, {}
    with h5py.File(io.BytesIO(data), "r") as f:
        for layer in config["config"]["layers"]:
            base = snake[layer["class_name"]]
            n = counts.get(base, 0)
            counts[base] = n + 1
            group = f["layers"][base if n == 0 else f"{base}_{n}"]
            subs = ("forward_layer", "backward_layer") if layer["class_name"] == "Bidirectional" else ("",)
            for sub in subs:
                cell = f"{sub}/cell/vars" if sub else "cell/vars"
                if cell in group:
                    key = f"{layer['config']['name']}/{sub}" if sub else layer["config"]["name"]
                    stored[key] = [np.asarray(group[cell][str(k)]) for k in range(len(group[cell]))]
    return config, stored


def test_a_weights_file_is_ported_to_keras3_and_proven(files, lstm_ref):  # noqa: F811
    code, out, err = lstm_ref("convert", "w215.h5", "--to", "keras", "-o", "w.keras", cwd=files)
    assert code == 0, out + err
    assert "(a Keras 3 model, its weights equal to the converted ones bitwise, read back)" in out, out
    assert "lstm_1 -> keras.layers.LSTM 'lstm_1' (input lstm_1_input)" in out, out
    assert "bi/forward_lstm_2 -> keras.layers.Bidirectional 'bi' (forward_layer, input bi_input)" in out, out
    assert "bi/backward_lstm_2 -> keras.layers.Bidirectional 'bi' (backward_layer, input bi_input)" in out, out
    assert "skipped dense_1: not an LSTM" in out, out
    assert out.splitlines()[-1] == "check it: lstm-ref check w.keras", out

    config, stored = keras_archive(files / "w.keras")
    by_name = {layer["config"]["name"]: layer for layer in config["config"]["layers"]}
    assert {n: by_name[n]["class_name"] for n in ("lstm_1", "bi", "cu")} == {
        "lstm_1": "LSTM",
        "bi": "Bidirectional",
        "cu": "LSTM",
    }
    assert sum(layer["class_name"] == "InputLayer" for layer in by_name.values()) == 3  # one keras.Input per LSTM
    for name in ("lstm_1", "cu"):
        lstm = by_name[name]["config"]
        assert lstm["return_sequences"] and lstm["return_state"] and lstm["recurrent_activation"] == "sigmoid", lstm
    # the saved weights are the converted ones (a CuDNNLSTM's re-laid, biases summed), bitwise
    converted = {u.name: u.weights for u in keras_weights.assume(keras_weights.read(files / "w215.h5"), {}).lstms}
    where = {
        "lstm_1": "lstm_1",
        "bi/forward_lstm_2": "bi/forward_layer",
        "bi/backward_lstm_2": "bi/backward_layer",
        "cu": "cu",
    }
    assert set(converted) == set(where) and set(stored) == set(where.values()), (converted, stored)
    for name, key in where.items():
        want = [converted[name][k] for k in ("kernel", "recurrent_kernel", "bias")]
        got = stored[key]
        assert [(w.dtype, w.shape) for w in got] == [(w.dtype, w.shape) for w in want], name
        assert all(np.array_equal(g, w) for g, w in zip(got, want)), name

    code, out, err = lstm_ref("check", "w.keras", "--json", "r.json", cwd=files)
    assert code == 0, out + err
    rows = {r["layer"]: r for r in json.loads((files / "r.json").read_text())["layers"]}
    assert set(rows) >= {"lstm_1", "bi/forward_lstm_2", "bi/backward_lstm_2", "cu", "bi (merged)"}, rows
    assert all(r["status"] == "pass" for r in rows.values()), rows

    # the port against its source, pair by pair: each port layer built by Keras 3 from the port's config
    # and weights, on the source's drawn run (tf_keras), and the weights compared
    pairs = ["lstm_1 -> lstm_1", "bi/forward_lstm_2 -> bi/forward_lstm_2", "bi/backward_lstm_2 -> bi/backward_lstm_2"]
    pairs.append("cu -> cu")
    code, out, err = lstm_ref("check", "w.keras", "--source", "w215.h5", "--json", "p.json", cwd=files)
    assert code == 0, out + err
    rows = {r["layer"]: r for r in json.loads((files / "p.json").read_text())["layers"]}
    for name in pairs:
        assert rows[name]["status"] == "pass" and not any(rows[name]["weights_max_abs"].values()), rows[name]
        assert rows[name]["pair"]["artifact"]["kind"] == "keras.layers.LSTM", rows[name]
    # other weights in the source (the same shapes): every pair fails, the weights' difference shown
    write(files / "other.h5", layers(np.random.default_rng(1)), keras_version="2.15.0")
    code, out, err = lstm_ref("check", "w.keras", "--source", "other.h5", "--json", "o.json", cwd=files)
    assert code == 1, out + err
    rows = {r["layer"]: r for r in json.loads((files / "o.json").read_text())["layers"]}
    for name in pairs:
        assert rows[name]["status"] == "fail" and max(rows[name]["weights_max_abs"].values()) > 0.01, rows[name]


def test_keras2_hard_sigmoid_is_refused_for_keras3_with_the_reason(files, capsys, monkeypatch):
    port = files / "h.keras"
    code, out, err = cli(capsys, monkeypatch, files, "convert", "w224.h5", "--to", "keras", "-o", port)
    assert code == 2 and not port.exists(), out + err
    assert len(err.strip().splitlines()) == 1, err
    assert "lstm_1: cannot convert to keras.layers.LSTM: its recurrent_activation is Keras 2's hard_sigmoid" in err
    assert "Keras 3's hard_sigmoid is relu6(x + 3) / 6, another function" in err, err
    assert '--config lstm_1=\'{"recurrent_activation": "sigmoid"}\'' in err, err


def test_keras_target_is_for_weights_files_and_writes_keras(files, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, files, "convert", "w215.h5", "--to", "keras", "-o", "x.pt")
    assert code == 2 and "--to keras writes a .keras file" in err, err
    (files / "m.onnx").write_bytes(bytes([0x08, 0x07, 0x12]) + b"\0" * 20)
    code, out, err = cli(capsys, monkeypatch, files, "convert", "m.onnx", "--to", "keras", "-o", "x.keras")
    assert code == 2 and "--to keras converts a Keras 2 weights-only .h5 (save_weights); m.onnx is" in err, err
