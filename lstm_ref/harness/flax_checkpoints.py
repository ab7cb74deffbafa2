"""``lstm-ref check CHECKPOINT --kind flax.nnx.LSTMCell`` (or ``OptimizedLSTMCell``):
the LSTM cells of a Flax checkpoint against the reference.

A Flax checkpoint is a tree of arrays with no code and no config: a
msgpack'd tree (``flax.serialization.to_bytes`` of ``nnx.to_pure_dict(nnx.state(model))``
or of a linen ``{"params": ...}``) or an orbax checkpoint directory
(``orbax.checkpoint`` saving ``nnx.state(model)``, whose leaves restore as
``{"value": array}``).  The Flax worker opens it
(``oracles/flax_worker.py``'s ``read_params``); here the tree is searched
for cells of the ``--kind`` given:

* ``flax.nnx.LSTMCell``: a subtree holding ``ii``, ``if_``, ``ig``, ``io``
  kernels and ``hi``, ``hf``, ``hg``, ``ho`` kernels and biases.  Linen's
  ``LSTMCell`` and ``OptimizedLSTMCell`` store the same layers, with ``if``
  for ``if_`` (``flax/linen/recurrent.py``): read as this kind;
* ``flax.nnx.OptimizedLSTMCell``: ``dense_i/kernel``, ``dense_h/kernel``,
  ``dense_h/bias``.

A subtree that has some of a cell's parameters but not all is the
reference's :class:`~lstm_ref.errors.WeightError`, naming what is missing
(exit 2).  ``--config`` gives what the tree cannot say (``gate_fn``,
``activation_fn``, ``reverse``, ``keep_order``); ``in_features``,
``hidden_features`` and ``param_dtype`` come from the arrays.  Each cell
then runs in ``flax.nnx.RNN`` built from those arrays and in the
reference, on drawn x, once plain and once with lengths and an initial
carry (:func:`lstm_ref.harness.artifacts.check_artifact`).
"""

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, WeightError
from ..flax_lstm import HIDDEN_LAYERS, INPUT_LAYERS, LSTM_CELL, OPTIMIZED
from ..reference import from_config
from .artifacts import Lstm, check_artifact

KINDS = (LSTM_CELL, OPTIMIZED)
_INPUT, _HIDDEN = (*INPUT_LAYERS, "dense_i"), (*HIDDEN_LAYERS, "dense_h")
ORACLE = "flax"
_ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "_METADATA", "manifest.ocdbt")  # orbax writes these; not TF's "checkpoint"
_LEAVES = {
    LSTM_CELL: tuple(f"{n}/kernel" for n in INPUT_LAYERS)
    + tuple(f"{n}/{leaf}" for n in HIDDEN_LAYERS for leaf in ("kernel", "bias")),
    OPTIMIZED: ("dense_i/kernel", "dense_h/kernel", "dense_h/bias"),
}


def _is_str(byte):
    return 0xA0 <= byte <= 0xBF or byte in (0xD9, 0xDA, 0xDB)  # fixstr, str 8/16/32


