"""Wire format between the test process and an oracle worker.

A message is an 8-byte big-endian length, then a body: a 4-byte big-endian
header length, the header (UTF-8 JSON: ``{"meta": {...}, "arrays": [[name,
dtype str, shape], ...]}``) and each array's C-ordered bytes in that order.
No pickles: an object dtype is refused at both ends.  NumPy only, so that
workers in other environments (TF 2.15, NumPy 1.26) can import it.

It was an ``.npz`` archive until ``make bench`` measured the suite's
throughput: ``np.savez``/``np.load`` cost 1.1 ms a message (zipfile's
bookkeeping and the ``.npy`` header's ``literal_eval``), four messages an
example, against 20 ms for a whole example at the 50/s goal; this format
costs a tenth of that (``parity_tests/meta/test_oracle_client.py``).
"""

import json
import struct
import time

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


_HEAD = struct.Struct(">I")


def _plain(a, name):
    a = np.asarray(a)  # tobytes() writes C order whatever the layout
    if a.dtype.hasobject or a.dtype.fields is not None:
        raise TypeError(f"array {name!r} has dtype {a.dtype}; the wire carries plain numbers, no pickles or records")
    return a


def encode(meta: dict, arrays: dict) -> bytes:
    """A frame: its length, then the body :func:`decode` reads."""
    plain = [(name, _plain(a, name)) for name, a in arrays.items()]
    header = json.dumps({"meta": meta, "arrays": [[n, a.dtype.str, a.shape] for n, a in plain]}).encode()
    body = b"".join([_HEAD.pack(len(header)), header, *(a.tobytes() for _, a in plain)])
    return _LEN.pack(len(body)) + body


def decode(body: bytes):
    """``(meta, {name: array})`` of a body; each array is a writable copy.
    A body that is not one :func:`encode` wrote raises ``ValueError``."""
    if len(body) < _HEAD.size:
        raise ValueError(f"message body is {len(body)} bytes, shorter than its header length")
    (n,) = _HEAD.unpack_from(body)
    if _HEAD.size + n > len(body):
        raise ValueError(f"message header says {n} bytes; the body has {len(body) - _HEAD.size}")
    header = json.loads(body[_HEAD.size : _HEAD.size + n])
    arrays, offset = {}, _HEAD.size + n
    for name, descr, shape in header["arrays"]:
        dtype = np.dtype(descr)
        if dtype.hasobject or dtype.fields is not None or min(shape, default=0) < 0:
            raise ValueError(f"array {name!r}: dtype {descr} shape {shape} is not a plain array")
        count = int(np.prod(shape, dtype=np.int64))
        if offset + count * dtype.itemsize > len(body):
            raise ValueError(f"array {name!r} runs past the end of the message")
        arrays[name] = np.frombuffer(body, dtype, count, offset).reshape(shape).copy()
        offset += count * dtype.itemsize
    if offset != len(body):
        raise ValueError(f"message body is {len(body)} bytes; its header accounts for {offset}")
    return header["meta"], arrays


def read_frame(read_exactly) -> bytes:
    (n,) = _LEN.unpack(read_exactly(_LEN.size))
    return read_exactly(n)


_phases = {}  # phase name -> seconds, of the request being served
_since = [0.0]


def mark(phase: str) -> None:
    """Count the time since the last mark (or the request's start) as
    ``phase`` of the request being served: its reply's ``phases`` give
    ``make bench`` a worker's profile (``Oracle.phases`` sums them)."""
    now = time.perf_counter()
    _phases[phase] = _phases.get(phase, 0.0) + now - _since[0]
    _since[0] = now


def serve(handlers: dict) -> None:
    """Worker main loop: answer requests on stdin/stdout until EOF.

    The real stdout is kept for frames; anything the framework prints goes to
    stderr.  A handler error is sent back as ``{"error": traceback}`` and the
    worker keeps serving.  Every reply's meta has ``phases``: the seconds the
    handler spent per :func:`mark` phase, the rest as ``request``.
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
        _phases.clear()
        _since[0] = time.perf_counter()
        try:
            handler = handlers[meta["op"]]
            reply_meta, reply_arrays = handler(meta, arrays)
        except UserError as exc:
            reply_meta, reply_arrays = {"user_error": str(exc)}, {}
        except Exception:  # noqa: BLE001 - any oracle failure goes back to the client
            reply_meta, reply_arrays = {"error": traceback.format_exc()}, {}
        mark("request")
        reply_meta = {**reply_meta, "phases": dict(_phases)}
        out.write(encode(reply_meta, reply_arrays))
        out.flush()
