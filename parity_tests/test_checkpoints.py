"""``lstm_ref.harness.checkpoints.load_weights`` on checkpoints that TF writes here.

The writer runs in a subprocess (``TF_USE_LEGACY_KERAS=1``, TF1 graph mode),
because the test process has Keras 3 loaded: it trains a ``dynamic_rnn`` over
an ``LSTMCell`` for two Adam steps (so the checkpoint holds optimizer slots
too), saves a ``tf.compat.v1.train.Saver`` checkpoint and a TF1 SavedModel,
and records the outputs.  The reference, fed the loaded weights, must
reproduce them.  A second, eager writer saves a TF2 object-based checkpoint
and SavedModel.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lstm_ref
from lstm_ref import WeightError
from lstm_ref.harness.checkpoints import load_weights
from lstm_ref.harness.compare import assert_parity

KIND = "tf.compat.v1.nn.rnn_cell.LSTMCell"
CONFIG = {"num_units": 4, "use_peepholes": True, "num_proj": 3, "cell_clip": 0.8, "proj_clip": 0.5, "forget_bias": 0.5}
EXPECTED_NAMES = ["bias", "kernel", "projection/kernel", "w_f_diag", "w_i_diag", "w_o_diag"]

TF1_WRITER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np
    import tensorflow as tf
    tf1 = tf.compat.v1
    out, config = Path(sys.argv[1]), json.loads(sys.argv[2])
    tf1.disable_eager_execution()
    rng = np.random.default_rng(1)
    x_val = rng.standard_normal((2, 5, 3)).astype("float32")
    lengths = np.array([5, 3], np.int32)
    with tf1.Graph().as_default() as g:
        tf1.set_random_seed(1)
        x = tf1.placeholder(tf.float32, (None, None, 3), name="x")
        seq = tf1.placeholder(tf.int32, (None,), name="seq")
        cell = tf1.nn.rnn_cell.LSTMCell(**config, initializer=tf1.random_uniform_initializer(-1.0, 1.0))
        outputs, state = tf1.nn.dynamic_rnn(cell, x, sequence_length=seq, dtype=tf.float32)
        train = tf1.train.AdamOptimizer(0.05).minimize(tf.reduce_sum(tf.square(outputs)))
        with tf1.Session(graph=g) as sess:
            sess.run(tf1.global_variables_initializer())
            for _ in range(2):
                sess.run(train, {x: x_val, seq: lengths})
            h, c, m = sess.run([outputs, state.c, state.h], {x: x_val, seq: lengths})
            tf1.train.Saver().save(sess, str(out / "ckpt" / "model.ckpt"), global_step=2)
            tf1.saved_model.simple_save(sess, str(out / "saved_model"), {"x": x, "seq": seq}, {"h": outputs})
    np.savez(out / "expected.npz", x=x_val, lengths=lengths, h=h, final_c=c, final_h=m)
""")

TF2_WRITER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    tf1 = tf.compat.v1
    out, config = sys.argv[1], json.loads(sys.argv[2])
    cell = tf1.nn.rnn_cell.LSTMCell(**config)
    cell.build((None, 3))
    rng = np.random.default_rng(2)
    for v in cell.weights:
        v.assign(rng.standard_normal(v.shape))
    module = tf.Module()
    module.cell = cell
    tf.train.Checkpoint(model=module).write(out + "/tf2/ckpt")
    module.run = tf.function(lambda x: tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)[0],
                             input_signature=[tf.TensorSpec((None, None, 3), tf.float32)])
    tf.saved_model.save(module, out + "/tf2_saved_model")
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    outputs, state = tf1.nn.dynamic_rnn(cell, tf.constant(x), dtype=tf.float32)
    np.savez(out + "/expected_tf2.npz", x=x, h=outputs.numpy(), final_c=state.c.numpy(), final_h=state.h.numpy())
