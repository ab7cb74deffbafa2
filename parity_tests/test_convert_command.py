"""``lstm-ref convert`` of whole Keras models, ONNX exports and PyTorch
files, each conversion proven by parity: the written file is run in its own
framework (``check OUT --source MODEL``) and compared step by step with the
source, with the one comparison and tolerance table.

The Keras models are built here by one small Keras 3 script (the README's
tagger and a few variants), not by ``saved_models.py``: a few seconds
instead of every model of the check tests.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .test_check_artifacts import artifacts, lstm_ref, relative_to  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]

MODELS = textwrap.dedent("""
    import sys
    import keras
    from keras import layers as L
    keras.utils.set_random_seed(0)
    OUT = sys.argv[1]
    B = {"bias_initializer": "random_normal"}

    # the README's tagger: Embedding -> Bidirectional(LSTM) -> LSTM -> Dense
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(100, 8, mask_zero=True, name="embed")(tok)
    y = L.Bidirectional(L.LSTM(16, return_sequences=True, name="lstm", **B), name="bi")(e)
    y = L.LSTM(8, name="summary", **B)(y)
    keras.Model(tok, L.Dense(5, name="dense")(y)).save(OUT + "/tagger.keras")

    # merge modes other than concat, unmasked
    for mode in ("sum", "mul", "ave"):
        x = keras.Input((None, 3), name="frames")
        y = L.Bidirectional(L.LSTM(4, return_sequences=True, name="lstm", **B), merge_mode=mode, name="bi")(x)
        y = L.LSTM(3, return_sequences=True, name="top", **B)(y)
        keras.Model(x, y).save(OUT + f"/bi_{mode}.keras")

    # not a chain of LSTMs: a Dense between them
    x = keras.Input((None, 3), name="frames")
    y = L.LSTM(4, return_sequences=True, name="first", **B)(x)
    y = L.Dense(3, name="between")(y)
    keras.Model(x, L.LSTM(2, name="second", **B)(y)).save(OUT + "/not_a_chain.keras")
