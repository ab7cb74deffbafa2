"""``--json``: one schema for every format of ``lstm-ref check``, and one
for ``tflite-sweep``, shipped with the package
(``lstm_ref/harness/schemas/``) and read here with ``importlib.resources``
as a user would.

The fast tests hold the schema to the code: every field a row has is in
it and nothing else, a payload built by the command's own writer
validates, and the shapes it replaced (``{"model", "mode", "rows"}`` for a
``.tflite``, ``{"passed", "layers"}`` elsewhere, no ``schema_version``) and
broken rows are rejected.  The live tests run ``check --json`` on every
format -- Keras 3 ``.keras``, tf_keras ``.h5``, a weights-only ``.h5``,
``.pt`` and ``.onnx`` alone and with ``--source``, a TF checkpoint, a
``.tflite`` alone and with ``--source`` (a tf_keras ``.h5``: issue 26
item C, which used to fail loading it), several models at once, a failing check -- and ``tflite-sweep
--json``, and validate each output against the shipped file.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

jsonschema = pytest.importorskip("jsonschema")  # the test extra brings it (pyproject.toml)

from lstm_ref.harness import schemas, tflite_cli  # noqa: E402
from lstm_ref.harness.check import LayerResult  # noqa: E402
from lstm_ref.harness.commands import check as check_command  # noqa: E402

from .test_check_artifacts import lstm_ref  # noqa: E402, F401  (the fixture: the CLI in-process on the session's pool)

ROOT = Path(__file__).resolve().parents[1]
CELL = "tf.compat.v1.nn.rnn_cell.LSTMCell"
CELL_CONFIG = {"num_units": 3}


def shipped(name):
    """A schema file as the installed package has it."""
    return json.loads(resources.files("lstm_ref.harness.schemas").joinpath(name).read_text(encoding="utf-8"))


def validator(name):
    schema = shipped(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(name, payload):
    return [e.message for e in validator(name).iter_errors(payload)]


# -- the schema files against the code ------------------------------------------------------------------------------


def test_the_schemas_load_and_carry_the_version_the_code_writes():
    for name in (schemas.CHECK, schemas.TFLITE_SWEEP):
        assert schemas.load(name) == shipped(name)
        validator(name)
        assert shipped(name)["properties"]["schema_version"]["const"] == schemas.SCHEMA_VERSION


def test_a_row_has_every_field_the_schema_requires_and_no_other():
    """A field added to LayerResult (or tflite_cli.Row) without the schema
    fails here, and a field the schema names that no row has."""
    row = shipped(schemas.CHECK)["$defs"]["row"]
    fields = {"model", "format"} | {f.name for f in dataclasses.fields(LayerResult)}
    assert set(row["required"]) == fields == set(row["properties"])
    sweep_row = shipped(schemas.TFLITE_SWEEP)["$defs"]["row"]
    assert (
        set(sweep_row["required"])
        == {f.name for f in dataclasses.fields(tflite_cli.Row)}
        == set(sweep_row["properties"])
    )


def _rows():
    """Rows of every kind a check writes, built as the code builds them."""
    checked = LayerResult(
        layer="lstm",
        kind="keras.layers.LSTM",
        status="pass",
        dtype="float32",
        shape="2x7x3",
        ratio=0.01,
        h_max_abs=1e-8,
        c_max_abs=float("nan"),
        worst={"field": "c", "step": None, "row": 0, "unit": 1, "ref": 0.5, "tf": 0.5},
        tolerance={"atol": 2e-6, "rtol": 2e-6, "rounding": 16.0},
        rows=2,
        source="LSTM",
        tf_bitwise=True,
    )
    failed = LayerResult(layer="a -> b", kind="torch.nn.LSTM", status="fail", reason="shapes", weights_max_abs={})
    failed.weights_max_abs = {"weight_ih_l0": float("inf")}
    failed.pair = {
        side: {"model": "/m", "layer": "a", "kind": "keras.layers.LSTM", "ran": "TF"} for side in ("source", "artifact")
    }
    tflite_row = tflite_cli.Row(
        "int8: lstm",
        "pass",
        lowering="fused",
        compared="h per step",
        max_abs=0.01,
        bitwise_repeat=True,
        per_step=[0.0, 0.01],
        ratio=0.5,
        shape="2x2x4",
        tolerance={"atol": 0.1, "rtol": 0.0, "rounding": 0.0},
        worst={"field": "h", "step": 1, "row": 0, "unit": 0, "ref": 0.1, "tf": 0.11},
    )
    tflite = tflite_cli.layer_results([tflite_row], "int8", "fused", Path("/m.tflite"))
    return [checked, failed, *tflite]


def _payload():
    reports = [
        check_command.Report(
            Path("/m.keras"), "Keras 3 .keras archive", _rows(), [("gru", "not an LSTM")], [], "keras3"
        ),
        check_command.Report(Path("/ckpt"), "checkpoint, scope 'rnn'", [], [], [], "checkpoint"),
    ]
    reports[0].casts = [{"input": "x", "given": "float64", "cast_to": "float32", "exact": False, "max_change": 1e-9}]
    return json.loads(json.dumps(check_command.result_json(reports), allow_nan=False))


def test_what_the_writer_builds_validates():
    payload = _payload()
    assert errors(schemas.CHECK, payload) == []
    assert payload["passed"] is False  # the failed pair
    assert [r["status"] for r in payload["layers"]] == ["pass", "fail", "pass", "skipped"]
    assert payload["layers"][0]["c_max_abs"] == "nan"  # strict JSON
    assert payload["layers"][2]["tflite"]["mode"] == "int8" and payload["layers"][2]["layer"] == "lstm"


def _broken(edit):
    payload = _payload()
    edit(payload)
    return payload


@pytest.mark.parametrize(
    "name,edit",
    [
        ("no schema_version", lambda p: p.pop("schema_version")),
        ("another version", lambda p: p.update(schema_version=0)),
        ("the old .tflite shape", lambda p: p.clear() or p.update(model="/m.tflite", mode="float32", rows=[])),
        ("the old shape", lambda p: [p.pop(k) for k in ("schema_version", "command", "models")]),
        ("a top-level field the schema lacks", lambda p: p.update(rows=[])),
        ("a row field the schema lacks", lambda p: p["layers"][0].update(extra=1)),
        ("a row without a field", lambda p: p["layers"][0].pop("tf_bitwise")),
        ("an unknown status", lambda p: p["layers"][0].update(status="maybe")),
        ("a pass over its bound", lambda p: p["layers"][0].update(ratio=2.0)),
        ("a checked row without a kind", lambda p: p["layers"][0].update(kind="")),
        ("NaN spelled otherwise", lambda p: p["layers"][0].update(h_max_abs="NaN")),
        ("an unknown reader", lambda p: p["models"][0].update(reader="tensorflow")),
        ("an unknown TFLite mode", lambda p: p["layers"][2]["tflite"].update(mode="int4")),
        ("an assumed config without its fields", lambda p: p["layers"][0].update(assumed={"from": {}})),
    ],
)
def test_the_schema_rejects(name, edit):
    assert errors(schemas.CHECK, _broken(edit)), name


def test_a_sweep_with_rows_of_every_status_validates():
    """Modes that gave no .tflite have no figures: null, not left out."""
    from lstm_ref.harness.commands import tflite_sweep

    rows = [
        tflite_cli.Row(mode, status, "why", seconds=1.5)
        for mode, status in (
            ("float16", "crashed"),
            ("int8", "unsupported"),
            ("int16x8", "run failed"),
            ("dynamic_range", "hung"),
        )
    ]
    rows.append(tflite_cli.Row("float32", "fail", ratio=float("inf"), max_abs=float("nan")))
    payload = json.loads(json.dumps(tflite_sweep.result_json("/m.keras", "Keras", 1, 20, 0, "crash", rows)))
    assert errors(schemas.TFLITE_SWEEP, payload) == []
    assert payload["failing"] == ["float16", "int8", "int16x8", "dynamic_range"]
    assert payload["rows"][-1]["ratio"] == "inf" and payload["rows"][-1]["max_abs"] == "nan"
    payload["rows"][0]["status"] = "exploded"
    assert errors(schemas.TFLITE_SWEEP, payload)


@pytest.mark.live  # builds a wheel with pip and setuptools: the repo's venv
def test_the_schema_files_ship_in_the_wheel(tmp_path):
    """Built as test_install.py builds it, the wheel holds both files and
    ``schemas.load`` reads them from it (a zip: importlib.resources)."""
    src, wheels = tmp_path / "src", tmp_path / "wheels"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "lstm_ref", src / "lstm_ref", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, src],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("lstm_parity-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (schemas.CHECK, schemas.TFLITE_SWEEP):
        assert f"lstm_ref/harness/schemas/{name}" in names
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); from lstm_ref.harness import schemas; "
            "assert schemas.__file__.startswith(sys.argv[1]), schemas.__file__; "
            "print(schemas.load(schemas.CHECK)['title'], '|', schemas.load(schemas.TFLITE_SWEEP)['title'])",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert read.returncode == 0, read.stderr[-3000:]
    assert read.stdout.strip() == "lstm-ref check --json | lstm-ref tflite-sweep --json"


# -- every format's output, validated ---------------------------------------------------------------------------------

# tf_keras: a tagger (.h5), its save_weights file, its .tflite (static batch 2, time 6: the fused op), and a TF2
# checkpoint of a tf.compat.v1 LSTMCell with the x to check it on.
TF_KERAS = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, tf_keras as keras
    out = sys.argv[1]
    keras.utils.set_random_seed(5)
    inp = keras.Input((None, 4))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.LSTM(5, return_sequences=True, name="lstm")(inp)))
    model.save(out + "/tf_tagger.h5")
    model.save_weights(out + "/tf_weights.h5")
    fixed = keras.Input((6, 4), batch_size=2)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(fixed, model(fixed)))
    open(out + "/tf_tagger.tflite", "wb").write(converter.convert())
    cell = tf.compat.v1.nn.rnn_cell.LSTMCell(**json.loads(sys.argv[2]))
    cell.build((None, 2))
    rng = np.random.default_rng(2)
    for v in cell.weights:
        v.assign(rng.standard_normal(v.shape))
    module = tf.Module()
    module.cell = cell
    tf.train.Checkpoint(model=module).write(out + "/ckpt/ckpt")
    np.save(out + "/x.npy", rng.standard_normal((2, 4, 2)).astype("float32"))
""")

