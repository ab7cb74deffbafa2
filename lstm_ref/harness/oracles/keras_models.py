"""Every LSTM in a saved Keras model, on exactly what it receives in one run.

Framework-agnostic over the ``keras`` module it is given: Keras 3 (``keras``)
or Keras 2 (``tf_keras``); imported only by the two workers, whose own
``run`` handler gives TF's per-step h and c.  Reply format: the
``model_lstms`` op in ``keras3_worker.py``.

How the inputs are recorded.  Each LSTM-bearing layer (``LSTM``, ``RNN``
over an ``LSTMCell`` or a ``StackedRNNCells`` of them) and each
``Bidirectional`` gets its ``call`` wrapped (an instance attribute, keeping
the signature); the loaded model then runs ONCE, eagerly, on the inputs, and
each wrapper records the arguments the framework passed to ``call`` -- after
its ``__call__`` has autocast the inputs (float16 under ``mixed_float16``)
and filled in ``mask`` from the upstream ``_keras_mask`` -- and what it
returned.  Each recorded call is then re-run through ``run`` (with
``cross_check``: TF's own layer too), which gives TF's per-step h and c.
What the layer returned in the model run (the sequence, or its last step,
and the final states) travels back too, as ``{i}:model:<field>``: the
harness compares the reference with it as well, so that a layer whose
``call`` computes something else than its class's with its config and
weights (a subclass with a bug, a patched call) fails its row instead of
passing on the re-run.  For a plain LSTM the two agree bitwise
(``test_model_walk.py``).

What the frameworks do, measured here (TF 2.21, Keras 3.15, tf_keras 2.21):

* ``Bidirectional`` rebuilds both directions from the wrapped layer's config
  (``forward_<name>``, ``backward_<name>`` with ``go_backwards`` flipped) and
  forces ``zero_output_for_mask = return_sequences`` on both
  (``keras/src/layers/rnn/bidirectional.py`` and
  ``tf_keras/src/layers/rnn/bidirectional.py``, ``force_zero_output_for_mask``):
  a masked Bidirectional sequence has zeros at masked steps although a plain
  LSTM repeats the previous output.  The setting is in each direction's
  ``get_config()``, so the row's config carries it.  Both directions get the
  same mask (input order); the backward sequence is flipped back to input
  order before merging only when ``return_sequences`` (``ops.flip`` /
  ``backend.reverse``); with ``return_sequences=False`` the backward "last
  output" is its last *processing* step, i.e. input step 0.  Keras 3's fused
  ``_call_fused_lstm`` path is never taken on the CPU
  (``backend.tensorflow.rnn.bidirectional_lstm`` raises
  ``NotImplementedError``).
* Keras 3 ``Layer.__call__`` fills in ``mask`` only when ``call`` gets a
  single tensor argument (``keras/src/layers/layer.py``, step 6): an LSTM
  called as ``lstm(x, initial_state=[h, c])`` does NOT receive ``x``'s
  Embedding/Masking mask.  tf_keras does pass it (``RNN.__call__`` turns
  ``initial_state`` into extra inputs, ``[x, h, c]``, whose masks are
  ``[mask, None, None]``, ``tf_keras/src/layers/rnn/base_rnn.py``; ``LSTM.call``
  takes the first, ``tf_keras/src/layers/rnn/lstm.py``).  Recording what
  ``call`` got covers both.
* Keras 3 ``LSTMCell.get_config`` and ``LSTM.get_config`` drop
  ``implementation``; the attribute survives only in a live layer, so a
  loaded model always runs implementation 2 (1 under recurrent dropout).
* An ``RNN(LSTMCell)`` row's config is the cell's ``get_config()`` plus the
  RNN's flags (``go_backwards``, ``zero_output_for_mask``, ``unroll``,
  ``return_*``, ``time_major`` in tf_keras).  tf_keras' ``LSTM`` takes
  ``standard_lstm`` (no implementation switch) where ``RNN(LSTMCell)`` runs
  the cell itself, so an ``implementation=1`` cell under tanh/sigmoid is
  given ``unroll=True``, which selects the cell loop in ``tf_keras.layers.LSTM``
  and in the reference alike (the unrolled loop is bitwise the while loop).
* ``RNN(StackedRNNCells)``: one row per cell; cell k's ``x`` is cell k-1's
  TF output sequence (flipped to input order under ``go_backwards``), with
  the RNN's mask.  At a masked step cell k really gets cell k-1's *new*
  output, not the repeated one, but that step is masked for cell k too, so
  its outputs and states do not depend on it.
"""

import functools
import gc
import inspect
import json
import os
import re

import numpy as np

