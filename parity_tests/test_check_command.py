"""``lstm-ref check`` end to end, as a user runs it: real saved models of
every architecture and format (``saved_models.py``), relative paths from
another directory, exit codes and the ``--json`` result.

One command checks every model of a framework (one worker start-up each).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from .test_check_artifacts import check_cli, lstm_ref  # noqa: F401  (the CLI in-process on the session's pool)

ROOT = Path(__file__).resolve().parents[1]
NOT_MODELS = {"no_lstm.keras"}  # a usage error, tested below


# What every model holds, as the walker finds it (``saved_models.py`` builds them):
def rows_of(result, name):
    """(layer, source, masked, initial state) of a model's LSTM rows, in order."""
    return [
        (r["layer"], r["source"], r["masked"], r["initial_state"])
        for r in result["layers"]
        if Path(r["model"]).name == name and r["status"] != "skipped" and r["source"] != "Bidirectional"
    ]


def bidi_rows(names, masked):
    return [(f"{name}/{d}_lstm", "LSTM", masked, False) for name in names for d in ("forward", "backward")]


K3_BIDIS = [f"bi_{m}_{r}" for m in ("concat", "sum", "mul", "ave", "none") for r in ("seq", "last")] + ["bi_state"]
TFK_BIDIS = ["bi_concat_seq", "bi_sum_last", "bi_mul_seq", "bi_ave_last", "bi_none_seq"]

KERAS3_ROWS = {
    "embed_lstm.keras": [("lstm", "LSTM", True, False)],
    "embed_lstm.h5": [("lstm", "LSTM", True, False)],
    "masking_lstm.keras": [("lstm", "LSTM", True, False)],
    "explicit_mask.keras": [("lstm", "LSTM", True, False)],
    "bidi_masked.keras": bidi_rows(K3_BIDIS, True),
    "bidi_plain.keras": bidi_rows(K3_BIDIS, False),
    "encdec.keras": [("encoder", "LSTM", False, False), ("decoder", "LSTM", False, True)],
    "encdec.h5": [("encoder", "LSTM", False, False), ("decoder", "LSTM", False, True)],
    # Keras 3 drops the decoder's Embedding mask: Layer.__call__ fills in `mask` only for a single tensor argument
    "encdec_masked.keras": [("encoder", "LSTM", True, False), ("decoder", "LSTM", False, True)],
    "multi_input.keras": [("lstm_a", "LSTM", False, False), ("lstm_b", "LSTM", False, False)],
    "shared.keras": [("shared (call 1)", "LSTM", False, False), ("shared (call 2)", "LSTM", False, False)]
    + [(f"bi/{d}_lstm (call {n})", "LSTM", False, False) for d in ("forward", "backward") for n in (1, 2)],
    "nested.keras": [("inner_seq/lstm", "LSTM", False, False), ("inner_fn/lstm", "LSTM", False, False)],
    "rnn_cells.keras": [
        ("rnn_cell", "RNN(LSTMCell)", True, False),
        ("rnn_stack/c0", "RNN(StackedRNNCells)[0]", True, False),
        ("rnn_stack/c1", "RNN(StackedRNNCells)[1]", True, False),
        ("rnn_stack_back/c0", "RNN(StackedRNNCells)[0]", True, False),
        ("rnn_stack_back/c1", "RNN(StackedRNNCells)[1]", True, False),
    ],
    "returns.keras": [(f"lstm_rs{rs}_st{st}", "LSTM", False, False) for rs in (0, 1) for st in (0, 1)],
    "mixed_layer.keras": [("lstm16", "LSTM", False, False), ("lstm32", "LSTM", False, False)],
    "mixed_policy.keras": bidi_rows(["bi"], True) + [("top", "LSTM", True, False)],
    "others.keras": [("lstm", "LSTM", False, False)],
}
KERAS3_ROWS.update(
    {
        name.replace(".keras", ".h5"): KERAS3_ROWS[name]  # Keras 3's legacy .h5 of the same models
        for name in ("bidi_masked.keras", "nested.keras", "rnn_cells.keras", "mixed_policy.keras")
    }
)

