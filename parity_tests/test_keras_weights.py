"""``lstm-ref check WEIGHTS.h5``: Keras 2 weights-only files
(``lstm_ref/harness/keras_weights.py``).

Truth comes from tf_keras: the live tests write files with tf_keras'
``save_weights`` (an ``LSTM`` with ``hard_sigmoid``, a ``Bidirectional``, a
``CuDNNLSTM`` -- it builds and saves on the CPU -- and a ``Dense`` whose
kernel is ``(in, 4u)``), stamp one with ``keras_version`` 2.2.4 as a Keras
2.2 file has it, rebuild the model as a user does (plain ``LSTM`` for the
CuDNNLSTM) and ``load_weights``: the weights tf_keras loads and what its
layers compute are what the reader and the reference must give.  Every
weight differs per gate, so a wrong gate layout, a wrong CuDNN conversion or
a wrong default activation fails.  The fast tests write the files' layout
with h5py alone.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import lstm_ref
from lstm_ref.errors import InputError
from lstm_ref.harness import keras_weights
from lstm_ref.harness.model_format import model_format

from .test_check_artifacts import check_cli  # noqa: F401  (the CLI in-process on the session's pool)

ROOT = Path(__file__).resolve().parents[1]
KIND = keras_weights.KIND


def cli(*args, cwd):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "lstm_ref", "check", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


# -- files written with h5py, in save_weights' layout -------------------------------------------------------------


def per_gate(rng, shape, scales=(0.7, -0.5, 1.1, 0.4)):
    blocks = np.split(rng.standard_normal(shape), 4, axis=-1)
    return np.concatenate([b * s for b, s in zip(blocks, scales)], axis=-1).astype("float32")


def write(path, layers, keras_version="2.2.4"):
    """``layers``: ``{layer: {weight name: array}}``, written as
    ``save_weights_to_hdf5_group`` does."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        f.attrs["backend"] = b"tensorflow"
        if keras_version is not None:
            f.attrs["keras_version"] = keras_version.encode()
        for layer, weights in layers.items():
            g = f.create_group(layer)
            g.attrs["weight_names"] = [n.encode() for n in weights]
            for name, value in weights.items():
                g.create_dataset(name, data=value)
    return path


def lstm_weights(rng, prefix, features, units, bias=4):
    out = {
        f"{prefix}/kernel:0": per_gate(rng, (features, 4 * units)),
        f"{prefix}/recurrent_kernel:0": per_gate(rng, (units, 4 * units)),
    }
    if bias:
        out[f"{prefix}/bias:0"] = per_gate(rng, (bias * units,))
    return out


@pytest.fixture
def mixed(tmp_path):
    """Every kind of layer the reader must tell apart, Keras 2.2.4 names."""
    rng = np.random.default_rng(0)
    return write(
        tmp_path / "mixed.h5",
        {
            "input_1": {},
            "lstm_1": lstm_weights(rng, "lstm_1", 3, 4),
            "lstm_new": lstm_weights(rng, "lstm_new/lstm_cell", 4, 2),  # tf_keras 2.21's names
            "no_bias": lstm_weights(rng, "no_bias", 2, 3, bias=0),
            "bidirectional_1": {
                **lstm_weights(rng, "bidirectional_1/forward_lstm_2", 3, 2),
                **lstm_weights(rng, "bidirectional_1/backward_lstm_2", 3, 2),
            },
            "cu_dnnlstm_1": lstm_weights(rng, "cu_dnnlstm_1", 3, 2, bias=8),
            "dense_1": {"dense_1/kernel:0": per_gate(rng, (2, 8)), "dense_1/bias:0": per_gate(rng, (8,))},
            "gru_1": {
                "gru_1/kernel:0": rng.standard_normal((3, 6)),
                "gru_1/recurrent_kernel:0": rng.standard_normal((2, 6)),
                "gru_1/bias:0": rng.standard_normal((2, 6)),
            },
            "peephole": {**lstm_weights(rng, "peephole", 3, 2), "peephole/input_gate_peephole_weights:0": np.ones(2)},
            "odd_bias": lstm_weights(rng, "odd_bias", 3, 2, bias=6),
        },
    )


