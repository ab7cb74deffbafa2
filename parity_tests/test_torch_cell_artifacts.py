"""``lstm-ref check`` on PyTorch files that hold ``torch.nn.LSTMCell`` s.

The files are real: torch 2.13 writes them in ``.venv-torch`` (:data:`BUILD`,
one subprocess per test module) -- a model whose forward loops an
``LSTMCell`` over time (the first step from ``hx=None``, then ``(h, c)``),
with a ``GRUCell`` and a never-called ``LSTMCell`` beside it,

* ``scripted_cells.jit``: ``torch.jit.script`` of it, saved;
* ``traced_cells.jit``: ``torch.jit.trace`` of it (the tracer keeps the
  cell submodule, with one method per call: ``forward`` without a state,
  ``forward1``... with one);
* ``cells_state_dict.pt``: a checkpoint ``{"model": state_dict, "epoch"}``
  of it, plus a float64 ``bias=False`` cell ``dec`` and a cell ``odd`` with
  one bias (not an LSTMCell: skipped);

and ``runs.npz``: what the cell received in one run of the model and the
model's output, scripted, traced and eager.
"""

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lstm_ref.case import Case
from lstm_ref.harness.compare import assert_run_parity
from lstm_ref.harness.oracles.client import OracleInputError

from .test_check_artifacts import lstm_ref  # noqa: F401  (the fixture: the CLI in-process on the session's pool)

pytestmark = pytest.mark.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
CELL = "torch.nn.LSTMCell"

BUILD = textwrap.dedent("""
    import sys
    from collections import OrderedDict
    from typing import List

    import numpy as np
    import torch

    out = sys.argv[1]
    torch.manual_seed(0)


    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Linear(3, 4)
            self.cell = torch.nn.LSTMCell(4, 5)
            self.gru = torch.nn.GRUCell(5, 2)
            self.spare = torch.nn.LSTMCell(2, 2)  # never called

        def forward(self, x):
            h, c = self.cell(self.embed(x[:, 0]))
            hs: List[torch.Tensor] = [h]
            for t in range(1, x.shape[1]):
                h, c = self.cell(self.embed(x[:, t]), (h, c))
                hs.append(h)
            return torch.stack(hs, 1)


    model = Tagger().eval()
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        u = torch.stack([model.embed(x[:, t]) for t in range(x.shape[1])], 1)
        scripted = torch.jit.script(model)
        scripted.save(f"{out}/scripted_cells.jit")
        traced = torch.jit.trace(model, x)
        traced.save(f"{out}/traced_cells.jit")
        runs = {"u": u, "y_scripted": scripted(x), "y_traced": traced(x), "y_eager": model(x)}
    np.savez(f"{out}/runs.npz", **{k: v.numpy() for k, v in runs.items()})
    state = OrderedDict(model.state_dict())
    dec = torch.nn.LSTMCell(5, 3, bias=False, dtype=torch.float64)
    state.update((f"dec.{k}", v) for k, v in dec.state_dict().items())
    odd = torch.nn.LSTMCell(2, 2).state_dict()
    state.update((f"odd.{k}", v) for k, v in odd.items() if k != "bias_hh")
    torch.save({"model": state, "epoch": 3}, f"{out}/cells_state_dict.pt")
""")
FILES = ("scripted_cells.jit", "traced_cells.jit", "cells_state_dict.pt")


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch_cells")
    (out / "build.py").write_text(BUILD)  # torch.jit.script reads the source: a file, not -c
    subprocess.run(
        [str(ROOT / ".venv-torch" / "bin" / "python"), str(out / "build.py"), str(out)],
        check=True,
        capture_output=True,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"},
    )
    return out


