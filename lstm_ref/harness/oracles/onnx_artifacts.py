"""The ``LSTM`` nodes of a user's ``.onnx`` model, for the onnxruntime worker (``.venv-onnx``).

Ops (registered in ``onnx_worker.HANDLERS``):

* ``artifact_lstms`` ``{"path"}``: ``onnx.load`` (external data is read
  from the model's folder), then every ``LSTM`` node of the default domain
  in the main graph, in graph order: its attributes as an ``onnx.LSTM``
  config, and ``W``, ``R``, ``B``, ``P`` when they are constants (an
  initializer, a ``Constant`` node, or an ``Identity`` of one).  A node
  whose W, R, B or P is computed at run time, or that sits inside a
  subgraph or a function, is listed as skipped with the reason.  The
  optional ``sequence_lens``, ``initial_h``, ``initial_c`` are reported as
  absent, ``"constant"`` (their values travel too) or ``"computed"``.
  ``x_from`` is the position (in ``nodes``) of the LSTM node whose ``Y``
  reaches this node's ``X`` through layout ops only (``Transpose``,
  ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Identity``, ``Flatten``, and
  ``Dropout``, an identity at inference), as ``torch.onnx.export`` chains
  the layers of an ``nn.LSTM(num_layers=L)``; ``x_via`` names those ops.
  Reply: meta ``{"producer", "opset", "ir_version", "nodes": [{"name",
  "index", "config", "optional", "input_size", "dtype", "x_from",
  "x_via"}], "skipped"}``;
  arrays ``{i}:w:<W|R|B|P>``, ``{i}:const:<sequence_lens|initial_h|initial_c>``.

* ``artifact_run`` ``{"path", "index"}`` with arrays ``x`` (batch-major) and
  optional ``mask``, ``h0``, ``c0``: THE ARTIFACT'S OWN NODE -- its
  ``NodeProto`` with its attributes as stored, its weight tensors as
  initializers and the model's own opset -- alone in a graph, run by ONNX
  Runtime.  ``mask``/``h0``/``c0`` are fed as ``sequence_lens`` /
  ``initial_h`` / ``initial_c``; an optional input not fed keeps the
  node's constant, and a computed one is left out (the operator's default:
  no lengths, zero states).  Reply ``h`` (batch-major, directions
  concatenated), ``final_h``, ``final_c`` (``(D, batch, H)``); or meta
  ``{"refused": message}`` when ONNX Runtime will not build or run the node
  (ONNX Runtime 1.32 refuses ``layout=1``).

* ``save_lstms`` ``{"path", "nodes": [{"name", "config", "x_from",
  "merge", "lengths"}]}`` with arrays ``{i}:<W|R|B|P>``: a model of one
  LSTM node per entry (opset 14), its weights as initializers
  ``<name>/W``..., its outputs ``<name>/Y``, ``<name>/Y_h``, ``<name>/Y_c``
  (and a bidirectional node's merged sequence ``<name>/merged``) as graph
  outputs.  A node with ``x_from`` k reads node k's ``Y``, its directions
  merged (``Transpose``+``Reshape`` for concat, ``ReduceSum``,
  ``ReduceProd``, ``ReduceMean``), and node k's lengths; any other node has
  its own graph input ``<name>/X`` (time-major, layout 0) and, with
  ``lengths``, ``<name>/sequence_lens``.  Checked with ``onnx.checker``
  before it is written.

* ``run_chain`` ``{"path", "head"}``: the part of a written model that
  ``<head>/X`` feeds, run as one model (see :func:`run_chain`).
"""

import re

import numpy as np
import onnx  # noqa: E402
import onnx.numpy_helper  # noqa: E402
import onnx.utils  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from lstm_ref.harness.oracles import protocol

SLOTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
WEIGHTS = ("W", "R", "B", "P")
OPTIONAL = ("sequence_lens", "initial_h", "initial_c")
SAVE_OPSET = 14


