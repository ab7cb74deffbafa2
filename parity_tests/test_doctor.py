"""`lstm-ref doctor`, how an oracle's interpreter is found, and what a
worker that dies at start says: what is missing and how to get it."""

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from lstm_ref.harness import platforms
from lstm_ref.harness.commands import main as cli
from lstm_ref.harness.oracles import client, provenance
from lstm_ref.harness.oracles.client import ORACLES, Oracle, OracleError, OracleSpec, OracleUnavailable
from lstm_ref.harness.records import RECORDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch):
    for spec in ORACLES.values():
        monkeypatch.delenv(spec.env_var, raising=False)


def test_every_oracle_is_listed_with_its_kinds(capsys):
    code = cli(["doctor"])
    out = capsys.readouterr().out
    for record in RECORDS:
        assert re.search(rf"^\S+ +{record.oracle.name} +.*{re.escape(record.kind)}", out, re.M), record.kind
    assert re.search(r"^\S+ +litert +tflite \(of keras\.layers\.LSTM", out, re.M)
    assert "platform profile " in out.splitlines()[0]
    runs = [spec.locate().problem is None for spec in ORACLES.values()]
    assert code == (0 if all(runs) else 1)
    assert out.splitlines()[-1].startswith(f"{sum(runs)}/{len(ORACLES)} oracles can run")


@pytest.mark.live  # needs TF here: the keras3 oracle must run in this interpreter
def test_json_and_kind_filter(capsys):
    code = cli(["doctor", "--json", "--kind", "keras3", "--kind", "tf.compat.v1.nn.rnn_cell.LSTMCell"])
    result = json.loads(capsys.readouterr().out)
    assert [r["oracle"] for r in result["oracles"]] == ["keras3", "tf1"]
    keras3 = result["oracles"][0]
    assert keras3["kinds"] == ["keras.layers.LSTM"] and keras3["interpreter"] == sys.executable
    assert keras3["found_by"] == "current" and keras3["runs"] and code == 0
    assert keras3["versions"]["tensorflow"] and keras3["measured"] == provenance.MEASURED["keras3"]
    assert result["platform_profile"] and result["ok"] is True


@pytest.mark.live  # needs TF here: the keras3 oracle must run in this interpreter
def test_json_to_a_file(tmp_path, capsys):
    assert cli(["doctor", "--kind", "keras3", "--json", str(tmp_path / "d.json")]) == 0
    assert "keras3" in capsys.readouterr().out
    assert json.loads((tmp_path / "d.json").read_text())["oracles"][0]["oracle"] == "keras3"


def test_an_unknown_kind_is_a_usage_error(capsys):
    assert cli(["doctor", "--kind", "gru"]) == 2
    assert "--kind gru: no such kind" in capsys.readouterr().err


