"""Real saved models for the ``model_lstms`` tests (``test_model_walk.py``).

Each framework's models are built by ONE small script run in a subprocess
(the test process must not import two Keras versions): Keras 3 writes
``.keras`` (and ``.h5`` where named), Keras 2 (``tf_keras`` under
``TF_USE_LEGACY_KERAS=1``) writes ``.h5`` and SavedModel directories
(``model.save(dir)``).  Shapes are tiny; weights are seeded.

``build(framework, directory)`` -> ``{name: path}`` for every file written.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_COMMON = textwrap.dedent("""
    import os, sys
    OUT = sys.argv[1]
    WRITTEN = []

    def save(model, name, *exts, **kwargs):
        for ext in exts:
            path = os.path.join(OUT, name + ext)
            model.save(path, **(kwargs if not ext else {}))
            WRITTEN.append(name + ext)
""")

KERAS3 = _COMMON + textwrap.dedent("""
    import keras
    from keras import layers as L
    keras.utils.set_random_seed(0)
    B = {"bias_initializer": "random_normal"}

    # 1. Embedding(mask_zero) -> LSTM -> Dense
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    h = L.LSTM(5, name="lstm", **B)(e)
    save(keras.Model(tok, L.Dense(3, name="dense")(h)), "embed_lstm", ".keras", ".h5")

    # 2a. Masking -> LSTM (Sequential)
    seq = keras.Sequential([keras.Input((None, 3), name="frames"), L.Masking(0.0, name="masking"),
                            L.LSTM(4, return_sequences=True, name="lstm", **B)], name="masked_seq")
    save(seq, "masking_lstm", ".keras")

    # 2b. a mask passed explicitly: lstm(x, mask=m)
    x = keras.Input((None, 3), name="x")
    m = keras.Input((None,), dtype="bool", name="m")
    y = L.LSTM(4, return_sequences=True, name="lstm", **B)(x, mask=m)
    save(keras.Model([x, m], y), "explicit_mask", ".keras")

    # 3. Bidirectional: every merge mode x return_sequences, masked and not; one with return_state
    for masked in (True, False):
        if masked:
            inp = keras.Input((None,), dtype="int32", name="tokens")
            feat = L.Embedding(20, 3, mask_zero=True, name="embed")(inp)
        else:
            inp = keras.Input((None, 3), name="frames")
            feat = inp
        outs = []
        for mode in ("concat", "sum", "mul", "ave", None):
            for rs in (True, False):
                name = f"bi_{mode or 'none'}_{'seq' if rs else 'last'}"
                y = L.Bidirectional(L.LSTM(3, return_sequences=rs, name="lstm", **B), merge_mode=mode, name=name)(feat)
                outs += list(y) if isinstance(y, (list, tuple)) else [y]
        y = L.Bidirectional(L.LSTM(2, return_sequences=True, return_state=True, name="lstm", **B),
                            name="bi_state")(feat)
        outs += list(y)
        save(keras.Model(inp, outs), "bidi_masked" if masked else "bidi_plain", ".keras", *([".h5"] if masked else []))

    # 4. encoder-decoder: two inputs, the decoder starts from the encoder's states
    enc_in = keras.Input((None, 4), name="enc_in")
    dec_in = keras.Input((None, 3), name="dec_in")
    _, eh, ec = L.LSTM(5, return_state=True, name="encoder", **B)(enc_in)
    d = L.LSTM(5, return_sequences=True, name="decoder", **B)(dec_in, initial_state=[eh, ec])
    save(keras.Model([enc_in, dec_in], d), "encdec", ".keras", ".h5")

    # 4b. encoder-decoder on masked tokens
    enc_tok = keras.Input((None,), dtype="int32", name="enc_tokens")
    dec_tok = keras.Input((None,), dtype="int32", name="dec_tokens")
    enc_e = L.Embedding(20, 3, mask_zero=True, name="enc_embed")(enc_tok)
    dec_e = L.Embedding(20, 3, mask_zero=True, name="dec_embed")(dec_tok)
    _, eh, ec = L.LSTM(4, return_state=True, name="encoder", **B)(enc_e)
    d = L.LSTM(4, return_sequences=True, name="decoder", **B)(dec_e, initial_state=[eh, ec])
    save(keras.Model([enc_tok, dec_tok], d), "encdec_masked", ".keras")

    # 5. two inputs by name, each into its own LSTM
    a = keras.Input((None, 3), name="a")
    b = keras.Input((None, 2), name="b")
    ya = L.LSTM(4, name="lstm_a", **B)(a)
    yb = L.LSTM(3, go_backwards=True, name="lstm_b", **B)(b)
    save(keras.Model({"a": a, "b": b}, L.Concatenate(name="cat")([ya, yb])), "multi_input", ".keras")

    # 6. LSTMs inside a nested Sequential and a nested functional submodel
    inner_seq = keras.Sequential([keras.Input((None, 3)), L.LSTM(4, return_sequences=True, name="lstm", **B),
                                  L.Dense(3, name="dense")], name="inner_seq")
    fi = keras.Input((None, 3), name="fin")
    inner_fn = keras.Model(fi, L.LSTM(2, return_sequences=True, go_backwards=True, name="lstm", **B)(fi),
                           name="inner_fn")
    outer_in = keras.Input((None, 3), name="outer_in")
    save(keras.Model(outer_in, inner_fn(inner_seq(outer_in))), "nested", ".keras", ".h5")

    # 5b. a layer called twice (one row per call), a shared Bidirectional, an LSTM inside TimeDistributed
    a = keras.Input((None, 3), name="a")
    b = keras.Input((None, 3), name="b")
    c = keras.Input((None, 4, 3), name="c")
    shared = L.LSTM(4, name="shared", **B)
    bi = L.Bidirectional(L.LSTM(2, return_sequences=True, name="lstm", **B), merge_mode="sum", name="bi")
    td = L.TimeDistributed(L.LSTM(2, name="inner"), name="td")(c)
    save(keras.Model([a, b, c], [shared(a), shared(b), bi(a), bi(b), td]), "shared", ".keras")

    # 7. RNN(LSTMCell) and RNN(StackedRNNCells([LSTMCell, LSTMCell])), masked
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 3, mask_zero=True, name="embed")(tok)
    r1 = L.RNN(L.LSTMCell(4, **B), return_sequences=True, go_backwards=True, name="rnn_cell")(e)
    r2 = L.RNN(L.StackedRNNCells([L.LSTMCell(4, name="c0", **B), L.LSTMCell(3, name="c1", **B)]),
               return_sequences=True, return_state=True, zero_output_for_mask=True, name="rnn_stack")(e)
    r3 = L.RNN(L.StackedRNNCells([L.LSTMCell(3, name="c0", **B), L.LSTMCell(2, name="c1", **B)]),
               go_backwards=True, name="rnn_stack_back")(e)
    save(keras.Model(tok, [r1, *r2, r3]), "rnn_cells", ".keras", ".h5")

    # 8. return_state x return_sequences, every combination
    inp = keras.Input((None, 3), name="frames")
    outs = []
    for rs in (False, True):
        for st in (False, True):
            y = L.LSTM(3, return_sequences=rs, return_state=st, name=f"lstm_rs{int(rs)}_st{int(st)}", **B)(inp)
            outs += list(y) if st else [y]
    save(keras.Model(inp, outs), "returns", ".keras")

    # 9a. one mixed_float16 layer in a float32 model
    inp = keras.Input((None, 3), name="frames")
    y = L.LSTM(4, return_sequences=True, dtype="mixed_float16", name="lstm16", **B)(inp)
    save(keras.Model(inp, L.LSTM(3, name="lstm32", **B)(y)), "mixed_layer", ".keras")

    # 9b. a model built under the mixed policy
    keras.mixed_precision.set_global_policy("mixed_float16")
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    y = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm", **B), merge_mode="ave", name="bi")(e)
    y = L.LSTM(3, return_state=True, name="top", **B)(y)
    save(keras.Model(tok, y), "mixed_policy", ".keras", ".h5")
    keras.mixed_precision.set_global_policy("float32")

    # 11. GRU / SimpleRNN / ConvLSTM1D / ConvLSTM2D next to an LSTM
    s = keras.Input((None, 3), name="seq")
    c1 = keras.Input((None, 5, 2), name="img1d")
    c2 = keras.Input((None, 4, 4, 1), name="img2d")
    outs = [L.LSTM(3, name="lstm", **B)(s), L.GRU(3, name="gru")(s), L.SimpleRNN(3, name="simple")(s),
            L.Flatten()(L.ConvLSTM1D(2, 3, name="conv1d")(c1)), L.Flatten()(L.ConvLSTM2D(2, 3, name="conv2d")(c2)),
            L.Bidirectional(L.GRU(2), name="bi_gru")(s), L.RNN(L.GRUCell(2), name="rnn_gru")(s)]
    save(keras.Model([s, c1, c2], outs), "others", ".keras")

    # errors: no LSTM at all
    s = keras.Input((None, 3), name="seq")
    save(keras.Model(s, L.Dense(2, name="dense")(L.GRU(3, name="gru")(s))), "no_lstm", ".keras")
    print("\\n".join(WRITTEN))