def describe(path) -> str:
    """What ``path`` is if it looks like a Flax checkpoint ("msgpack'd Flax
    tree", "orbax checkpoint"), else "": a msgpack'd tree is a map whose
    first key is a string (an HDF5 file's 0x89 'H' is a map byte, not then
    a string)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return "orbax checkpoint" if any(os.path.exists(os.path.join(path, m)) for m in _ORBAX_MARKERS) else ""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return ""
    key = {0xDE: 3, 0xDF: 5}.get(head[0], 1) if head else None  # where the first key starts
    is_map = bool(head) and (0x81 <= head[0] <= 0x8F or head[0] in (0xDE, 0xDF))
    return "msgpack'd Flax tree" if is_map and len(head) > key and _is_str(head[key]) else ""


def needs_kind(path, kind):
    """Refuse a Flax checkpoint without ``--kind`` (or with another kind), listing the kinds."""
    if kind not in KINDS:
        given = "without --kind" if kind is None else f"with --kind {kind!r}"
        raise InputError(
            f"{path} is a {describe(path)} {given}: a Flax checkpoint stores arrays, not which cell they are; "
            f"give --kind, one of {list(KINDS)}"
        )


def _normal(path):
    """A leaf's path as the cell's ``nnx.state`` names it: no orbax ``value``
    leaf, no linen ``params`` root, linen's ``if`` as nnx's ``if_``."""
    parts = path.split("/")
    if parts[-1] == "value":
        parts = parts[:-1]
    if parts and parts[0] == "params":
        parts = parts[1:]
    parts = ["if_" if p == "if" else p for p in parts]
    return "/".join(parts)


def cells(flat: dict, kind) -> dict:
    """``{prefix: weights}`` of every subtree of ``flat`` (``{path: array}``)
    that holds a parameter of a ``kind`` cell, keyed as the kind's weights."""
    leaves = _LEAVES[kind]
    found = {}
    for path, value in flat.items():
        path = _normal(path)
        for leaf in leaves:
            if path == leaf or path.endswith("/" + leaf):
                prefix = path[: -len(leaf)].rstrip("/")
                found.setdefault(prefix, {})[leaf] = np.asarray(value)
    return found


@dataclass
class FlaxLstm(Lstm):
    """A cell of a checkpoint: its features from its own config."""

    @property
    def features(self):
        return int(self.config["in_features"])


def lstms(flat: dict, kind, config: dict, worker, where: str):
    """The checkpoint's cells of ``kind`` as :class:`FlaxLstm` s run by ``worker``."""
    found = cells(flat, kind)
    if not found:
        other = next(k for k in KINDS if k != kind)
        hint = f"; it holds {other} parameters at {sorted(cells(flat, other))}" if cells(flat, other) else ""
        shown = ", ".join(sorted(_normal(p) for p in flat)[:8])
        raise InputError(f"{where}: no {kind} parameters ({', '.join(_LEAVES[kind])}) in it{hint}; it holds {shown}")
    out = []
    for prefix, weights in sorted(found.items()):
        name = prefix or "(root)"
        missing = sorted(set(_LEAVES[kind]) - set(weights))
        kernel = next((weights[k] for k in _LEAVES[kind] if k.startswith(_INPUT) and k in weights), None)
        recurrent = next((weights[k] for k in _LEAVES[kind] if k.startswith(_HIDDEN) and k in weights), None)
        if kernel is None or recurrent is None:
            raise WeightError(
                f"{where}: cell {name!r}: {kind}: missing weight(s) {missing}; expected exactly {sorted(_LEAVES[kind])}"
            )
        dtype = "float64" if kernel.dtype == np.float64 else "float32"
        cfg = {
            "in_features": int(kernel.shape[0]),
            "hidden_features": int(recurrent.shape[0]),
            "param_dtype": dtype,
            **config,
        }
        ref = from_config(kind, cfg)
        try:
            ref.params(weights, cfg["in_features"], ref.policy.compute)
        except WeightError as exc:
            raise WeightError(f"{where}: cell {name!r}: {exc}") from None
        out.append(FlaxLstm(name, kind, cfg, weights, "nnx.RNN over the checkpoint's arrays", worker.run))
    return out


def check_file(path, kind, config, pool, batch=2, time=7, seed=0):
    """``(results, skipped, description)`` of the Flax checkpoint at ``path``."""
    needs_kind(path, kind)
    worker = pool.get(ORACLE)
    meta, arrays = worker.request({"op": "read_params", "path": os.path.abspath(path)}, {})
    flat = {k[2:]: v for k, v in arrays.items() if k.startswith("p:")}
    found = lstms(flat, kind, config, worker, str(path))
    results, skipped = check_artifact(found, batch, time, seed)
    return results, skipped, f"{meta['format']}, read as {kind}"