TF_KERAS_ROWS = {
    "tf_embed_lstm.h5": [("lstm", "LSTM", True, False)],
    "tf_embed_lstm": [("lstm", "LSTM", True, False)],
    "tf_bidi.h5": bidi_rows(TFK_BIDIS, True),
    "tf_bidi_small": bidi_rows(["bi_concat_seq", "bi_sum_last"], True),
    "tf_encdec.h5": [("encoder", "LSTM", False, False), ("decoder", "LSTM", False, True)],
    "tf_encdec": [("encoder", "LSTM", False, False), ("decoder", "LSTM", False, True)],
    # tf_keras does pass the decoder its mask (RNN.__call__ makes [x, h, c] the inputs; masks [m, None, None])
    "tf_encdec_masked.h5": [("encoder", "LSTM", True, False), ("decoder", "LSTM", True, True)],
    "tf_cells.h5": [
        ("rnn_cell", "RNN(LSTMCell)", True, False),
        ("rnn_stack/c0", "RNN(StackedRNNCells)[0]", True, False),
        ("rnn_stack/c1", "RNN(StackedRNNCells)[1]", True, False),
    ],
    "tf_mixed.h5": bidi_rows(["bi"], True) + [("top", "LSTM", True, False)],
}


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


def relative(paths, cwd):
    return [os.path.relpath(p, cwd) for p in paths]


