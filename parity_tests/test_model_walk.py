"""The ``model_lstms`` worker op on real saved models: every LSTM a model
holds, on exactly what it received in one run of the model, reproduced by
the reference; Bidirectional outputs rebuilt from the two directions.

Models come from ``parity_tests/saved_models.py`` (one builder subprocess per
framework, session fixtures in conftest.py); ``lstm_ref.harness.model_format`` is tested on them
and on files that are not models.
"""

import shutil
import zipfile

import numpy as np
import pytest

from lstm_ref.case import Case
from lstm_ref.errors import InputError
from lstm_ref.harness.check import merge_directions
from lstm_ref.harness.compare import assert_run_parity
from lstm_ref.harness.model_format import model_format
from lstm_ref.harness.oracles.client import OracleInputError

FIELDS = ("h", "c", "final_h", "final_c")


def walk(pool, framework, path, inputs=None, batch=3, time=6, seed=0):
    meta = {"op": "model_lstms", "path": str(path), "batch": batch, "time": time, "seed": seed}
    arrays = {f"in:{name}": a for name, a in (inputs or {}).items()}
    return pool.get(framework).request(meta, arrays)


def case_of(meta, out, i):
    layer = meta["layers"][i]
    weights = {k[len(f"{i}:w:") :]: v for k, v in out.items() if k.startswith(f"{i}:w:")}
    return Case(
        layer["kind"],
        layer["config"],
        out[f"{i}:x"],
        weights,
        out.get(f"{i}:mask"),
        h0=out.get(f"{i}:h0"),
        c0=out.get(f"{i}:c0"),
        name=layer["path"],
    )


def assert_all_rows(meta, out, kind):
    """Every row reproduced by the reference; what each layer returned in the
    model run equal bitwise to TF's re-run of it (the proof that the recorded
    inputs are what it received); every merged output rebuilt bitwise from
    the per-direction TF sequences by ``check.merge_directions``."""
    for i, layer in enumerate(meta["layers"]):
        assert layer["kind"] == kind
        assert_run_parity(case_of(meta, out, i), {k: out[f"{i}:{k}"] for k in FIELDS})
        h = out[f"{i}:h"] if layer["return_sequences"] else out[f"{i}:h"][:, -1]
        for name, rerun in (("h", h), ("final_h", out[f"{i}:final_h"]), ("final_c", out[f"{i}:final_c"])):
            if f"{i}:model:{name}" in out:
                np.testing.assert_array_equal(out[f"{i}:model:{name}"], rerun, strict=True, err_msg=layer["path"])
        assert f"{i}:model:h" in out or layer["source"].startswith("RNN(Stacked")
    for j, group in enumerate(meta["merged"]):
        yf, yb = out[f"{group['forward']}:h"], out[f"{group['backward']}:h"]
        ours = merge_directions(yf, yb, group["merge_mode"], group["return_sequences"])
        theirs = [out[f"merged:{j}:0"], out[f"merged:{j}:1"]] if group["merge_mode"] is None else [out[f"merged:{j}"]]
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b, strict=True, err_msg=group["path"])


# -- what each layer received, checked against what produced it


def test_embedding_mask_is_the_nonzero_tokens(oracle_pool, keras3_models, tf_keras_models):
    tokens = np.array([[3, 4, 5, 6, 7], [2, 9, 0, 0, 0], [1, 0, 0, 0, 0]], "int32")
    for framework, path in (
        ("keras3", keras3_models["embed_lstm.keras"]),
        ("keras3", keras3_models["embed_lstm.h5"]),
        ("tf_keras", tf_keras_models["tf_embed_lstm"]),
    ):
        meta, out = walk(oracle_pool, framework, path, {"tokens": tokens})
        np.testing.assert_array_equal(out["0:mask"], tokens != 0)
        assert meta["inputs"] == [{"name": "tokens", "shape": [None, None], "dtype": "int32"}]
        assert_all_rows(meta, out, meta["layers"][0]["kind"])


def test_drawn_tokens_are_padded(oracle_pool, keras3_models):
    _, out = walk(oracle_pool, "keras3", keras3_models["embed_lstm.keras"], batch=3, time=7)
    mask = out["0:mask"]
    assert mask.shape == (3, 7) and mask[0].all() and not mask.all() and mask[:, 0].all()


def test_masking_layer_masks_all_zero_frames(oracle_pool, keras3_models):
    x = np.random.default_rng(1).standard_normal((3, 6, 3)).astype("float32")
    x[0, 4:] = 0
    x[1, 2] = 0  # a hole
    meta, out = walk(oracle_pool, "keras3", keras3_models["masking_lstm.keras"], {"frames": x})
    np.testing.assert_array_equal(out["0:mask"], (x != 0).any(-1))
    np.testing.assert_array_equal(out["0:x"], x)
    assert_all_rows(meta, out, "keras.layers.LSTM")