""")


def _write(script, directory):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(directory), json.dumps(CONFIG)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode:
        pytest.fail(f"checkpoint writer failed:\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="module")
def written(tensorflow_process, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tf_checkpoints")
    _write(TF1_WRITER, directory)
    _write(TF2_WRITER, directory)
    return directory


def _check_reproduces(weights, expected, mask=None, context=""):
    ref = lstm_ref.from_config(KIND, CONFIG)
    trace = ref.run(expected["x"], weights, mask=mask)
    # The writers record what dynamic_rnn returns: outputs and the final
    # state.  Per-step c is not among them (the live tests check it), so the
    # reference's own c stands in and only h, final_h and final_c are judged.
    desired = {"h": expected["h"], "c": trace.c, "final_h": expected["final_h"], "final_c": expected["final_c"]}
    assert_parity(trace, desired, ref.policy.compute, kind=ref.kind, context=context)


@pytest.mark.parametrize("where", ["ckpt", "ckpt/model.ckpt-2", "saved_model"])
def test_tf1_files_reproduce_tf(written, where):
    weights = load_weights(written / where, "rnn/lstm_cell")
    assert sorted(weights) == EXPECTED_NAMES  # Adam slots and beta powers are left out
    assert all(w.dtype == np.float32 for w in weights.values())
    expected = np.load(written / "expected.npz")
    mask = np.arange(5)[None, :] < expected["lengths"][:, None]
    _check_reproduces(weights, expected, mask, context=f"{KIND} {CONFIG} from {where}")


@pytest.mark.parametrize(
    "where, scope", [("tf2/ckpt", "model/cell"), ("tf2_saved_model", "cell"), ("tf2_saved_model", "lstm_cell")]
)
def test_tf2_files_reproduce_tf(written, where, scope):
    """Object paths (``projection.Skernel`` unescaped) and, in a SavedModel,
    the variables' own names."""
    weights = load_weights(written / where, scope)
    assert sorted(weights) == EXPECTED_NAMES
    _check_reproduces(weights, np.load(written / "expected_tf2.npz"), context=f"{KIND} {CONFIG} from {where}")


@pytest.mark.parametrize(
    "where, scope, pattern",
    [
        (
            "ckpt",
            "rnn/basic_lstm_cell",
            r"no variable under scope 'rnn/basic_lstm_cell'.*scopes found: .*'rnn/lstm_cell'",
        ),
        ("saved_model", "lstm_cell", r"scopes found: .*'rnn/lstm_cell'"),
        ("tf2/ckpt", "rnn/lstm_cell", r"scopes found: .*'model/cell'"),
        ("tf2_saved_model", "rnn/lstm_cell", r"object paths found: \['cell'\].*variable names found: .*'lstm_cell'"),
        ("nowhere/model.ckpt", "rnn/lstm_cell", r"no checkpoint"),
    ],
)
def test_unknown_scope_or_path_lists_what_is_there(written, where, scope, pattern):
    with pytest.raises(WeightError, match=pattern):
        load_weights(written / where, scope)


def test_check_command_on_the_checkpoint(written, tmp_path):
    """docs/check.md's command on this peephole/projection checkpoint: PASS with
    the right config; with a config that does not fit, the reference's own
    "unknown weight(s)" message and exit 2, before TF runs the cell."""
    expected = np.load(written / "expected.npz")
    np.save(tmp_path / "x.npy", expected["x"])
    base = [
        sys.executable,
        "-m",
        "lstm_ref",
        "check",
        os.path.relpath(written / "ckpt", tmp_path),
        "--scope",
        "rnn/lstm_cell",
        "--kind",
        KIND,
        "--input",
        "x.npy",
    ]
    proc = subprocess.run([*base, "--config", json.dumps(CONFIG)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = subprocess.run([*base, "--config", '{"num_units": 4}'], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown weight(s) ['projection/kernel', 'w_f_diag', 'w_i_diag', 'w_o_diag']" in proc.stderr
    # One line: TF's C++ start-up lines (absl, oneDNN, the CUDA stub) are held back.
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