from lstm_ref.harness.oracles import protocol

_LOADED = {}  # (framework, path, mtime) -> _Model; one entry, so that memory stays flat

_NOT_LSTM = {
    "GRU": "not an LSTM; lstm_ref has no GRU reference",
    "SimpleRNN": "not an LSTM; lstm_ref has no SimpleRNN reference",
    "ConvLSTM1D": "a convolutional LSTM (convolutions in place of matrix products); lstm_ref has no ConvLSTM reference",
    "ConvLSTM2D": "a convolutional LSTM (convolutions in place of matrix products); lstm_ref has no ConvLSTM reference",
    "ConvLSTM3D": "a convolutional LSTM (convolutions in place of matrix products); lstm_ref has no ConvLSTM reference",
}


def _tf():
    import tensorflow as tf  # the backend of both frameworks

    return tf


def _first_line(exc):
    text = str(exc).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line if len(line) <= 300 else line[:297] + "..."
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _stamp(path):
    if os.path.isdir(path):
        stamps = []
        for root, _, files in os.walk(path):
            for name in files:
                st = os.stat(os.path.join(root, name))
                stamps.append((st.st_mtime_ns, st.st_size))
        return max(stamps, default=(0, 0)), len(stamps)
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size), 1


def _numpy(t):
    return None if t is None else np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def _short_name(var):
    # Keras 3: "kernel"; tf_keras: "lstm/lstm_cell/kernel:0" -> "kernel"
    return var.name.rsplit("/", 1)[-1].split(":", 1)[0]


def _json(config):
    return json.loads(json.dumps(config))


def _shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _keras3_op(keras, name):
    """The Keras 3 operation class called ``name`` (``keras.src.ops``), or None."""
    ops = getattr(getattr(keras, "src", None), "ops", None)
    if ops is None or keras.__name__ != "keras":
        return None
    for module in ("numpy", "math", "nn", "core", "linalg", "image"):
        cls = getattr(getattr(ops, module, None), name, None)
        if isinstance(cls, type) and issubclass(cls, ops.operation.Operation):
            return cls
    return None


def carry_probe(rnn_class, wrapped_cell, layer, **flags):
    """The ``RNN`` (of the worker's Keras) that runs ``wrapped_cell``, a cell
    whose output is ``concat([h, c])``, with ``layer``'s own flags and
    policy, returning the sequence and the states."""
    return rnn_class(
        wrapped_cell,
        return_sequences=True,
        return_state=True,
        go_backwards=layer.go_backwards,
        unroll=layer.unroll,
        dtype=layer.dtype_policy,
        **flags,
    )


def carried_c(probe_c, mask, go_backwards, c0):
    """The carried c at every step, from a probe whose output is
    ``concat([h, c])`` under Keras' masking (a masked step repeats the
    previous output): the probe's c at the row's last valid step so far,
    ``c0`` before any.  ``mask`` is in input order; ``None``: no mask."""
    if mask is None:
        return probe_c
    mask = np.asarray(mask, bool)
    mask = mask[:, ::-1] if go_backwards else mask
    steps = np.arange(mask.shape[1])
    last_valid = np.maximum.accumulate(np.where(mask, steps, -1), axis=1)
    gathered = np.take_along_axis(probe_c, np.maximum(last_valid, 0)[..., None], axis=1)
    return np.where(last_valid[..., None] >= 0, gathered, c0[:, None, :])


def _root_cause(exc):
    """The innermost message of an exception chain (Keras wraps "Could not
    locate class 'X'" in a generic deserialization error), with the fix
    for a custom class."""
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    text = _first_line(exc)
    if "Could not locate class" in text or "Unknown layer" in text:
        text = text.split(". ")[0] + "; give the file that defines it with --custom-objects FILE.py"
    return text


def _load_model(keras, path):
    """``keras.models.load_model(path, compile=False)``, a failure as a
    ``UserError`` naming the file and what Keras said.

    One Keras 3.15 gap is bridged: a functional model saved to ``.h5``
    records the mask that ``Embedding(mask_zero=True)`` implies as an
    operation node (``NotEqual``, from ``ops.not_equal``, feeding the LSTM's
    ``mask=``), and the legacy loader looks class names up among layers only
    (``keras/src/legacy/saving/serialization.py``: "Unknown layer:
    'NotEqual'").  Such names are given back their Keras 3 operation class
    as a custom object: the model then runs Keras' own ops.
    """
    custom = {}
    while True:
        try:
            return keras.models.load_model(path, compile=False, custom_objects=custom or None)
        except Exception as exc:  # noqa: BLE001 - any load failure is the user's file
            text = str(exc)
            marker = "Unknown layer: '"
            name = text[text.index(marker) + len(marker) :].split("'", 1)[0] if marker in text else None
            op = _keras3_op(keras, name) if name and name not in custom else None
            if op is None:
                raise protocol.UserError(
                    f"{keras.__name__} cannot load {path} as a model: {_root_cause(exc)}"
                ) from None
            custom[name] = op