def test_explicit_mask_input(oracle_pool, keras3_models):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    m = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]], bool)
    meta, out = walk(oracle_pool, "keras3", keras3_models["explicit_mask.keras"], {"x": x, "m": m})
    np.testing.assert_array_equal(out["0:mask"], m)
    np.testing.assert_array_equal(out["0:x"], x)
    assert_all_rows(meta, out, "keras.layers.LSTM")


def test_bidirectional_directions(oracle_pool, keras3_models):
    """Both directions get the same input-order mask; Bidirectional forces
    ``zero_output_for_mask = return_sequences`` on both (masked sequences
    carry zeros, not the repeated output)."""
    meta, out = walk(oracle_pool, "keras3", keras3_models["bidi_masked.keras"])
    for group in meta["merged"]:
        f, b = group["forward"], group["backward"]
        np.testing.assert_array_equal(out[f"{f}:mask"], out[f"{b}:mask"])
        np.testing.assert_array_equal(out[f"{f}:x"], out[f"{b}:x"])
        for i, direction in ((f, "forward"), (b, "backward")):
            layer = meta["layers"][i]
            assert (layer["bidirectional"], layer["direction"]) == (group["path"], direction)
            assert layer["config"]["go_backwards"] is (direction == "backward")
            assert layer["config"]["zero_output_for_mask"] is group["return_sequences"]
        if group["return_sequences"]:
            assert (out[f"{b}:h"][~out[f"{b}:mask"][:, ::-1]] == 0).all()
    assert {g["merge_mode"] for g in meta["merged"]} == {"concat", "sum", "mul", "ave", None}


def test_decoder_starts_from_the_encoder_states(oracle_pool, keras3_models, tf_keras_models):
    for framework, path in (
        ("keras3", keras3_models["encdec.keras"]),
        ("keras3", keras3_models["encdec_masked.keras"]),
        ("tf_keras", tf_keras_models["tf_encdec"]),
        ("tf_keras", tf_keras_models["tf_encdec_masked.h5"]),
    ):
        meta, out = walk(oracle_pool, framework, path)
        assert [layer["path"] for layer in meta["layers"]] == ["encoder", "decoder"]
        np.testing.assert_array_equal(out["1:h0"], out["0:final_h"])
        np.testing.assert_array_equal(out["1:c0"], out["0:final_c"])


def test_two_inputs_by_name(oracle_pool, keras3_models):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 7, 3)).astype("float32")
    b = rng.standard_normal((2, 4, 2))  # float64: cast to the input's float32
    meta, out = walk(oracle_pool, "keras3", keras3_models["multi_input.keras"], {"b": b, "a": a})
    assert [(i["name"], i["shape"]) for i in meta["inputs"]] == [("a", [None, None, 3]), ("b", [None, None, 2])]
    np.testing.assert_array_equal(out["0:x"], a)
    np.testing.assert_array_equal(out["1:x"], b.astype("float32"))
    assert meta["layers"][1]["config"]["go_backwards"] is True
    assert_all_rows(meta, out, "keras.layers.LSTM")


def test_shared_layers_give_one_row_per_call(oracle_pool, keras3_models):
    meta, out = walk(oracle_pool, "keras3", keras3_models["shared.keras"])
    assert [(g["path"], g["forward"], g["backward"]) for g in meta["merged"]] == [
        ("bi (call 1)", 2, 4),
        ("bi (call 2)", 3, 5),
    ]
    np.testing.assert_array_equal(out["0:x"], out["2:x"])  # both see input a
    np.testing.assert_array_equal(out["1:x"], out["3:x"])  # both see input b
    assert meta["skipped"] == [["td", "TimeDistributed holds LSTM: layers inside a TimeDistributed are not unpacked"]]


def test_stacked_cells_feed_each_other(oracle_pool, keras3_models, tf_keras_models):
    """Cell k's x is cell k-1's TF output sequence, in input order; each row
    carries the RNN's flags."""
    for framework, path, stacks in (
        ("keras3", keras3_models["rnn_cells.keras"], ((1, 2), (3, 4))),
        ("tf_keras", tf_keras_models["tf_cells.h5"], ((1, 2),)),
    ):
        meta, out = walk(oracle_pool, framework, path)
        for first, second in stacks:
            config = meta["layers"][second]["config"]
            h = out[f"{first}:h"][:, ::-1] if config["go_backwards"] else out[f"{first}:h"]
            np.testing.assert_array_equal(out[f"{second}:x"], h)
            np.testing.assert_array_equal(out[f"{second}:mask"], out[f"{first}:mask"])
    meta, _ = walk(oracle_pool, "keras3", keras3_models["rnn_cells.keras"])
    flags = [{k: layer["config"][k] for k in ("go_backwards", "zero_output_for_mask")} for layer in meta["layers"]]
    assert (
        flags
        == [{"go_backwards": True, "zero_output_for_mask": False}]
        + [{"go_backwards": False, "zero_output_for_mask": True}] * 2
        + [{"go_backwards": True, "zero_output_for_mask": False}] * 2
    )