""")


@pytest.fixture(scope="session")
def keras_files(tmp_path_factory, tensorflow_process):
    directory = tmp_path_factory.mktemp("convert_models")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", MODELS, str(directory)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {p.name: p for p in directory.iterdir()}


def _pairs(path):
    return [r for r in json.loads(Path(path).read_text())["layers"] if r.get("pair")]


def test_the_readme_tagger_converts_to_torch_with_one_bidirectional_module(keras_files, lstm_ref, tmp_path):  # noqa: F811
    """Keras' Bidirectional is one torch.nn.LSTM(bidirectional=True) (its
    directions as _l0 and _l0_reverse), and the state_dict, run by torch
    on what each layer received in the model run (the Embedding's mask as
    lengths), agrees with TF step by step."""
    model = keras_files["tagger.keras"]
    code, out, err = lstm_ref("convert", model, "--to", "torch", "-o", "tagger.pt")
    assert code == 0, out + err
    assert "bi -> bi" in out and "summary -> summary" in out
    code, out, err = lstm_ref("check", "tagger.pt", "--source", model, "--json", "r.json")
    assert code == 0, out[-3000:] + err[-3000:]
    pairs = {r["layer"]: r for r in _pairs(tmp_path / "r.json")}
    assert set(pairs) == {"bi -> bi", "summary -> summary"}
    bi = pairs["bi -> bi"]
    assert bi["status"] == "pass" and bi["masked"] and bi["source"] == "TF (Keras 3) vs PyTorch"
    assert max(bi["weights_max_abs"].values()) == 0.0
    assert {"weight_ih_l0", "weight_ih_l0_reverse"} <= set(bi["weights_max_abs"])
    assert all(r["ratio"] <= 1 for r in pairs.values())
    rows = {r["layer"]: r for r in json.loads((tmp_path / "r.json").read_text())["layers"]}
    assert rows["bi"]["status"] == "pass"  # the module on its own weights, against the reference
    # diagnose pairs as check does: the top LSTM is diagnosed, the Bidirectional pair is said, not dropped
    code, out, err = lstm_ref("diagnose", "--source", model, "--target", "tagger.pt", "--json", "d.json")
    assert code == 0, out[-3000:] + err[-3000:]
    assert "bi -> bi: not diagnosed: 2 source LSTMs" in out and "lstm-ref check tagger.pt --source" in out
    assert "summary -> summary: no fault" in out
    assert {
        r["pair"]: r.get("skipped", "") for r in json.loads((tmp_path / "d.json").read_text())["results"]
    }.keys() == {"bi -> bi", "summary -> summary"}


@pytest.mark.parametrize("mode, op", [("sum", "add"), ("mul", "multiply"), ("ave", "average")])
def test_a_merge_mode_torch_has_not_is_said(keras_files, lstm_ref, tmp_path, mode, op):  # noqa: F811
    model = keras_files[f"bi_{mode}.keras"]
    code, out, err = lstm_ref("convert", model, "--to", "torch", "-o", "m.pt")
    assert code == 0, out + err
    assert f"merge_mode='{mode}' is not part of torch.nn.LSTM(bidirectional=True)" in out
    assert f"{op} the two halves" in out
    code, out, err = lstm_ref("check", "m.pt", "--source", model, "--json", "r.json")
    assert code == 0, out[-3000:] + err[-3000:]
    assert [r["status"] for r in _pairs(tmp_path / "r.json")] == ["pass", "pass"]


def test_the_readme_tagger_converts_to_one_chained_onnx_model(keras_files, lstm_ref, tmp_path):  # noqa: F811
    """One bidirectional node for the Bidirectional, its output (the two
    directions concatenated: Transpose + Reshape) feeding the LSTM node, the
    Embedding's mask as one sequence_lens for both; the model, run whole in
    ONNX Runtime on what the first LSTM received in the model run, agrees
    with TF node by node; Embedding and Dense are said to be left out."""
    model = keras_files["tagger.keras"]
    code, out, err = lstm_ref("convert", model, "--to", "onnx", "-o", "tagger.onnx")
    assert code == 0, out + err
    assert "bi -> node 'bi' (input bi/X, sequence_lens)" in out
    assert "summary -> node 'summary' (input: bi's output; the chain's input is bi/X)" in out
    assert "left out (not LSTMs; not in the file): embed (Embedding), dense (Dense)" in out
    parity = [line for line in out.splitlines() if line.strip().startswith("parity:")]
    assert len(parity) == 2 and all(": PASS (ratio " in line for line in parity), out
    assert "summary (in the chain from bi/X)" in parity[1]
    graph = _graph(tmp_path / "tagger.onnx")
    assert graph["inputs"] == ["bi/X", "bi/sequence_lens"]
    assert (
        graph["lstm_inputs"]["summary"][0] == "bi/merged" and graph["lstm_inputs"]["summary"][4] == "bi/sequence_lens"
    )
    code, out, err = lstm_ref("check", "tagger.onnx", "--source", model, "--json", "r.json")
    assert code == 0, out[-3000:] + err[-3000:]
    assert [r["status"] for r in _pairs(tmp_path / "r.json")] == ["pass", "pass"]


@pytest.mark.parametrize("mode, op", [("sum", "ReduceSum"), ("mul", "ReduceProd"), ("ave", "ReduceMean")])
def test_merge_modes_are_onnx_ops_in_the_chain(keras_files, lstm_ref, tmp_path, mode, op):  # noqa: F811
    code, out, err = lstm_ref("convert", keras_files[f"bi_{mode}.keras"], "--to", "onnx", "-o", "m.onnx")
    assert code == 0, out + err
    assert f"top -> node 'top' (input: bi's output, merged by {mode}; the chain's input is bi/X)" in out
    assert f"merge_mode='{mode}' written as ONNX ops: bi/merged = {op} over the directions" in out
    parity = [line for line in out.splitlines() if line.strip().startswith("parity:")]
    assert len(parity) == 2 and all(": PASS (ratio " in line for line in parity), out
    assert op in _graph(tmp_path / "m.onnx")["ops"]


def test_lstms_that_do_not_chain_are_said_and_get_their_own_input(keras_files, lstm_ref, tmp_path):  # noqa: F811
    code, out, err = lstm_ref("convert", keras_files["not_a_chain.keras"], "--to", "onnx", "-o", "n.onnx")
    assert code == 0, out + err
    assert "second -> node 'second' (input second/X)" in out
    assert (
        "not chained to the node before: its input is not first's output in the model run (a layer in "
        "between?); it has its own input second/X" in out
    )
    assert "left out (not LSTMs; not in the file): between (Dense)" in out
    assert "parity:" not in out  # no chain: each node is checked alone by check --source
    assert _graph(tmp_path / "n.onnx")["inputs"] == ["first/X", "second/X"]


def _graph(path):
    """The written model's graph inputs, op types and each LSTM node's inputs (read in .venv-onnx)."""
    script = (
        "import json, sys, onnx; g = onnx.load(sys.argv[1]).graph; print(json.dumps({'inputs': [i.name for i "
        "in g.input], 'ops': [n.op_type for n in g.node], 'lstm_inputs': {n.name: list(n.input) for n in g.node "
        "if n.op_type == 'LSTM'}}))"
    )
    done = subprocess.run(
        [str(ROOT / ".venv-onnx" / "bin" / "python"), "-c", script, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("export", ["export_legacy.onnx", "export_dynamo.onnx"])
def test_an_exported_multi_layer_lstm_converts_back_to_one_module(artifacts, lstm_ref, tmp_path, export):  # noqa: F811
    """torch.onnx.export writes nn.LSTM(num_layers=2, bidirectional=True)
    as two chained nodes; convert --to torch regroups them into the one
    module they came from: its keys load (strict) into that nn.LSTM and
    equal the original state_dict's, and check --source runs the module
    against the two nodes chained in ONNX Runtime, step by step."""
    files, _ = artifacts
    rel = relative_to(tmp_path)
    code, out, err = lstm_ref("convert", rel(files[export]), "--to", "torch", "-o", "back.pt")
    assert code == 0, out + err
    assert " -> (plain keys)" in out, out
    script = textwrap.dedent("""
        import sys, torch
        back = torch.load(sys.argv[1], weights_only=True)
        source = {k[len("lstm."):]: v for k, v in torch.load(sys.argv[2], weights_only=True).items()}
        torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True).load_state_dict(back, strict=True)
        assert list(back) == list(source), (list(back), list(source))
        assert all(torch.equal(back[k], source[k]) for k in source)
    """)
    done = subprocess.run(
        [
            str(ROOT / ".venv-torch" / "bin" / "python"),
            "-c",
            script,
            str(tmp_path / "back.pt"),
            str(files["export_source.pt"]),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    code, out, err = lstm_ref(
        "check", "back.pt", "--source", rel(files[export]), "--json", "r.json", "--batch", "2", "--grad"
    )
    assert code == 0, out[-3000:] + err[-3000:]
    pairs = [r for r in _pairs(tmp_path / "r.json") if not r["layer"].endswith("(grad)")]
    assert len(pairs) == 1, out[-3000:]
    assert pairs[0]["status"] == "pass" and max(pairs[0]["weights_max_abs"].values()) == 0.0
    assert pairs[0]["pair"]["source"]["ran"].startswith("2 chained ONNX LSTM nodes")
    # and it trains as the two nodes: differentiated top down, the lower node's sequence
    # upstream being the dL/dx torch gave the upper one; dL/dx across is the bottom node's
    (grad,) = [r for r in _pairs(tmp_path / "r.json") if r["layer"] == pairs[0]["layer"] + " (grad)"]
    assert grad["status"] == "pass", grad
    arrays = grad["grad"]["arrays"]
    assert {"source[0]:x", "source[1]:x", "artifact:x", "artifact:w:weight_ih_l1_reverse"} <= set(arrays)
    assert arrays["source vs artifact:x"]["passed"], arrays


def test_diagnose_pairs_as_check_does(artifacts, lstm_ref, tmp_path):  # noqa: F811
    """A 2-layer PyTorch LSTM against its export's two nodes: diagnose pairs
    them layer by layer, as check --source does, and finds no fault."""
    files, _ = artifacts
    rel = relative_to(tmp_path)
    code, out, err = lstm_ref(
        "diagnose", "--source", rel(files["export_source.pt"]), "--target", rel(files["export_legacy.onnx"])
    )
    assert code == 0, out + err
    assert "lstm layer 0 -> /lstm/LSTM: no fault: within tolerance" in out
    assert "lstm layer 1 -> /lstm/LSTM_1: no fault: within tolerance" in out
    code, out, err = lstm_ref(
        "diagnose", "--source", rel(files["export_source.pt"]), "--target", rel(files["state_dict.pt"])
    )
    assert code == 2 and "cannot be matched in order" in err, out + err