KERAS3 = textwrap.dedent("""
    import sys, keras
    keras.utils.set_random_seed(6)
    inp = keras.Input((None, 3))
    x = keras.layers.LSTM(4, return_sequences=True, name="first")(inp)
    keras.Model(inp, keras.layers.LSTM(2, name="second")(x)).save(sys.argv[1] + "/tagger.keras")
""")


@pytest.fixture(scope="module")
def files(tmp_path_factory, tensorflow_process, oracle_pool):
    """The files above, and the .pt/.onnx ports `lstm-ref convert` writes of
    tagger.keras and tf_weights.h5 (in-process, on the session's workers):
    ``{name: path}``."""
    from lstm_ref.harness import check
    from lstm_ref.harness.cli import main

    from .test_check_artifacts import _Shared

    out = tmp_path_factory.mktemp("json_schema")
    base = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    for script, env in ((TF_KERAS, {**base, "TF_USE_LEGACY_KERAS": "1"}), (KERAS3, base)):
        done = subprocess.run(
            [sys.executable, "-c", script, str(out), json.dumps(CELL_CONFIG)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    for source, target, port, *more in (
        ("tagger.keras", "torch", "tagger.pt"),
        ("tagger.keras", "onnx", "tagger.onnx"),
        ("tf_weights.h5", "torch", "weights.pt"),
        ("tf_weights.h5", "onnx", "weights_relu.onnx", "--config", '{"activation": "relu"}'),
    ):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(check, "open_pool", lambda: _Shared(oracle_pool))
            patch.chdir(out)
            assert main(["convert", source, "--to", target, "-o", port, *more]) == 0, (source, target)
    return {p.name: p for p in out.iterdir()}


CASES = {
    # name: (arguments, exit code, {model file name: reader})
    "keras3": (["tagger.keras"], 0, {"tagger.keras": "keras3"}),
    "tf_keras": (["tf_tagger.h5"], 0, {"tf_tagger.h5": "tf_keras"}),
    "weights-only h5": (["tf_weights.h5"], 0, {"tf_weights.h5": "keras_weights"}),
    "pt": (["tagger.pt"], 0, {"tagger.pt": "torch"}),
    "pt --source keras": (["tagger.pt", "--source", "tagger.keras"], 0, {"tagger.pt": "torch"}),
    "onnx --source keras": (["tagger.onnx", "--source", "tagger.keras"], 0, {"tagger.onnx": "onnxruntime"}),
    "pt --source weights-only h5": (["weights.pt", "--source", "tf_weights.h5"], 0, {"weights.pt": "torch"}),
    "several": (["tagger.keras", "tf_weights.h5", "tagger.onnx"], 0, None),
    "checkpoint": (
        ["ckpt/ckpt", "--scope", "model/cell", "--kind", CELL, "--config", json.dumps(CELL_CONFIG), "--input", "x.npy"],
        0,
        {"ckpt": "checkpoint"},
    ),
    "tflite": (["tf_tagger.tflite"], 0, {"tf_tagger.tflite": "tflite"}),
    "tflite --source tf_keras h5": (
        ["tf_tagger.tflite", "--source", "tf_tagger.h5"],
        0,
        {"tf_tagger.tflite": "tflite"},
    ),
    # failing checks write the same schema: a port whose activation is not its source's (relu for tanh) ...
    "failing": (["weights_relu.onnx", "--source", "tf_weights.h5"], 1, {"weights_relu.onnx": "onnxruntime"}),
    # ... and a source said to be Keras 2's hard_sigmoid, which no torch.nn.LSTM computes: a failed pair, not a skip
    "failing, hard_sigmoid": (
        ["weights.pt", "--source", "tf_weights.h5", "--config", '{"recurrent_activation": "hard_sigmoid"}'],
        1,
        {"weights.pt": "torch"},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_format_writes_the_one_schema(files, lstm_ref, case):  # noqa: F811
    args, code, readers = CASES[case]
    directory = next(iter(files.values())).parent
    got, out, err = lstm_ref("check", *args, "--json", "result.json", cwd=directory)
    assert got == code, out[-3000:] + err[-3000:]
    payload = json.loads((directory / "result.json").read_text())
    assert errors(schemas.CHECK, payload) == []
    assert payload["passed"] is (code == 0)
    checked = [r for r in payload["layers"] if r["status"] != "skipped"]
    assert checked and all(isinstance(r["ratio"], float) for r in checked if r["status"] == "pass"), checked
    if readers is not None:
        assert {Path(m["model"]).name: m["reader"] for m in payload["models"]} == readers
    if "--source" in args:
        source = str(files[args[args.index("--source") + 1]])
        assert {m["source"] for m in payload["models"]} == {source}
        assert any(r["pair"] and r["pair"]["source"]["model"] == source for r in checked), checked
    else:
        assert {m["source"] for m in payload["models"]} == {None}
    if case.startswith("tflite"):
        assert all(r["tflite"]["mode"] == "float32" and r["tflite"]["lowering"] == "fused" for r in checked)
    if case == "tflite --source tf_keras h5":
        # issue 26 item C: a tf_keras .h5 source loads and runs (it failed with "data type '>' not understood":
        # tf_keras names an input's dtype as a tf.DType) and agrees with its .tflite
        assert "not understood" not in err and out.strip().splitlines()[-1].startswith("PASS: 1/1 within tolerance")
    pairs = [r for r in checked if r["pair"]]
    if case == "failing":  # the port alone passes (on its own weights); against its source it fails, in numbers
        assert {r["status"] for r in checked if not r["pair"]} == {"pass"}
        assert [(r["status"], r["ratio"] > 1, r["weights_max_abs"]) for r in pairs] == [
            ("fail", True, {"B": 0.0, "R": 0.0, "W": 0.0})
        ], pairs
    if case == "failing, hard_sigmoid":
        assert [r["status"] for r in pairs] == ["fail"] and "hard_sigmoid" in pairs[0]["reason"], pairs
        assert pairs[0]["assumed"]["from"]["recurrent_activation"]["from"] == "user", pairs
    if case == "pt --source weights-only h5":
        assert [(r["status"], set(r["weights_max_abs"].values())) for r in pairs] == [("pass", {0.0})], pairs
        assert pairs[0]["assumed"]["config"]["recurrent_activation"] == "sigmoid", pairs


def test_the_sweep_writes_its_schema(files, lstm_ref):  # noqa: F811
    directory = files["tf_tagger.h5"].parent
    got, out, err = lstm_ref(
        "tflite-sweep", "tf_tagger.h5", "--modes", "float32", "--time", "6", "--json", "sweep.json", cwd=directory
    )
    assert got == 0, out[-3000:] + err[-3000:]
    payload = json.loads((directory / "sweep.json").read_text())
    assert errors(schemas.TFLITE_SWEEP, payload) == []
    assert errors(schemas.CHECK, payload)  # not a check's result
    (row,) = payload["rows"]
    assert row["status"] == "pass" and row["shape"] == "1x6x2" and 0 <= row["ratio"] <= 1, row
    assert payload["failing"] == [] and payload["command"] == "tflite-sweep"


def test_keras2_hard_sigmoid_and_sigmoid_differ_on_the_fixture(files):
    """The failing fixture's premise: Keras 2's hard_sigmoid and sigmoid do
    differ on these weights (else the 'failing' case could not fail)."""
    from lstm_ref.harness import keras_weights

    wfile = keras_weights.read(files["tf_weights.h5"])
    (lstm,) = wfile.lstms
    x = np.random.default_rng(0).standard_normal((2, 6, lstm.input_dim)).astype("float32")
    import lstm_ref as lr

    outs = [
        lr.Case(keras_weights.KIND, {"units": lstm.units, "recurrent_activation": a}, x, lstm.weights).run().h
        for a in ("sigmoid", "hard_sigmoid")
    ]
    assert np.max(np.abs(outs[0] - outs[1])) > 1e-3
