"""The command line: conventions (exit codes, short errors, --version, help)
and a bad-input table, run from another directory with relative paths.

Every row must exit 2 with one short line on stderr naming the culprit and
no traceback.  The rows run ``lstm_ref.harness.cli.main`` in this process
(they fail before any framework starts); a few run as a real ``lstm-ref``
subprocess too, to prove the same from the outside.  Faults only a
framework can find (inputs that do not fit a model) are in
``test_check_command.py`` and ``test_model_walk.py``.
"""

import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import lstm_ref

pytestmark = pytest.mark.filterwarnings("ignore")


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "lstm_ref", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Non-model files of every sort a user may pass by mistake."""
    d = tmp_path_factory.mktemp("files")
    np.save(d / "x.npy", np.zeros((2, 5, 4), "float32"))
    np.save(d / "x2d.npy", np.zeros((5, 4), "float32"))
    np.save(d / "ints.npy", np.zeros((2, 5, 4), "int32"))
    np.savez(d / "inputs.npz", enc_in=np.zeros((2, 5, 4), "float32"))
    np.save(d / "empty.npy", np.zeros((0, 5, 4), "float32"))
    (d / "notes.keras").write_text("not a model\n")
    (d / "notes.npy").write_text("not an array\n")
    with zipfile.ZipFile(d / "whole.keras", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"\0" * 4096)
    data = (d / "whole.keras").read_bytes()
    (d / "truncated.keras").write_bytes(data[: len(data) // 2])
    (d / "empty_dir").mkdir()
    return d


CKPT = ["--scope", "rnn/lstm_cell", "--kind", "tf.compat.v1.nn.rnn_cell.LSTMCell"]

# (id, arguments, stderr pattern); paths are relative to the `files` directory
BAD = [
    ("no_arguments", [], r"required: COMMAND|the following arguments are required"),
    ("unknown_command", ["chek", "m.keras"], r"invalid choice: 'chek'"),
    ("report_out_is_a_file", ["report", "--no-live", "--out", "x.npy"], r"--out x.npy: is a file; give a directory"),
    ("report_out_unwritable", ["report", "--no-live", "--out", "x.npy/reports"], r"--out x.npy/reports: cannot create"),
    ("unknown_platform", ["check", "m.keras", "--platform", "sparc"], r"--platform: unknown platform profile 'sparc'"),
    ("check_without_model", ["check"], r"the following arguments are required: model"),
    ("missing_model", ["check", "models/forecast.keras"], r"models/forecast.keras.*(no such file|not found)"),
    ("text_file_as_keras", ["check", "notes.keras"], r"notes.keras"),
    ("truncated_keras", ["check", "truncated.keras"], r"truncated.keras"),
    ("npy_as_model", ["check", "x.npy"], r"x.npy"),
    ("directory_not_a_model", ["check", "empty_dir"], r"empty_dir"),
    ("batch_zero", ["check", "m.keras", "--batch", "0"], r"--batch: must be at least 1, got 0"),
    ("batch_not_a_number", ["check", "m.keras", "--batch", "two"], r"--batch: expected a whole number, got 'two'"),
    ("time_zero", ["check", "m.keras", "--time", "0"], r"--time: must be at least 1"),
    ("seed_negative", ["check", "m.keras", "--seed", "-1"], r"--seed: must be 0 or more"),
    ("batch_size_zero", ["check", "m.keras", "--batch-size", "0"], r"--batch-size: must be at least 1"),
    ("kind_without_scope", ["check", "x.npy", "--kind", "keras.layers.LSTM"], r"--kind and --config.*need --scope"),
    ("config_without_scope", ["check", "x.npy", "--config", "{}"], r"need --scope"),
    ("scope_without_kind", ["check", "ckpt", "--scope", "rnn/lstm_cell"], r"needs --scope, --kind and --config"),
    (
        "unknown_kind",
        ["check", "ckpt", "--scope", "s", "--kind", "tf.nn.LSTMCell", "--config", "{}"],
        r"unknown --kind 'tf.nn.LSTMCell'; expected one of \[.*keras.layers.LSTM",
    ),
    ("config_not_json", ["check", "ckpt", *CKPT, "--config", "{num_units: 8}"], r"--config is not valid JSON"),
    ("config_not_object", ["check", "ckpt", *CKPT, "--config", "[8]"], r"--config must be a JSON object"),
    (
        "config_unknown_key",
        ["check", "ckpt", *CKPT, "--config", '{"num_units": 8, "units": 8}', "--input", "x.npy"],
        r"unknown config key\(s\) \['units'\]",
    ),
    ("config_missing_units", ["check", "ckpt", *CKPT, "--config", "{}"], r"num_units'\] is required"),
    ("checkpoint_without_input", ["check", "ckpt", *CKPT, "--config", '{"num_units": 8}'], r"exactly one --input"),
    (
        "checkpoint_input_2d",
        ["check", "ckpt", *CKPT, "--config", '{"num_units": 8}', "--input", "x2d.npy"],
        r"--input x2d.npy: expected a float array \(batch, time, features\), got float32 of shape \(5, 4\)",
    ),
    (
        "checkpoint_input_ints",
        ["check", "ckpt", *CKPT, "--config", '{"num_units": 8}', "--input", "ints.npy"],
        r"expected a float array",
    ),
    (
        "checkpoint_missing",
        ["check", "ckpt", *CKPT, "--config", '{"num_units": 8}', "--input", "x.npy"],
        r"ckpt: no such checkpoint",
    ),
    ("input_missing_file", ["check", "m.keras", "--input", "nope.npy"], r"--input nope.npy: no such file"),
    ("input_not_an_array", ["check", "m.keras", "--input", "notes.npy"], r"--input notes.npy: cannot be read"),
    ("input_given_twice", ["check", "m.keras", "--input", "a=x.npy", "--input", "a=x.npy"], r"'a' is given twice"),
    ("npz_with_a_name", ["check", "m.keras", "--input", "a=inputs.npz"], r"give it without NAME="),
    (
        "unnamed_among_several",
        ["check", "m.keras", "--input", "x.npy", "--input", "b=x.npy"],
        r"give every input as NAME=FILE",
    ),
    (
        "input_with_no_rows",
        ["check", "m.keras", "--input", "empty.npy"],
        r"shape \(0, 5, 4\); expected at least one row",
    ),
    (
        "batch_with_input",
        ["check", "m.keras", "--input", "x.npy", "--batch", "4", "--seed", "1"],
        r"--batch, --seed have no effect with --input",
    ),
    (
        "seed_with_scope",
        ["check", "ckpt", *CKPT, "--config", '{"num_units": 8}', "--input", "x.npy", "--seed", "3"],
        r"--seed has no effect on a checkpoint \(--scope\)",
    ),
    (
        "json_into_a_missing_folder",
        ["check", "m.keras", "--json", "out/result.json"],
        r"--json out/result.json: cannot "
        r"write there \(no writable directory",
    ),
    ("json_is_a_directory", ["check", "m.keras", "--json", "empty_dir"], r"--json empty_dir: is a directory"),
]


def run_main(args, cwd, monkeypatch, capsys):
    from lstm_ref.harness.cli import main

    monkeypatch.chdir(cwd)
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_a_short_message(files, args, pattern, monkeypatch, capsys):
    code, out, err = run_main(args, files, monkeypatch, capsys)
    assert code == 2, (code, out[-500:], err[-1500:])
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


@pytest.mark.parametrize("row", ["truncated_keras", "batch_zero", "config_not_json", "input_missing_file"])
def test_the_same_from_a_real_process(files, row):
    args, pattern = next(b[1:] for b in BAD if b[0] == row)
    proc = cli(*args, cwd=files)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and re.search(pattern, proc.stderr), proc.stderr


def test_version_and_help(tmp_path):
    proc = cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"lstm-ref {lstm_ref.__version__}"
    proc = cli("check", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for text in (
        "exit codes:",
        "0 every checked layer",
        "1 at least one is not",
        "2 usage or input error",
        "--batch-size",
        "(default: 256)",
        "--json PATH",
        "relative paths",
    ):
        assert text.lower() in " ".join(proc.stdout.lower().split()), text


def test_debug_adds_the_traceback_and_keeps_the_exit_code(files, monkeypatch, capsys):
    """--debug shows the traceback; a usage error still exits 2 and a worker
    failure 3 (never 1, the parity-failure code CI reads)."""
    from lstm_ref.harness import check as check_lib
    from lstm_ref.harness.oracles.client import OracleError

    code, out, err = run_main(["check", "truncated.keras", "--debug"], files, monkeypatch, capsys)
    assert code == 2 and "Traceback" in err and "truncated.keras" in err.strip().splitlines()[-1], err

    def crash():
        raise OracleError(
            "oracle 'keras3' failed on 'model_lstms':\nTraceback (most recent call last):\n"
            '  File "w.py", line 1, in run\nValueError: the worker broke\n'
        )

    with zipfile.ZipFile(files / "k3.keras", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", '{"keras_version": "3.15.1"}')
    monkeypatch.setattr(check_lib, "open_pool", crash)
    code, out, err = run_main(["check", "k3.keras", "--debug"], files, monkeypatch, capsys)
    assert code == 3 and "Traceback" in err, err
    code, out, err = run_main(["check", "k3.keras"], files, monkeypatch, capsys)
    assert code == 3 and "Traceback" not in err, err
    assert "a framework worker failed: oracle 'keras3' failed on 'model_lstms': ValueError: the worker broke" in err


def test_a_bug_of_lstm_ref_is_exit_3_not_a_parity_failure(files, monkeypatch, capsys):
    """An unexpected exception inside lstm-ref is one line and exit 3 (never
    1, which CI reads as a parity failure); --debug adds the traceback."""
    from lstm_ref.harness import check as check_lib

    def bug():
        raise KeyError("a bug")

    with zipfile.ZipFile(files / "k3.keras", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", '{"keras_version": "3.15.1"}')
    monkeypatch.setattr(check_lib, "open_pool", bug)
    code, out, err = run_main(["check", "k3.keras"], files, monkeypatch, capsys)
    assert code == 3 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "internal error: KeyError" in err and "a bug in lstm-ref" in err, err
    code, out, err = run_main(["check", "k3.keras", "--debug"], files, monkeypatch, capsys)
    assert code == 3 and "Traceback" in err, err


def test_help_states_each_default_once(tmp_path):
    from lstm_ref.harness.commands import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "check" in a.choices)
    for name, command in sub.choices.items():
        text = " ".join(command.format_help().split())
        assert not re.search(r"\(default: [^)]*\) \(default:", text), (name, text)
    sweep = " ".join(sub.choices["tflite-sweep"].format_help().split())
    assert "rows of drawn input (default: 1)" in sweep and "seed of the drawn inputs (default: 0)" in sweep