def _check_tokens(name, tokens, layer, vocabulary, row_offset=0):
    """Tokens of input ``name`` outside ``[0, vocabulary)`` of the Embedding
    ``layer`` that reads it: a ``UserError`` naming the input, the first
    such token (row, step) and the vocabulary size."""
    bad = (tokens < 0) | (tokens >= vocabulary)
    if not np.any(bad):
        return
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    position = (
        f"row {where[0] + row_offset}"
        + (f", step {where[1]}" if len(where) > 1 else "")
        + (f", {', '.join(map(str, where[2:]))}" if len(where) > 2 else "")
    )
    raise protocol.UserError(
        f"input {name!r} holds token {tokens[where].item()} ({position}; {int(bad.sum())} out of range in all), "
        f"outside the vocabulary of Embedding {layer!r} (input_dim {vocabulary}: tokens 0..{vocabulary - 1})"
    )


def _out_of_range_gather(exc):
    """TF's message for an Embedding lookup out of range (an Embedding not
    fed by a model input directly, so not checked before the run), as
    ``(token, vocabulary)``, or None."""
    found = re.search(r"indices\[[\d,]+\] = (-?\d+) is not in \[0, (\d+)\)", str(exc))
    return (int(found.group(1)), int(found.group(2))) if found else None


def cast_input(name, a, dtype):
    """``(array, cast)``: input ``name`` given as ``a`` in the model's
    ``dtype``, and None when nothing was cast, else a dict saying what the
    cast did (``input``, ``given``, ``cast_to``, ``exact``, ``max_change``).

    Refused (``UserError``), as lossy: to an integer dtype, values that are
    not whole numbers or lie outside the dtype's range; to a float dtype,
    finite values that overflow it (become infinite) or non-zero values that
    underflow to zero, and integers it does not hold exactly (beyond 2**24
    for float32).  Allowed and noted: float64 -> float32 rounding of values
    the dtype holds (``max_change``: the largest |cast - given|)."""
    if a.dtype == dtype:
        return a, None
    cast = {"input": name, "given": a.dtype.name, "cast_to": dtype.name, "exact": True, "max_change": 0.0}
    if dtype.kind == "b":
        return a.astype(dtype), cast
    if dtype.kind in "iu":
        if a.dtype.kind == "f" and (not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a))):
            raise protocol.UserError(
                f"input {name!r} expects integers ({dtype.name}), got non-integer {a.dtype.name} values"
            )
        info = np.iinfo(dtype)
        if a.size and (a.min() < info.min or a.max() > info.max):
            value = a.min() if a.min() < info.min else a.max()
            raise protocol.UserError(
                f"input {name!r}: {a.dtype.name} value {value.item()} does not fit the model's "
                f"{dtype.name} ({info.min}..{info.max}); casting would change it"
            )
        return a.astype(dtype), cast
    with np.errstate(all="ignore"):
        out = a.astype(dtype)
    if a.dtype.kind == "b":
        return out, cast
    if a.dtype.kind in "iu":  # exact only if the value comes back unchanged (compared as integers)
        back_type, bound = (np.int64, 2.0**63) if a.dtype.kind == "i" else (np.uint64, 2.0**64)
        ok = np.isfinite(out) & (np.abs(out.astype(np.float64)) < bound)
        back = np.zeros(a.shape, back_type)
        back[ok] = out[ok].astype(back_type)
        wrong = ~ok | (back != a)
        if np.any(wrong):
            value = a[tuple(np.argwhere(wrong)[0])].item()
            raise protocol.UserError(
                f"input {name!r}: {a.dtype.name} value {value} is not exactly a {dtype.name}; casting would change it"
            )
        return out, cast
    given_finite = np.isfinite(a)
    overflow = given_finite & ~np.isfinite(out)
    underflow = (a != 0) & (out == 0)
    if np.any(overflow) or np.any(underflow):
        value = a[tuple(np.argwhere(overflow | underflow)[0])].item()
        raise protocol.UserError(
            f"input {name!r}: {a.dtype.name} value {value!r} cannot be held by the model's {dtype.name} (it would "
            f"become {'infinite' if np.any(overflow) else 'zero'}); scale the input or give {dtype.name} values"
        )
    both = given_finite & np.isfinite(out)
    change = float(np.max(np.abs(out[both].astype(np.float64) - a[both].astype(np.float64)))) if both.any() else 0.0
    cast.update(exact=change == 0.0, max_change=change)
    return out, cast


