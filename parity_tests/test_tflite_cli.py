"""``lstm-ref tflite-sweep MODEL`` and ``lstm-ref check MODEL.tflite --source MODEL``
on a user's own saved Keras model, end to end (in-process CLI, the
session's workers)."""

import json
import os
import subprocess
import sys

import pytest

from .test_check_artifacts import lstm_ref  # noqa: F401  (the fixture: the CLI in-process on the session's pool)

MODEL = """
import sys, keras, numpy as np, tensorflow as tf
keras.utils.set_random_seed(3)
inp = keras.Input((None, 5))
x = keras.layers.LSTM(6, return_sequences=True)(inp)
model = keras.Model(inp, keras.layers.Dense(2)(x))
model.save(sys.argv[1] + "/tagger.keras")
fixed_in = keras.Input((12, 5), batch_size=1)
converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(fixed_in, model(fixed_in)))
open(sys.argv[1] + "/tagger.tflite", "wb").write(converter.convert())
"""


FUSED = """
import sys, tensorflow as tf, tf_keras as keras
keras.utils.set_random_seed(4)
inp = keras.Input((10, 4), batch_size=2)
model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(5, return_sequences=True)(inp)))
open(sys.argv[1] + "/fused.tflite", "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
"""


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, tensorflow_process):
    directory = tmp_path_factory.mktemp("tflite_cli")
    subprocess.run([sys.executable, "-c", MODEL, str(directory)], check=True, capture_output=True)
    return directory / "tagger.keras", directory / "tagger.tflite"


@pytest.fixture(scope="module")
def fused(tmp_path_factory, tensorflow_process):
    """A tf_keras model's .tflite: one fused UNIDIRECTIONAL_SEQUENCE_LSTM."""
    directory = tmp_path_factory.mktemp("tflite_fused")
    subprocess.run([sys.executable, "-c", FUSED, str(directory)], check=True, capture_output=True,
                   env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    return directory / "fused.tflite"


def test_a_fused_lstm_alone_against_the_reference_on_its_own_weights(fused, lstm_ref):  # noqa: F811
    code, out, err = lstm_ref("check", fused, "--json", "alone.json")
    assert code == 0, out + err
    row = json.loads(open("alone.json").read())["rows"][0]
    assert row["status"] == "pass" and row["lowering"] == "fused" and row["max_abs"] < 1e-6
    assert "the op's own weights" in row["compared"]
    assert out.strip().splitlines()[-1].startswith("PASS: 1/1 within tolerance"), out


def test_the_sweep_prints_every_mode_asked_for(tagger, lstm_ref):  # noqa: F811
    model, _ = tagger
    code, out, err = lstm_ref("tflite-sweep", model, "--modes", "float32", "float16", "--time", "12",
                              "--json", "sweep.json")
    assert code == 0, out + err
    rows = {r["mode"]: r for r in json.loads(open("sweep.json").read())["rows"]}
    assert set(rows) == {"float32", "float16"}
    assert rows["float32"]["status"] == "pass" and rows["float32"]["leaves_float32_at"] is None
    assert rows["float16"]["status"] == "pass" and rows["float16"]["max_abs"] > rows["float32"]["max_abs"]
    assert all(r["bitwise_repeat"] for r in rows.values()) and "output per step (12 steps)" in out


def test_a_deployed_file_against_its_source(tagger, lstm_ref):  # noqa: F811
    model, deployed = tagger
    code, out, err = lstm_ref("check", deployed, "--source", model, "--json", "c.json")
    assert code == 0, out + err
    result = json.loads(open("c.json").read())
    assert result["mode"] == "float32" and result["rows"][0]["status"] == "pass"
    assert out.strip().splitlines()[-1].startswith("PASS: 1/1 within tolerance (worst max |d| "), out


@pytest.mark.parametrize("args,message", [
    ((), "nothing to check alone: its LSTM is a WHILE loop"),
    (("--source", "nope.keras", "--batch", "3"), "--batch has no effect on a .tflite"),
])
def test_bad_tflite_usage_exits_2(tagger, lstm_ref, args, message):  # noqa: F811
    _, deployed = tagger
    code, out, err = lstm_ref("check", deployed, *args)
    assert code == 2 and message in err, err


def test_an_unknown_mode_exits_2(tagger, lstm_ref):  # noqa: F811
    code, out, err = lstm_ref("tflite-sweep", tagger[0], "--modes", "int4")
    assert code == 2 and "--modes: unknown ['int4']" in err, err
