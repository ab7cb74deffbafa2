"""Wire format between the test process and an oracle worker.

A message is an 8-byte big-endian length followed by an ``.npz`` archive
(read with ``allow_pickle=False``) whose ``__meta__`` entry is UTF-8 JSON.
NumPy only, so that workers in other environments (TF 2.15, NumPy 1.26) can
import it.
"""

import io
import json
import struct

import numpy as np

_LEN = struct.Struct(">Q")


class UserError(ValueError):
    """Raised by a handler when the *request* is wrong (a file that is not a
    model, inputs of the wrong shape): the client gets the message alone, to
    show the user, not a traceback."""


def sequence_lengths(mask) -> np.ndarray:
    """The ``sequence_length`` of ``dynamic_rnn`` for a (batch, time) mask:
    its rows must be right-padded (True... then False...), the only masks a
    length can express.  For the TF1 workers (the references refuse other
    masks before a request is sent)."""
    mask = np.asarray(mask, bool)
    lengths = mask.sum(axis=1)
    if not np.array_equal(mask, np.arange(mask.shape[1])[None, :] < lengths[:, None]):
        raise ValueError("mask is not right-padded; dynamic_rnn's sequence_length cannot express it")
    return lengths.astype(np.int32)


def last_file(read):
    """``read(path)`` memoised for the last file only, keyed by its absolute
    path, mtime and size: a worker asked about one model many times reads it
    once, and a rewritten file is read again."""
    import functools
    import os

    cache = {}

    @functools.wraps(read)
    def load(path):
        path = os.path.abspath(path)
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key not in cache:
            cache.clear()
            cache[key] = read(path)
        return cache[key]

    return load


def encode(meta: dict, arrays: dict) -> bytes:
    buf = io.BytesIO()
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    body = buf.getvalue()
    return _LEN.pack(len(body)) + body


def decode(body: bytes):
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    return meta, arrays


def read_frame(read_exactly) -> bytes:
    (n,) = _LEN.unpack(read_exactly(_LEN.size))
    return read_exactly(n)


def serve(handlers: dict) -> None:
    """Worker main loop: answer requests on stdin/stdout until EOF.

    The real stdout is kept for frames; anything the framework prints goes to
    stderr.  A handler error is sent back as ``{"error": traceback}`` and the
    worker keeps serving.
    """
    import os
    import sys
    import traceback

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer

    def read_exactly(n):
        data = inp.read(n)
        if len(data) != n:
            raise EOFError
        return data

    while True:
        try:
            meta, arrays = decode(read_frame(read_exactly))
        except EOFError:
            return
        try:
            handler = handlers[meta["op"]]
            reply_meta, reply_arrays = handler(meta, arrays)
        except UserError as exc:
            reply_meta, reply_arrays = {"user_error": str(exc)}, {}
        except Exception:  # noqa: BLE001 - any oracle failure goes back to the client
            reply_meta, reply_arrays = {"error": traceback.format_exc()}, {}
        out.write(encode(reply_meta, reply_arrays))
        out.flush()
