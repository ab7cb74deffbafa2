"""``lstm-ref check model.onnx | model.pt``, ``--source``, and ``lstm-ref convert``, end to end.

The files are real: torch writes them (``saved_artifacts.py``, one
``.venv-torch`` subprocess per test run, shared by xdist processes), and
Keras 3 models come from ``saved_models.py`` (the ``keras3_models`` fixture
the check tests build anyway).  Commands run in this process
(``cli.main``, as ``test_cli.py``) with the session's workers, so that no
test pays a framework's start-up twice; one runs as a real process.
"""

import fcntl
import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from lstm_ref.harness import check
from lstm_ref.harness.model_format import model_format

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, oracle_pool):
    """``{file name: path}`` of the files ``saved_artifacts.py`` writes, and its manifest."""
    from parity_tests import saved_artifacts

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    directory = root / "torch_artifacts"
    with open(root / "torch_artifacts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "artifacts.json").exists():
            directory.mkdir(exist_ok=True)
            saved_artifacts.build(directory)
    manifest = json.loads((directory / "artifacts.json").read_text())
    return {name: Path(p) for name, p in manifest["files"].items()}, manifest


class _Shared:
    """The session's pool, which the command must not close."""

    def __init__(self, pool):
        self.pool = pool

    def get(self, name):
        return self.pool.get(name)

    def for_kind(self, kind):
        return self.pool.for_kind(kind)

    def close(self):
        pass


def _in_process(oracle_pool, monkeypatch, capsys, tmp_path):
    from lstm_ref.harness.cli import main

    monkeypatch.setattr(check, "open_pool", lambda: _Shared(oracle_pool))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args, cwd=tmp_path):
        monkeypatch.chdir(cwd)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def lstm_ref(oracle_pool, monkeypatch, capsys, tmp_path):
    """``lstm_ref(*args)`` -> ``(exit code, stdout, stderr)``, run from
    ``tmp_path`` (give the shared files with :func:`rel`)."""
    return _in_process(oracle_pool, monkeypatch, capsys, tmp_path)


@pytest.fixture
def check_cli(oracle_pool, monkeypatch, capsys, tmp_path):
    """``check_cli(*args, cwd=...)``: ``lstm-ref check`` in-process on the
    session's workers (no worker start-up per call), as a
    ``CompletedProcess``-like ``(returncode, stdout, stderr)``.  A test that
    needs a real process (a custom layer imported into the worker) runs one."""
    run = _in_process(oracle_pool, monkeypatch, capsys, tmp_path)

    def check_command(*args, cwd):
        code, out, err = run("check", *args, cwd=cwd)
        return types.SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return check_command


def relative_to(directory):
    """The shared files' paths as a user in ``directory`` types them."""

    def rel(path):
        return os.path.relpath(path, directory)

    return rel


def rows(path):
    return json.loads(Path(path).read_text())["layers"]


def by_layer(path, model):
    return {r["layer"]: r for r in rows(path) if Path(r["model"]).name == model}


