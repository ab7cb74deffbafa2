"""``lstm-ref check MODEL.onnx --input ... [--calls N]``: every LSTM node
(top-level, in the If branch taken, each iteration of a Loop body) checked
on what it received when ONNX Runtime ran the WHOLE model
(``onnx_artifacts.artifact_as_run``: the node's X, sequence_lens,
initial_h, initial_c and Y, Y_h, Y_c added as graph outputs of a copy of
the model), and a streaming model (``forward(x, h, c) -> (y, hN, cN)``)
over several calls, its state fed back.

The models are real: :func:`_build` runs in ``.venv-torch`` (torch 2.13,
``torch.onnx.export``), one subprocess per test run, and records PyTorch's
own outputs over the calls: the truth for what the captured states must be.
"""

import inspect
import json
import os
import subprocess

import numpy as np
import pytest

from lstm_ref.harness import artifacts
from parity_tests.test_check_artifacts import relative_to
from parity_tests.test_onnx_shipped import TORCH_PYTHON, cli  # noqa: F401 - the fixture

pytestmark = pytest.mark.filterwarnings("ignore")
CALLS = 3


def _build(out):  # pragma: no cover - runs in .venv-torch
    """Write ``stream.onnx`` (Linear + tanh + a 2-layer nn.LSTM, states in
    and out), its inputs for CALLS calls, PyTorch's outputs on them, and
    ``branch.onnx`` (a scripted If: its LSTMs in the branches), ``loop.onnx``
    (a scripted for: its LSTM in a Loop body, reading the running sum) and
    ``nested.onnx`` (an If whose branches hold a Loop, and a Loop holding an
    If), ``scan.onnx`` (:func:`_scan`)."""
    import os
    import warnings

    import numpy as np
    import torch

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    calls = int(os.environ["CALLS"])

    class Stream(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pre = torch.nn.Linear(3, 5)
            self.lstm = torch.nn.LSTM(5, 4, num_layers=2)

        def forward(self, x, h, c):
            y, (hn, cn) = self.lstm(torch.tanh(self.pre(x)), (h, c))
            return y, hn, cn

    class Branchy(torch.nn.Module):
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

    class Loopy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 4)

        def forward(self, xs):
            acc = torch.zeros(xs.size(1), xs.size(2), 4)
            for k in range(xs.size(0)):
                y, _ = self.lstm(xs[k] + acc.mean())
                acc = acc + y
            return acc

    class Nested(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.LSTM(3, 4)
            self.b = torch.nn.LSTM(3, 4)

        def forward(self, xs, mode):
            acc = torch.zeros(xs.size(1), xs.size(2), 4)
            if bool(mode.sum() > 0):
                for k in range(xs.size(0)):
                    y, _ = self.a(xs[k])
                    acc = acc + y
            else:
                for k in range(xs.size(0)):
                    if bool(xs[k].sum() > 0):
                        y, _ = self.b(xs[k])
                        acc = acc + y
            return acc

    stream = Stream().eval()
    chunks = torch.randn(calls, 6, 2, 3)
    h, c = 0.5 * torch.randn(2, 2, 4), 0.5 * torch.randn(2, 2, 4)
    torch.onnx.export(
        stream,
        (chunks[0], h, c),
        os.path.join(out, "stream.onnx"),
        dynamo=False,
        opset_version=17,
        input_names=["x", "h", "c"],
        output_names=["y", "hN", "cN"],
        dynamic_axes={"x": {0: "time", 1: "batch"}, "h": {1: "batch"}, "c": {1: "batch"}},
    )
    np.savez(os.path.join(out, "stream_in.npz"), x=chunks.numpy(), h=h.numpy(), c=c.numpy())
    np.savez(os.path.join(out, "stream_once.npz"), x=chunks[0].numpy(), h=h.numpy(), c=c.numpy())
    truth = {}
    with torch.no_grad():
        for k in range(calls):
            truth[f"{k}:h0"], truth[f"{k}:c0"] = h.numpy(), c.numpy()
            y, h, c = stream(chunks[k], h, c)
            truth[f"{k}:y"] = y.numpy()
    np.savez(os.path.join(out, "torch_truth.npz"), **truth)
    x, mode = torch.randn(5, 2, 3), torch.tensor([1.0])
    torch.onnx.export(
        torch.jit.script(Branchy().eval()), (x, mode), os.path.join(out, "branch.onnx"), dynamo=False, opset_version=15
    )
    np.savez(os.path.join(out, "branch_in.npz"), **{"x.1": x.numpy(), "mode.1": mode.numpy()})
    np.savez(os.path.join(out, "branch_else.npz"), **{"x.1": x.numpy(), "mode.1": -mode.numpy()})
    xs = torch.randn(3, 5, 2, 3)
    torch.onnx.export(
        torch.jit.script(Loopy().eval()), (xs,), os.path.join(out, "loop.onnx"), dynamo=False, opset_version=15
    )
    np.savez(os.path.join(out, "loop_in.npz"), **{"xs.1": xs.numpy()})
    torch.onnx.export(
        torch.jit.script(Nested().eval()), (xs, mode), os.path.join(out, "nested.onnx"), dynamo=False, opset_version=15
    )
    np.savez(os.path.join(out, "nested_then.npz"), **{"xs.1": xs.numpy(), "mode.1": mode.numpy()})
    np.savez(os.path.join(out, "nested_else.npz"), **{"xs.1": xs.numpy(), "mode.1": -mode.numpy()})
    _scan(out)


def _scan(out):  # pragma: no cover - runs in .venv-torch
    """``scan.onnx``: a one-step LSTM node in a Scan body over time (the
    body's state is the LSTM's initial_h/initial_c), ``scan_output_axes`` given."""
    import os

    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)

    def value(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    def tensor(name, shape):
        return helper.make_tensor(name, TensorProto.FLOAT, shape, rng.standard_normal(shape).astype(np.float32).ravel())

    body = helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["xt", "axis"], ["step"]),
            helper.make_node(
                "LSTM", ["step", "W", "R", "", "", "h", "c"], ["Y", "Yh", "Yc"], hidden_size=4, name="cell"
            ),
            helper.make_node("Squeeze", ["Yh", "axis"], ["yt"]),
        ],
        "body",
        [value("h", [1, 2, 4]), value("c", [1, 2, 4]), value("xt", [2, 3])],
        [value("Yh", [1, 2, 4]), value("Yc", [1, 2, 4]), value("yt", [2, 4])],
        initializer=[helper.make_tensor("axis", TensorProto.INT64, [1], [0])],
    )
    scan = helper.make_node(
        "Scan", ["h0", "c0", "x"], ["hN", "cN", "y"], body=body, num_scan_inputs=1, scan_output_axes=[0], name="scan"
    )
    graph = helper.make_graph(
        [scan],
        "scan",
        [value("x", [5, 2, 3]), value("h0", [1, 2, 4]), value("c0", [1, 2, 4])],
        [value("hN", [1, 2, 4]), value("cN", [1, 2, 4]), value("y", [5, 2, 4])],
        initializer=[tensor("W", [1, 16, 3]), tensor("R", [1, 16, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "scan.onnx"))
    x, state = rng.standard_normal((5, 2, 3)), (0.5 * rng.standard_normal((2, 1, 2, 4))).astype(np.float32)
    np.savez(os.path.join(out, "scan_in.npz"), x=x.astype(np.float32), h0=state[0], c0=state[1])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx_as_run")
    script = out / "build_models.py"
    source = f"{inspect.getsource(_build)}\n\n{inspect.getsource(_scan)}"
    script.write_text(f"import sys\n\n\n{source}\n\n_build(sys.argv[1])\n")
    done = subprocess.run(
        [str(TORCH_PYTHON), str(script), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0", "CALLS": str(CALLS)},
        cwd=out,
        timeout=600,
    )
    if done.returncode:
        raise RuntimeError(f"building the exported models failed:\n{done.stderr[-4000:]}")
    return out


def _check(cli, tmp_path, built, model, *extra):  # noqa: F811
    rel = relative_to(tmp_path)
    code, out, err = cli("check", rel(built / model), *extra, "--json", "r.json")
    result = json.loads((tmp_path / "r.json").read_text()) if (tmp_path / "r.json").exists() else None
    return code, out, err, result


def _as_run(result):
    return {r["layer"]: r for r in result["layers"] if "(as run" in r["layer"]}


def test_each_node_is_checked_on_what_it_received_in_every_call(built, cli, tmp_path):  # noqa: F811
    rel = relative_to(tmp_path)
    code, out, err, result = _check(
        cli, tmp_path, built, "stream.onnx", "--input", rel(built / "stream_in.npz"), "--calls", CALLS
    )
    assert code == 0, out[-3000:] + err[-3000:]
    rows = _as_run(result)
    names = [f"/lstm/LSTM{s} (as run, call {k}/{CALLS})" for s in ("", "_1") for k in range(1, CALLS + 1)]
    assert sorted(rows) == sorted(names), sorted(rows)
    for name, row in rows.items():
        assert row["status"] == "pass" and row["ratio"] <= 1, row
        assert row["tf_bitwise"] is True and row["initial_state"] is True, row  # the node alone == in the model
        assert row["shape"] == ("2x6x5" if "LSTM (" in name else "2x6x4")
        call = row["as_run"]["call"]
        assert row["as_run"]["state_fed_back"] == ("" if call == 1 else "h <- hN, c <- cN")
        assert row["as_run"]["captured"].startswith("X, initial_h, initial_c and Y, Y_h, Y_c")
    drawn = [r for r in result["layers"] if "(as run" not in r["layer"]]
    assert len(drawn) == 4 and all(r["status"] == "pass" for r in drawn)  # the node alone on drawn x, as before
    assert "3 calls, state fed back: h <- hN, c <- cN" in result["models"][0]["format"]
    assert "/lstm/LSTM (as run, call 3/3)" in out


def test_the_captured_states_are_pytorchs(built, oracle_pool):
    """The truth for the capture and the feeding back: what each node received
    as initial_h/initial_c on call k is PyTorch's state after k - 1 chunks
    (layer l's slice), and the model's y on each call is PyTorch's."""
    lstms, _, _ = artifacts.read_lstms(built / "stream.onnx", "onnxruntime", oracle_pool)
    given = dict(np.load(built / "stream_in.npz"))
    truth = np.load(built / "torch_truth.npz")
    worker = oracle_pool.get("onnxruntime")
    meta, out = worker.request(
        {"op": "artifact_as_run", "path": str(built / "stream.onnx"), "calls": CALLS},
        {f"in:{k}": v for k, v in given.items()},
    )
    assert meta["pairs"] == [["h", "hN"], ["c", "cN"]] and meta["captured"] == [0, 1]
    for k in range(CALLS):
        np.testing.assert_allclose(out[f"{k}:out:y"], truth[f"{k}:y"], atol=1e-6)
        for layer in (0, 1):
            for s in ("h0", "c0"):
                np.testing.assert_allclose(out[f"{k}:{layer}:{s}"][0], truth[f"{k}:{s}"][layer], atol=1e-6)
        np.testing.assert_array_equal(out[f"{k}:1:x"], out[f"{k}:0:h"])  # layer 1 reads layer 0's Y
    assert not np.allclose(out["1:0:h0"], out["0:0:h0"])  # the state moved on


def test_a_wrong_output_in_the_run_fails(built, cli, tmp_path, monkeypatch):  # noqa: F811
    """The rows can fail: the model's Y on call 2 nudged by 1e-3 (as a
    runtime that computed it wrongly would) is over tolerance there only."""
    real = artifacts.check_as_run

    def nudged(path, lstms, worker, inputs, calls=1):
        class Worker:
            def request(self, meta, arrays):
                reply, out = worker.request(meta, arrays)
                out["1:0:h"] = out["1:0:h"] + 1e-3
                return reply, out

        return real(path, lstms, Worker(), inputs, calls)

    monkeypatch.setattr(artifacts, "check_as_run", nudged)
    rel = relative_to(tmp_path)
    code, out, err, result = _check(
        cli, tmp_path, built, "stream.onnx", "--input", rel(built / "stream_in.npz"), "--calls", CALLS
    )
    assert code == 1, out[-3000:] + err[-3000:]
    failed = [r["layer"] for r in result["layers"] if r["status"] == "fail"]
    assert failed == ["/lstm/LSTM (as run, call 2/3)"], failed
    row = _as_run(result)["/lstm/LSTM (as run, call 2/3)"]
    assert row["tf_bitwise"] is False and "the node run alone differs from its run in the model" in row["notes"]


def test_one_call_without_state_feeding(built, cli, tmp_path):  # noqa: F811
    rel = relative_to(tmp_path)
    code, out, err, result = _check(cli, tmp_path, built, "stream.onnx", "--input", rel(built / "stream_once.npz"))
    assert code == 0, out[-3000:] + err[-3000:]
    assert sorted(_as_run(result)) == ["/lstm/LSTM (as run)", "/lstm/LSTM_1 (as run)"]


@pytest.mark.parametrize(
    "given, taken, not_taken", [("branch_in.npz", "then", "else"), ("branch_else.npz", "else", "then")]
)
def test_the_node_in_the_if_branch_taken_is_checked_on_what_it_received(
    built,
    cli,  # noqa: F811
    tmp_path,
    given,
    taken,
    not_taken,
):
    rel = relative_to(tmp_path)
    code, out, err, result = _check(cli, tmp_path, built, "branch.onnx", "--input", rel(built / given))
    assert code == 0, out[-3000:] + err[-3000:]
    rows = _as_run(result)
    names = {"then": "/If/then_branch/LSTM (as run)", "else": "/If/else_branch/LSTM_1 (as run)"}
    assert set(rows) == set(names.values())
    row = rows[names[taken]]
    assert row["status"] == "pass" and row["ratio"] <= 1 and row["tf_bitwise"] is True, row
    assert row["shape"] == "2x5x3", row
    assert "as extra outputs of the If '/If' (its " + taken + "_branch" in row["as_run"]["captured"], row
    skipped = rows[names[not_taken]]
    assert skipped["status"] == "skipped" and "its If branch was not taken in this run" in skipped["reason"]


def test_the_captured_branch_values_are_the_models(built, oracle_pool):
    """The truth for an If branch's capture: its X is the model's input, and
    its Y is the model's output (the branch returns the LSTM's y)."""
    artifacts.read_lstms(built / "branch.onnx", "onnxruntime", oracle_pool)
    given = dict(np.load(built / "branch_in.npz"))
    meta, out = oracle_pool.get("onnxruntime").request(
        {"op": "artifact_as_run", "path": str(built / "branch.onnx"), "calls": 1},
        {f"in:{k}": v for k, v in given.items()},
    )
    assert meta["lifted"] == [0, 1] and meta["runs"] == [[0, 0, "", ""]] and meta["not_run"][0][:2] == [0, 1]
    np.testing.assert_array_equal(out["0:0@:x"], given["x.1"].transpose(1, 0, 2))
    (model_out,) = [v for k, v in out.items() if k.startswith("0:out:")]
    np.testing.assert_array_equal(out["0:0@:h"], model_out.transpose(1, 0, 2))


def test_each_iteration_of_a_loop_body_is_a_row(built, cli, tmp_path, oracle_pool):  # noqa: F811
    """Each iteration's capture is what that iteration received: iteration 1
    reads xs[0] (acc is zero), iteration 2 reads xs[1] + the mean of
    iteration 1's y."""
    rel = relative_to(tmp_path)
    code, out, err, result = _check(cli, tmp_path, built, "loop.onnx", "--input", rel(built / "loop_in.npz"))
    assert code == 0, out[-3000:] + err[-3000:]
    rows = _as_run(result)
    assert sorted(rows) == [f"/Loop/body/LSTM (as run, iteration {k}/3)" for k in (1, 2, 3)], sorted(rows)
    for row in rows.values():
        assert row["status"] == "pass" and row["ratio"] <= 1 and row["tf_bitwise"] is True, row
        assert "as extra scan outputs of the Loop '/Loop' body (one per iteration)" in row["as_run"]["captured"]
    xs = np.load(built / "loop_in.npz")["xs.1"]
    meta, got = oracle_pool.get("onnxruntime").request(
        {"op": "artifact_as_run", "path": str(built / "loop.onnx"), "calls": 1}, {"in:xs.1": xs}
    )
    assert [r[2] for r in meta["runs"]] == ["1", "2", "3"]
    np.testing.assert_array_equal(got["0:0@1:x"], xs[0].transpose(1, 0, 2))
    np.testing.assert_allclose(got["0:0@2:x"], (xs[1] + got["0:0@1:h"].mean()).transpose(1, 0, 2), atol=1e-6)


def test_a_wrong_output_in_one_iteration_fails_that_row(built, cli, tmp_path, monkeypatch):  # noqa: F811
    real = artifacts.check_as_run

    def nudged(path, lstms, worker, inputs, calls=1):
        class Worker:
            def request(self, meta, arrays):
                reply, out = worker.request(meta, arrays)
                out["0:0@2:final_c"] = out["0:0@2:final_c"] + 1e-3
                return reply, out

        return real(path, lstms, Worker(), inputs, calls)

    monkeypatch.setattr(artifacts, "check_as_run", nudged)
    rel = relative_to(tmp_path)
    code, out, err, result = _check(cli, tmp_path, built, "loop.onnx", "--input", rel(built / "loop_in.npz"))
    assert code == 1, out[-3000:] + err[-3000:]
    assert [r["layer"] for r in result["layers"] if r["status"] == "fail"] == [
        "/Loop/body/LSTM (as run, iteration 2/3)"
    ]


def test_nested_a_loop_in_an_if_and_an_if_in_a_loop_are_captured(built, cli, tmp_path, oracle_pool):  # noqa: F811
    """Loop in an If: stacked scan outputs, then the If's outputs.  If in a
    Loop (the branch taken changes between iterations): carried out as
    sequences, one element per iteration, and checked in the iterations
    whose branch ran it (xs[k].sum() > 0: iterations 1 and 3 of 3)."""
    from parity_tests.test_json_schema import validator

    rel = relative_to(tmp_path)
    code, out, err, result = _check(cli, tmp_path, built, "nested.onnx", "--input", rel(built / "nested_then.npz"))
    assert code == 0, out[-3000:] + err[-3000:]
    rows = _as_run(result)
    loop = [f"/If_1/then_branch/Loop/body/LSTM (as run, iteration {k}/3)" for k in (1, 2, 3)]
    inner = "/If_1/else_branch/Loop_1/body/If/then_branch/LSTM_1 (as run)"
    assert sorted(rows) == sorted(loop + [inner]), sorted(rows)
    for name in loop:
        assert rows[name]["status"] == "pass" and rows[name]["tf_bitwise"] is True, rows[name]
        assert rows[name]["as_run"]["captured"].endswith(
            "as extra scan outputs of the Loop '/If_1/then_branch/Loop' body (one per iteration), then outputs of "
            "the If '/If_1' (its then_branch, and a zero-size stand-in from the other branch), up to graph outputs "
            "of the model"
        )
    assert rows[inner]["status"] == "skipped"
    assert "its Loop did not run (0 iterations, or the branch around the Loop was not taken)" in rows[inner]["reason"]
    validator("check.schema.json").validate(result)

    code, out, err, result = _check(cli, tmp_path, built, "nested.onnx", "--input", rel(built / "nested_else.npz"))
    assert code == 0, out[-3000:] + err[-3000:]
    rows = _as_run(result)
    ran = [f"/If_1/else_branch/Loop_1/body/If/then_branch/LSTM_1 (as run, iteration {k}/3)" for k in (1, 3)]
    assert sorted(rows) == sorted(ran + ["/If_1/then_branch/Loop/body/LSTM (as run)"]), sorted(rows)
    assert "its If branch was not taken" in rows["/If_1/then_branch/Loop/body/LSTM (as run)"]["reason"]
    for name in ran:
        assert rows[name]["status"] == "pass" and rows[name]["tf_bitwise"] is True, rows[name]
        assert (
            "then a sequence carried through the Loop '/If_1/else_branch/Loop_1' (one element per iteration"
            in (rows[name]["as_run"]["captured"])
        )
    validator("check.schema.json").validate(result)
    # what each iteration's node received is the model's: xs[k], its branch taken where xs[k].sum() > 0
    given = np.load(built / "nested_else.npz")
    xs = given["xs.1"]
    assert [bool(xs[k].sum() > 0) for k in range(3)] == [True, False, True]
    meta, got = oracle_pool.get("onnxruntime").request(
        {"op": "artifact_as_run", "path": str(built / "nested.onnx"), "calls": 1},
        {f"in:{k}": given[k] for k in given.files},
    )
    assert [r[2:] for r in meta["runs"]] == [["1", "3"], ["3", "3"]], meta["runs"]
    for k in (1, 3):
        np.testing.assert_array_equal(got[f"0:1@{k}:x"], xs[k - 1].transpose(1, 0, 2))


@pytest.mark.parametrize(
    "model, extra, pattern",
    [
        (
            "branch.onnx",
            ("--input", "branch_in.npz", "--calls", "2"),
            "--calls 2: no input of the model takes a state that an output returns (inputs x.1, mode",
        ),
        ("stream.onnx", ("--calls", "2"), "--calls runs an .onnx model several times on its --input"),
        ("stream.onnx", ("--input", "x=stream_x.npy"), "--input: the model's input(s) h, c not given"),
        ("stream.onnx", ("--input", "stream_once.npz", "--calls", "2"), None),
        (
            "stream.onnx",
            ("--input", "stream_in.npz"),
            "--input x: shape (3, 6, 2, 3) does not fit the model's declared",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(built, cli, tmp_path, model, extra, pattern):  # noqa: F811
    np.save(built / "stream_x.npy", np.zeros((6, 2, 3), np.float32))
    extra = [f"x={built / e[2:]}" if e.startswith("x=") else str(built / e) if e.endswith(".npz") else e for e in extra]
    code, out, err, _ = _check(cli, tmp_path, built, model, *extra)
    if pattern is None:  # the same x every call: fine, the state still moves on
        assert code == 0, out[-3000:] + err[-3000:]
        return
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (code, out[-1500:], err)
    assert pattern in err, err


def test_each_step_of_a_scan_body_is_a_row_its_state_the_scans(built, cli, tmp_path, oracle_pool):  # noqa: F811
    """A Scan over time: step k's captured initial_h is step k - 1's Y_h (the
    body's state), and step 1's is the model's h0."""
    rel = relative_to(tmp_path)
    code, out, err, result = _check(cli, tmp_path, built, "scan.onnx", "--input", rel(built / "scan_in.npz"))
    assert code == 0, out[-3000:] + err[-3000:]
    rows = _as_run(result)
    assert sorted(rows) == [f"scan/body/cell (as run, iteration {k}/5)" for k in range(1, 6)], sorted(rows)
    for row in rows.values():
        assert row["status"] == "pass" and row["tf_bitwise"] is True and row["shape"] == "2x1x3", row
        assert "as extra scan outputs of the Scan 'scan' body (one per iteration)" in row["as_run"]["captured"]
    given = dict(np.load(built / "scan_in.npz"))
    _, got = oracle_pool.get("onnxruntime").request(
        {"op": "artifact_as_run", "path": str(built / "scan.onnx"), "calls": 1},
        {f"in:{k}": v for k, v in given.items()},
    )
    np.testing.assert_array_equal(got["0:0@1:h0"], given["h0"])
    for k in range(2, 6):
        np.testing.assert_array_equal(got[f"0:0@{k}:h0"], got[f"0:0@{k - 1}:final_h"])