def check_all(check_cli, models, tmp_path):  # noqa: F811
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    paths = [p for name, p in sorted(models.items()) if name not in NOT_MODELS]
    proc = check_cli(*relative(paths, cwd), "--json", "result.json", "--seed", "3", cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((cwd / "result.json").read_text())
    assert result["passed"] is True
    checked = [r for r in result["layers"] if r["status"] != "skipped"]
    assert {Path(r["model"]).name for r in result["layers"]} == {p.name for p in paths}
    assert all(r["status"] == "pass" and r["ratio"] <= 1 for r in checked)
    # TF agrees with itself bit for bit: each layer's output in the model run is
    # its class re-run on the recorded inputs; each Bidirectional's output is
    # the merge of its directions (check.merge_directions).
    assert all(r["tf_bitwise"] is not False for r in checked)
    assert all(r["tf_bitwise"] is True for r in checked if r["source"] in ("LSTM", "Bidirectional"))
    assert "PASS" in proc.stdout and "Traceback" not in proc.stderr
    return result, proc


def test_every_keras3_model_passes(check_cli, keras3_models, tmp_path):  # noqa: F811
    result, proc = check_all(check_cli, keras3_models, tmp_path)
    for name, expected in KERAS3_ROWS.items():
        assert rows_of(result, name) == expected, name
    merged = [r for r in result["layers"] if r["source"] == "Bidirectional"]
    assert len([r for r in merged if Path(r["model"]).name == "bidi_plain.keras"]) == len(K3_BIDIS)
    layers = {(Path(r["model"]).name, r["layer"]) for r in result["layers"] if r["status"] != "skipped"}
    for expected in [
        ("embed_lstm.keras", "lstm"),
        ("embed_lstm.h5", "lstm"),
        ("bidi_masked.keras", "bi_concat_seq/forward_lstm"),
        ("bidi_masked.keras", "bi_none_last (merged)"),
        ("encdec.keras", "decoder"),
        ("nested.keras", "inner_seq/lstm"),
        ("rnn_cells.keras", "rnn_stack/c1"),
        ("mixed_policy.keras", "top"),
        ("multi_input.keras", "lstm_b"),
    ]:
        assert expected in layers, expected
    skipped = {r["layer"]: r["reason"] for r in result["layers"] if r["status"] == "skipped"}
    assert "GRU" in skipped["gru"] or "gru" in skipped["gru"].lower()


def test_every_keras2_model_passes(check_cli, tf_keras_models, tmp_path):  # noqa: F811
    result, _ = check_all(check_cli, tf_keras_models, tmp_path)
    for name, expected in TF_KERAS_ROWS.items():
        assert rows_of(result, name) == expected, name
    kinds = {r["kind"] for r in result["layers"] if r["status"] != "skipped"}
    assert "tf_keras.layers.LSTM" in kinds
    formats = {r["format"] for r in result["layers"]}
    assert any("SavedModel" in f for f in formats) and any("HDF5" in f for f in formats)


def test_inputs_by_name_and_as_npz(check_cli, keras3_models, tmp_path):  # noqa: F811
    rng = np.random.default_rng(0)
    enc, dec = rng.standard_normal((3, 6, 4)).astype("float32"), rng.standard_normal((3, 5, 3)).astype("float32")
    np.save(tmp_path / "enc.npy", enc)
    np.save(tmp_path / "dec.npy", dec)
    np.savez(tmp_path / "both.npz", enc_in=enc, dec_in=dec)
    model = relative([keras3_models["encdec.keras"]], tmp_path)[0]
    for args in (["--input", "enc_in=enc.npy", "--input", "dec_in=dec.npy"], ["--input", "both.npz"]):
        proc = check_cli(model, *args, "--json", "r.json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        rows = {r["layer"]: r for r in json.loads((tmp_path / "r.json").read_text())["layers"]}
        assert rows["encoder"]["shape"] == "3x6x4" and rows["decoder"]["shape"] == "3x5x3"


def test_large_input_goes_in_batches(check_cli, keras3_models, tmp_path):  # noqa: F811
    tokens = np.random.default_rng(1).integers(1, 20, size=(600, 5))
    tokens[::3, 3:] = 0  # padding: masks in every batch
    np.save(tmp_path / "tokens.npy", tokens.astype("int32"))
    model = relative([keras3_models["embed_lstm.keras"]], tmp_path)[0]
    proc = check_cli(model, "--input", "tokens.npy", "--batch-size", "200", "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads((tmp_path / "r.json").read_text())["layers"]
    assert row["rows"] == 600 and row["status"] == "pass"


BROKEN = textwrap.dedent("""
    import sys, keras
    sys.path.insert(0, sys.argv[2])
    from broken_layers import LeakyLSTM
    inp = keras.Input((None, 3), name="frames")
    y = keras.layers.LSTM(4, return_sequences=True, name="good")(inp)
    y = LeakyLSTM(3, name="leaky")(y)
    keras.Model(inp, y).save(sys.argv[1])
""")


def test_a_broken_layer_fails_and_is_named(tmp_path, tensorflow_process):
    """A model whose LSTM computes something else than keras.layers.LSTM with
    its config and weights (a subclass with a bug) exits 1 naming the layer.
    (Editing a saved file's weights cannot do this: the framework and the
    reference read the same edited weights.)"""
    model = tmp_path / "broken.keras"
    subprocess.run(
        [sys.executable, "-c", BROKEN, str(model), str(ROOT / "parity_tests")],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    layers = os.path.relpath(ROOT / "parity_tests" / "broken_layers.py", tmp_path)
    proc = cli("broken.keras", "--custom-objects", layers, "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "FAIL" in proc.stdout and "leaky" in proc.stdout.splitlines()[-1]
    rows = {r["layer"]: r for r in json.loads((tmp_path / "r.json").read_text())["layers"]}
    assert rows["good"]["status"] == "pass"
    assert rows["leaky"]["status"] == "fail" and rows["leaky"]["worst"]["field"] == "model:h"
    assert "custom call or a subclass" in rows["leaky"]["reason"]
    proc = cli("broken.keras", cwd=tmp_path)  # without its custom layer the model cannot load
    assert proc.returncode == 2 and "LeakyLSTM" in proc.stderr and "Traceback" not in proc.stderr


def test_model_input_errors_exit_2(check_cli, keras3_models, tmp_path):  # noqa: F811
    """Faults only the framework can see come back as one line and exit 2
    (every such message is tested on the worker op in test_model_walk.py)."""
    import re

    os.symlink(keras3_models["encdec.keras"], tmp_path / "encdec.keras")
    np.save(tmp_path / "x2d.npy", np.zeros((5, 4), "float32"))
    proc = check_cli("encdec.keras", "--input", "enc_in=x2d.npy", "--input", "dec_in=x2d.npy", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-1000:] + proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert re.search(
        r"input 'dec_in' expects shape \(None, None, 3\), got \(5, 4\)|input 'enc_in' expects shape "
        r"\(None, None, 4\), got \(5, 4\)",
        proc.stderr,
    ), proc.stderr


EXPORT = textwrap.dedent("""
    import sys, keras
    inp = keras.Input((None, 4))
    out = keras.layers.LSTM(5, return_sequences=True, go_backwards=True, name="enc")(inp)
    keras.Model(inp, out).export(sys.argv[1])
""")


def test_a_savedmodel_by_scope(check_cli, tmp_path, tensorflow_process):  # noqa: F811
    """A SavedModel from Keras 3's ``model.export`` has no layer objects to
    walk: the cell is named by its variable scope, with its kind and config;
    without --scope the refusal says so."""
    subprocess.run([sys.executable, "-c", EXPORT, str(tmp_path / "exported")], check=True, capture_output=True)
    np.save(tmp_path / "x.npy", np.random.default_rng(4).standard_normal((2, 6, 4)).astype("float32"))
    proc = check_cli(
        "exported",
        "--scope",
        "enc/lstm_cell",
        "--kind",
        "keras.layers.LSTM",
        "--config",
        '{"units": 5, "go_backwards": true}',
        "--input",
        "x.npy",
        "--json",
        "r.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads((tmp_path / "r.json").read_text())["layers"]
    assert row["layer"] == "enc/lstm_cell" and row["status"] == "pass"
    proc = check_cli("exported", cwd=tmp_path)
    assert proc.returncode == 2 and "--scope" in proc.stderr
    # a config that does not fit the variables: test_checkpoints.py::test_check_command_on_the_checkpoint


# -- inputs as the user gives them: tokens, dtypes (in-process CLI, the session's workers)


def test_a_token_outside_the_vocabulary_exits_2_naming_it(keras3_models, lstm_ref, tmp_path):  # noqa: F811
    """embed_lstm.keras reads `tokens` with Embedding(20): 500 (and -1) are
    bad input, named with where they are and the vocabulary size, not a
    worker crash (exit 3) with an empty reason."""
    tokens = np.ones((300, 5), "int32")
    tokens[250, 3] = 500
    np.save(tmp_path / "tokens.npy", tokens)
    code, out, err = lstm_ref(
        "check", keras3_models["embed_lstm.keras"], "--input", "tokens.npy", "--batch-size", "100"
    )
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for text in ("input 'tokens'", "token 500", "row 250, step 3", "Embedding 'embed'", "input_dim 20"):
        assert text in err, (text, err)
    np.save(tmp_path / "negative.npy", -np.ones((2, 5), "int32"))
    code, _, err = lstm_ref("check", keras3_models["embed_lstm.keras"], "--input", "negative.npy")
    assert code == 2 and "token -1" in err and "input_dim 20" in err, err


def test_casts_to_the_model_dtype_are_said_and_lossy_ones_refused(keras3_models, lstm_ref, tmp_path):  # noqa: F811
    rng = np.random.default_rng(5)
    np.save(tmp_path / "frames64.npy", rng.standard_normal((2, 6, 3)))  # masking_lstm.keras takes float32 frames
    code, out, err = lstm_ref(
        "check", keras3_models["masking_lstm.keras"], "--input", "frames64.npy", "--json", "r.json"
    )
    assert code == 0, out + err
    result = json.loads(open("r.json").read())
    (cast,) = result["input_casts"]
    assert (cast["input"], cast["given"], cast["cast_to"], cast["exact"]) == ("frames", "float64", "float32", False)
    assert 0 < cast["max_change"] < 1e-7
    (row,) = result["layers"]
    assert "input 'frames' given as float64, cast to the model's float32 (rounded: max |change|" in row["notes"]
    assert "cast to the model's float32" in out
    np.save(tmp_path / "tokens64.npy", rng.integers(1, 20, size=(2, 5)))  # int64 into int32 tokens: exact
    code, out, err = lstm_ref("check", keras3_models["embed_lstm.keras"], "--input", "tokens64.npy", "--json", "t.json")
    assert code == 0, out + err
    assert "input 'tokens' given as int64, cast to the model's int32 (exact)" in out
    assert json.loads(open("t.json").read())["input_casts"][0]["exact"] is True
    for name, array, message in [
        (
            "huge.npy",
            np.full((2, 6, 3), 1e300),
            "input 'frames': float64 value 1e+300 cannot be held by the model's float32 (it would become infinite)",
        ),
        ("tiny.npy", np.full((2, 6, 3), 1e-300), "(it would become zero)"),
        (
            "wide.npy",
            np.full((2, 5), 2**40, "int64"),
            "input 'tokens': int64 value 1099511627776 does not fit the model's int32",
        ),
    ]:
        np.save(tmp_path / name, array)
        model = keras3_models["embed_lstm.keras" if array.ndim == 2 else "masking_lstm.keras"]
        code, out, err = lstm_ref("check", model, "--input", name)
        assert code == 2 and message in err and "Traceback" not in err, err


def test_cast_rules():
    """keras_models.cast_input, the rule the worker applies (NumPy only)."""
    import pytest

    from lstm_ref.harness.oracles.keras_models import cast_input
    from lstm_ref.harness.oracles.protocol import UserError

    same = np.zeros(3, "float32")
    assert cast_input("x", same, np.dtype("float32")) == (same, None)
    _, cast = cast_input("x", np.array([0.1, 1.0]), np.dtype("float32"))
    assert not cast["exact"] and cast["max_change"] > 0
    _, cast = cast_input("x", np.array([0.5, 1.0]), np.dtype("float32"))
    assert cast["exact"] and cast["max_change"] == 0
    _, cast = cast_input("x", np.array([2**24], "int64"), np.dtype("float32"))
    assert cast["exact"]
    _, cast = cast_input("x", np.array([np.nan, np.inf]), np.dtype("float32"))  # not finite before: kept, noted
    assert cast["given"] == "float64"
    for a, dtype in [
        (np.array([2**24 + 1], "int64"), "float32"),
        (np.array([2**60 + 1], "int64"), "float32"),
        (np.array([1e39]), "float32"),
        (np.array([1e-50]), "float32"),
        (np.array([2.5]), "int32"),
        (np.array([-1], "int64"), "uint8"),
        (np.array([2**31], "int64"), "int32"),
    ]:
        with pytest.raises(UserError, match="input 'x'"):
            cast_input("x", a, np.dtype(dtype))


def test_piped_output_keeps_every_column(keras3_models, lstm_ref, monkeypatch):  # noqa: F811
    """Not on a terminal (CI, `| tee`), the table is never cut to COLUMNS:
    every column, each row on one line."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = lstm_ref("check", keras3_models["masking_lstm.keras"])
    assert code == 0, out + err
    header = next(line for line in out.splitlines() if "layer" in line and "verdict" in line)
    for column in ("kind", "dtype", "x", "h max |d|", "c max |d|", "worst at", "atol / rtol", "ratio"):
        assert column in header, (column, header)
    row = next(line for line in out.splitlines() if line.startswith("│ lstm "))
    assert "LSTM (Keras 3)" in row and "float32" in row and "row " in row and "PASS" in row, row
    assert out.strip().splitlines()[-1].startswith("PASS: 1/1")


def test_other_recurrent_layers_only_are_listed_then_exit_2(keras3_models, lstm_ref):  # noqa: F811
    """A model with a GRU and no LSTM: the README's "listed as skipped",
    then exit 2 since nothing is checkable."""
    code, out, err = lstm_ref("check", keras3_models["no_lstm.keras"])
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, out + err
    assert "no_lstm.keras: skipped gru: GRU: not an LSTM" in out
    assert "nothing to check: no LSTM the reference reproduces; found and skipped 1 (gru: GRU" in err


CELLS = textwrap.dedent("""
    import sys, torch
    torch.manual_seed(0)
    torch.save(torch.nn.LSTMCell(3, 4).state_dict(), sys.argv[1] + "/cell.pt")
    torch.save(torch.nn.GRU(3, 4).state_dict(), sys.argv[1] + "/gru.pt")

    class Stepper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.LSTMCell(3, 4)

        def forward(self, x):
            h = torch.zeros(x.shape[0], 4)
            c = torch.zeros(x.shape[0], 4)
            for t in range(x.shape[1]):
                h, c = self.cell(x[:, t], (h, c))
            return h

    torch.jit.script(Stepper()).save(sys.argv[1] + "/stepper.pt")
""")


def test_torch_cells_are_checked_and_grus_listed_as_skipped(lstm_ref, tmp_path):  # noqa: F811
    """An LSTMCell state_dict and a script stepping one are checked (the
    torch.nn.LSTMCell kind); a GRU-only file is listed as skipped, exit 2."""
    (tmp_path / "cells.py").write_text(CELLS)  # torch.jit.script reads the source: a file, not -c
    subprocess.run(
        [str(ROOT / ".venv-torch" / "bin" / "python"), str(tmp_path / "cells.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in ("cell.pt", "stepper.pt"):
        code, out, err = lstm_ref("check", name, "--json", "r.json")
        assert code == 0 and "Traceback" not in err, out + err
        rows = json.loads((tmp_path / "r.json").read_text())["layers"]
        assert rows and all(r["status"] == "pass" for r in rows), rows
        assert "LSTMCell (PyTorch)" in out or "torch.nn.LSTMCell" in out, out
    code, out, err = lstm_ref("check", "gru.pt")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, out + err
    assert "gru.pt: skipped " in out and "a GRU" in out, out
    assert "nothing to check: no LSTM the reference reproduces; found and skipped" in err, err