def test_finds_lstms_by_names_and_shapes(mixed):
    wfile = keras_weights.read(mixed)
    found = {lstm.name: lstm for lstm in wfile.lstms}
    assert list(found) == [
        "lstm_1",
        "lstm_new",
        "no_bias",
        "bidirectional_1/forward_lstm_2",
        "bidirectional_1/backward_lstm_2",
        "cu_dnnlstm_1",
    ]
    assert (found["lstm_1"].units, found["lstm_1"].input_dim) == (4, 3)
    assert "bias" not in found["no_bias"].weights
    assert [found[f"bidirectional_1/{d}_lstm_2"].direction for d in ("forward", "backward")] == ["forward", "backward"]
    assert found["cu_dnnlstm_1"].cudnn and found["cu_dnnlstm_1"].weights["bias"].shape == (8,)
    skipped = dict(wfile.skipped)
    assert set(skipped) == {"dense_1", "gru_1", "peephole", "odd_bias"}
    assert "no recurrent_kernel" in skipped["dense_1"] and "(2, 8)" in skipped["dense_1"]
    assert "a GRU's (u, 3u)" in skipped["gru_1"]
    assert "input_gate_peephole_weights" in skipped["peephole"]
    assert "bias (12,) is neither" in skipped["odd_bias"]
    assert model_format(mixed, weights=True) == ("keras_weights", "Keras 2.2.4 weights-only HDF5 (save_weights)")
    with pytest.raises(InputError, match="weights only"):  # the commands that need a whole model
        model_format(mixed)


@pytest.mark.parametrize(
    "version, expected",
    [
        ("2.0.8", "hard_sigmoid"),
        ("2.2.4", "hard_sigmoid"),
        ("2.2.5", "hard_sigmoid"),
        ("2.1.6-tf", "hard_sigmoid"),
        ("2.3.0", "sigmoid"),
        ("2.3.0-tf", "sigmoid"),
        ("2.15.0", "sigmoid"),
        ("2.21.0", "sigmoid"),
        ("2.2.4-tf", None),
        (None, None),
        ("3.1.0", None),
        ("abc", None),
    ],
)
def test_recurrent_activation_default_by_keras_version(version, expected):
    value, why = keras_weights.recurrent_activation_default(version)
    assert value == expected, why
    assert why


def test_assumed_config_and_its_origin(mixed):
    wfile = keras_weights.assume(
        keras_weights.read(mixed),
        keras_weights.parse_configs(
            ['lstm_new={"recurrent_activation": "sigmoid"}', 'bidirectional_1={"activation": "softsign"}']
        ),
    )
    found = {lstm.name: lstm for lstm in wfile.lstms}
    assert found["lstm_1"].config == {
        "units": 4,
        "activation": "tanh",
        "recurrent_activation": "hard_sigmoid",
        "use_bias": True,
        "go_backwards": False,
        "dtype": "float32",
    }
    assert found["lstm_1"].origin["recurrent_activation"]["from"] == "version default"
    assert "2.2.4" in found["lstm_1"].origin["recurrent_activation"]["why"]
    assert found["lstm_new"].config["recurrent_activation"] == "sigmoid"
    assert found["lstm_new"].origin["recurrent_activation"]["from"] == "user"
    assert found["no_bias"].config["use_bias"] is False
    backward = found["bidirectional_1/backward_lstm_2"]
    assert backward.config["go_backwards"] is True and backward.origin["go_backwards"]["from"] == "file"
    assert backward.config["activation"] == "softsign" and backward.origin["activation"]["from"] == "user"
    cudnn = found["cu_dnnlstm_1"]
    assert cudnn.config["recurrent_activation"] == "sigmoid" and cudnn.origin["recurrent_activation"]["from"] == "file"


def test_cudnn_conversion_is_the_loaders():
    """tf_keras' ``_convert_rnn_weights`` on a 2x3 gate block: the input
    kernel re-laid as its docstring draws it, the recurrent one transposed,
    the two biases summed (per gate: different values everywhere)."""
    kernel = np.hstack([np.arange(6, dtype="float32").reshape(2, 3) + 100 * g for g in range(4)])
    recurrent = np.arange(3 * 12, dtype="float32").reshape(3, 12) * 10
    bias = np.arange(24, dtype="float32")
    out = keras_weights.cudnn_to_lstm({"kernel": kernel, "recurrent_kernel": recurrent, "bias": bias})
    np.testing.assert_array_equal(out["kernel"][:, :3], [[0, 2, 4], [1, 3, 5]])  # from [[0, 1, 2], [3, 4, 5]]
    np.testing.assert_array_equal(out["kernel"][:, 9:], [[300, 302, 304], [301, 303, 305]])
    np.testing.assert_array_equal(out["recurrent_kernel"][:, 3:6], recurrent[:, 3:6].T)
    np.testing.assert_array_equal(out["bias"], bias[:12] + bias[12:])