def test_every_artifact_passes_on_its_own_weights(artifacts, lstm_ref, tmp_path):
    files, _ = artifacts
    names = [
        "state_dict.pt",
        "scripted.pt",
        "traced.pt",
        "export_legacy.onnx",
        "export_dynamo.onnx",
        "mixed_nodes.onnx",
    ]
    rel = relative_to(tmp_path)
    code, out, err = lstm_ref("check", *(rel(files[n]) for n in names), "--json", "r.json")
    assert code == 0, out[-3000:] + err[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["passed"] is True
    checked = [r for r in result["layers"] if r["status"] != "skipped"]
    assert all(r["status"] == "pass" and r["ratio"] <= 1 for r in checked)
    layers = {}
    for r in result["layers"]:
        layers.setdefault(Path(r["model"]).name, []).append(r["layer"])
    assert layers["state_dict.pt"] == [
        "enc",
        "enc (packed lengths, h0, c0)",
        "dec",
        "dec (packed lengths, h0, c0)",
        "gru",
    ]
    assert layers["scripted.pt"] == ["lstm", "lstm (packed lengths, h0, c0)"]
    assert layers["traced.pt"] == ["lstm"]  # traced as forward(x) -> y: no state, no PackedSequence, only h
    assert layers["export_legacy.onnx"] == [
        "/lstm/LSTM",
        "/lstm/LSTM (initial_h, initial_c)",
        "/lstm/LSTM_1",
        "/lstm/LSTM_1 (initial_h, initial_c)",
    ]
    assert len(layers["export_dynamo.onnx"]) == 4
    assert layers["mixed_nodes.onnx"] == [
        "with_states",
        "with_states (sequence_lens, initial_h, initial_c)",
        "w_is_an_input",
    ]
    sd = by_layer(tmp_path / "r.json", "state_dict.pt")
    assert "GRU" in sd["gru"]["reason"] and sd["gru"]["status"] == "skipped"
    assert sd["enc"]["kind"] == "torch.nn.LSTM" and "torch.nn.LSTM built from" in sd["enc"]["source"]
    assert sd["enc (packed lengths, h0, c0)"]["masked"] and sd["enc (packed lengths, h0, c0)"]["initial_state"]
    traced = by_layer(tmp_path / "r.json", "traced.pt")["lstm"]
    assert traced["c_max_abs"] is None and "traced" in traced["source"]
    mixed = by_layer(tmp_path / "r.json", "mixed_nodes.onnx")
    assert "computed at run time" in mixed["w_is_an_input"]["reason"]
    assert mixed["with_states (sequence_lens, initial_h, initial_c)"]["masked"]
    dynamo = by_layer(tmp_path / "r.json", "export_dynamo.onnx")
    first = next(iter(dynamo.values()))
    assert "constant initial_h, initial_c kept as stored" in first["notes"]  # dynamo stores zeros of batch 2


@pytest.mark.parametrize("export", ["export_legacy.onnx", "export_dynamo.onnx"])
def test_an_export_matches_its_source_step_by_step(artifacts, lstm_ref, export, tmp_path):
    """torch.onnx.export writes one bidirectional node per layer: each is
    paired with that layer of the source, its weights equal the converted
    source's exactly, and both frameworks agree on the same input."""
    files, _ = artifacts
    rel = relative_to(tmp_path)
    code, out, err = lstm_ref(
        "check", rel(files[export]), "--source", rel(files["export_source.pt"]), "--json", "r.json", "--batch", "3"
    )
    assert code == 0, out[-3000:] + err[-3000:]
    pairs = [r for r in rows(tmp_path / "r.json") if r["pair"]]
    assert [r["pair"]["source"]["layer"] for r in pairs] == ["lstm layer 0", "lstm layer 1"]
    assert all(r["pair"]["artifact"]["kind"] == "onnx.LSTM" and r["status"] == "pass" for r in pairs)
    assert all(
        set(r["weights_max_abs"]) == {"B", "R", "W"} and max(r["weights_max_abs"].values()) == 0.0 for r in pairs
    )
    assert all(r["source"] == "PyTorch vs ONNX Runtime" for r in pairs)
    assert "lstm layer 0 -> " in out and "weights |d|" in out


def test_an_export_with_permuted_gates_fails_and_names_the_node(artifacts, lstm_ref, tmp_path):
    """On its own weights the broken node passes (the reference reads the same
    permuted W); against its source, its weights and its outputs differ."""
    files, _ = artifacts
    rel = relative_to(tmp_path)
    code, out, err = lstm_ref(
        "check", rel(files["broken_gates.onnx"]), "--source", rel(files["export_source.pt"]), "--json", "r.json"
    )
    assert code == 1, out[-3000:] + err[-3000:]
    result = by_layer(tmp_path / "r.json", "broken_gates.onnx")
    assert result["/lstm/LSTM"]["status"] == "pass"
    bad = result["lstm layer 0 -> /lstm/LSTM"]
    assert bad["status"] == "fail" and bad["ratio"] > 100
    assert bad["weights_max_abs"]["W"] > 0.1 and bad["weights_max_abs"]["R"] == 0.0
    assert "weights differ from the converted source's (worst W" in bad["reason"]
    assert result["lstm layer 1 -> /lstm/LSTM_1"]["status"] == "pass"
    assert "over tolerance: lstm layer 0 -> /lstm/LSTM" in out.splitlines()[-1]


def test_a_keras_model_converted_and_checked_against_it(keras3_models, tmp_path, lstm_ref):
    """``convert`` writes the Keras model's LSTM as a state_dict and as an
    ONNX node; ``check --source`` runs TF on what the layer received in the
    model run (an Embedding mask) and the artifact on the same input."""
    model = keras3_models["embed_lstm.keras"]
    for target, out_name in (("torch", "e.pt"), ("onnx", "e.onnx")):
        code, out, err = lstm_ref("convert", model, "--to", target, "-o", out_name)
        assert code == 0, err[-2000:]
        assert f"lstm-ref check {out_name} --source" in out
        code, out, err = lstm_ref("check", out_name, "--source", model, "--json", "r.json")
        assert code == 0, out[-3000:] + err[-3000:]
        pair = by_layer(tmp_path / "r.json", out_name)["lstm -> lstm"]
        assert pair["status"] == "pass" and pair["masked"] and max(pair["weights_max_abs"].values()) == 0.0
        assert pair["source"].startswith("TF (Keras 3) vs ")
        assert "repeats the last output" in pair["notes"]  # Keras' masked steps, compared as zeros
    code, out, err = lstm_ref("convert", keras3_models["multi_input.keras"], "--to", "torch", "-o", "m.pt")
    assert code == 2 and "lstm_b: cannot convert a reverse-only LSTM" in err and not (tmp_path / "m.pt").exists()


BAD = [
    (
        "pickled_module",
        ["check", "pickled.pt"],
        r"pickled Python object .*torch.nn.modules.rnn.LSTM.*weights_only=True"
        r".*state_dict.*TorchScript",
    ),
    (
        "every_node_refused",
        ["check", "layout1.onnx"],
        r"nothing to check: every LSTM was skipped \(batch_major: "
        r"onnxruntime .* refuses the node: Batchwise recurrent operations \(layout == 1\)",
    ),
    ("text_as_onnx", ["check", "notes.onnx"], r"notes.onnx is a text file"),
    ("bytes_as_onnx", ["check", "junk.onnx"], r"junk.onnx is not an ONNX model"),
    ("input_with_artifact", ["check", "traced.pt", "--input", "x.npy"], r"--input has no effect on an .onnx/.pt"),
    ("batch_size_with_artifact", ["check", "traced.pt", "--batch-size", "8"], r"--batch-size has no effect"),
    (
        "source_with_two_models",
        ["check", "traced.pt", "scripted.pt", "--source", "export_source.pt"],
        r"--source compares ONE .onnx/.pt/.keras",
    ),
    (
        "source_unmatched",
        ["check", "export_legacy.onnx", "--source", "state_dict.pt"],
        r"has 3 LSTMs \(layers\) \(enc layer 0, enc layer 1, dec\).*has 2.*cannot be matched in order",
    ),
    ("convert_to_same", ["convert", "traced.pt", "--to", "torch", "-o", "t2.pt"], r"already a PyTorch file"),
    ("convert_suffix", ["convert", "traced.pt", "--to", "onnx", "-o", "t.pt"], r"--to onnx writes a .onnx file"),
    (
        "convert_projection",
        ["convert", "state_dict.pt", "--to", "onnx", "-o", "sd.onnx"],
        r"enc layer 0: cannot convert a projection to onnx.LSTM",
    ),
]


@pytest.mark.parametrize("args, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2_with_one_line(artifacts, lstm_ref, args, pattern, tmp_path):
    import re

    import numpy as np

    files, _ = artifacts
    for name, path in files.items():  # as the user has them: in the folder they stand in
        os.symlink(path, tmp_path / name)
    (tmp_path / "notes.onnx").write_text("not a model\n")
    (tmp_path / "junk.onnx").write_bytes(bytes(range(200, 256)) * 4)
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 4), "float32"))
    code, out, err = lstm_ref(*args)
    assert code == 2, (code, out[-1500:], err[-1500:])
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(pattern, err), err


