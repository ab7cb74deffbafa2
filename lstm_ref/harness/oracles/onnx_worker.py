"""Oracle worker for ONNX's ``LSTM`` operator run by ONNX Runtime (CPU), in ``.venv-onnx``.

A request is a :class:`lstm_ref.case.Case` on the wire: a one-node graph is
built with ``onnx.helper`` (opset 14, the LSTM-14 schema with ``layout``),
the weights fed as graph inputs, and run by ``onnxruntime.InferenceSession``.
``onnx.reference`` is never the oracle: it ignores ``clip``.

The case is batch-major; the worker lays x, the states and the outputs out
as ``layout`` says (0: time-major, the default; 1: batch-major), and returns
``h`` batch-major with the directions concatenated, ``final_h``/``final_c``
as ``(num_directions, batch, H)``.  A mask is ``sequence_lens`` (right-padded
rows only).

ONNX Runtime 1.32's CPU kernel refuses ``layout=1`` ("Batchwise recurrent
operations (layout == 1) are not supported", ``lstm_base.h``): such a
request comes back as that refusal, for the user, never as a silently
transposed layout-0 run.

With ``cross_check`` the node is run a second time with the weights as
initializers, as in a deployed model (ONNX Runtime pre-packs constant
weights for its GEMMs: another code path), and both runs must agree
bitwise.

A user's ``.onnx`` model (``lstm-ref check``/``convert``) is read and its
own nodes run by the ops of ``onnx_artifacts.py``: ``artifact_lstms``,
``artifact_run``, ``save_lstms``.  Every graph is read (``If`` branches,
``Loop``/``Scan`` bodies, model-local functions expanded by
``onnx.inliner``), and weights computed from constants are folded by
``onnx.reference``.
"""

import numpy as np
import onnx  # noqa: E402
import onnx.numpy_helper  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from lstm_ref.harness.oracles import (
    memory,
    onnx_artifacts,  # noqa: E402
    protocol,
    provenance,
)

OPSET = 14
_ATTRS = onnx_artifacts.LSTM_ATTRIBUTES


def lstm_model(config, inputs, layout, initializers=None):
    """A one-node ONNX model: the LSTM with ``config``'s attributes, fed the
    optional inputs named in ``inputs`` (a subset of B, sequence_lens,
    initial_h, initial_c, P); ``initializers`` (name -> array) are stored in
    the graph instead of fed."""
    attrs = {k: v for k, v in config.items() if k in _ATTRS and v is not None}
    attrs["layout"] = layout
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    names = [n if n in ("X", "W", "R") or n in inputs else "" for n in order]
    while names[-1] == "":
        names.pop()
    node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], **attrs)
    initializers = initializers or {}
    graph_inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT, None)
        for n in names
        if n and n not in initializers
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h", "Y_c")]
    graph = helper.make_graph(
        [node],
        "lstm",
        graph_inputs,
        outputs,
        initializer=[onnx.numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _session(config, inputs, layout, initializers=None):
    if initializers:  # not cached: the weights are part of the model
        return _open(lstm_model(config, inputs, layout, initializers))
    return _sessions(config, sorted(inputs), layout)


def _open(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT's own refusal, for the user
        raise protocol.UserError(f"onnxruntime refused the node: {str(exc).strip()}") from None


_sessions = memory.LayerCache(lambda config, inputs, layout: _open(lstm_model(config, inputs, layout)), size=32)


def forward(config, arrays, layout, weights_as_initializers=False):
    """Run the node on the case's arrays (batch-major): ``(h, final_h, final_c)``."""
    x = np.asarray(arrays["x"], np.float32)
    batch, time = x.shape[:2]
    feeds = {"X": x if layout else x.transpose(1, 0, 2), "W": arrays["w:W"], "R": arrays["w:R"]}
    for name in ("B", "P"):
        if f"w:{name}" in arrays:
            feeds[name] = arrays[f"w:{name}"]
    if "mask" in arrays:
        feeds["sequence_lens"] = protocol.sequence_lengths(arrays["mask"])
    for src, dst in (("h0", "initial_h"), ("c0", "initial_c")):
        if src in arrays:  # (D, batch, H); layout 1 takes (batch, D, H)
            feeds[dst] = arrays[src].transpose(1, 0, 2) if layout else arrays[src]
    feeds = {k: np.ascontiguousarray(v, np.int32 if k == "sequence_lens" else np.float32) for k, v in feeds.items()}
    inits = {k: feeds.pop(k) for k in ("W", "R", "B", "P") if k in feeds} if weights_as_initializers else None
    optional = (set(feeds) | set(inits or ())) - {"X", "W", "R"}
    session = _session(config, optional, layout, inits)
    protocol.mark("request")
    y, y_h, y_c = session.run(None, feeds)
    protocol.mark("run")
    if layout:  # Y (batch, T, D, H), Y_h (batch, D, H)
        h = y.reshape(batch, time, -1)
        return h, y_h.transpose(1, 0, 2), y_c.transpose(1, 0, 2)
    return y.transpose(2, 0, 1, 3).reshape(batch, time, -1), y_h, y_c  # Y (T, D, batch, H)


def hello(meta, arrays):
    info = provenance.base()
    info.update(onnxruntime=ort.__version__, onnx=onnx.__version__, opset=OPSET, oracle="onnxruntime")
    return info, {}


def run(meta, arrays):
    config = meta["config"]
    layout = int(config.get("layout", 0))
    h, final_h, final_c = forward(config, arrays, layout)
    if meta.get("cross_check"):
        other = forward(config, arrays, layout, weights_as_initializers=True)
        for name, a, b in zip(("h", "final_h", "final_c"), (h, final_h, final_c), other):
            if not np.array_equal(a, b, equal_nan=True):
                raise AssertionError(f"cross-check: {name} differs between weights fed and weights as initializers")
    return {}, {"h": h, "final_h": final_h, "final_c": final_c}


HANDLERS = {"hello": hello, "run": run}
# A user's .onnx model (lstm-ref check / convert): onnx_artifacts.py
HANDLERS.update(onnx_artifacts.HANDLERS)

if __name__ == "__main__":
    protocol.serve(HANDLERS)