def _first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _ort_message(exc):
    """ONNX Runtime's message without its prefix and source location:
    "[ONNXRuntimeError] : 1 : FAIL : ... lstm_base.h:53 ... layout_ == 0 was
    false. Batchwise recurrent operations ..." -> "Batchwise recurrent ..."."""
    text = _first_line(exc)
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    return re.sub(r"^.*? was false\. ", "", text)


def _attribute(a):
    value = helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else (float(v) if isinstance(v, float) else v) for v in value]
    return value


def _constants(graph):
    """``{tensor name: array}`` for every initializer, Constant node output
    and Identity of a constant in ``graph``."""
    out = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = a.t
                elif a.name in ("value_float", "value_floats", "value_int", "value_ints"):
                    out[node.output[0]] = np.asarray(
                        helper.get_attribute_value(a), np.float32 if "float" in a.name else np.int64
                    )
        elif node.op_type == "Identity" and node.input and node.input[0] in out:
            out[node.output[0]] = out[node.input[0]]
    return out


def _array(value):
    return np.asarray(value) if isinstance(value, np.ndarray) else onnx.numpy_helper.to_array(value)


def _producers(graph):
    return {o: n for n in graph.node for o in n.output}


LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten", "Dropout")


def _fed_by(tensor, producers):
    """``(the LSTM node whose Y reaches tensor through layout ops only, [their op types])`` or ``(None, ops)``."""
    via = []
    while tensor:
        node = producers.get(tensor)
        if node is None:
            return None, via
        if node.op_type == "LSTM" and node.domain in ("", "ai.onnx"):
            return (node if node.output and node.output[0] == tensor else None), via
        if node.op_type not in LAYOUT_OPS or node.domain not in ("", "ai.onnx"):
            return None, via + [node.op_type]
        via.append(node.op_type)
        tensor = node.input[0] if node.input else ""
    return None, via


def _nested_lstms(graph, where):
    """LSTM nodes inside subgraphs (If/Loop/Scan bodies): ``[(where, node)]``."""
    found = []
    for node in graph.node:
        for a in node.attribute:
            subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for sub in subs:
                inner = f"{where}{node.name or node.op_type}/{a.name}/"
                found += [(inner, n) for n in sub.node if n.op_type == "LSTM" and n.domain in ("", "ai.onnx")]
                found += _nested_lstms(sub, inner)
    return found