def _lstms(worker, path, cells):
    meta, arrays = worker.request({"op": "artifact_lstms", "path": str(path), "cells": cells}, {})
    weights = [
        {k.split(":w:", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{i}:w:")}
        for i in range(len(meta["lstms"]))
    ]
    return meta, weights


def _run(worker, path, index, arrays, cells):
    return worker.request({"op": "artifact_run", "path": str(path), "index": index, "cells": cells}, arrays)[1]


def test_check_finds_every_lstmcell_and_each_passes(cells, lstm_ref, tmp_path):  # noqa: F811
    """Each cell checked on drawn x from zeros and from a drawn (h0, c0),
    stepped by the reference and by the archive's own code (a state_dict's:
    torch's cell built from its shapes); GRUCell, a cell the trace never
    called, and a one-bias pair are skip rows with the reason."""
    code, out, err = lstm_ref("check", *(cells / f for f in FILES), "--json", "r.json")
    assert code == 0, out[-3000:] + err[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["passed"] is True
    rows = {}
    for r in result["layers"]:
        rows.setdefault(Path(r["model"]).name, {})[r["layer"]] = r
    assert list(rows["scripted_cells.jit"]) == ["cell", "cell (h0, c0)", "spare", "spare (h0, c0)", "gru"]
    assert list(rows["traced_cells.jit"]) == ["cell", "cell (h0, c0)", "gru", "spare"]
    assert list(rows["cells_state_dict.pt"]) == [
        "model.cell",
        "model.cell (h0, c0)",
        "model.spare",
        "model.spare (h0, c0)",
        "model.dec",
        "model.dec (h0, c0)",
        "model.gru",
        "model.odd",
    ]
    checked = [r for f in rows.values() for r in f.values() if r["status"] != "skipped"]
    assert len(checked) == 12 and all(r["status"] == "pass" and r["ratio"] <= 1 for r in checked)
    assert all(r["c_max_abs"] is not None and not r["masked"] for r in checked)  # final_c compared; no lengths
    scripted, traced, sd = rows["scripted_cells.jit"], rows["traced_cells.jit"], rows["cells_state_dict.pt"]
    assert "scripted torch.nn.LSTMCell (LSTMCell.forward)" in scripted["cell"]["source"]
    assert "traced torch.nn.LSTMCell (forward1" in traced["cell"]["source"]
    if sd["model.cell"]["kind"] == CELL:  # a reader that asks for cells as themselves ("cells": true)
        assert all(r["kind"] == CELL for r in checked)
        assert "torch.nn.LSTMCell built from the config the shapes give" in sd["model.cell"]["source"]
    else:  # artifacts.py today: as the one-layer torch.nn.LSTM each cell equals, and said
        assert all(r["kind"] == "torch.nn.LSTM" for r in checked)
        assert "weight_ih -> weight_ih_l0" in sd["model.cell"]["source"]
        assert "compared as the one-layer torch.nn.LSTM" in scripted["cell"]["source"]
    assert sd["model.dec"]["dtype"] == "float64" and sd["model.cell (h0, c0)"]["initial_state"]
    assert "GRUCell" in scripted["gru"]["reason"] and "GRUCell" in sd["model.gru"]["reason"]
    assert "the traced forward never called it" in traced["spare"]["reason"]
    assert "bias_ih without the other bias" in sd["model.odd"]["reason"]


@pytest.mark.parametrize("cells_form", [True, False], ids=["as_lstmcell", "as_lstm"])
@pytest.mark.parametrize("archive,key", [("scripted_cells.jit", "y_scripted"), ("traced_cells.jit", "y_traced")])
def test_the_archive_cell_stepped_is_the_models_own_loop(cells, oracle_pool, archive, key, cells_form):
    """Fed what the cell received in one run of the model, the archive's
    cell stepped by ``artifact_run`` returns the model's own output, bitwise:
    the scripted forward, or the traced method that takes (x, h, c) with its
    arguments put where the tracer put them."""
    worker = oracle_pool.get("torch")
    runs = np.load(cells / "runs.npz")
    assert np.array_equal(runs[key], runs["y_eager"])
    meta, _ = _lstms(worker, cells / archive, cells_form)
    index = [e["name"] for e in meta["lstms"]].index("cell")
    got = _run(worker, cells / archive, index, {"x": runs["u"]}, cells_form)
    assert np.array_equal(got["h"], runs[key])
    assert got["final_h"].shape == ((2, 5) if cells_form else (1, 2, 5))
    assert np.array_equal(got["final_h"].reshape(2, 5), runs[key][:, -1])


@pytest.mark.parametrize("name", FILES)
def test_each_cell_as_itself_matches_the_lstmcell_reference(cells, oracle_pool, name):
    """With ``"cells": true`` a cell is a ``torch.nn.LSTMCell`` case (its
    own config, weight names, unstacked states): the archive's code (a
    state_dict's: ``torch.nn.LSTMCell`` stepped by the worker's ``run``)
    against :class:`lstm_ref.torch_lstm.TorchLSTMCell`, h and c at every step."""
    worker = oracle_pool.get("torch")
    meta, weights = _lstms(worker, cells / name, True)
    found = [(e, w) for e, w in zip(meta["lstms"], weights) if e["kind"] == CELL]
    assert found and not any(e["takes_packed"] for e, _ in found)
    rng = np.random.default_rng(5)
    for entry, w in found:
        assert sorted(w) == sorted(
            ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if entry["config"]["bias"] else [])
        )
        dtype = entry["config"].get("dtype", "float32")
        x = rng.standard_normal((3, 9, entry["config"]["input_size"])).astype(dtype)
        states = {
            s: (0.5 * rng.standard_normal((3, entry["config"]["hidden_size"]))).astype(dtype) for s in ("h0", "c0")
        }
        for initial in ({}, states):
            case = Case(CELL, entry["config"], x, w, name=f"{name}:{entry['name']}", **initial)
            if meta["format"] == "torchscript":
                desired = _run(worker, cells / name, meta["lstms"].index(entry), {"x": x, **initial}, True)
            else:
                desired = worker.run(case)
            assert set(desired) >= {"h", "c", "final_h", "final_c"}
            assert_run_parity(case, desired, context=f"{name} {entry['name']} {entry['source']}")


def test_a_cell_refuses_lengths_in_one_line(cells, oracle_pool):
    worker = oracle_pool.get("torch")
    x = np.zeros((2, 3, 4), "float32")
    with pytest.raises(OracleInputError, match=r"^cell: an LSTMCell takes no PackedSequence"):
        _run(worker, cells / "scripted_cells.jit", 0, {"x": x, "mask": np.ones((2, 3), bool)}, True)