class _Unit:
    """A layer whose ``call`` is recorded: ``rows`` are its LSTM rows (one per
    cell for a stacked RNN: ``(path, cell, source)``)."""

    def __init__(self, layer, path, source, cells, bidirectional=None, direction=None):
        self.layer, self.path, self.source, self.cells = layer, path, source, cells
        self.bidirectional, self.direction = bidirectional, direction


class _Model:
    """A loaded model, its walk and its call recorders."""

    def __init__(self, keras, path):
        self.keras, self.path = keras, path
        self.prefix = keras.__name__  # "keras" or "tf_keras"
        self.model = _load_model(keras, path)
        if not isinstance(self.model, keras.Model):
            raise protocol.UserError(f"{path} loads as a {type(self.model).__name__}, not a Keras model")
        self.units, self.bidis, self.skipped, self.classes = [], [], [], []
        self.others = []  # [path, class] of every layer that holds no recurrent layer (Embedding, Dense...)
        self.lstm_seen = 0
        for layer in self.model.layers:
            self._visit(layer, "")
        if not self.lstm_seen and not self.skipped:  # other recurrent layers are listed as skipped, not refused here
            held = ", ".join(self.classes) or "no layers"
            raise protocol.UserError(f"no LSTM layer in {path}; it holds: {held}")
        self.inputs = self._inputs()
        self.recording = None
        self.casts, self._embedding_map = [], None
        for layer in [u.layer for u in self.units] + [b[1] for b in self.bidis]:
            self._wrap(layer)

    # -- the walk

    def _note_class(self, layer):
        name = type(layer).__name__
        if name != "InputLayer" and name not in self.classes:
            self.classes.append(name)

    def _visit(self, layer, prefix):
        k = self.keras
        path = prefix + layer.name
        if type(layer).__name__ == "InputLayer":
            return
        if not isinstance(layer, k.Model):
            self._note_class(layer)
        if isinstance(layer, k.Model):
            for sub in layer.layers:
                self._visit(sub, path + "/")
        elif isinstance(layer, k.layers.Bidirectional):
            before = len(self.skipped)
            fwd = self._rnn(layer.forward_layer, path + "/", path, "forward")
            bwd = self._rnn(layer.backward_layer, path + "/", path, "backward")
            if fwd is not None and bwd is not None:
                self.bidis.append((path, layer, fwd, bwd))
            new = self.skipped[before:]
            if fwd is None and bwd is None and len(new) == 2 and new[0][1] == new[1][1]:
                del self.skipped[before:]  # one line for the wrapper: "Bidirectional wrapping GRU: ..."
                self.skipped.append([path, f"Bidirectional wrapping {new[0][1]}"])
        elif isinstance(layer, k.layers.RNN):
            self._rnn(layer, prefix)
        else:
            inner = [
                sub
                for sub in layer._flatten_layers(include_self=False, recursive=True)
                if isinstance(sub, (k.layers.RNN, k.layers.LSTMCell))
            ]
            for sub in inner:
                self._note_class(sub)
                if isinstance(sub, (k.layers.LSTM, k.layers.LSTMCell)):
                    self.lstm_seen += 1
            if not inner:
                self.others.append([path, type(layer).__name__])
            if inner:
                names = ", ".join(
                    sorted(
                        {type(s).__name__ for s in inner if isinstance(s, k.layers.RNN)}
                        or {type(s).__name__ for s in inner}
                    )
                )
                self.skipped.append(
                    [
                        path,
                        f"{type(layer).__name__} holds {names}: layers inside a "
                        f"{type(layer).__name__} are not unpacked",
                    ]
                )

    def _rnn(self, layer, prefix, bidi=None, direction=None):
        """A unit for an RNN layer, or None (then ``skipped`` says why)."""
        k = self.keras
        path = prefix + layer.name
        self._note_class(layer)
        cls = type(layer).__name__
        if isinstance(layer, k.layers.LSTM):
            self.lstm_seen += 1
            source, cells = "LSTM", [(path, layer.cell, "LSTM")]
        elif isinstance(layer, k.layers.RNN) and cls == "RNN":
            cell = layer.cell
            self._note_class(cell)
            if isinstance(cell, k.layers.LSTMCell):
                self.lstm_seen += 1
                source, cells = "RNN(LSTMCell)", [(path, cell, "RNN(LSTMCell)")]
            elif isinstance(cell, k.layers.StackedRNNCells):
                source, cells = "RNN(StackedRNNCells)", []
                for i, sub in enumerate(cell.cells):
                    self._note_class(sub)
                    sub_path = f"{path}/{sub.name}"
                    if not isinstance(sub, k.layers.LSTMCell):
                        self.skipped.append([sub_path, f"{type(sub).__name__} in StackedRNNCells: not an LSTM cell"])
                        break  # the cells after it take its outputs, which are not reproduced
                    self.lstm_seen += 1
                    cells.append((sub_path, sub, f"RNN(StackedRNNCells)[{i}]"))
                else:
                    i = None
                if i is not None:
                    for later in cell.cells[i + 1 :]:
                        self._note_class(later)
                        if isinstance(later, k.layers.LSTMCell):
                            self.lstm_seen += 1
                            self.skipped.append(
                                [
                                    f"{path}/{later.name}",
                                    f"its input is the output of a {type(cell.cells[i]).__name__} in the "
                                    f"same StackedRNNCells, which lstm_ref does not reproduce",
                                ]
                            )
                if not cells:
                    return None
            else:
                name = type(cell).__name__
                self.skipped.append([path, f"RNN({name}): not an LSTM cell; lstm_ref has no {name} reference"])
                return None
        else:
            reason = _NOT_LSTM.get(cls, f"not an LSTM; lstm_ref has no {cls} reference")
            self.skipped.append([path, f"{cls}: {reason}"])
            return None
        if getattr(layer, "stateful", False):
            self.skipped.append([path, "stateful=True: the state carried between calls is not an input of one run"])
            return None
        unit = _Unit(layer, path, source, cells, bidi, direction)
        self.units.append(unit)
        return unit

    # -- inputs

    def _inputs(self):
        try:
            tensors = list(self.model.inputs)
        except (AttributeError, ValueError) as exc:
            raise protocol.UserError(f"{self.path}: the model has no defined inputs ({_first_line(exc)})") from None
        out = []
        for t in tensors:
            name = t._keras_history[0].name
            shape = tuple(None if d is None else int(d) for d in t.shape)
            dtype = np.dtype(getattr(t.dtype, "as_numpy_dtype", t.dtype))
            out.append((name, shape, dtype, t))
        return out

    def _describe_inputs(self):
        return ", ".join(f"{n} {_shape_text(s)} {d.name}" for n, s, d, _ in self.inputs)

    def feed(self, arrays, batch, time, seed, row_offset=0):
        """The model's inputs, by name: the user's (checked) or drawn.
        ``self.casts`` then says which given inputs were cast to the model's
        dtype (:func:`cast_input`); ``row_offset`` is the first row's index
        in the user's whole input, for messages."""
        given = {k[3:]: v for k, v in arrays.items() if k.startswith("in:")}
        names = [n for n, *_ in self.inputs]
        if "" in given:  # an unnamed array: the model's only input
            if len(names) != 1:
                raise protocol.UserError(
                    f"the model has {len(names)} inputs; give each as --input NAME=FILE "
                    f"(or one .npz keyed by name): {self._describe_inputs()}"
                )
            given = {names[0]: given.pop("")}
        if given:
            unknown = sorted(set(given) - set(names))
            if unknown:
                raise protocol.UserError(
                    f"unknown input {unknown[0]!r}; the model's inputs are: {self._describe_inputs()}"
                )
            missing = [n for n in names if n not in given]
            if missing:
                raise protocol.UserError(
                    f"input {missing[0]!r} is missing; the model's inputs are: {self._describe_inputs()}"
                )
        rng = np.random.default_rng(seed)
        feed, self.casts = {}, []
        for name, shape, dtype, _ in self.inputs:
            if given:
                feed[name] = self._check(name, shape, dtype, np.asarray(given[name]), row_offset)
            else:
                feed[name] = self._draw(rng, shape, dtype, batch, time)
        rows = {a.shape[0] for a in feed.values()}
        if len(rows) > 1:
            sizes = ", ".join(f"{n}: {a.shape[0]}" for n, a in feed.items())
            raise protocol.UserError(f"the inputs have different batch sizes ({sizes})")
        return feed

    def _check(self, name, shape, dtype, a, row_offset=0):
        if a.ndim != len(shape) or any(d is not None and d != g for d, g in zip(shape, a.shape)):
            raise protocol.UserError(f"input {name!r} expects shape {_shape_text(shape)}, got {tuple(a.shape)}")
        if a.dtype.kind not in "biuf":
            raise protocol.UserError(f"input {name!r} expects {dtype.name}, got {a.dtype.name}")
        if dtype.kind == "b" and a.dtype.kind != "b" and not np.isin(a, (0, 1)).all():
            raise protocol.UserError(f"input {name!r} expects booleans, got values other than 0 and 1")
        out, cast = cast_input(name, a, dtype)
        if cast is not None:
            self.casts.append(cast)
        for layer, vocabulary in self._embeddings().get(name, ()):
            _check_tokens(name, out, layer, vocabulary, row_offset)
        return out

    def _embeddings(self):
        """``{input name: [(Embedding name, input_dim)]}``: the Embeddings
        that read a model input directly (their tokens must be in
        ``[0, input_dim)``; TF's gather fails on the CPU and reads zeros on a
        GPU otherwise)."""
        if self._embedding_map is None:
            by_id = {id(t): name for name, _, _, t in self.inputs}
            found = {}
            for layer in self.model._flatten_layers(include_self=False, recursive=True):
                if not isinstance(layer, self.keras.layers.Embedding):
                    continue
                for node in getattr(layer, "_inbound_nodes", ()):
                    try:
                        tensors = _tf().nest.flatten(node.input_tensors)
                    except Exception:  # noqa: BLE001 - a node this Keras describes otherwise: the run says it
                        continue
                    for t in tensors:
                        if id(t) in by_id and (layer.name, int(layer.input_dim)) not in found.get(by_id[id(t)], []):
                            found.setdefault(by_id[id(t)], []).append((layer.name, int(layer.input_dim)))
            self._embedding_map = found
        return self._embedding_map

    def _vocabulary(self):
        dims = [
            layer.input_dim
            for layer in self.model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, self.keras.layers.Embedding)
        ]
        return max(2, min(dims)) if dims else 10

    def _draw(self, rng, shape, dtype, batch, time):
        full = [batch] + [time if d is None else d for d in shape[1:]]
        if dtype.kind == "f":
            return rng.standard_normal(full).astype(dtype)
        if len(full) < 2:  # one value per row: nothing to pad
            values = rng.random(full) < 0.5 if dtype.kind == "b" else rng.integers(1, self._vocabulary(), size=full)
            return values.astype(dtype)
        steps = full[1]
        lengths = rng.integers(max(1, steps // 2), steps + 1, size=batch)
        if batch > 1 and steps > 1:
            lengths[0], lengths[1] = steps, max(1, steps - 1 - int(rng.integers(0, max(1, steps // 2))))
        valid = np.arange(steps)[None] < lengths[:, None]  # (batch, steps): right padding
        valid = valid.reshape(valid.shape + (1,) * (len(full) - 2))
        if dtype.kind == "b":
            holes = rng.random(full) < 0.75
            holes[:, 0] = True
            return (holes & valid).astype(dtype)
        ids = rng.integers(1, self._vocabulary(), size=full)
        return np.where(valid, ids, 0).astype(dtype)

    # -- recording

    def _wrap(self, layer):
        original = layer.call
        signature = inspect.signature(original)

        @functools.wraps(original)
        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            if self.recording is not None:
                try:
                    arguments = dict(signature.bind(*args, **kwargs).arguments)
                except TypeError:  # a call the signature does not describe: keep the first argument
                    arguments = {"inputs": args[0] if args else None, **kwargs}
                self.recording.setdefault(id(layer), []).append((arguments, out))
            return out

        call.__signature__ = signature
        object.__setattr__(layer, "call", call)

    def forward(self, feed, tape=None):
        """One eager run of the model; ``{id(layer): [(arguments, output)]}``,
        and the model's output in ``self.output``.  ``tape``: a
        ``tf.GradientTape`` the run is inside, made to watch the floating
        inputs (``keras_model_grads``)."""
        tf = _tf()
        tensors = {name: tf.convert_to_tensor(a) for name, a in feed.items()}
        for t in tensors.values() if tape is not None else ():
            if t.dtype.is_floating:
                tape.watch(t)
        by_id = {id(t): tensors[name] for name, _, _, t in self.inputs}
        struct = getattr(self.model, "_inputs_struct", None)
        if struct is None:
            struct = getattr(self.model, "_nested_inputs", None)
        if isinstance(struct, dict):
            call_with = {key: by_id[id(t)] for key, t in struct.items()}
        elif len(self.inputs) == 1:
            call_with = tensors[self.inputs[0][0]]
        else:
            call_with = [tensors[name] for name, *_ in self.inputs]
        self.recording = {}
        try:
            self.output = self.model(call_with, training=False)
            return self.recording
        except Exception as exc:  # noqa: BLE001 - a token out of an inner Embedding's range is the input's fault
            gather = _out_of_range_gather(exc)
            if gather is None:
                raise
            raise protocol.UserError(
                f"the inputs hold token {gather[0]}, outside the vocabulary of an Embedding in the model "
                f"(input_dim {gather[1]}: tokens 0..{gather[1] - 1}); TF: {_first_line(exc)}"
            ) from None
        finally:
            self.recording = None


def _flat(tf, value):
    return [] if value is None else tf.nest.flatten(value)


def _call_arrays(tf, layer, arguments):
    """x (batch-major), mask (batch, time) and the initial states (flat) that
    one recorded ``call`` received."""
    names = list(arguments)
    x = arguments[names[0]]
    states = arguments.get("initial_state")
    mask = arguments.get("mask")
    if isinstance(x, (list, tuple)):  # tf_keras RNN.__call__: [inputs, *initial_state]
        if states is None and len(x) > 1:
            states = list(x[1:])
        x = x[0]
    if isinstance(mask, (list, tuple)):  # the masks of [inputs, *states]: RNN.call takes the first
        mask = mask[0] if mask else None
    x, mask = _numpy(x), _numpy(mask)
    states = [_numpy(s) for s in _flat(tf, states)]
    if getattr(layer, "time_major", False):
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
        mask = None if mask is None else np.ascontiguousarray(mask.T)
    return x, (None if mask is None else mask.astype(bool)), states


def _cell_config(keras, unit, cell, name):
    """The config of one LSTM row (``lstm_ref.from_config`` takes it unedited)."""
    layer = unit.layer
    if unit.source == "LSTM":
        config = _json(layer.get_config())
    else:
        config = _json(cell.get_config())
        rnn = layer.get_config()
        for key in (
            "return_sequences",
            "return_state",
            "go_backwards",
            "stateful",
            "unroll",
            "time_major",
            "zero_output_for_mask",
        ):
            if key in rnn:
                config[key] = rnn[key]
        config["name"] = name
    if "implementation" not in config and getattr(cell, "implementation", 2) != 2:
        config["implementation"] = int(cell.implementation)  # Keras 3 get_config drops it
    if unit.source != "LSTM" and keras.__name__ == "tf_keras" and config.get("implementation", 2) == 1:
        twin = keras.layers.LSTM(**config)
        if getattr(twin, "_could_use_gpu_kernel", False):
            # RNN(LSTMCell) runs the cell; tf_keras.layers.LSTM would take standard_lstm (fused):
            # unroll=True selects the cell loop there and in the reference.
            if config.get("go_backwards") and config.get("zero_output_for_mask"):
                return None
            config["unroll"] = True
    return config


def _unit_rows(keras, run, unit, arguments, output, suffix):
    """Rows (``(meta, arrays)``) for one recorded call of a unit, each with
    what the layer returned in the model run (``model:h`` -- the sequence,
    or the last step without return_sequences -- and ``model:final_h``,
    ``model:final_c`` with return_state)."""
    tf = _tf()
    layer = unit.layer
    x, mask, states = _call_arrays(tf, layer, arguments)
    outs = _flat(tf, output)
    returned_seq = _numpy(outs[0])
    returned_states = [_numpy(s) for s in outs[1:]]
    if getattr(layer, "time_major", False) and layer.return_sequences:
        returned_seq = np.ascontiguousarray(returned_seq.transpose(1, 0, 2))
    rows, previous = [], None
    for k, (path, cell, source) in enumerate(unit.cells):
        path = path + suffix
        config = _cell_config(keras, unit, cell, cell.name if source.startswith("RNN(Stacked") else layer.name)
        if config is None:
            return rows, [
                [
                    path,
                    "implementation=1 cell under go_backwards and zero_output_for_mask: tf_keras.layers."
                    "LSTM has no code path that reproduces it",
                ]
            ]
        if k == 0:
            cell_x = x
        else:
            cell_x = previous["h"][:, ::-1] if layer.go_backwards else previous["h"]
            cell_x = np.ascontiguousarray(cell_x)
        wire = {"x": cell_x}
        for var in cell.weights:
            wire[f"w:{_short_name(var)}"] = _numpy(var)
        if mask is not None:
            wire["mask"] = mask
        if states:
            wire["h0"], wire["c0"] = states[2 * k], states[2 * k + 1]
        _, tf_out = run({"op": "run", "config": config, "cross_check": True}, dict(wire))
        returned = {}
        if k == len(unit.cells) - 1:
            returned["model:h"] = returned_seq
        if layer.return_state:
            returned["model:final_h"], returned["model:final_c"] = returned_states[2 * k], returned_states[2 * k + 1]
        meta = {
            "path": path,
            "kind": f"{keras.__name__}.layers.LSTM",
            "config": config,
            "bidirectional": unit.bidirectional + suffix if unit.bidirectional else None,
            "direction": unit.direction,
            "source": source,
            "class": type(layer).__name__,
            "return_sequences": bool(layer.return_sequences),
        }
        arrays = {"x": cell_x, **{k_: v for k_, v in wire.items() if k_.startswith("w:")}}
        for key in ("mask", "h0", "c0"):
            if key in wire:
                arrays[key] = wire[key]
        arrays.update({key: tf_out[key] for key in ("h", "c", "final_h", "final_c")})
        arrays.update(returned)
        rows.append((meta, arrays))
        previous = tf_out
    return rows, []


def _load(keras, path):
    stamp = _stamp(path)
    key = (keras.__name__, path, stamp)
    if key not in _LOADED:
        _LOADED.clear()
        gc.collect()
        _LOADED[key] = _Model(keras, path)
    return _LOADED[key]


_IMPORTED = set()


def import_custom_objects(paths):
    """Import the user's ``.py`` files that define (and register with
    ``register_keras_serializable``) the custom layers a model needs."""
    import importlib.util

    for path in paths:
        if path in _IMPORTED:
            continue
        spec = importlib.util.spec_from_file_location(f"lstm_ref_custom_{len(_IMPORTED)}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's file failed
            raise protocol.UserError(f"--custom-objects {path}: importing it failed: {_first_line(exc)}") from None
        _IMPORTED.add(path)


def model_lstms(keras, run, meta, arrays):
    """The ``model_lstms`` op: see ``keras3_worker.model_lstms``."""
    path = os.path.abspath(meta["path"])
    if not os.path.exists(path):
        raise protocol.UserError(f"{path}: no such file or directory")
    import_custom_objects(meta.get("custom_objects", []))
    model = _load(keras, path)
    if not model.units:  # nothing to run: what was found and skipped (the harness says nothing is checkable)
        return {
            "inputs": [],
            "layers": [],
            "merged": [],
            "skipped": [list(s) for s in model.skipped],
            "casts": [],
            "holds": list(model.classes),
        }, {}
    feed = model.feed(
        arrays,
        int(meta.get("batch", 2)),
        int(meta.get("time", 7)),
        int(meta.get("seed", 0)),
        int(meta.get("row_offset", 0)),
    )
    recorded = model.forward(feed)
    layers, out, skipped = [], {}, [list(s) for s in model.skipped]
    index = {}  # (id(unit), call number) -> [row indices]
    for unit in model.units:
        calls = recorded.get(id(unit.layer), [])
        if not calls:
            skipped.append([unit.path, "not called when the model runs (not on a path from the inputs to the outputs)"])
            continue
        for n, (arguments, output) in enumerate(calls):
            suffix = f" (call {n + 1})" if len(calls) > 1 else ""
            rows, skips = _unit_rows(keras, run, unit, arguments, output, suffix)
            skipped.extend(skips)
            index[(id(unit), n)] = []
            for row_meta, row_arrays in rows:
                i = len(layers)
                index[(id(unit), n)].append(i)
                layers.append(row_meta)
                out.update({f"{i}:{key}": value for key, value in row_arrays.items()})
    merged = []
    tf = _tf()
    for path, layer, fwd, bwd in model.bidis:
        for n, (_, output) in enumerate(recorded.get(id(layer), [])):
            f_rows, b_rows = index.get((id(fwd), n)), index.get((id(bwd), n))
            if not f_rows or not b_rows or len(fwd.cells) != 1 or len(bwd.cells) != 1:
                skipped.append(
                    [
                        path,
                        "the merged output of a Bidirectional whose directions are not single LSTM "
                        "rows is not rebuilt (each direction's rows are checked)",
                    ]
                )
                continue
            outs = _flat(tf, output)
            j = len(merged)
            suffix = f" (call {n + 1})" if len(recorded[id(layer)]) > 1 else ""
            merged.append(
                {
                    "path": path + suffix,
                    "merge_mode": layer.merge_mode,
                    "forward": f_rows[0],
                    "backward": b_rows[0],
                    "return_sequences": bool(layer.return_sequences),
                }
            )
            if layer.merge_mode is None:
                out[f"merged:{j}:0"], out[f"merged:{j}:1"] = _numpy(outs[0]), _numpy(outs[1])
            else:
                out[f"merged:{j}"] = _numpy(outs[0])
    inputs = [{"name": n, "shape": list(s), "dtype": d.name} for n, s, d, _ in model.inputs]
    return {
        "inputs": inputs,
        "layers": layers,
        "merged": merged,
        "skipped": skipped,
        "casts": model.casts,
        "others": model.others,
    }, out