# -- bad input: one line, exit 2 --------------------------------------------------------------------------------


def refused(proc, *words):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "configs, words",
    [
        (
            ['lstm_1={"recurrent_activation": "sigmoid"}', 'lstm_1={"recurrent_activation": "hard_sigmoid"}'],
            ["conflicting --config for lstm_1", "recurrent_activation"],
        ),
        (
            ['{"recurrent_activation": "sigmoid"}', 'lstm_1={"recurrent_activation": "hard_sigmoid"}'],
            ["conflicting --config for lstm_1"],
        ),
        (['lstm_1={"units": 8}'], ["units=8 contradicts lstm_1's weights", "units 4"]),
        (['no_bias={"use_bias": true}'], ["use_bias=True contradicts no_bias"]),
        (['cu_dnnlstm_1={"recurrent_activation": "hard_sigmoid"}'], ["a CuDNNLSTM", "sigmoid"]),
        (['nope={"units": 4}'], ["no LSTM or layer named 'nope'", "lstm_1"]),
        (['dense_1={"units": 2}'], ["'dense_1' is not an LSTM", "no recurrent_kernel"]),
        (['lstm_1={"recurent_activation": "sigmoid"}'], ["lstm_1", "recurent_activation"]),
        (['lstm_1={"recurrent_activation": "hard_silu"}'], ["lstm_1", "hard_silu"]),
        (["lstm_1=[1]"], ["must be a JSON object"]),
        (["lstm_1={units: 4}"], ["not valid JSON"]),
    ],
)
def test_bad_config_is_refused(mixed, tmp_path, configs, words):
    args = [a for c in configs for a in ("--config", c)]
    refused(cli(mixed, *args, cwd=tmp_path), *words)


def test_bad_files_are_refused(tmp_path):
    rng = np.random.default_rng(1)
    dense = write(
        tmp_path / "dense.h5",
        {"dense_1": {"dense_1/kernel:0": per_gate(rng, (2, 8)), "dense_1/bias:0": per_gate(rng, (8,))}},
    )
    refused(cli(dense, cwd=tmp_path), "dense.h5: nothing to check: no LSTM", "dense_1", "no recurrent_kernel")
    with h5py.File(tmp_path / "k3.weights.h5", "w") as f:  # Keras 3's save_weights layout
        f.create_group("layers/lstm/cell/vars")
        f.create_group("vars")
    refused(cli(tmp_path / "k3.weights.h5", cwd=tmp_path), "a Keras 3 weights-only file")
    one = write(tmp_path / "one.h5", {"lstm_1": lstm_weights(rng, "lstm_1", 3, 4)})
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 3), "float32"))
    refused(cli(one, "--input", "x.npy", cwd=tmp_path), "--input has no effect on a weights-only .h5")
    refused(cli(one, "--batch-size", "4", cwd=tmp_path), "--batch-size has no effect on a weights-only .h5")


@pytest.mark.parametrize("version", [None, "2.2.4-tf"])
def test_unknown_default_is_a_skip_row_not_a_guess(tmp_path, version):
    rng = np.random.default_rng(2)
    path = write(tmp_path / "w.h5", {"lstm_1": lstm_weights(rng, "lstm_1", 3, 4)}, keras_version=version)
    proc = cli(path, cwd=tmp_path)
    line = refused(proc, "every LSTM was skipped", "recurrent_activation")
    assert "--config lstm_1=" in line
    assert "skipped lstm_1:" in proc.stdout


# -- live: files written by tf_keras, truth from its load_weights ------------------------------------------------

