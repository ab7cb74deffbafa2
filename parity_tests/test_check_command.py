"""``lstm-ref check`` on models the test builds, saves and reloads."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lstm_ref.harness.check import check_keras_model

pytestmark = pytest.mark.live

BUILD = textwrap.dedent("""
    import sys, keras
    inp = keras.Input((None, 4))
    a = keras.layers.LSTM(5, return_sequences=True, name="enc")(inp)
    b = keras.layers.Dense(3, activation="tanh")(a)
    c = keras.layers.LSTM(6, go_backwards=True, recurrent_activation="hard_sigmoid", return_sequences=True, name="mid")(b)
    d = keras.layers.LSTM(2, activation="gelu", name="dec", dtype="float64")(c)
    keras.Model(inp, d).save(sys.argv[1])
""")


@pytest.fixture(scope="module", params=["keras", "h5"])
def saved_model(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / f"three_lstm.{request.param}"
    subprocess.run([sys.executable, "-c", BUILD, str(path)], check=True, capture_output=True)
    return path


def test_check_finds_every_lstm_layer_and_matches(oracle_pool, saved_model):
    rows, skipped = check_keras_model(saved_model, pool=oracle_pool)
    assert [r["layer"] for r in rows] == ["enc", "mid", "dec"]
    assert skipped == []
    assert all(r["passed"] for r in rows), rows
    assert rows[2]["dtype"] == "float64"


def test_check_uses_the_users_input(oracle_pool, saved_model, tmp_path):
    x = np.random.default_rng(3).standard_normal((3, 11, 4)).astype("float32")
    rows, _ = check_keras_model(saved_model, x=x, pool=oracle_pool)
    assert rows[0]["shape"] == "3x11x4"
    assert rows[1]["shape"] == "3x11x3"  # the Dense layer's output, computed by the model


EXPORT = textwrap.dedent("""
    import sys, keras
    inp = keras.Input((None, 4))
    out = keras.layers.LSTM(5, return_sequences=True, go_backwards=True, name="enc")(inp)
    keras.Model(inp, out).export(sys.argv[1])
""")


def test_check_a_savedmodel_by_scope(oracle_pool, tmp_path):
    """A SavedModel (Keras 3 ``model.export``) has no layer objects to walk:
    the cell is named by its variable scope, with its kind and config."""
    from lstm_ref.harness.check import check_checkpoint

    path = tmp_path / "exported"
    subprocess.run([sys.executable, "-c", EXPORT, str(path)], check=True, capture_output=True)
    x = np.random.default_rng(4).standard_normal((2, 6, 4)).astype("float32")
    rows, _ = check_checkpoint(path, "enc/lstm_cell", "keras.layers.LSTM", {"units": 5, "go_backwards": True}, x,
                               pool=oracle_pool)
    assert rows[0]["passed"] and rows[0]["layer"] == "enc/lstm_cell"