def test_the_legacy_exporter_refuses_a_projection(artifacts):
    """What does not work, recorded when the files are built: torch 2.13's
    legacy exporter refuses an LSTM with proj_size (no ONNX LSTM has a
    projection; convert --to onnx refuses it too, see BAD)."""
    _, manifest = artifacts
    assert "LSTMs with projections" in manifest["refusals"]["legacy export, proj_size=2"]


def test_the_same_from_a_real_process(artifacts):
    files, _ = artifacts
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_ref", "check", "export_legacy.onnx", "--source", "export_source.pt"],
        cwd=files["export_legacy.onnx"].parent,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "PASS: 6/6 within tolerance" in proc.stdout


def test_model_format_tells_torch_and_onnx_files(tmp_path):
    with zipfile.ZipFile(tmp_path / "sd.pt", "w") as zf:
        zf.writestr("sd/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("sd/version", "3\n")
    with zipfile.ZipFile(tmp_path / "ts.pt", "w") as zf:
        zf.writestr("ts/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("ts/code/__torch__.py", "")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x08\x12\x07pytorch")
    (tmp_path / "legacy.pt").write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.")
    assert model_format(tmp_path / "sd.pt") == ("torch", "PyTorch archive (torch.save)")
    assert model_format(tmp_path / "ts.pt") == ("torch", "TorchScript archive (torch.jit.save)")
    assert model_format(tmp_path / "m.onnx") == ("onnxruntime", "ONNX model")
    assert model_format(tmp_path / "legacy.pt")[0] == "torch"