BUILD = textwrap.dedent("""
    import os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import h5py
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras
    from tf_keras import layers as L

    OUT = sys.argv[1]
    rng = np.random.default_rng(7)
    SCALES = (0.7, -0.5, 1.1, 0.4)

    def fill(model):  # every weight per gate, at its own scale and sign
        for layer in model.layers:
            values = []
            for w in layer.get_weights():
                blocks = np.split(rng.standard_normal(w.shape), 4, axis=-1)
                values.append(np.concatenate([b * s for b, s in zip(blocks, SCALES)], axis=-1).astype(w.dtype))
            layer.set_weights(values)

    def model(cudnn, activation):
        inp = keras.Input((None, 3))
        x = L.LSTM(4, return_sequences=True, name="lstm_1", **activation)(inp)
        x = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm", **activation), name="bi")(x)
        x = (tf.compat.v1.keras.layers.CuDNNLSTM(2, return_sequences=True, name="cudnn") if cudnn
             else L.LSTM(2, return_sequences=True, name="cudnn"))(x)
        return keras.Model(inp, L.Dense(8, name="dense")(x))  # dense: kernel (2, 8) = (in, 4u) with u = 2

    def truth(rebuilt, name):
        out = {}
        layers = {"lstm_1": rebuilt.get_layer("lstm_1"), "bi/forward_lstm": rebuilt.get_layer("bi").forward_layer,
                  "bi/backward_lstm": rebuilt.get_layer("bi").backward_layer, "cudnn": rebuilt.get_layer("cudnn")}
        for row, layer in layers.items():
            x = rng.standard_normal((2, 6, layer.get_weights()[0].shape[0])).astype("float32")
            for role, w in zip(("kernel", "recurrent_kernel", "bias"), layer.get_weights()):
                out[f"{row}:w:{role}"] = w
            out[f"{row}:x"], out[f"{row}:h"] = x, layer(x).numpy()
        np.savez(os.path.join(OUT, name), **out)

    # a Keras 2.2 file: hard_sigmoid was the default, so a user's rebuild without it runs hard_sigmoid
    HARD = {"recurrent_activation": "hard_sigmoid"}
    saved = model(True, HARD)
    fill(saved)
    saved.save_weights(os.path.join(OUT, "k22.h5"))
    with h5py.File(os.path.join(OUT, "k22.h5"), "a") as f:
        f.attrs["keras_version"] = b"2.2.4"
    rebuilt = model(False, HARD)
    rebuilt.load_weights(os.path.join(OUT, "k22.h5"))  # tf_keras' loader converts the CuDNNLSTM's weights
    truth(rebuilt, "k22_truth.npz")

    # a tf_keras 2.21 file whose LSTMs were built with an explicit hard_sigmoid: the version says sigmoid
    saved = model(False, HARD)
    fill(saved)
    saved.save_weights(os.path.join(OUT, "k221.h5"))
    truth(saved, "k221_truth.npz")
""")


@pytest.fixture(scope="module")
def tf_keras_weights(tmp_path_factory, tensorflow_process):
    out = tmp_path_factory.mktemp("keras_weights")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, "-c", BUILD, str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def truth_of(path):
    data = np.load(path)
    rows = sorted({k.split(":")[0] for k in data.files})
    return {row: {k[len(row) + 1 :]: data[k] for k in data.files if k.startswith(row + ":")} for row in rows}


def run_reference(config, weights, x):
    return lstm_ref.from_config(KIND, config).run(x, weights).h


def test_reader_and_reference_match_tf_keras_load_weights(tf_keras_weights):
    """What the reader assumes (hard_sigmoid from keras_version 2.2.4, sigmoid
    for the CuDNNLSTM, go_backwards for the backward direction) and converts
    (the CuDNNLSTM's weights) is what tf_keras loads and computes; the
    wrong assumption and the naive conversion are far off."""
    wfile = keras_weights.assume(keras_weights.read(tf_keras_weights / "k22.h5"), [])
    truth = truth_of(tf_keras_weights / "k22_truth.npz")
    found = {lstm.name: lstm for lstm in wfile.lstms}
    assert sorted(found) == sorted(truth) and [name for name, _ in wfile.skipped] == ["dense"]
    assert found["cudnn"].cudnn and found["cudnn"].config["recurrent_activation"] == "sigmoid"
    for name, lstm in found.items():
        expected = truth[name]
        for role in ("kernel", "recurrent_kernel", "bias"):  # bit for bit what load_weights put in the layer
            np.testing.assert_array_equal(lstm.weights[role], expected[f"w:{role}"], err_msg=f"{name} {role}")
        h = run_reference(lstm.config, lstm.weights, expected["x"])
        np.testing.assert_allclose(h, expected["h"], atol=2e-6, rtol=2e-6, err_msg=name)
        if not lstm.cudnn:
            assert lstm.config["recurrent_activation"] == "hard_sigmoid"
            wrong = run_reference({**lstm.config, "recurrent_activation": "sigmoid"}, lstm.weights, expected["x"])
            assert np.abs(wrong - expected["h"]).max() > 1e-2, name  # the test can fail
    with h5py.File(tf_keras_weights / "k22.h5", "r") as f:
        raw = {role: np.asarray(f["cudnn"][f"cudnn/{role}:0"]) for role in ("kernel", "recurrent_kernel", "bias")}
    naive = {**raw, "bias": raw["bias"][:8] + raw["bias"][8:]}  # the biases summed, the kernels left as stored
    off = run_reference(found["cudnn"].config, naive, truth["cudnn"]["x"])
    assert np.abs(off - truth["cudnn"]["h"]).max() > 1e-2


