"""``lstm-ref check`` on ONNX files as ``torch.onnx.export`` ships them: LSTMs
in ``If`` branches and ``Loop`` bodies (nested too), in model-local
functions, weights computed from constants (Slice/Concat/Unsqueeze), a
cell decomposed into Gemm + Sigmoid + Tanh, and the bad cases.

The files are real: :func:`_build` runs in ``.venv-torch`` (torch 2.13,
onnx, onnxscript) -- its source is written to ``tmp_path`` and run there,
ONE subprocess per test run (``torch.jit.script`` needs a real file) --
and records what each exporter did (``manifest["found"]``) and refused
(``manifest["refusals"]``).  Nothing is committed: the models live in
``tmp_path``.  Exporter behaviour measured with torch 2.13:

* legacy exporter (``dynamo=False``) of a ``torch.jit.script``-ed module
  that branches on a tensor: the two ``nn.LSTM``s in ``If`` branches
  (opset 15-18 alike), each W/R/B a ``Slice``->``Concat``->``Unsqueeze``
  chain of the module's parameters (gates reordered ifgo -> iofc) inside
  the branch, ``initial_h``/``initial_c`` ``Expand``-ed to the input's
  batch (computed);
* the same module traced (``torch.jit.trace`` / legacy default): the branch
  taken on the example input is baked in, one top-level LSTM node;
* the dynamo exporter refuses data-dependent Python ``if`` (torch.export);
  ``torch.cond`` exports as ``If`` with the weights as initializers of the
  main graph read from the branches (outer scope), at opset 18 even when
  15 is asked (no version adapter for ``If``);
* ``nn.LSTMCell`` in a ``for`` loop: scripted + legacy, a ``Loop`` whose body
  holds an LSTM node with unsqueezed, sliced weights and the loop-carried
  h/c as states; traced (legacy) and dynamo (opset 15 and 18), no LSTM node
  at all: the cell decomposed into Gemm + Sigmoid + Tanh, one per step;
* legacy ``export_modules_as_functions={nn.LSTM}``: each ``nn.LSTM`` a call
  of a model-local function (domain ``torch.nn.modules.rnn``) whose body
  holds the LSTM node, its weights function inputs.
"""

import inspect
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from lstm_ref.harness import check
from parity_tests.test_check_artifacts import _Shared, relative_to

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
TORCH_PYTHON = ROOT / ".venv-torch" / "bin" / "python"


