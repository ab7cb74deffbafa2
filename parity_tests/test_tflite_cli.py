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
# the README's tagger: integer token ids -> Embedding -> Bidirectional(LSTM) -> LSTM
tok = keras.Input((None,), dtype="int32")
y = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))(keras.layers.Embedding(20, 4)(tok))
keras.Model(tok, keras.layers.LSTM(4, return_sequences=True)(y)).save(sys.argv[1] + "/tokens.keras")
# a time left open: it converts (batch 1), and LiteRT would run it as 1 step
free = keras.Input((None, 5), batch_size=1)
converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(free, model(free)))
open(sys.argv[1] + "/open_time.tflite", "wb").write(converter.convert())
a, b = keras.Input((None, 5)), keras.Input((None, 5))
keras.Model([a, b], keras.layers.LSTM(2)(a + b)).save(sys.argv[1] + "/two_inputs.keras")
steps = keras.Input((8, 5))  # a model that fixes its time
keras.Model(steps, keras.layers.LSTM(3, return_sequences=True)(steps)).save(sys.argv[1] + "/fixed_time.keras")
"""


FUSED = """
import sys, tensorflow as tf, tf_keras as keras
keras.utils.set_random_seed(4)
inp = keras.Input((10, 4), batch_size=2)
model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(5, return_sequences=True)(inp)))
open(sys.argv[1] + "/fused.tflite", "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
inp = keras.Input((None, 4))
tagger = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(5, return_sequences=True)(inp)))
tagger.save(sys.argv[1] + "/fused.h5")
tok = keras.Input((None,), dtype="int32")  # tf_keras: the input's dtype is a tf.DType
embed = keras.layers.Embedding(20, 4, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0))(tok)
keras.Model(tok, keras.layers.LSTM(5, return_sequences=True)(embed)).save(sys.argv[1] + "/tokens.h5")
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
    subprocess.run(
        [sys.executable, "-c", FUSED, str(directory)],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
    )
    return directory / "fused.tflite"


def _rows(path):
    return {r["mode"]: r for r in json.loads(open(path).read())["rows"]}


def test_a_fused_lstm_alone_against_the_reference_on_its_own_weights(fused, lstm_ref):  # noqa: F811
    code, out, err = lstm_ref("check", fused, "--json", "alone.json")
    assert code == 0, out + err
    row = json.loads(open("alone.json").read())["layers"][0]
    assert row["status"] == "pass" and row["tflite"]["lowering"] == "fused" and row["tflite"]["max_abs"] < 1e-6
    assert "the op's own weights" in row["tflite"]["compared"]
    assert out.strip().splitlines()[-1].startswith("PASS: 1/1 within tolerance"), out


def test_the_sweep_prints_every_mode_asked_for(tagger, lstm_ref):  # noqa: F811
    model, _ = tagger
    code, out, err = lstm_ref(
        "tflite-sweep", model, "--modes", "float32", "float16", "--time", "12", "--json", "sweep.json"
    )
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
    (row,) = json.loads(open("c.json").read())["layers"]
    assert row["tflite"]["mode"] == "float32" and row["status"] == "pass"
    assert out.strip().splitlines()[-1].startswith("PASS: 1/1 within tolerance (worst max |d| "), out


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "nothing to check alone: its LSTM is a WHILE loop"),
        (("--source", "nope.keras", "--batch", "3"), "--batch has no effect on a .tflite"),
    ],
)
def test_bad_tflite_usage_exits_2(tagger, lstm_ref, args, message):  # noqa: F811
    _, deployed = tagger
    code, out, err = lstm_ref("check", deployed, *args)
    assert code == 2 and message in err, err


def test_an_unknown_mode_exits_2(tagger, lstm_ref):  # noqa: F811
    code, out, err = lstm_ref("tflite-sweep", tagger[0], "--modes", "int4")
    assert code == 2 and "--modes: unknown ['int4']" in err, err


def test_token_ids_pass_as_they_are_each_mode_is_saved_and_a_crash_fails_on_request(tagger, lstm_ref, monkeypatch):  # noqa: F811
    """The README's tagger (int32 token ids into an Embedding): LiteRT is
    given the ids as they are (not quantised); --save-dir writes each mode
    that converted, of a static batch and time, which `check --source`
    takes; --fail-on crash turns a crashed mode (forced here: float16) into
    exit 1, where the default keeps exit 0."""
    tokens = tagger[0].with_name("tokens.keras")
    monkeypatch.setenv("LSTM_PARITY_TFLITE_CRASH", "float16:convert")
    code, out, err = lstm_ref(
        "tflite-sweep",
        tokens,
        "--modes",
        "float32",
        "float16",
        "--batch",
        "2",
        "--time",
        "6",
        "--save-dir",
        "saved",
        "--fail-on",
        "crash",
        "--json",
        "sweep.json",
    )
    assert code == 1, out + err
    rows = _rows("sweep.json")
    assert rows["float32"]["status"] == "pass" and rows["float32"]["compared"] == "output per step (6 steps)", rows
    assert rows["float16"]["status"] == "crashed" and rows["float16"]["saved"] is None, rows
    assert sorted(os.listdir("saved")) == ["tokens.float32.tflite"]
    assert out.strip().splitlines()[-1].startswith("FAIL (--fail-on crash: float16): 1/2 modes within tolerance"), out
    monkeypatch.delenv("LSTM_PARITY_TFLITE_CRASH")
    code, out, err = lstm_ref("check", "saved/tokens.float32.tflite", "--source", tokens, "--json", "c.json")
    assert code == 0, out + err
    (row,) = json.loads(open("c.json").read())["layers"]
    assert row["tflite"]["mode"] == "float32" and row["tflite"]["compared"] == "output per step (6 steps)", row


