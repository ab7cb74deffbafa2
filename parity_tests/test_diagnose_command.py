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
        weights = {
            k: np.concatenate([np.split(v, 4)[i] for i in (0, 2, 1, 3)])
            if k[:4] in ("weig", "bias") and not k.startswith("weight_hr")
            else v
            for k, v in case.weights.items()
        }
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


@pytest.mark.parametrize(
    "args,message",
    [
        (("--source", "a.keras"), "--source and --target go together"),
        (("--kind", "keras.layers.LSTM"), "give --source MODEL --target ARTIFACT, or --kind, --config and --weights"),
        (("--kind", "keras.layers.LSTM", "--config", "{", "--weights", "w.npz"), "--config: not JSON"),
        (
            ("--kind", "keras.layers.LSTM", "--config", '{"units": 4}', "--weights", "nope.npz"),
            "nope.npz: no such file",
        ),
        (("--source", "a.keras", "--target", "b.pt", "--kind", "keras.layers.LSTM"), "not both"),
    ],
)
def test_bad_input_exits_2(lstm_ref, args, message):  # noqa: F811
    code, out, err = lstm_ref("diagnose", *args)
    assert code == 2 and message in err and "Traceback" not in err, err


# -- from arrays (--kind/--config/--weights/--observed): NumPy only, in-process

KIND, UNITS, FEATURES = "keras.layers.LSTM", 3, 4


def _diagnose(tmp_path, monkeypatch, capsys, *args):
    from lstm_ref.harness.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(["diagnose", *map(str, args)])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def untrained(tmp_path):
    """Weights with an untrained Keras LSTM's bias, [0, 1, 0, 0] per gate
    block, and ``observe(fault names, no_mask)``: what a port with those
    faults computes on the probe, saved as an .npz."""
    from lstm_ref.harness.diagnose import catalogue, probe
    from lstm_ref.variants import compose

    rng = np.random.default_rng(0)
    weights = {
        "kernel": (0.5 * rng.standard_normal((FEATURES, 4 * UNITS))).astype("float32"),
        "recurrent_kernel": (0.5 * rng.standard_normal((UNITS, 4 * UNITS))).astype("float32"),
        "bias": np.repeat(np.array([0, 1, 0, 0], "float32"), UNITS),
    }
    np.savez(tmp_path / "w.npz", **weights)
    faults = {f.name: f for f in catalogue(KIND)}

    def observe(names, no_mask=False, file="observed.npz"):
        case = probe(KIND, {"units": UNITS}, FEATURES, weights=weights, no_mask=no_mask)
        chosen = [faults[next(n for n in faults if n.startswith(name))] for name in names]
        if not chosen:
            trace = case.run(case.reference())
        else:
            trace = (chosen[0] if len(chosen) == 1 else compose(*chosen)).run(case)
        np.savez(tmp_path / file, **{k: trace[k] for k in ("h", "final_h", "final_c")})
        return file

    return observe


ARRAYS = ("--kind", KIND, "--config", json.dumps({"units": UNITS}), "--weights", "w.npz")


def test_identical_faults_are_an_ambiguity(untrained, tmp_path, monkeypatch, capsys):
    """On bias [0, 1, 0, 0], "forget bias +1" and "bias counted twice"
    compute the same trace: neither is named as THE fault."""
    observed = untrained(["forget bias +1"])
    code, out, err = _diagnose(tmp_path, monkeypatch, capsys, *ARRAYS, "--observed", observed, "--json", "d.json")
    assert code == 1 and "ambiguous" in out and "fault found" not in out, out + err
    assert "forget bias +1 at run time (TF1 habit); bias counted twice" in out
    assert "[0, 1, 0, 0]" in out
    assert json.loads((tmp_path / "d.json").read_text())["results"][0]["verdict"] == "ambiguous"


def test_a_pair_lists_both_fixes_and_the_mask_difference(untrained, tmp_path, monkeypatch, capsys):
    observed = untrained(["mask ignored", "gate blocks read as i,f,o,c"])
    code, out, err = _diagnose(tmp_path, monkeypatch, capsys, *ARRAYS, "--observed", observed)
    assert code == 0 and "fault found" in out, out + err
    assert 'fix 1 of 2 (mask ignored): undo "mask ignored"' in out
    assert "fix 2 of 2 (gate blocks read as i,f,o,c (truth i,f,c,o)): reorder the gate blocks" in out
    assert "residual after all 2: 0x tolerance" in out
    assert "the mask made the difference" in out and "on unmasked input it computes gate blocks read as i,f,o,c" in out
    # the same port probed without a mask: the gate order alone
    code, out, err = _diagnose(tmp_path, monkeypatch, capsys, *ARRAYS, "--write-probe", "p.npz", "--no-mask")
    assert code == 0 and "mask" not in np.load(tmp_path / "p.npz").files, out + err
    observed = untrained(["gate blocks read as i,f,o,c"], no_mask=True)
    code, out, err = _diagnose(tmp_path, monkeypatch, capsys, *ARRAYS, "--observed", observed, "--no-mask")
    assert code == 0 and "with: gate blocks read as i,f,o,c" in out and "mask ignored" not in out, out + err
    assert "residual after it: 0x" in out


def test_lines_are_short_and_well_formed(untrained, tmp_path, monkeypatch, capsys):
    code, out, err = _diagnose(tmp_path, monkeypatch, capsys, *ARRAYS, "--observed", untrained([]))
    assert code == 0 and "no fault: within tolerance" in out and "; )" not in out, out
    rng = np.random.default_rng(1)
    noise = {k: rng.standard_normal(v.shape).astype("float32") for k, v in np.load(tmp_path / "observed.npz").items()}
    np.savez(tmp_path / "noise.npz", **noise)
    code, out, err = _diagnose(tmp_path, monkeypatch, capsys, *ARRAYS, "--observed", "noise.npz")
    assert code == 1 and "nearest:" in out, out
    assert max(len(line) for line in out.splitlines()) <= 400, max(out.splitlines(), key=len)


def test_help_gives_diagnose_s_own_exit_codes(tmp_path, monkeypatch, capsys):
    code, out, _ = _diagnose(tmp_path, monkeypatch, capsys, "--help")
    text = " ".join(out.split())
    assert code == 0 and "0 one known fault (or pair of faults) explains the target" in text
    assert "every checked layer" not in text and "--no-mask" in text