def test_tf_keras_cell_with_implementation_1_runs_the_cell_loop(oracle_pool, tf_keras_models):
    """``RNN(LSTMCell(implementation=1))`` runs the cell; ``tf_keras.layers.LSTM``
    with tanh/sigmoid would take ``standard_lstm`` (always fused, 1 ulp away):
    the row says ``unroll=True``, which selects the cell loop."""
    meta, out = walk(oracle_pool, "tf_keras", tf_keras_models["tf_cells.h5"])
    config = meta["layers"][0]["config"]
    assert (config["implementation"], config["unroll"]) == (1, True)


def test_mixed_precision_rows(oracle_pool, keras3_models, tf_keras_models):
    meta, out = walk(oracle_pool, "keras3", keras3_models["mixed_layer.keras"])
    assert out["0:x"].dtype == np.float16 and out["0:h"].dtype == np.float16
    assert out["0:w:kernel"].dtype == np.float32
    assert out["1:x"].dtype == np.float32  # the next float32 layer casts the float16 sequence up
    for framework, path in (
        ("keras3", keras3_models["mixed_policy.keras"]),
        ("tf_keras", tf_keras_models["tf_mixed.h5"]),
    ):
        meta, out = walk(oracle_pool, framework, path)
        for i in range(len(meta["layers"])):
            assert out[f"{i}:x"].dtype == np.float16 and out[f"{i}:w:kernel"].dtype == np.float32
            assert case_of(meta, out, i).reference().policy.name == "mixed_float16"
        assert out["merged:0"].dtype == np.float16


def test_other_recurrent_layers_are_skipped_with_a_reason(oracle_pool, keras3_models, tf_keras_models):
    meta, _ = walk(oracle_pool, "keras3", keras3_models["others.keras"])
    assert sorted(meta["skipped"]) == sorted(
        [
            ["gru", "GRU: not an LSTM; lstm_ref has no GRU reference"],
            ["simple", "SimpleRNN: not an LSTM; lstm_ref has no SimpleRNN reference"],
            [
                "conv1d",
                "ConvLSTM1D: a convolutional LSTM (convolutions in place of matrix products); "
                "lstm_ref has no ConvLSTM reference",
            ],
            [
                "conv2d",
                "ConvLSTM2D: a convolutional LSTM (convolutions in place of matrix products); "
                "lstm_ref has no ConvLSTM reference",
            ],
            ["bi_gru", "Bidirectional wrapping GRU: not an LSTM; lstm_ref has no GRU reference"],
            ["rnn_gru", "RNN(GRUCell): not an LSTM cell; lstm_ref has no GRUCell reference"],
        ]
    )
    meta, _ = walk(oracle_pool, "tf_keras", tf_keras_models["tf_cells.h5"])
    assert meta["skipped"] == [["gru", "GRU: not an LSTM; lstm_ref has no GRU reference"]]


def test_reloads_when_the_file_changes(oracle_pool, keras3_models, tmp_path):
    path = tmp_path / "model.keras"
    shutil.copy(keras3_models["encdec.keras"], path)
    meta, _ = walk(oracle_pool, "keras3", path)
    assert [layer["path"] for layer in meta["layers"]] == ["encoder", "decoder"]
    shutil.copy(keras3_models["multi_input.keras"], path)
    meta, _ = walk(oracle_pool, "keras3", path)
    assert [layer["path"] for layer in meta["layers"]] == ["lstm_a", "lstm_b"]


def test_batches_of_one_input(oracle_pool, keras3_models):
    """The inputs in batches, one request each (as ``check`` sends them): each
    batch is a run of its own and matches."""
    tokens = np.random.default_rng(8).integers(1, 20, size=(5, 6)).astype("int32")
    tokens[3, 2:] = 0
    for rows_ in (slice(0, 2), slice(2, 4), slice(4, 5)):
        meta, out = walk(oracle_pool, "keras3", keras3_models["mixed_policy.keras"], {"tokens": tokens[rows_]})
        np.testing.assert_array_equal(out["0:mask"], tokens[rows_] != 0)
        assert_all_rows(meta, out, "keras.layers.LSTM")