def test_check_weights_file(check_cli, tf_keras_weights, tmp_path):  # noqa: F811
    proc = check_cli(tf_keras_weights / "k22.h5", "--json", "out.json", "--seed", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    rows = {r["layer"]: r for r in result["layers"]}
    assert list(rows) == ["lstm_1", "bi/forward_lstm", "bi/backward_lstm", "cudnn", "dense"]
    assert rows["dense"]["status"] == "skipped" and "no recurrent_kernel" in rows["dense"]["reason"]
    checked = [r for r in result["layers"] if r["status"] != "skipped"]
    assert result["passed"] and all(r["status"] == "pass" and r["kind"] == KIND for r in checked)
    lstm_1 = rows["lstm_1"]["assumed"]
    assert lstm_1["keras_version"] == "2.2.4"
    assert lstm_1["config"]["recurrent_activation"] == "hard_sigmoid"
    assert lstm_1["from"]["recurrent_activation"]["from"] == "version default"
    assert lstm_1["from"]["units"]["from"] == "file"
    assert rows["bi/backward_lstm"]["assumed"]["config"]["go_backwards"] is True
    assert rows["cudnn"]["source"] == "weights: CuDNNLSTM"
    assert rows["cudnn"]["assumed"]["from"]["recurrent_activation"]["from"] == "file"
    assert "biases summed" in rows["cudnn"]["assumed"]["converted"]
    assert "Keras 2.2.4 weights-only HDF5" in proc.stdout and "lstm_1 assumed:" in proc.stdout
    assert "recurrent_activation='hard_sigmoid' [version default]" in proc.stdout


def test_config_overrides_the_version_default(check_cli, tf_keras_weights, tmp_path):  # noqa: F811
    """tf_keras 2.21 writes keras_version 2.21.0: sigmoid is assumed, which is
    not what these explicitly hard_sigmoid LSTMs computed; --config says so."""
    path = tf_keras_weights / "k221.h5"
    truth = truth_of(tf_keras_weights / "k221_truth.npz")
    plain = {lstm.name: lstm for lstm in keras_weights.assume(keras_weights.read(path), []).lstms}
    assert plain["lstm_1"].config["recurrent_activation"] == "sigmoid"
    off = run_reference(plain["lstm_1"].config, plain["lstm_1"].weights, truth["lstm_1"]["x"])
    assert np.abs(off - truth["lstm_1"]["h"]).max() > 1e-2
    configs = ['lstm_1={"recurrent_activation": "hard_sigmoid"}', 'bi={"recurrent_activation": "hard_sigmoid"}']
    given = keras_weights.assume(keras_weights.read(path), keras_weights.parse_configs(configs))
    for lstm in given.lstms:
        if lstm.name != "cudnn":
            np.testing.assert_allclose(
                run_reference(lstm.config, lstm.weights, truth[lstm.name]["x"]),
                truth[lstm.name]["h"],
                atol=2e-6,
                rtol=2e-6,
                err_msg=lstm.name,
            )
    proc = check_cli(path, *[a for c in configs for a in ("--config", c)], "--json", "out.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["layer"]: r for r in json.loads((tmp_path / "out.json").read_text())["layers"]}
    for name in ("lstm_1", "bi/forward_lstm", "bi/backward_lstm"):
        origin = rows[name]["assumed"]["from"]["recurrent_activation"]
        assert rows[name]["assumed"]["config"]["recurrent_activation"] == "hard_sigmoid"
        assert origin["from"] == "user" and "--config" in origin["why"]
    assert rows["cudnn"]["assumed"]["from"]["recurrent_activation"]["from"] == "version default"