def test_a_tf_keras_token_model_calibrates_int8_on_token_ids(fused, lstm_ref):  # noqa: F811
    """tf_keras names its input's dtype as a tf.DType, and int8's
    calibration feeds the drawn token ids as integers: the mode converts
    to the fused op and runs (whatever its error), not a refusal."""
    code, out, err = lstm_ref(
        "tflite-sweep", fused.with_name("tokens.h5"), "--modes", "int8", "--time", "6", "--json", "sweep.json"
    )
    assert code == 0, out + err  # --fail-on never: a mode over its tolerance is a row
    row = _rows("sweep.json")["int8"]
    assert row["status"] in ("pass", "fail") and row["lowering"] == "fused", row
    assert row["bitwise_repeat"] and row["max_abs"] is not None, row


def test_int8_is_judged_in_codes_of_its_output_scale(fused, lstm_ref):  # noqa: F811
    """The int8 tolerance is 25 codes of the output's own scale (atol 0
    otherwise): the fused model passes, so --fail-on mismatch exits 0."""
    code, out, err = lstm_ref(
        "tflite-sweep",
        fused.with_name("fused.h5"),
        "--modes",
        "int8",
        "--batch",
        "2",
        "--time",
        "10",
        "--fail-on",
        "mismatch",
        "--json",
        "sweep.json",
    )
    assert code == 0, out + err
    row = _rows("sweep.json")["int8"]
    assert row["status"] == "pass" and 0 < row["max_abs"] < 0.05, row
    assert out.strip().splitlines()[-1] == "PASS (--fail-on mismatch): 1/1 modes within tolerance", out


def test_a_tflite_with_an_open_time_is_refused_saying_how_to_make_one(tagger, lstm_ref):  # noqa: F811
    model, deployed = tagger
    code, out, err = lstm_ref("check", deployed.with_name("open_time.tflite"), "--source", model)
    assert code == 2, out + err
    assert "leaves its time open (shape signature [1, -1, 5]" in err, err
    assert "keras.Input((T, ...), batch_size=B)" in err and "--save-dir DIR" in err, err


def test_a_model_that_cannot_be_loaded_exits_2(tagger, lstm_ref):  # noqa: F811
    code, out, err = lstm_ref("tflite-sweep", tagger[0].with_name("two_inputs.keras"), "--modes", "float32")
    assert code == 2, out + err
    assert "the model has 2 inputs; tflite-sweep converts single-input models" in err, err


def test_a_model_that_fixes_its_time_is_swept_at_it_and_another_time_is_refused(tagger, lstm_ref):  # noqa: F811
    model = tagger[0].with_name("fixed_time.keras")
    code, out, err = lstm_ref("tflite-sweep", model, "--modes", "float32", "--time", "5")
    assert code == 2, out + err
    assert "the model fixes its input at 8 steps, and --time 5 asks for another" in err, err
    code, out, err = lstm_ref("tflite-sweep", model, "--modes", "float32", "--json", "sweep.json")
    assert code == 0, out + err
    document = json.loads(open("sweep.json").read())
    assert document["time"] == 8 and document["rows"][0]["shape"] == "1x8x3", document


@pytest.mark.parametrize(
    "args,message",
    [
        (("--save-dir", "sweep.json"), "--save-dir sweep.json: is a file; give a directory"),
        (("--save-dir", "no/such/dir"), "--save-dir no/such/dir: no directory"),
        (("--fail-on", "always"), "argument --fail-on: invalid choice: 'always'"),
    ],
)
def test_bad_sweep_options_exit_2(tagger, lstm_ref, tmp_path, args, message):  # noqa: F811
    (tmp_path / "sweep.json").write_text("")  # lstm_ref runs in tmp_path
    code, out, err = lstm_ref("tflite-sweep", tagger[0], *args)
    assert code == 2 and message in err, err


def test_a_mode_litert_cannot_run_is_a_row(tagger, lstm_ref, monkeypatch):  # noqa: F811
    """LiteRT failing on one mode's file costs that row, not the run (and
    --fail-on crash counts it)."""
    from lstm_ref.harness import tflite_cli
    from lstm_ref.harness.oracles.client import OracleError

    def broken(worker, blob, x):
        raise OracleError("oracle 'litert' failed on 'run'\nRuntimeError: the interpreter broke")

    monkeypatch.setattr(tflite_cli, "_run", broken)
    code, out, err = lstm_ref(
        "tflite-sweep", tagger[0], "--modes", "float32", "--time", "4", "--fail-on", "crash", "--json", "sweep.json"
    )
    assert code == 1, out + err
    row = _rows("sweep.json")["float32"]
    assert row["status"] == "run failed" and row["message"] == "LiteRT failed: RuntimeError: the interpreter broke"


def test_a_missing_litert_is_said_before_converting(tagger, lstm_ref, monkeypatch):  # noqa: F811
    """Without LiteRT the sweep stops at once with the pip install that brings
    it, instead of after converting every mode."""
    monkeypatch.setenv("LSTM_PARITY_LITERT_PYTHON", "/nonexistent/python")
    code, out, err = lstm_ref("tflite-sweep", tagger[0], "--time", "4")
    assert code == 2 and "Traceback" not in err, out + err
    assert "oracle 'litert'" in err and "converting" not in err, err