""")

TF_KERAS = _COMMON + textwrap.dedent("""
    import tf_keras as keras
    from tf_keras import layers as L
    keras.utils.set_random_seed(0)
    B = {"bias_initializer": "random_normal"}

    # 10a. Embedding(mask_zero) -> LSTM -> Dense
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    h = L.LSTM(5, name="lstm", **B)(e)
    save(keras.Model(tok, L.Dense(3, name="dense")(h)), "tf_embed_lstm", ".h5", "")

    # 10b. Bidirectional, masked: every merge mode, return_sequences both ways, return_state
    # (five layers: building a tf_keras LSTM symbolically costs ~0.8 s)
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 3, mask_zero=True, name="embed")(tok)
    outs = []
    for mode, rs, st in (("concat", True, True), ("sum", False, False), ("mul", True, False), ("ave", False, True),
                         (None, True, False)):
        y = L.Bidirectional(L.LSTM(3, return_sequences=rs, return_state=st, name="lstm", **B), merge_mode=mode,
                            name=f"bi_{mode or 'none'}_{'seq' if rs else 'last'}")(e)
        outs += list(y) if isinstance(y, (list, tuple)) else [y]
    save(keras.Model(tok, outs), "tf_bidi", ".h5")
    # ... and a small one as a SavedModel (save_traces=False: 2 s where the traced save takes 16 s
    # per Bidirectional; the loader revives built-in layers from their configs either way)
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 3, mask_zero=True, name="embed")(tok)
    y1 = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm", **B), name="bi_concat_seq")(e)
    y2 = L.Bidirectional(L.LSTM(3, name="lstm", **B), merge_mode="sum", name="bi_sum_last")(e)
    save(keras.Model(tok, [y1, y2]), "tf_bidi_small", "", save_traces=False)

    # 10c. encoder-decoder, and the same on masked tokens
    enc_in = keras.Input((None, 4), name="enc_in")
    dec_in = keras.Input((None, 3), name="dec_in")
    _, eh, ec = L.LSTM(5, return_state=True, name="encoder", **B)(enc_in)
    d = L.LSTM(5, return_sequences=True, name="decoder", **B)(dec_in, initial_state=[eh, ec])
    save(keras.Model([enc_in, dec_in], d), "tf_encdec", ".h5", "", save_traces=False)
    enc_tok = keras.Input((None,), dtype="int32", name="enc_tokens")
    dec_tok = keras.Input((None,), dtype="int32", name="dec_tokens")
    enc_e = L.Embedding(20, 3, mask_zero=True, name="enc_embed")(enc_tok)
    dec_e = L.Embedding(20, 3, mask_zero=True, name="dec_embed")(dec_tok)
    _, eh, ec = L.LSTM(4, return_state=True, name="encoder", **B)(enc_e)
    d = L.LSTM(4, return_sequences=True, name="decoder", **B)(dec_e, initial_state=[eh, ec])
    save(keras.Model([enc_tok, dec_tok], d), "tf_encdec_masked", ".h5")

    # RNN(LSTMCell) (implementation=1: the cell path, not standard_lstm), stacked cells; a GRU beside
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 3, mask_zero=True, name="embed")(tok)
    r1 = L.RNN(L.LSTMCell(4, implementation=1, **B), return_sequences=True, name="rnn_cell")(e)
    r2 = L.RNN(L.StackedRNNCells([L.LSTMCell(4, name="c0", **B), L.LSTMCell(3, name="c1", **B)]),
               return_sequences=True, return_state=True, go_backwards=True, name="rnn_stack")(e)
    g = L.GRU(2, name="gru")(e)
    save(keras.Model(tok, [r1, *r2, g]), "tf_cells", ".h5")

    # mixed precision under the policy
    keras.mixed_precision.set_global_policy("mixed_float16")
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = L.Embedding(20, 4, mask_zero=True, name="embed")(tok)
    y = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm", **B), name="bi")(e)
    save(keras.Model(tok, L.LSTM(3, name="top", **B)(y)), "tf_mixed", ".h5")
    keras.mixed_precision.set_global_policy("float32")
    print("\\n".join(WRITTEN))
""")

SCRIPTS = {"keras3": (KERAS3, {}), "tf_keras": (TF_KERAS, {"TF_USE_LEGACY_KERAS": "1"})}


def build(framework, directory):
    """Run the framework's builder script once; ``{name: path}`` of what it
    wrote (``embed_lstm.keras``, ``tf_bidi`` for a SavedModel directory...)."""
    script, extra = SCRIPTS[framework]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0", **extra}
    done = subprocess.run(
        [sys.executable, "-c", script, str(directory)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if done.returncode:
        raise RuntimeError(f"building the {framework} models failed:\n{done.stderr[-4000:]}")
    names = [line for line in done.stdout.splitlines() if line and Path(directory, line).exists()]
    return {name: Path(directory, name) for name in names}