def _build(out):  # pragma: no cover - runs in .venv-torch
    """Write the models into ``out`` and ``out/manifest.json``."""
    import json
    import os
    import time
    import warnings
    from collections import Counter

    import onnx
    import torch

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    files, refusals, found, seconds = {}, {}, {}, {}

    def path(name):
        files[name] = os.path.join(out, name)
        return files[name]

    def ops(name):
        """Where the LSTM nodes are, and the op counts, of a written model."""
        model = onnx.load(files[name])
        lstms, counts = [], Counter()

        def walk(graph, where):
            for node in graph.node:
                counts[node.op_type] += 1
                if node.op_type == "LSTM" and node.domain == "":
                    lstms.append(where + node.name)
                for a in node.attribute:
                    subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
                    for sub in subs:
                        walk(sub, f"{where}{node.name}/{a.name}/")

        walk(model.graph, "")
        for function in model.functions:
            walk(function, f"function {function.domain}.{function.name}/")
        opset = next(o.version for o in model.opset_import if o.domain == "")
        found[name] = {"opset": opset, "lstms": lstms, "ops": dict(counts)}

    def export(name, module, args, **kwargs):
        start = time.perf_counter()
        try:
            torch.onnx.export(module, args, path(name), **kwargs)
        except Exception as exc:  # noqa: BLE001 - recorded
            files.pop(name)
            cause = exc.__cause__ or exc  # the dynamo exporter wraps torch.export's error
            refusals[name] = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0][:300]}"
            return
        seconds[name] = time.perf_counter() - start
        ops(name)

    class Branchy(torch.nn.Module):
        """Two LSTMs, one per mode: the branch a sample rate or a mode picks."""

        def __init__(self):
            super().__init__()
            self.a = torch.nn.LSTM(3, 4)
            self.b = torch.nn.LSTM(3, 4)

        def forward(self, x, mode):
            if bool(mode.sum() > 0):
                y, _ = self.a(x)
            else:
                y, _ = self.b(x)
            return y

    class Cond(Branchy):
        def forward(self, x, mode):
            return torch.cond(mode.sum() > 0, lambda x: self.a(x)[0], lambda x: self.b(x)[0], (x,))

    class Cell(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.LSTMCell(3, 4)

        def forward(self, x):
            h = torch.zeros(x.shape[1], 4)
            c = torch.zeros(x.shape[1], 4)
            ys = []
            for t in range(x.shape[0]):
                h, c = self.cell(x[t], (h, c))
                ys.append(h)
            return torch.stack(ys)

    class Nested(Branchy):
        """A Loop over a count whose body branches on a mode."""

        def forward(self, x, n: int, mode: int):
            y = torch.zeros(x.shape[0], x.shape[1], 4)
            for _ in range(n):
                if mode > 0:
                    y = y + self.a(x)[0]
                else:
                    y = y + self.b(x)[0]
            return y

    class Stacked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.LSTM(3, 4)
            self.dec = torch.nn.LSTM(4, 4)

        def forward(self, x):
            return self.dec(self.enc(x)[0])[0]

    class Gain(torch.nn.Module):
        """W scaled by a model input, in a branch: weights known at run time only."""

        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 4)

        def forward(self, x, gain):
            if bool(gain.sum() > 0):
                lstm = self.lstm
                weights = [lstm.weight_ih_l0 * gain, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
                h0 = torch.zeros(1, x.shape[1], 4)
                return torch._VF.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, False)[0]
            return x.sum(-1, keepdim=True).expand(-1, -1, 4)

    class LstmThenCell(Cell):
        """An nn.LSTM, then an LSTMCell over its output."""

        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 3)

        def forward(self, x):
            return super().forward(self.lstm(x)[0])

    x, mode = torch.randn(5, 2, 3), torch.tensor([1.0])
    branchy = Branchy().eval()
    torch.save(branchy.state_dict(), path("branch_source.pt"))
    scripted = torch.jit.script(branchy)
    for opset in (15, 18):
        export(f"branch_script_{opset}.onnx", scripted, (x, mode), dynamo=False, opset_version=opset)
    export("branch_traced.onnx", branchy, (x, mode), dynamo=False, opset_version=17)
    export("branch_dynamo.onnx", branchy, (x, mode), dynamo=True, external_data=False, opset_version=18)
    cond = Cond().eval()
    cond.load_state_dict(branchy.state_dict())
    export("cond_dynamo_15.onnx", cond, (x, mode), dynamo=True, external_data=False, opset_version=15)
    cell = Cell().eval()
    export("cell_loop_script.onnx", torch.jit.script(cell), (x,), dynamo=False, opset_version=16)
    export("cell_traced.onnx", cell, (x,), dynamo=False, opset_version=17)
    export("cell_dynamo.onnx", cell, (x,), dynamo=True, external_data=False, opset_version=18)
    export("lstm_then_cell.onnx", LstmThenCell().eval(), (x,), dynamo=False, opset_version=17)
    nested = Nested().eval()
    nested.load_state_dict(branchy.state_dict())
    export("nested_script.onnx", torch.jit.script(nested), (x, 2, 1), dynamo=False, opset_version=16)
    stacked = Stacked().eval()
    torch.save(stacked.state_dict(), path("functions_source.pt"))
    export(
        "functions_legacy.onnx",
        stacked,
        (x,),
        dynamo=False,
        opset_version=15,
        export_modules_as_functions={torch.nn.LSTM},
    )
    export("gain_script.onnx", torch.jit.script(Gain().eval()), (x, mode), dynamo=False, opset_version=17)
    with open(files["branch_script_15.onnx"], "rb") as f:
        whole = f.read()
    with open(path("truncated.onnx"), "wb") as f:
        f.write(whole[: len(whole) * 2 // 3])
    damaged = onnx.load(files["branch_script_15.onnx"])  # the then-branch's W chain cut off: W reads a dangling name
    then = next(a.g for a in damaged.graph.node[-1].attribute if a.name == "then_branch")
    keep = [n for n in then.node if n.name != "/Unsqueeze"]
    del then.node[:]
    then.node.extend(keep)
    onnx.save(damaged, path("dangling.onnx"))
    manifest = {"files": files, "refusals": refusals, "found": found, "seconds": seconds, "torch": torch.__version__}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """``({file name: path}, manifest)`` of the models :func:`_build` writes."""
    out = tmp_path_factory.mktemp("onnx_shipped")
    script = out / "build_models.py"
    script.write_text(f"import sys\n\n\n{inspect.getsource(_build)}\n\n_build(sys.argv[1])\n")
    start = time.perf_counter()
    done = subprocess.run(
        [str(TORCH_PYTHON), str(script), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"},
        cwd=out,
        timeout=600,
    )
    if done.returncode:
        raise RuntimeError(f"building the exported models failed:\n{done.stderr[-4000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["build_seconds"] = time.perf_counter() - start
    return {name: Path(p) for name, p in manifest["files"].items()}, manifest


@pytest.fixture
def cli(oracle_pool, monkeypatch, capsys, tmp_path):
    """``cli(*args)`` -> ``(exit code, stdout, stderr)``: ``lstm-ref`` in this
    process with the session's workers, from ``tmp_path`` (as
    ``test_check_artifacts.py``'s ``lstm_ref``)."""
    from lstm_ref.harness.cli import main

    monkeypatch.setattr(check, "open_pool", lambda: _Shared(oracle_pool))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)

    def run(*args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _check(cli, tmp_path, shipped, *names, extra=()):
    files, _ = shipped
    rel = relative_to(tmp_path)
    code, out, err = cli("check", *(rel(files[n]) for n in names), *extra, "--json", "r.json")
    result = json.loads((tmp_path / "r.json").read_text()) if (tmp_path / "r.json").exists() else None
    return code, out, err, result


def _layers(result, model):
    return {r["layer"]: r for r in result["layers"] if Path(r["model"]).name == model}


def test_the_exporters_put_lstms_where_the_tests_say(shipped):
    """What torch 2.13 wrote (the module docstring): if this fails, an
    exporter changed and the other tests no longer test what they say."""
    _, manifest = shipped
    found = manifest["found"]
    for opset in (15, 18):
        model = found[f"branch_script_{opset}.onnx"]
        assert model["opset"] == opset and model["lstms"] == ["/If/then_branch//LSTM", "/If/else_branch//LSTM_1"]
        assert model["ops"]["Unsqueeze"] >= 6 and model["ops"]["Slice"] >= 24
    assert found["branch_traced.onnx"]["lstms"] == ["/a/LSTM"]
    assert manifest["refusals"]["branch_dynamo.onnx"].startswith("GuardOnDataDependentSymNode: Could not guard on")
    assert found["cond_dynamo_15.onnx"]["opset"] == 18 and len(found["cond_dynamo_15.onnx"]["lstms"]) == 2
    assert found["cell_loop_script.onnx"]["lstms"] == ["/Loop/body//cell/LSTM"]
    for name in ("cell_traced.onnx", "cell_dynamo.onnx"):
        assert found[name]["lstms"] == [] and found[name]["ops"]["Sigmoid"] == 15 and found[name]["ops"]["Tanh"] == 10
    assert found["nested_script.onnx"]["lstms"] == [
        "/Loop/body//If/then_branch//LSTM",
        "/Loop/body//If/else_branch//LSTM_1",
    ]
    assert found["functions_legacy.onnx"]["lstms"] == ["function torch.nn.modules.rnn.LSTM/LSTM_19"]


def test_lstms_in_branches_loops_and_functions_are_checked(shipped, cli, tmp_path):
    """Every LSTM node, wherever it sits, is run alone in ONNX Runtime on its
    folded weights against the reference, and named by its path."""
    names = [
        "branch_script_15.onnx",
        "branch_script_18.onnx",
        "cond_dynamo_15.onnx",
        "cell_loop_script.onnx",
        "nested_script.onnx",
        "functions_legacy.onnx",
    ]
    code, out, err, result = _check(cli, tmp_path, shipped, *names)
    assert code == 0, out[-3000:] + err[-3000:]
    assert result["passed"] is True
    assert not [r for r in result["layers"] if r["status"] != "pass"], out[-3000:]
    assert all(r["ratio"] <= 1 for r in result["layers"])
    expect = {
        "branch_script_15.onnx": ["/If/then_branch/LSTM", "/If/else_branch/LSTM_1"],
        "branch_script_18.onnx": ["/If/then_branch/LSTM", "/If/else_branch/LSTM_1"],
        "cond_dynamo_15.onnx": ["node_cond__0/then_branch/node_lstm__2", "node_cond__0/else_branch/node_lstm__2_2"],
        "cell_loop_script.onnx": ["/Loop/body/cell/LSTM"],
        "nested_script.onnx": ["/Loop/body/If/then_branch/LSTM", "/Loop/body/If/else_branch/LSTM_1"],
        "functions_legacy.onnx": [
            "/enc/LSTM/torch.nn.modules.rnn.LSTM/LSTM_19",
            "/dec/LSTM/torch.nn.modules.rnn.LSTM/LSTM_19",
        ],
    }
    for model, layers in expect.items():
        checked = [name for name in _layers(result, model) if "(" not in name]
        assert checked == layers, (model, checked)
    loop = _layers(result, "cell_loop_script.onnx")
    assert "/Loop/body/cell/LSTM (initial_h, initial_c)" in loop  # the loop-carried states: computed, fed
    cond = _layers(result, "cond_dynamo_15.onnx")["node_cond__0/then_branch/node_lstm__2"]
    assert "constant initial_h, initial_c kept as stored" in cond["notes"]  # zeros of batch 2, outer initializers


@pytest.mark.parametrize(
    "model, source, pairs",
    [
        ("branch_script_15.onnx", "branch_source.pt", ["a -> /If/then_branch/LSTM", "b -> /If/else_branch/LSTM_1"]),
        ("cond_dynamo_15.onnx", "branch_source.pt", ["a -> node_cond__0/then_branch/node_lstm__2"]),
        ("functions_legacy.onnx", "functions_source.pt", ["enc -> /enc/LSTM/torch.nn.modules.rnn.LSTM/LSTM_19"]),
    ],
)
def test_folded_weights_are_the_modules_own(shipped, cli, tmp_path, model, source, pairs):
    """The truth for the folding: the module's state_dict, converted to ONNX's
    layout by lstm_ref.convert, equals the weights folded out of the
    exporter's Slice/Concat/Unsqueeze chains (or read through a branch's
    outer scope, or a function's inputs) exactly, and PyTorch agrees with
    the node step by step."""
    code, out, err, result = _check(
        cli, tmp_path, shipped, model, extra=("--source", relative_to(tmp_path)(shipped[0][source]))
    )
    assert code == 0, out[-3000:] + err[-3000:]
    paired = {r["layer"]: r for r in result["layers"] if r["pair"]}
    for name in pairs:
        row = paired[name]
        assert row["status"] == "pass" and set(row["weights_max_abs"]) == {"W", "R", "B"}, row
        assert max(row["weights_max_abs"].values()) == 0.0, row
    assert len(paired) == 2


def test_weights_that_depend_on_a_model_input_are_a_skip_row(shipped, cli, tmp_path):
    files, _ = shipped
    code, out, err, _ = _check(cli, tmp_path, shipped, "gain_script.onnx")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "nothing to check: every LSTM was skipped (/If/then_branch/LSTM: W (/Unsqueeze_output_0)" in err
    assert "which depends on the model input 'gain.1': computed at run time" in err
    assert "gain_script.onnx: skipped /If/then_branch/LSTM: W (/Unsqueeze_output_0) is the output of" in out


def test_a_decomposed_cell_beside_an_lstm_node_is_a_skip_row(shipped, cli, tmp_path):
    """Nothing dropped silently: the LSTM node is checked, the Gemm/Sigmoid/Tanh
    of the traced LSTMCell after it are a skipped row that says what they are."""
    code, out, err, result = _check(cli, tmp_path, shipped, "lstm_then_cell.onnx")
    assert code == 0, out[-3000:] + err[-3000:]
    layers = _layers(result, "lstm_then_cell.onnx")
    assert layers["/lstm/LSTM"]["status"] == "pass"
    row = layers["decomposed cell in the main graph"]
    assert row["status"] == "skipped"
    assert row["reason"].startswith("10 Gemm, 15 Sigmoid, 10 Tanh outside any LSTM node: a recurrent cell")


@pytest.mark.parametrize(
    "name, pattern",
    [
        (
            "cell_traced.onnx",
            "cell_traced.onnx: no LSTM node; found a decomposed recurrent cell: 10 Gemm, 15 Sigmoid, 10 Tanh "
            "in the main graph",
        ),
        (
            "cell_dynamo.onnx",
            "cell_dynamo.onnx: no LSTM node; found a decomposed recurrent cell: 9 Gemm, 15 Sigmoid, 10 Tanh "
            "in the main graph",
        ),
        ("truncated.onnx", "truncated.onnx is not an ONNX model onnx.load can read (Error parsing message"),
        (
            "dangling.onnx",
            "dangling.onnx: LSTM node '/If/then_branch/LSTM': its input W reads '/Unsqueeze_output_0', "
            "which is defined nowhere in the model",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(shipped, cli, tmp_path, name, pattern):
    code, out, err, _ = _check(cli, tmp_path, shipped, name)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (code, out[-1500:], err)
    assert pattern in err, err