@protocol.last_file
def _load(path):
    try:
        model = onnx.load(path)
    except Exception as exc:  # noqa: BLE001 - a protobuf decode error, missing external data...
        raise protocol.UserError(f"{path} is not an ONNX model onnx.load can read ({_first_line(exc)})") from None
    if not model.ir_version or not model.graph.node:
        raise protocol.UserError(f"{path} is not an ONNX model (no ir_version or no graph nodes after parsing)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    graph = model.graph
    consts, producers = _constants(graph), _producers(graph)
    nodes, skipped, arrays, protos = [], [], {}, []
    lstm_count, position = 0, {}  # id of a listed LSTM node -> its place in nodes
    for index, node in enumerate(graph.node):
        if node.op_type in ("GRU", "RNN") and node.domain in ("", "ai.onnx"):
            skipped.append(
                [
                    node.name or node.op_type,
                    f"an ONNX {node.op_type} node, not an LSTM; lstm_ref has no reference for it",
                ]
            )
        if node.op_type != "LSTM" or node.domain not in ("", "ai.onnx"):
            continue
        name = node.name or f"LSTM#{lstm_count}"
        lstm_count += 1
        slots = dict(zip(SLOTS, list(node.input) + [""] * (len(SLOTS) - len(node.input))))
        why, weights = None, {}
        for slot in WEIGHTS:
            tensor = slots[slot]
            if not tensor:
                if slot in ("W", "R"):
                    why = f"input {slot} is missing"
                continue
            if tensor not in consts:
                maker = producers.get(tensor)
                made = f"the output of {maker.op_type} node {maker.name!r}" if maker else "a graph input"
                why = f"{slot} ({tensor}) is {made}, computed at run time, not a constant: its weights cannot be read"
                break
            weights[slot] = _array(consts[tensor])
        config = {}
        for a in node.attribute:
            config[a.name] = _attribute(a)
        known = {
            "hidden_size",
            "direction",
            "clip",
            "input_forget",
            "activations",
            "activation_alpha",
            "activation_beta",
            "layout",
        }
        unknown = sorted(set(config) - known)
        if why is None and unknown:
            why = f"attribute(s) {unknown} are not in ONNX's LSTM-14/22 (an older LSTM-1 node?)"
        if why is None and "hidden_size" not in config:
            config["hidden_size"] = int(weights["R"].shape[-1])
        if why is not None:
            skipped.append([name, why])
            continue
        dtype = weights["W"].dtype.name
        if dtype != "float32":
            config["dtype"] = dtype
        optional, i = {}, len(nodes)
        for slot in OPTIONAL:
            tensor = slots[slot]
            if not tensor:
                continue
            if tensor in consts:
                optional[slot] = "constant"
                arrays[f"{i}:const:{slot}"] = _array(consts[tensor])
            else:
                optional[slot] = "computed"
        for slot, value in weights.items():
            arrays[f"{i}:w:{slot}"] = value
        feeder, via = _fed_by(slots["X"], producers)
        position[id(node)] = len(nodes)
        nodes.append(
            {
                "name": name,
                "index": index,
                "config": config,
                "optional": optional,
                "input_size": int(weights["W"].shape[-1]),
                "dtype": dtype,
                "x_from": None if feeder is None else position.get(id(feeder)),
                "x_via": via,
            }
        )
        protos.append(
            (
                node,
                {slot: weights[slot] for slot in weights},
                {s: arrays[f"{i}:const:{s}"] for s in optional if optional[s] == "constant"},
            )
        )
    for where, node in _nested_lstms(graph, ""):
        skipped.append([where + (node.name or "LSTM"), "an LSTM inside a subgraph (If/Loop/Scan body) is not checked"])
    for function in model.functions:
        for node in function.node:
            if node.op_type == "LSTM" and node.domain in ("", "ai.onnx"):
                skipped.append(
                    [
                        f"{function.name}/{node.name or 'LSTM'}",
                        "an LSTM inside a model-local function (its weights are function inputs) is not checked",
                    ]
                )
    entry = {
        "meta": {
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "opset": opset,
            "ir_version": model.ir_version,
            "nodes": nodes,
            "skipped": skipped,
        },
        "arrays": arrays,
        "protos": protos,
        "opset": opset or SAVE_OPSET,
        "sessions": {},
    }
    return entry


def artifact_lstms(meta, arrays):
    entry = _load(meta["path"])
    return entry["meta"], dict(entry["arrays"])


def node_model(node, opset, initializers, fed):
    """The artifact's ``node`` alone in a graph: inputs renamed to their slot
    names, ``initializers`` (slot -> array) stored, ``fed`` slots as graph
    inputs, every other optional input left out; all three outputs."""
    new = onnx.NodeProto()
    new.CopyFrom(node)
    names = []
    for slot in SLOTS:
        if slot == "X" or slot in fed or slot in initializers:
            names.append(slot)
        else:
            names.append("")
    while names[-1] == "":
        names.pop()
    del new.input[:]
    new.input.extend(names)
    del new.output[:]
    new.output.extend(["Y", "Y_h", "Y_c"])
    inputs = [
        helper.make_tensor_value_info(s, TensorProto.INT32 if s == "sequence_lens" else TensorProto.FLOAT, None)
        for s in names
        if s and s not in initializers
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h", "Y_c")]
    graph = helper.make_graph(
        [new],
        "artifact_node",
        inputs,
        outputs,
        initializer=[onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _session(entry, i, fed):
    key = (i, tuple(sorted(fed)))
    sessions = entry["sessions"]
    if key not in sessions:
        node, weights, consts = entry["protos"][i]
        inits = {**weights, **{k: v for k, v in consts.items() if k not in fed}}
        model = node_model(node, entry["opset"], inits, fed)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        sessions[key] = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sessions[key]


def artifact_run(meta, arrays):
    entry = _load(meta["path"])
    i = int(meta["index"])
    config = entry["meta"]["nodes"][i]["config"]
    layout = int(config.get("layout", 0))
    x = np.asarray(arrays["x"], np.float32)
    batch, time = x.shape[:2]
    feeds = {"X": x if layout else x.transpose(1, 0, 2)}
    if "mask" in arrays:
        feeds["sequence_lens"] = protocol.sequence_lengths(arrays["mask"])
    for src, dst in (("h0", "initial_h"), ("c0", "initial_c")):
        if src in arrays:
            feeds[dst] = arrays[src].transpose(1, 0, 2) if layout else arrays[src]
    feeds = {k: np.ascontiguousarray(v, np.int32 if k == "sequence_lens" else np.float32) for k, v in feeds.items()}
    try:
        session = _session(entry, i, set(feeds) - {"X"})
        y, y_h, y_c = session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's own refusal, reported on the node's row
        return {"refused": f"onnxruntime {ort.__version__} refuses the node: {_ort_message(exc)}"}, {}
    if layout:  # Y (batch, T, D, H), Y_h (batch, D, H)
        return {}, {
            "h": y.reshape(batch, time, -1),
            "final_h": y_h.transpose(1, 0, 2),
            "final_c": y_c.transpose(1, 0, 2),
        }
    return {}, {"h": y.transpose(2, 0, 1, 3).reshape(batch, time, -1), "final_h": y_h, "final_c": y_c}


def _merge(name, dirs, mode):
    """Nodes and initializers that turn ``<name>/Y`` (time, D, batch, H) into
    the sequence the next LSTM reads, ``<name>/merged`` (time, batch, width),
    as Keras' Bidirectional merges (``keras/src/layers/rnn/bidirectional.py``:
    concat, sum, mul, ave)."""
    y, out, axes = f"{name}/Y", f"{name}/merged", f"{name}/axes"
    inits = [onnx.numpy_helper.from_array(np.asarray([1], np.int64), axes)]
    if dirs == 1:
        return [helper.make_node("Squeeze", [y, axes], [out], name=f"{name}/squeeze")], inits
    if mode == "concat":
        shape = f"{name}/shape"
        inits.append(onnx.numpy_helper.from_array(np.asarray([0, 0, -1], np.int64), shape))
        return [
            helper.make_node("Transpose", [y], [f"{name}/Y_tbdh"], name=f"{name}/transpose", perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"{name}/Y_tbdh", shape], [out], name=f"{name}/concat"),
        ], inits
    if mode == "sum":  # ReduceSum takes axes as an input from opset 13
        return [helper.make_node("ReduceSum", [y, axes], [out], name=f"{name}/sum", keepdims=0)], inits
    op = {"mul": "ReduceProd", "ave": "ReduceMean"}[mode]  # axes an attribute until opset 18
    return [helper.make_node(op, [y], [out], name=f"{name}/{mode}", axes=[1], keepdims=0)], []


def save_lstms(meta, arrays):
    """See the module docstring; a node with ``x_from`` k reads node k's
    output, merged as node k's ``merge`` says (:func:`_merge`), and the
    chain's lengths; every other node has its own ``<name>/X`` (and
    ``<name>/sequence_lens`` with ``lengths``)."""
    specs = meta["nodes"]
    readers = {s.get("x_from") for s in specs}
    nodes, inputs, outputs, inits, lens_of = [], [], [], [], {}
    for i, spec in enumerate(specs):
        name, config = spec["name"], spec["config"]
        attrs = {k: v for k, v in config.items() if k not in ("dtype", "name") and v is not None}
        dirs, gates, features = (int(n) for n in arrays[f"{i}:W"].shape)
        source = spec.get("x_from")
        if source is None:
            x = f"{name}/X"
            inputs.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, ["time", "batch", features]))
            lens = f"{name}/sequence_lens" if spec.get("lengths") else ""
            if lens:
                inputs.append(helper.make_tensor_value_info(lens, TensorProto.INT32, ["batch"]))
        else:
            x, lens = f"{specs[source]['name']}/merged", lens_of[source]
        lens_of[i] = lens
        slots = [
            x,
            f"{name}/W",
            f"{name}/R",
            f"{name}/B" if f"{i}:B" in arrays else "",
            lens,
            "",
            "",
            f"{name}/P" if f"{i}:P" in arrays else "",
        ]
        while slots[-1] == "":
            slots.pop()
        for slot in WEIGHTS:
            if f"{i}:{slot}" in arrays:
                inits.append(
                    onnx.numpy_helper.from_array(
                        np.ascontiguousarray(arrays[f"{i}:{slot}"], np.float32), f"{name}/{slot}"
                    )
                )
        outs = [f"{name}/Y", f"{name}/Y_h", f"{name}/Y_c"]
        nodes.append(helper.make_node("LSTM", slots, outs, name=name, **attrs))
        shapes = (["time", dirs, "batch", gates // 4], [dirs, "batch", gates // 4], [dirs, "batch", gates // 4])
        outputs += [helper.make_tensor_value_info(o, TensorProto.FLOAT, s) for o, s in zip(outs, shapes)]
        if i in readers or (dirs == 2 and spec.get("merge") in ("concat", "sum", "mul", "ave")):
            merge_nodes, merge_inits = _merge(name, dirs, spec.get("merge", "concat"))
            nodes += merge_nodes
            inits += merge_inits
            if dirs == 2:
                width = gates // 4 * (2 if spec.get("merge", "concat") == "concat" else 1)
                outputs.append(
                    helper.make_tensor_value_info(f"{name}/merged", TensorProto.FLOAT, ["time", "batch", width])
                )
    graph = helper.make_graph(nodes, "lstm_ref_convert", inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", SAVE_OPSET)], producer_name="lstm-ref convert"
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, meta["path"])
    return {"path": meta["path"], "nodes": len(nodes)}, {}


def run_chain(meta, arrays):
    """``{"path", "head"}`` with ``x`` (batch-major) and optional ``mask``:
    the part of the written model that ``<head>/X`` feeds (``onnx.utils``'
    extractor), run as ONE model by ONNX Runtime; reply ``<node>:h``
    (batch-major, directions concatenated), ``<node>:final_h``,
    ``<node>:final_c`` for every LSTM node of it."""
    model = onnx.load(meta["path"])
    head = meta["head"]
    feeds = {f"{head}/X": np.ascontiguousarray(np.asarray(arrays["x"], np.float32).transpose(1, 0, 2))}
    if "mask" in arrays:
        feeds[f"{head}/sequence_lens"] = protocol.sequence_lengths(arrays["mask"]).astype(np.int32)
    reached, lstms = set(feeds), []
    for node in model.graph.node:  # nodes are in topological order
        if any(i in reached for i in node.input if i):
            reached.update(node.output)
            if node.op_type == "LSTM":
                lstms.append(node)
    names = [o for n in lstms for o in n.output]
    sub = onnx.utils.Extractor(model).extract_model(list(feeds), names)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(sub.SerializeToString(), options, providers=["CPUExecutionProvider"])
    values = dict(zip(names, session.run(names, feeds)))
    batch, time = np.shape(arrays["x"])[:2]
    out = {}
    for node in lstms:
        y, y_h, y_c = (values[o] for o in node.output)
        out[f"{node.name}:h"] = y.transpose(2, 0, 1, 3).reshape(batch, time, -1)
        out[f"{node.name}:final_h"], out[f"{node.name}:final_c"] = y_h, y_c
    return {"nodes": len(lstms)}, out


HANDLERS = {
    "artifact_lstms": artifact_lstms,
    "artifact_run": artifact_run,
    "save_lstms": save_lstms,
    "run_chain": run_chain,
}
