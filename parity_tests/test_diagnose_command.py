"""``lstm-ref diagnose`` end to end: docs/diagnose.md's worked diagnosis -- a Keras
model ported to PyTorch with the gate blocks in the wrong order -- found
and fixed; the correct port within tolerance; bad input exits 2."""

import json

import numpy as np
import pytest

from lstm_ref.convert import TORCH
from lstm_ref.harness import artifacts
from lstm_ref.harness.model_format import model_format

from .test_check_artifacts import lstm_ref  # noqa: F401  (the fixture: the CLI in-process on the session's pool)


@pytest.fixture
def keras_and_ports(keras3_models, oracle_pool, tmp_path):
    """The Keras model, its correct PyTorch port and one with the gate
    blocks read in TF1's order (i, g, f, o for torch's i, f, g, o)."""
    model = keras3_models["embed_lstm.keras"]
    lstms = artifacts.read_lstms(model, model_format(model)[0], oracle_pool)[0]
    converted = artifacts.convert_lstms(lstms, TORCH)
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    artifacts.write_artifact(converted, TORCH, good, oracle_pool)
    swapped = []
    for name, case in converted:
        weights = {k: np.concatenate([np.split(v, 4)[i] for i in (0, 2, 1, 3)]) if k[:4] in ("weig", "bias")
                   and not k.startswith("weight_hr") else v for k, v in case.weights.items()}
        swapped.append((name, case.replace(weights=weights)))
    artifacts.write_artifact(swapped, TORCH, bad, oracle_pool)
    return model, good, bad


def test_the_wrong_gate_order_is_named_with_its_fix(keras_and_ports, lstm_ref):  # noqa: F811
    model, _, bad = keras_and_ports
    code, out, err = lstm_ref("diagnose", "--source", model, "--target", bad, "--json", "d.json")
    assert code == 0, out + err
    assert "fault found" in out and "gate blocks read as i,g,f,o (truth i,f,g,o)" in out
    assert "reorder the gate blocks of every weight and bias as [0, 2, 1, 3]" in out
    assert "lstm-ref convert SOURCE --to torch writes it correctly" in out
    result = json.loads(open("d.json").read())["results"][0]
    assert result["verdict"] == "fault found" and result["candidates"][0]["ratio"] <= 1


def test_the_correct_port_is_within_tolerance(keras_and_ports, lstm_ref):  # noqa: F811
    model, good, _ = keras_and_ports
    code, out, err = lstm_ref("diagnose", "--source", model, "--target", good)
    assert code == 0 and "no fault: within tolerance" in out, out + err


@pytest.mark.parametrize("args,message", [
    (("--source", "a.keras"), "--source and --target go together"),
    (("--kind", "keras.layers.LSTM"), "give --source MODEL --target ARTIFACT, or --kind, --config and --weights"),
    (("--kind", "keras.layers.LSTM", "--config", "{", "--weights", "w.npz"), "--config: not JSON"),
    (("--kind", "keras.layers.LSTM", "--config", '{"units": 4}', "--weights", "nope.npz"), "nope.npz: no such file"),
    (("--source", "a.keras", "--target", "b.pt", "--kind", "keras.layers.LSTM"), "not both"),
])
def test_bad_input_exits_2(lstm_ref, args, message):  # noqa: F811
    code, out, err = lstm_ref("diagnose", *args)
    assert code == 2 and message in err and "Traceback" not in err, err