def test_a_missing_interpreter_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setenv("LSTM_PARITY_TORCH_PYTHON", "/nonexistent/python")
    assert cli(["doctor", "--kind", "torch"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^MISSING +torch +torch\.nn\.LSTM\b", out, re.M)
    assert (
        "oracle 'torch': interpreter /nonexistent/python (from $LSTM_PARITY_TORCH_PYTHON) not found; "
        "pip install 'lstm-parity[torch]' (or torch), or run `make venv-torch` in a clone"
    ) in out
    assert out.splitlines()[-1] == "0/1 oracles can run; torch cannot (see above)"
    # The same message from the command that needs it (exit 2: an environment to install, not a crash).
    with pytest.raises(OracleUnavailable, match=r"from \$LSTM_PARITY_TORCH_PYTHON\) not found; pip install"):
        Oracle(ORACLES["torch"]).hello()


def test_an_interpreter_without_the_framework_says_which_module(monkeypatch, capsys):
    """$LSTM_PARITY_LITERT_PYTHON names a Python that has no ai_edge_litert
    (this one): doctor says so without starting a worker."""
    if ORACLES["litert"].missing_here() == []:
        pytest.skip("this interpreter has ai_edge_litert")
    monkeypatch.setenv("LSTM_PARITY_LITERT_PYTHON", sys.executable)
    assert cli(["doctor", "--kind", "tflite"]) == 1
    out = capsys.readouterr().out
    assert (
        f"oracle 'litert': {sys.executable} (from $LSTM_PARITY_LITERT_PYTHON) has no ai_edge_litert: "
        "pip install 'lstm-parity[tflite]' (or ai-edge-litert)" in out
    )


def test_a_framework_missing_here_is_named_with_its_pip_install(monkeypatch):
    """No override, no framework in this interpreter, no repo venv: the
    message names the module and the extra, and no worker is started."""
    monkeypatch.setattr(client, "CLONE", False)
    spec = OracleSpec("lonely", "x", ".venv-lonely/bin/python", {}, ("no_such_framework_here",), "torch", "torch")
    where = spec.locate()
    assert where.how == "missing"
    assert where.problem == (
        "oracle 'lonely' needs no_such_framework_here: pip install 'lstm-parity[torch]' "
        "(or torch), or run `make venv-lonely` in a clone of lstm-parity"
    )
    # The framework importable here: this interpreter, before any venv.
    here = OracleSpec("here", "x", ".venv-here/bin/python", {}, ("json",), "torch", "torch")
    assert here.locate() == client.Interpreter(sys.executable, "current")
    # An explicit override wins over both.
    monkeypatch.setenv("LSTM_PARITY_HERE_PYTHON", "/bin/sh")
    assert here.locate() == client.Interpreter("/bin/sh", "$LSTM_PARITY_HERE_PYTHON")


def test_the_clones_venv_is_taken_when_the_framework_is_not_here(tmp_path):
    venv = ORACLES["tfa"]
    if not (ROOT / venv.python).exists() or not venv.missing_here():
        pytest.skip("needs .venv-tfa, and this interpreter without tensorflow_addons")
    assert venv.locate() == client.Interpreter(str(ROOT / venv.python), "venv")


@pytest.mark.live  # needs TF here: the keras3 oracle must run in this interpreter
def test_a_version_that_differs_from_the_measured_one_is_noted(monkeypatch, capsys):
    monkeypatch.setitem(provenance.MEASURED, "keras3", {"tensorflow": "2.99.0", "keras": "3.15.1"})
    assert cli(["doctor", "--kind", "keras3"]) == 0  # it runs; the note is a warning
    out = capsys.readouterr().out
    assert re.search(
        r"note: tensorflow 2\.\d+\.\d+\S* here; the goldens and tolerances were measured on 2\.99\.0", out
    ), out


def test_a_local_build_label_is_the_same_release():
    assert not provenance.differs("2.13.0+cpu", "2.13.0")
    assert provenance.differs("2.20.0", "2.21.0")


def test_the_measured_versions_are_the_goldens_and_the_pins():
    """provenance.MEASURED (what doctor compares with) is the committed
    goldens' provenance, and the pinned `oracle-*` extras' versions."""
    by_kind = {record.kind: record.oracle.name for record in RECORDS}
    for kind, versions in platforms.golden_versions().items():
        assert provenance.MEASURED[by_kind[kind]] == versions, kind
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    venv_of = {
        "oracle": ("keras3", "tf1", "tf_keras", "contrib"),
        "oracle-tfa": ("tfa",),
        "oracle-torch": ("torch",),
        "oracle-onnx": ("onnxruntime",),
        "oracle-litert": ("litert",),
    }
    for extra, names in venv_of.items():
        for requirement in extras[extra]:
            dist, _, pin = requirement.partition("==")
            module = dist.replace("-", "_").replace("tensorflow_cpu", "tensorflow")
            for name in names:
                if pin and module in provenance.MEASURED[name]:
                    assert provenance.release(provenance.MEASURED[name][module]) == pin, (name, requirement)


def _late_writer(tmp_path, line, stderr_first=False):
    """An "interpreter" that writes ``line`` to stderr and exits 1.  By
    default it closes its stdout first: the client sees the end of stdout
    before the stderr.  ``stderr_first``: it writes and closes its stderr,
    then waits before it exits: the client sees the end of stderr long
    before the end of stdout (once, its empty reads pushed the traceback out
    of the tail the client kept)."""
    python = tmp_path / "python"
    say = f"echo 'Traceback (most recent call last):' >&2\necho \"{line}\" >&2\n"
    body = f"{say}exec 2>&-\nsleep 0.3\n" if stderr_first else f"exec 1>&-\nsleep 0.3\n{say}"
    python.write_text(f"#!/bin/sh\n{body}exit 1\n")
    python.chmod(0o755)
    return python


@pytest.mark.parametrize("stderr_first", [False, True], ids=["stdout_closes_first", "stderr_closes_first"])
def test_a_worker_that_dies_at_import_says_why(tmp_path, monkeypatch, stderr_first):
    """The worker's stderr is read to its end before the error is built: the
    reason is in the message's first line, the one the command line prints."""
    python = _late_writer(tmp_path, "RuntimeError: no AVX here", stderr_first)
    monkeypatch.setenv("LSTM_PARITY_BROKEN_PYTHON", str(python))
    with pytest.raises(OracleError) as caught:
        Oracle(OracleSpec("broken", "any", "sys.executable"), timeout=30).hello()
    first = str(caught.value).splitlines()[0]
    assert first == "oracle 'broken' exited (code 1): RuntimeError: no AVX here; stderr tail:"


def test_a_worker_without_its_framework_is_unavailable_and_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    """Its ModuleNotFoundError, written after its stdout closed, becomes
    OracleUnavailable (exit 2) naming the module and the pip install."""
    python = _late_writer(tmp_path, "ModuleNotFoundError: No module named 'tf_keras'")
    monkeypatch.setenv("LSTM_PARITY_TF_KERAS_PYTHON", str(python))
    with pytest.raises(OracleUnavailable) as caught:
        Oracle(ORACLES["tf_keras"], timeout=30).hello()
    assert str(caught.value) == (
        f"oracle 'tf_keras': its interpreter {python} ($LSTM_PARITY_TF_KERAS_PYTHON) has no module 'tf_keras': "
        "pip install 'lstm-parity[tensorflow]' (or tensorflow tf_keras), or run `make venv` in a clone of lstm-parity"
    )


def test_a_worker_missing_a_framework_module_is_unavailable(monkeypatch):
    """The tf_keras worker in an interpreter that has no TensorFlow (the
    clone's ONNX venv, named by the override): OracleUnavailable naming the
    module, the interpreter and how to get it (exit 2), not an empty stderr
    tail (exit 3)."""
    python = ROOT / ".venv-onnx" / "bin" / "python"
    if not python.exists():
        pytest.skip("needs .venv-onnx (make venv-onnx): an interpreter without TensorFlow")
    monkeypatch.setenv("LSTM_PARITY_TF_KERAS_PYTHON", str(python))
    oracle = Oracle(ORACLES["tf_keras"], timeout=60)
    with pytest.raises(OracleUnavailable) as caught:
        oracle.hello()
    assert str(caught.value) == (
        f"oracle 'tf_keras': its interpreter {python} ($LSTM_PARITY_TF_KERAS_PYTHON) has no module 'tensorflow': "
        "pip install 'lstm-parity[tensorflow]' (or tensorflow tf_keras), or run `make venv` in a clone of lstm-parity"
    )