# -- refusals: a clean message for the user


@pytest.mark.parametrize(
    "inputs, message",
    [
        (
            {"enc_in": np.zeros((3, 11), "float32"), "dec_in": np.zeros((3, 4, 3), "float32")},
            "input 'enc_in' expects shape (None, None, 4), got (3, 11)",
        ),
        (
            {"enc_in": np.zeros((3, 5, 2), "float32"), "dec_in": np.zeros((3, 4, 3), "float32")},
            "input 'enc_in' expects shape (None, None, 4), got (3, 5, 2)",
        ),
        ({"enc_in": np.zeros((3, 5, 4), "float32")}, "input 'dec_in' is missing"),
        (
            {
                "enc_in": np.zeros((3, 5, 4), "float32"),
                "dec_in": np.zeros((3, 4, 3), "float32"),
                "x": np.zeros((3, 5, 4), "float32"),
            },
            "unknown input 'x'",
        ),
        ({"enc_in": np.zeros((3, 5, 4), "float32"), "dec_in": np.zeros((2, 4, 3), "float32")}, "different batch sizes"),
        ({"": np.zeros((3, 5, 4), "float32")}, "the model has 2 inputs; give each as --input NAME=FILE"),
    ],
)
def test_wrong_inputs_are_user_errors(oracle_pool, keras3_models, inputs, message):
    with pytest.raises(OracleInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        walk(oracle_pool, "keras3", keras3_models["encdec.keras"], inputs)


def test_tokens_must_be_integers(oracle_pool, keras3_models):
    with pytest.raises(OracleInputError, match="expects integers"):
        walk(oracle_pool, "keras3", keras3_models["embed_lstm.keras"], {"tokens": np.full((2, 3), 1.5)})


def test_model_without_lstm(oracle_pool, keras3_models):
    """Other recurrent layers are listed as skipped, not refused: the harness
    lists them and exits 2 (test_check_command.py)."""
    meta, out = walk(oracle_pool, "keras3", keras3_models["no_lstm.keras"])
    assert meta["layers"] == [] and out == {}
    assert [name for name, _ in meta["skipped"]] == ["gru"] and "GRU" in meta["skipped"][0][1]


def test_file_keras_cannot_load(oracle_pool, tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a model\n")
    with pytest.raises(OracleInputError, match=f"keras cannot load {path} as a model: ") as info:
        walk(oracle_pool, "keras3", path)
    assert "\n" not in str(info.value)


# -- model_format: which worker, or why not


def test_model_format_of_saved_models(keras3_models, tf_keras_models):
    assert model_format(keras3_models["encdec.keras"])[0] == "keras3"
    fmt, description = model_format(keras3_models["encdec.h5"])
    assert fmt == "keras3" and description.startswith("Keras 3.") and description.endswith(" HDF5 model")
    assert model_format(tf_keras_models["tf_encdec.h5"]) == ("tf_keras", "Keras 2.21.0 HDF5 model")
    assert model_format(tf_keras_models["tf_encdec"])[0] == "tf_keras"


def _bad_files(tmp_path):
    (tmp_path / "plain_dir").mkdir()
    export = tmp_path / "exported"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"\x08\x01")
    (tmp_path / "notes.txt").write_text("hello\n")
    np.save(tmp_path / "x.npy", np.zeros(3))
    np.savez(tmp_path / "x.npz", x=np.zeros(3))
    (tmp_path / "empty.h5").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "ok.keras", "w") as zf:
        zf.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"\0" * 4096)
    data = (tmp_path / "ok.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    (tmp_path / "truncated.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.keras", "no such file or directory"),
        ("plain_dir", "is a directory but not a SavedModel"),
        ("exported", "SavedModel without keras_metadata.pb .*--scope"),
        ("notes.txt", "is a text file, not a Keras model"),
        ("x.npy", r"is a NumPy array \(.npy\), not a model"),
        ("x.npz", "is a NumPy .npz archive, not a model"),
        ("empty.h5", "is an empty file"),
        ("truncated.keras", "truncated or corrupt zip"),
        ("truncated.h5", "not a readable HDF5 file"),
    ],
)
def test_model_format_refuses(tmp_path, name, message):
    _bad_files(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        model_format(tmp_path / name)
    assert str(tmp_path / name) in str(info.value)


def test_model_format_of_a_keras_zip(tmp_path):
    _bad_files(tmp_path)
    assert model_format(tmp_path / "ok.keras") == ("keras3", "Keras 3.15.1 .keras archive")
