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
``--to keras`` does not exist (``convert``'s targets are torch and onnx).
"""

import json

import numpy as np
import pytest

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
