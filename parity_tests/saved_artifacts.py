"""Real PyTorch and ONNX files for ``test_check_artifacts.py``, written by torch itself.

Run in ``.venv-torch`` (torch 2.13, onnx, onnxscript), ONE subprocess for all
of them: ``.venv-torch/bin/python parity_tests/saved_artifacts.py OUT`` writes
the files into OUT and ``OUT/artifacts.json`` (``{"files": {name: path},
"refusals": {what: message}, "seconds": {what: s}}``).  ``build(directory)``
runs it from the test process.  Shapes are tiny; weights are seeded.

* ``state_dict.pt``: a model's ``state_dict`` -- ``enc`` a 2-layer
  bidirectional LSTM with a projection, ``dec`` a plain LSTM, ``gru`` a GRU
  (listed as skipped);
* ``scripted.pt`` / ``traced.pt``: ``torch.jit.script`` / ``torch.jit.trace``
  of a Linear -> LSTM (batch_first, 2 layers) -> Linear model;
* ``pickled.pt``: ``torch.save(module)`` of the tagger's ``nn.LSTM`` -- refused
  (weights_only=True);
* ``export_source.pt``: the state_dict of a 2-layer bidirectional
  batch_first ``nn.LSTM`` (key prefix ``lstm.``), and its exports
  ``export_legacy.onnx`` (``torch.onnx.export(..., dynamo=False)``) and
  ``export_dynamo.onnx`` (``dynamo=True, external_data=False``);
* ``broken_gates.onnx``: the legacy export with the first node's W gate
  blocks permuted (i,o,f,c read as i,f,o,c): it passes on its own weights
  and fails against ``export_source.pt``;
* ``layout1.onnx``: one node with ``layout=1`` (ONNX Runtime 1.32 refuses it);
* ``mixed_nodes.onnx``: a node with ``sequence_lens``/``initial_h``/
  ``initial_c`` graph inputs, and a node whose W is a graph input (skipped).

What does not work is recorded too: the legacy exporter refuses an LSTM with
a projection ("Unsupported: ONNX export of operator LSTM, LSTMs with
projections").  (The dynamo exporter writes such a model without an error,
and ``onnx.checker`` with ``full_check`` rejects it; not rebuilt here: it
costs another 6 s.)
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv-torch" / "bin" / "python"


def build(directory):
    """Run this file in ``.venv-torch``: the manifest (see the module docstring)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [str(PYTHON), str(Path(__file__).resolve()), str(directory)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if done.returncode:
        raise RuntimeError(f"building the torch/ONNX artifacts failed:\n{done.stderr[-4000:]}")
    return json.loads(Path(directory, "artifacts.json").read_text())


def _main(out):  # pragma: no cover - runs in .venv-torch
    import warnings

    import numpy as np
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    files, refusals, seconds = {}, {}, {}

    def path(name):
        files[name] = os.path.join(out, name)
        return files[name]

    class Nested(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=3)
            self.dec = torch.nn.LSTM(6, 4)
            self.gru = torch.nn.GRU(3, 4)

    torch.save(Nested().state_dict(), path("state_dict.pt"))

    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 3)
            self.lstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x):
            y, _ = self.lstm(self.proj(x))
            return self.head(y)

    tagger = Tagger().eval()
    x = torch.randn(2, 5, 4)
    torch.jit.script(tagger).save(path("scripted.pt"))
    torch.jit.trace(tagger, (x,)).save(path("traced.pt"))
    torch.save(tagger.lstm, path("pickled.pt"))  # a whole module (nn.LSTM: importable by name, unlike Tagger)

    class Exported(torch.nn.Module):
        def __init__(self, proj=0):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, proj_size=proj)

        def forward(self, x):
            return self.lstm(x)

    model = Exported().eval()
    torch.save(model.state_dict(), path("export_source.pt"))
    x = torch.randn(2, 6, 3)
    start = time.perf_counter()
    torch.onnx.export(
        model,
        (x,),
        path("export_legacy.onnx"),
        dynamo=False,
        input_names=["x"],
        dynamic_axes={"x": {0: "batch", 1: "time"}},
    )
    seconds["legacy export"] = time.perf_counter() - start
    start = time.perf_counter()
    torch.onnx.export(model, (x,), path("export_dynamo.onnx"), dynamo=True, external_data=False, verbose=False)
    seconds["dynamo export"] = time.perf_counter() - start
    try:
        torch.onnx.export(Exported(proj=2).eval(), (x,), os.path.join(out, "proj_legacy.onnx"), dynamo=False)
    except Exception as exc:  # noqa: BLE001 - the refusal is what is recorded
        refusals["legacy export, proj_size=2"] = str(exc).splitlines()[0][:200]

    # broken: the first LSTM node's W with its gate blocks i,o,f,c swapped to i,f,o,c
    broken = onnx.load(files["export_legacy.onnx"])
    node = next(n for n in broken.graph.node if n.op_type == "LSTM")
    init = next(t for t in broken.graph.initializer if t.name == node.input[1])
    w = numpy_helper.to_array(init)
    blocks = np.split(w, 4, axis=1)
    init.CopyFrom(numpy_helper.from_array(np.concatenate([blocks[i] for i in (0, 2, 1, 3)], axis=1), init.name))
    onnx.save(broken, path("broken_gates.onnx"))

    rng = np.random.default_rng(0)

    def lstm_graph(nodes, inputs, inits):
        outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for n in nodes for o in n.output]
        graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])

    def weights(prefix, d, h, i):
        return [
            numpy_helper.from_array(rng.standard_normal(s).astype("float32") * 0.5, f"{prefix}{n}")
            for n, s in (("W", (d, 4 * h, i)), ("R", (d, 4 * h, h)), ("B", (d, 8 * h)))
        ]

    float_in = [helper.make_tensor_value_info("X", TensorProto.FLOAT, None)]
    one = helper.make_node(
        "LSTM", ["X", "W", "R", "B"], ["Y", "Y_h", "Y_c"], name="batch_major", hidden_size=3, layout=1
    )
    onnx.save(lstm_graph([one], float_in, weights("", 1, 3, 2)), path("layout1.onnx"))

    full = helper.make_node(
        "LSTM",
        ["X", "a/W", "a/R", "a/B", "lens", "h0", "c0"],
        ["a/Y", "a/Y_h", "a/Y_c"],
        name="with_states",
        hidden_size=3,
        direction="reverse",
        clip=2.5,
    )
    fed = helper.make_node("LSTM", ["X", "W_in", "b/R"], ["b/Y", "b/Y_h", "b/Y_c"], name="w_is_an_input", hidden_size=3)
    inputs = float_in + [
        helper.make_tensor_value_info("lens", TensorProto.INT32, None),
        helper.make_tensor_value_info("h0", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("c0", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("W_in", TensorProto.FLOAT, None),
    ]
    inits = weights("a/", 1, 3, 2) + weights("b/", 1, 3, 2)[1:2]
    onnx.save(lstm_graph([full, fed], inputs, inits), path("mixed_nodes.onnx"))

    manifest = {
        "files": files,
        "refusals": refusals,
        "seconds": seconds,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
    }
    Path(out, "artifacts.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    _main(sys.argv[1])
