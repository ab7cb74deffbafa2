"""The ``LSTM`` nodes of a user's ``.onnx`` model, for the onnxruntime worker (``.venv-onnx``).

Ops (registered in ``onnx_worker.HANDLERS``):

* ``artifact_lstms`` ``{"path"}``: ``onnx.load`` (external data is read
  from the model's folder), model-local functions expanded at their call
  sites by ``onnx.inliner`` (:func:`_expand_functions`), then every
  ``LSTM`` node of the default domain in every graph -- the main graph,
  ``If`` branches, ``Loop``/``Scan`` bodies, nested, depth first in graph
  order (:func:`_walk`) -- named by its path: ``/If/then_branch/LSTM``,
  ``/Loop/body/If/else_branch/LSTM_1``, ``/enc/LSTM/<domain>.<function>/LSTM_19``.
  Its attributes are an ``onnx.LSTM`` config; its ``W``, ``R``, ``B``,
  ``P`` (and ``sequence_lens``, ``initial_h``, ``initial_c``) are traced
  back through every scope (:func:`_trace`, a subgraph's reads of outer
  names included): an input that depends only on initializers and
  constant-producing nodes (the ``Slice``/``Concat``/``Unsqueeze`` chains
  exporters write) is folded by ONNX's reference evaluator, or ONNX Runtime
  where it lacks an op (:func:`_fold`); one that depends on a graph input
  (a model input, a ``Loop``/``Scan`` body's iteration values) or a random
  op is computed at run time: a node whose W, R, B or P is, is listed as
  skipped with the reason, naming that input.  The optional inputs are
  reported as absent, ``"constant"`` (their folded values travel too) or
  ``"computed"``.  An input that names no tensor defined anywhere is a
  damaged file: refused.  A model with no LSTM node but MatMul/Gemm +
  Sigmoid + Tanh (a cell exported as plain ops) is refused with the op
  counts; beside LSTM nodes, such ops are a skipped row.
  ``x_from`` is the position (in ``nodes``) of the LSTM node whose ``Y``
  reaches this node's ``X`` through layout ops only (``Transpose``,
  ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Identity``, ``Flatten``, and
  ``Dropout``, an identity at inference), as ``torch.onnx.export`` chains
  the layers of an ``nn.LSTM(num_layers=L)``; ``x_via`` names those ops.
  Reply: meta ``{"producer", "opset", "ir_version", "nodes": [{"name",
  "index", "where", "config", "optional", "input_size", "dtype", "x_from",
  "x_via"}], "skipped"}`` (``where``: the subgraph's path, None in the main
  graph; ``index``: the node's place in its graph);
  arrays ``{i}:w:<W|R|B|P>``, ``{i}:const:<sequence_lens|initial_h|initial_c>``.

* ``artifact_run`` ``{"path", "index"}`` with arrays ``x`` (batch-major) and
  optional ``mask``, ``h0``, ``c0``: THE ARTIFACT'S OWN NODE -- its
  ``NodeProto`` with its attributes as stored, its weight tensors as
  initializers (folded, see above) and the model's own opset -- alone in a
  graph, run by ONNX Runtime, wherever it sat (a branch, a body, a
  function).  ``mask``/``h0``/``c0`` are fed as ``sequence_lens`` /
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

* ``artifact_as_run`` ``{"path", "calls"}`` with the model's inputs
  ``in:<name>``: the whole model run by ONNX Runtime (``calls`` times, the
  states an output returns fed back, :func:`state_pairs`), each top-level
  LSTM node's inputs and outputs captured as extra graph outputs (see
  :func:`artifact_as_run`); a node in an If branch or a Loop/Scan body
  (nested too) has its values lifted out as extra outputs of the enclosing
  If (both branches) and scan outputs of the Loop/Scan (:func:`_lift`);
  one in an If inside a Loop body is carried out as sequences, one element
  per iteration; one in an If inside a Scan body is listed as not captured.

* ``run_chain`` ``{"path", "head"}``: the part of a written model that
  ``<head>/X`` feeds, run as one model (see :func:`run_chain`).
"""

import re

import numpy as np
import onnx  # noqa: E402
import onnx.inliner  # noqa: E402
import onnx.numpy_helper  # noqa: E402
import onnx.reference  # noqa: E402
import onnx.utils  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from lstm_ref.harness.oracles import protocol

# The attributes of ONNX's LSTM (opset 14 and 22): the ones a node may carry.
LSTM_ATTRIBUTES = (
    "hidden_size",
    "direction",
    "clip",
    "input_forget",
    "activations",
    "activation_alpha",
    "activation_beta",
    "layout",
)

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


def _array(value):
    return np.asarray(value) if isinstance(value, np.ndarray) else onnx.numpy_helper.to_array(value)


LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten", "Dropout")
# ops whose output is not a function of their inputs: never folded
RANDOM_OPS = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")
CELL_OPS = ("Gemm", "MatMul", "Sigmoid", "Tanh")
PATH_KEY = "lstm_ref:path"  # a NodeProto metadata key: the path of a node that came from a function body


def _default(node):
    return node.domain in ("", "ai.onnx")


def _subgraphs(node):
    """``[(attribute name, GraphProto)]`` of an If/Loop/Scan (or any) node."""
    out = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            out.append((a.name, a.g))
        elif a.type == onnx.AttributeProto.GRAPHS:
            out += [(f"{a.name}[{k}]", g) for k, g in enumerate(a.graphs)]
    return out


def _join(prefix, name):
    """``"/If/then_branch/" + "/LSTM"`` -> ``"/If/then_branch/LSTM"``."""
    return prefix + (name[1:] if prefix.endswith("/") and name.startswith("/") else name)


def _path(prefix, node, fallback):
    given = next((p.value for p in node.metadata_props if p.key == PATH_KEY), None)
    return given or _join(prefix, node.name or fallback)


def _expand_functions(model):
    """``model`` with its model-local functions expanded in place by
    ``onnx.inliner`` (which renames what it copies, and resolves attribute
    references, nested calls and subgraphs).  Each call site first gets its
    own copy of the function, whose nodes carry their path --
    ``<call node>/<domain>.<function>/<node>`` -- as metadata (the inliner
    keeps ``metadata_props``), so that an LSTM found in a body is named by
    where it was called."""
    if not model.functions:
        return model
    local = {(f.domain, f.name): f for f in model.functions}
    expanded = onnx.ModelProto()
    expanded.CopyFrom(model)
    copies = []

    def visit(nodes, prefix, inside):
        for node in nodes:
            path = _path(prefix, node, node.op_type)
            if inside and not any(p.key == PATH_KEY for p in node.metadata_props):
                node.metadata_props.add(key=PATH_KEY, value=path)
            function = local.get((node.domain, node.op_type))
            if function is not None:
                copy = onnx.FunctionProto()
                copy.CopyFrom(function)
                copy.name = f"{function.name}__lstm_ref_call{len(copies)}"
                copies.append(copy)
                node.op_type = copy.name
                visit(copy.node, f"{path}/{function.domain}.{function.name}/".replace("/.", "/"), True)
            for attribute, sub in _subgraphs(node):
                visit(sub.node, f"{path}/{attribute}/", inside)

    visit(expanded.graph.node, "", False)
    del expanded.functions[:]
    expanded.functions.extend(copies)
    return onnx.inliner.inline_local_functions(expanded)


def _walk(graph, prefix="", outer=None, where="the main graph"):
    """Every node of ``graph`` and of its subgraphs (If branches, Loop/Scan
    bodies, nested), depth first in graph order: ``(prefix, index, node,
    scope, where)``.  ``scope`` maps each name visible in the node's graph
    -- its own and its outer scopes' -- to how it is defined: ``("init",
    TensorProto)``, ``("input", where, name)`` (a graph's input: a model
    input, or a Loop/Scan body's iteration values), or ``("node", NodeProto,
    the scope of that node's graph)``."""
    scope = dict(outer or {})
    for value in graph.input:
        scope[value.name] = ("input", where, value.name)
    for tensor in graph.initializer:  # an initializer that is also an input: its stored value, the default
        scope[tensor.name] = ("init", tensor)
    for node in graph.node:
        for name in node.output:
            if name:
                scope[name] = ("node", node, scope)
    for index, node in enumerate(graph.node):
        yield prefix, index, node, scope, where
        path = _path(prefix, node, node.op_type)
        for attribute, sub in _subgraphs(node):
            yield from _walk(sub, f"{path}/{attribute}/", scope, f"{path}/{attribute}")


def _free_names(graph):
    """The names ``graph`` (and its subgraphs) reads from outer scopes."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    used = set()
    for node in graph.node:
        defined.update(node.output)
        used.update(i for i in node.input if i)
        for _, sub in _subgraphs(node):
            used |= _free_names(sub)
    return used - defined


def _origin(definition):
    if definition[0] == "input":
        where, name = definition[1], definition[2]
        return f"the model input {name!r}" if where == "the main graph" else f"{name!r}, an input of {where}"
    return f"{definition[1].op_type} node {definition[1].name!r} (random)"


class _Undefined(Exception):
    pass


def _trace(tensors, scope):
    """What computes ``tensors`` (names in ``scope``): ``(nodes in
    topological order, {initializer name: TensorProto}, None)``, or
    ``(.., .., (tensor, definition))`` for the first of them that depends
    on a graph input (a model input, a Loop/Scan body's iteration values)
    or a random op: computed at run time.  A subgraph of a node on the way
    (a constant If) counts with the outer names it reads."""
    order, inits, done, free = [], {}, set(), {}
    for tensor in tensors:
        stack = [(tensor, scope, None)]
        while stack:
            name, where, node = stack.pop()
            if node is not None:  # all its inputs visited
                order.append(node)
                continue
            definition = where.get(name)
            if definition is None:
                raise _Undefined(name)
            kind = definition[0]
            if kind == "init":
                inits[name] = definition[1]
                continue
            if kind == "input" or definition[1].op_type in RANDOM_OPS:
                return order, inits, (tensor, definition)
            node, inner = definition[1], definition[2]
            if id(node) in done:
                continue
            done.add(id(node))
            stack.append((None, None, node))
            reads = [i for i in node.input if i]
            for _, sub in _subgraphs(node):
                if id(sub) not in free:
                    free[id(sub)] = _free_names(sub)
                reads += sorted(free[id(sub)])
            stack += [(i, inner, None) for i in reversed(reads)]
    return order, inits, None


def _fold(tensors, nodes, inits, model):
    """The values of ``tensors``: ``nodes`` (constant-only, topologically
    ordered, from any scope) as one graph over ``inits``, run by ONNX's
    reference evaluator (``onnx.reference``), or ONNX Runtime where the
    evaluator has no kernel for an op; ``(arrays, None)`` or ``(None, why)``."""
    if not nodes:
        return [_array(inits[t]) for t in tensors], None
    graph = helper.make_graph(
        list(nodes),
        "lstm_ref_fold",
        [],
        [onnx.ValueInfoProto(name=t) for t in tensors],
        initializer=list(inits.values()),
    )
    folded = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        return [np.asarray(v) for v in onnx.reference.ReferenceEvaluator(folded).run(None, {})], None
    except Exception as exc:  # noqa: BLE001 - an op the evaluator lacks: ONNX Runtime's turn
        first = _first_line(exc)
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(folded.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return [np.asarray(v) for v in session.run(None, {})], None
    except Exception as exc:  # noqa: BLE001 - reported on the node's row
        return None, f"onnx.reference: {first}; onnxruntime: {_ort_message(exc)}"


def _fed_by(tensor, scope):
    """``(the LSTM node whose Y reaches tensor through layout ops only, [their op types])`` or ``(None, ops)``."""
    via = []
    while tensor:
        definition = scope.get(tensor)
        if definition is None or definition[0] != "node":
            return None, via
        node, scope = definition[1], definition[2]
        if node.op_type == "LSTM" and _default(node):
            return (node if node.output and node.output[0] == tensor else None), via
        if node.op_type not in LAYOUT_OPS or not _default(node):
            return None, via + [node.op_type]
        via.append(node.op_type)
        tensor = node.input[0] if node.input else ""
    return None, via


def _cell_ops(walked):
    """``{where: Counter of CELL_OPS}`` over every graph: the ops of a
    recurrent cell decomposed into MatMul/Gemm + Sigmoid + Tanh."""
    counts = {}
    for _, _, node, _, where in walked:
        if node.op_type in CELL_OPS and _default(node):
            counts.setdefault(where, {}).setdefault(node.op_type, 0)
            counts[where][node.op_type] += 1
    cells = {}
    for where, c in counts.items():
        if c.get("Sigmoid", 0) >= 3 and c.get("Tanh", 0) >= 2 and c.get("Gemm", 0) + c.get("MatMul", 0) >= 1:
            cells[where] = ", ".join(f"{c[op]} {op}" for op in CELL_OPS if c.get(op))
    return cells


def _read_lstm(node, name, scope, model):
    """``(why skipped, None)`` or ``(None, (config, weights, optional, constants))`` of one LSTM node."""
    slots = dict(zip(SLOTS, list(node.input) + [""] * (len(SLOTS) - len(node.input))))
    for slot in ("W", "R"):
        if not slots[slot]:
            return f"input {slot} is missing", None
    config = {a.name: _attribute(a) for a in node.attribute}
    unknown = sorted(set(config) - set(LSTM_ATTRIBUTES))
    if unknown:
        return f"attribute(s) {unknown} are not in ONNX's LSTM-14/22 (an older LSTM-1 node?)", None
    wanted = {}  # slot -> (nodes, inits)
    optional = {}
    for slot in WEIGHTS + OPTIONAL:
        tensor = slots[slot]
        if not tensor:
            continue
        try:
            nodes, inits, runtime = _trace([tensor], scope)
        except _Undefined as exc:
            raise _Undefined(
                f"LSTM node {name!r}: its input {slot} reads {exc.args[0]!r}, which is defined nowhere in the "
                "model (no initializer, node output or graph input of that name): a damaged or truncated file"
            ) from None
        if runtime is None:
            wanted[slot] = (nodes, inits)
            optional[slot] = "constant"
            continue
        if slot in OPTIONAL:
            optional[slot] = "computed"
            continue
        definition = scope[tensor]
        if definition[0] == "input":
            what = f"is {_origin(definition)}"
        else:
            what = f"is the output of {definition[1].op_type} node {definition[1].name!r}"
            if runtime[1] is not definition:
                what += f", which depends on {_origin(runtime[1])}"
        return f"{slot} ({tensor}) {what}: computed at run time, not a constant: its weights cannot be read", None
    nodes, inits, seen = [], {}, set()
    for n, i in wanted.values():
        nodes += [k for k in n if id(k) not in seen]
        seen.update(id(k) for k in n)
        inits.update(i)
    slots_folded = list(wanted)
    values, why = _fold([slots[s] for s in slots_folded], nodes, inits, model)
    if why is not None:
        what = ", ".join(slots_folded)
        return f"{what} depend only on constants, but folding them failed ({why})", None
    folded = dict(zip(slots_folded, values))
    weights = {s: folded[s] for s in WEIGHTS if s in folded}
    constants = {s: folded[s] for s in OPTIONAL if s in folded}
    optional = {s: optional[s] for s in OPTIONAL if s in optional}
    if "hidden_size" not in config:
        config["hidden_size"] = int(weights["R"].shape[-1])
    return None, (config, weights, optional, constants)


@protocol.last_file
def _load(path):
    try:
        model = onnx.load(path)
    except Exception as exc:  # noqa: BLE001 - a protobuf decode error, missing external data...
        raise protocol.UserError(f"{path} is not an ONNX model onnx.load can read ({_first_line(exc)})") from None
    if not model.ir_version or not model.graph.node:
        raise protocol.UserError(f"{path} is not an ONNX model (no ir_version or no graph nodes after parsing)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    skipped, inline_failed = [], None
    if model.functions:
        try:
            model = _expand_functions(model)
        except Exception as exc:  # noqa: BLE001 - the inliner's refusal, on the rows of the LSTMs it hides
            inline_failed = _first_line(exc)
    walked = list(_walk(model.graph))
    nodes, arrays, protos = [], {}, []
    lstm_count, position = 0, {}  # id of a listed LSTM node -> its place in nodes
    for prefix, index, node, scope, _ in walked:
        if node.op_type in ("GRU", "RNN") and _default(node):
            skipped.append(
                [
                    _path(prefix, node, node.op_type),
                    f"an ONNX {node.op_type} node, not an LSTM; lstm_ref has no reference for it",
                ]
            )
        if node.op_type != "LSTM" or not _default(node):
            continue
        name = _path(prefix, node, f"LSTM#{lstm_count}")
        lstm_count += 1
        try:
            why, read = _read_lstm(node, name, scope, model)
        except _Undefined as exc:
            raise protocol.UserError(f"{path}: {exc}") from None
        if why is not None:
            skipped.append([name, why])
            continue
        config, weights, optional, constants = read
        dtype = weights["W"].dtype.name
        if dtype != "float32":
            config["dtype"] = dtype
        i = len(nodes)
        for slot, value in constants.items():
            arrays[f"{i}:const:{slot}"] = value
        for slot, value in weights.items():
            arrays[f"{i}:w:{slot}"] = value
        feeder, via = _fed_by(node.input[0] if node.input else "", scope)
        position[id(node)] = len(nodes)
        nodes.append(
            {
                "name": name,
                "index": index,
                "where": prefix.rstrip("/") or None,
                "config": config,
                "optional": optional,
                "input_size": int(weights["W"].shape[-1]),
                "dtype": dtype,
                "x_from": None if feeder is None else position.get(id(feeder)),
                "x_via": via,
            }
        )
        protos.append((node, weights, constants))
    if inline_failed is not None:
        for function in model.functions:
            for node in function.node:
                if node.op_type == "LSTM" and _default(node):
                    skipped.append(
                        [
                            f"{function.domain}.{function.name}/{node.name or 'LSTM'}".lstrip("."),
                            "an LSTM inside a model-local function that onnx.inliner could not expand: "
                            + inline_failed,
                        ]
                    )
    if lstm_count == 0:
        cells = _cell_ops(walked)
        if cells:
            found = "; ".join(f"{ops} in {where}" for where, ops in cells.items())
            also = f"; skipped: {'; '.join(f'{n}: {w}' for n, w in skipped)}" if skipped else ""
            raise protocol.UserError(
                f"{path}: no LSTM node; found a decomposed recurrent cell: {found} (torch.onnx.export writes "
                "an nn.LSTMCell, or a cell in plain ops, this way; lstm-ref checks ONNX LSTM nodes: export "
                f"torch.nn.LSTM){also}"
            )
    else:
        for where, ops in _cell_ops(walked).items():
            skipped.append(
                [
                    f"decomposed cell in {where}",
                    f"{ops} outside any LSTM node: a recurrent cell decomposed into plain ops (an exported "
                    "nn.LSTMCell?); lstm-ref checks LSTM nodes only",
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
        "model": model,  # functions expanded: what artifact_as_run runs
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


# -- the model as it runs ------------------------------------------------------------------

_NP = {
    TensorProto.FLOAT: np.float32,
    TensorProto.DOUBLE: np.float64,
    TensorProto.FLOAT16: np.float16,
    TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32,
    TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8,
    TensorProto.BOOL: np.bool_,
}
# an output carries the state an input takes when its name is the input's
# with one of these suffixes added, or the input's own suffix (the second
# column) replaced by one of them: state -> stateN, h -> h_out, h0 -> hn,
# c_in -> c_out, past -> present.
STATE_SUFFIXES = ("N", "n", "_n", "_N", "_out", "out", "_next", "_new")
STATE_REPLACED = ("0", "_0", "_in", "in", "_prev")


def _declared(value):
    """``(numpy dtype or None, [dim or None])`` of a graph input/output."""
    tensor = value.type.tensor_type
    dtype = _NP.get(tensor.elem_type)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return dtype, (dims if tensor.HasField("shape") else None)


def state_pairs(model):
    """``[(input, output)]``: the inputs whose state an output carries, by
    name (:data:`STATE_SUFFIXES`; ``past``/``present`` too) with the same
    element type and, where both are declared, the same rank and fixed dims."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    outputs = {v.name: v for v in model.graph.output}
    pairs = []
    for value in inputs:
        name = value.name
        bases = [name] + [name[: -len(s)] for s in STATE_REPLACED if name.endswith(s) and len(name) > len(s)]
        candidates = [b + s for b in bases for s in STATE_SUFFIXES]
        if "past" in name:
            candidates.append(name.replace("past", "present"))
        match = next((outputs[c] for c in candidates if c in outputs), None)
        if match is None:
            continue
        d_in, d_out = _declared(value)[1], _declared(match)[1]
        if value.type.tensor_type.elem_type != match.type.tensor_type.elem_type:
            continue
        if d_in is not None and d_out is not None:
            if len(d_in) != len(d_out) or any(a and b and a != b for a, b in zip(d_in, d_out)):
                continue
        pairs.append((name, match.name))
    return pairs


def _feeds(model, arrays, calls=1, states=()):
    """The model's inputs from ``arrays`` (``""``: the only input), cast to
    their declared element type: ``([feeds per call], casts)``.  With
    ``calls`` > 1 an input other than a state may carry one more leading
    axis of length ``calls``: one value per call.  A missing, unknown or
    ill-shaped input is the user's error."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    names = [v.name for v in inputs]
    given = dict(arrays)
    if "" in given:
        if len(names) != 1:
            raise protocol.UserError(
                f"the model has {len(names)} inputs ({', '.join(names)}); give each as --input NAME=FILE.npy "
                "(or one .npz keyed by name)"
            )
        given = {names[0]: given.pop("")}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise protocol.UserError(
            f"--input {unknown[0]}: the model has no input of that name (its inputs: {', '.join(names)})"
        )
    missing = [n for n in names if n not in given]
    if missing:
        raise protocol.UserError(
            f"--input: the model's input(s) {', '.join(missing)} not given (it takes {', '.join(names)}); give "
            "every input as NAME=FILE.npy"
        )
    per_call, casts = [{} for _ in range(calls)], []
    for value in inputs:
        array = np.asarray(given[value.name])
        dtype, dims = _declared(value)
        split = (
            calls > 1
            and value.name not in states
            and dims is not None
            and array.ndim == len(dims) + 1
            and array.shape[0] == calls
        )
        shapes = array.shape[1:] if split else array.shape
        if dims is not None and (len(dims) != len(shapes) or any(d and d != n for d, n in zip(dims, shapes))):
            shape = "x".join("?" if d is None else str(d) for d in dims)
            per = (
                f", or ({calls}, {shape.replace('x', ', ')}): one per call"
                if calls > 1 and value.name not in states
                else ""
            )
            declared = shape.replace("x", ", ")
            raise protocol.UserError(
                f"--input {value.name}: shape {array.shape} does not fit the model's declared ({declared}){per}"
            )
        if dtype is not None and array.dtype != dtype:
            want = np.dtype(dtype)
            if want.kind != array.dtype.kind and not (want.kind == "f" and array.dtype.kind in "iub"):
                raise protocol.UserError(f"--input {value.name}: dtype {array.dtype}, the model takes {want}")
            cast = array.astype(dtype)
            change = float(np.max(np.abs(cast.astype(np.float64) - array.astype(np.float64)))) if array.size else 0.0
            casts.append(
                {
                    "input": value.name,
                    "given": array.dtype.name,
                    "cast_to": want.name,
                    "exact": change == 0.0,
                    "max_change": change,
                }
            )
            array = cast
        for call in range(calls):
            per_call[call][value.name] = np.ascontiguousarray(array[call] if split else array)
    return per_call, casts


def _captured_outputs(model, nodes):
    """A copy of ``model`` whose graph also outputs, for every top-level LSTM
    node, the X, sequence_lens, initial_h, initial_c it reads and the Y,
    Y_h, Y_c it writes (``{i: {slot: tensor name}}``); graph inputs and
    initializers are read from the feeds and the constants instead."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    inputs = {v.name for v in graph.input}
    present = {v.name for v in graph.output} | inputs
    initializers = {t.name for t in graph.initializer}
    wanted = {}
    for i, (node, dtype) in nodes.items():
        slots = dict(zip(SLOTS, list(node.input) + [""] * len(SLOTS)))
        names = {s: slots[s] for s in ("X", "sequence_lens", "initial_h", "initial_c") if slots[s]}
        names.update({s: o for s, o in zip(("Y", "Y_h", "Y_c"), node.output) if o})
        wanted[i] = names
        for slot, name in names.items():
            if name in present or (name in initializers and name not in inputs):
                continue
            elem = TensorProto.INT32 if slot == "sequence_lens" else helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            graph.output.append(helper.make_tensor_value_info(name, elem, None))
            present.add(name)
    return copy, wanted


RANKS = {"X": 3, "sequence_lens": 1, "initial_h": 3, "initial_c": 3, "Y": 4, "Y_h": 3, "Y_c": 3}


def _lift(graph, targets, prefix, state):
    """Expose, as values of ``graph``, the X, sequence_lens, initial_h,
    initial_c, Y, Y_h, Y_c of the LSTM nodes ``targets`` (``{DFS ordinal:
    (position, dtype)}``, ordinals counted as :func:`_walk` yields nodes)
    found in its subgraphs, and lift them out through each enclosing node:
    an ``If`` gets one more output per value, both branches outputting it
    (the branch without the node a zero-size constant of the same type and
    rank), plus a bool ``taken`` per node (true only from its branch); a
    ``Loop``/``Scan`` gets one more scan output per value (one per
    iteration, stacked on a new leading axis).  An ``If`` inside a ``Loop``
    body (the branch taken, and the stand-in's shape with it, may change
    between iterations, so the values cannot be stacked) gets its values,
    and its ``taken``, carried out as sequences instead, one element per
    iteration (:func:`_carry_as_sequences`; Loop carries sequences from
    opset 13).  Not lifted through, with ``state["why"][position]`` saying
    so: an If inside a ``Scan`` (Scan carries tensors only), a sequence
    inside a further Loop/Scan, and any other op with a subgraph.  Returns
    ``[{"name", "i", "slot", "elem", "rank", "loops", "via", "seq"}]``
    named in ``graph``."""
    exposed, added, before = [], [], {}  # before: {index of a node: nodes to insert before it}
    for index, node in enumerate(graph.node):
        ordinal = state["ordinal"]
        state["ordinal"] += 1
        path = _path(prefix, node, node.op_type)
        if ordinal in targets:
            i, dtype = targets[ordinal]
            slots = dict(zip(SLOTS, list(node.input) + [""] * len(SLOTS)))
            names = {s: slots[s] for s in ("X", "sequence_lens", "initial_h", "initial_c") if slots[s]}
            names.update({s: o for s, o in zip(("Y", "Y_h", "Y_c"), node.output) if o})
            for slot, name in names.items():
                out = _fresh(state)
                added.append(helper.make_node("Identity", [name], [out]))
                elem = (
                    TensorProto.INT32 if slot == "sequence_lens" else helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
                )
                exposed.append(
                    {"name": out, "i": i, "slot": slot, "elem": elem, "rank": RANKS[slot], "loops": 0, "via": []}
                )
        subs = _subgraphs(node)
        inner = [(attribute, sub, _lift(sub, targets, f"{path}/{attribute}/", state)) for attribute, sub in subs]
        found = [e for _, _, es in inner for e in es]
        if not found:
            continue
        kind = node.op_type if _default(node) else f"{node.domain}.{node.op_type}"
        if kind == "If":
            exposed += _lift_if(node, path, inner, state)
        elif kind in ("Loop", "Scan"):
            flagged = {e["i"] for e in found if e["slot"] == "taken"}
            body = inner[0][1]
            carried = {i for i in flagged if kind == "Loop" and state["opset"] >= 13}
            carried -= {e["i"] for e in found if e.get("seq") or e["loops"]}
            for i in flagged - carried:
                state["why"][i] = (
                    f"it sits in an If branch inside the {kind} {path!r}: the branch taken may change between "
                    "iterations, so its values are not stacked as scan outputs, and "
                    + (
                        "they are already stacked or carried through an inner Loop/Scan (not captured)"
                        if any(e.get("seq") or e["loops"] for e in found if e["i"] == i)
                        else "Scan carries no sequence (not captured)"
                        if kind == "Scan"
                        else f"a Loop carries a sequence only from opset 13 (the model's is {state['opset']}; "
                        "not captured)"
                    )
                )
            starts = before.setdefault(index, [])
            exposed += _carry_as_sequences(node, body, path, [e for e in found if e["i"] in carried], state, starts)
            for e in found:
                if e["i"] in flagged:
                    continue
                body.output.append(helper.make_tensor_value_info(e["name"], e["elem"], None))
                out = _fresh(state)
                node.output.append(out)
                via = f"scan outputs of the {kind} {path!r} body (one per iteration)"
                exposed.append({**e, "name": out, "loops": e["loops"] + 1, "via": e["via"] + [via]})
            if kind == "Scan":
                for a in node.attribute:
                    if a.name in ("scan_output_axes", "scan_output_directions"):
                        a.ints.extend([0] * (len(found) - len(flagged)))
        else:
            for e in found:
                state["why"][e["i"]] = f"it sits in a subgraph of the {kind} node {path!r}: not captured through it"
    if any(before.values()):  # a graph's nodes stay topologically sorted (ONNX Runtime requires it)
        nodes = []
        for index, node in enumerate(graph.node):
            nodes += before.get(index, [])
            nodes.append(onnx.NodeProto.FromString(node.SerializeToString()))
        del graph.node[:]
        graph.node.extend(nodes)
    graph.node.extend(added)
    return exposed


def _carry_as_sequences(node, body, path, found, state, starts):
    """Each value of ``found`` (body values of the Loop ``node``) carried
    out as a sequence with one element per iteration: an empty sequence
    (``SequenceEmpty``, ``starts``: inserted before the Loop) goes in as one more
    loop-carried input, the body appends the iteration's value
    (``SequenceInsert``) and outputs it as the carried value, and the Loop
    outputs the final sequence.  Loop's carried outputs come before its
    scan outputs (onnx/defs/controlflow: ``Loop``'s ``v_final_and_scan_outputs``)."""
    exposed = []
    for e in found:
        carried = len(node.input) - 2  # M, cond, then the carried initial values
        start, seq_in, seq_out, out = _fresh(state), _fresh(state), _fresh(state), _fresh(state)
        starts.append(helper.make_node("SequenceEmpty", [], [start], dtype=e["elem"]))
        node.input.append(start)
        body.input.append(helper.make_tensor_sequence_value_info(seq_in, e["elem"], None))
        body.node.append(helper.make_node("SequenceInsert", [seq_in, e["name"]], [seq_out]))
        outputs = list(body.output)
        outputs.insert(1 + carried, helper.make_tensor_sequence_value_info(seq_out, e["elem"], None))
        del body.output[:]
        body.output.extend(outputs)
        names = list(node.output)
        names.insert(carried, out)
        del node.output[:]
        node.output.extend(names)
        via = f"a sequence carried through the Loop {path!r} (one element per iteration, its branch's or a stand-in)"
        exposed.append({**e, "name": out, "seq": True, "via": e["via"] + [via]})
    return exposed


def _fresh(state):
    state["count"] += 1
    return f"lstm_ref_capture_{state['count']}"


def _value_info(name, e):
    """The ValueInfo of an exposure: a tensor, or a sequence of them."""
    if e.get("seq"):
        return helper.make_tensor_sequence_value_info(name, e["elem"], None)
    return helper.make_tensor_value_info(name, e["elem"], None)


def _constant(state, elem, rank, value=None):
    out = _fresh(state)
    if value is None:
        tensor = helper.make_tensor(out + "_value", elem, [0] * rank, [])
    else:
        tensor = helper.make_tensor(out + "_value", TensorProto.BOOL, [], [value])
    return out, helper.make_node("Constant", [], [out], value=tensor)


def _lift_if(node, path, inner, state):
    """Both branches of the If ``node`` output every value found in either
    (see :func:`_lift`), and a bool ``taken`` per LSTM node."""
    branches = {attribute: sub for attribute, sub, _ in inner}
    found = []
    for attribute, _, es in inner:
        found += [(attribute, e) for e in es]
    for attribute, i in {
        (a, e["i"]) for a, e in found if not any(f["i"] == e["i"] and f["slot"] == "taken" for _, f in found)
    }:
        found.append(
            (
                attribute,
                {"name": None, "i": i, "slot": "taken", "elem": TensorProto.BOOL, "rank": 0, "loops": 0, "via": []},
            )
        )
    exposed = []
    for attribute, e in found:
        for name, sub in branches.items():
            if name == attribute and e["name"] is not None:
                out = e["name"]
            elif e.get("seq"):  # a sequence from a Loop in the other branch: an empty one
                out = _fresh(state)
                sub.node.append(helper.make_node("SequenceEmpty", [], [out], dtype=e["elem"]))
            else:
                value = (name == attribute) if e["slot"] == "taken" else None
                out, constant = _constant(state, e["elem"], e["rank"] + e["loops"], value)
                sub.node.append(constant)
            sub.output.append(_value_info(out, e))
        out = _fresh(state)
        node.output.append(out)
        exposed.append(
            {
                **e,
                "name": out,
                "via": e["via"]
                + [
                    f"outputs of the If {path!r} (its {attribute}, and "
                    + ("an empty sequence" if e.get("seq") else "a zero-size stand-in")
                    + " from the other branch)"
                ],
            }
        )
    return exposed


def _case_arrays(config, values, prefix):
    """What a node received and wrote, in the case's layout: ``x``
    batch-major, ``mask`` from sequence_lens, ``h0``/``c0`` and
    ``final_h``/``final_c`` ``(D, batch, H)``, ``h`` batch-major with the
    directions concatenated."""
    layout = int(config.get("layout", 0))
    x = np.asarray(values["X"])
    x = x if layout else x.transpose(1, 0, 2)
    batch, time = x.shape[:2]
    out = {f"{prefix}x": x}
    if "sequence_lens" in values:
        lens = np.asarray(values["sequence_lens"]).astype(np.int64)
        out[f"{prefix}mask"] = np.arange(time)[None] < lens[:, None]
    for slot, key in (("initial_h", "h0"), ("initial_c", "c0"), ("Y_h", "final_h"), ("Y_c", "final_c")):
        if slot in values:
            v = np.asarray(values[slot])
            out[f"{prefix}{key}"] = v.transpose(1, 0, 2) if layout else v
    if "Y" in values:
        y = np.asarray(values["Y"])
        out[f"{prefix}h"] = y.reshape(batch, time, -1) if layout else y.transpose(2, 0, 1, 3).reshape(batch, time, -1)
    return out


def artifact_as_run(meta, arrays):
    """``{"path", "calls"}`` with the model's inputs ``in:<name>`` (``in:``:
    its only input): the WHOLE model run by ONNX Runtime, ``calls`` times, the
    states an output carries (:func:`state_pairs`) fed back as the next
    call's inputs; for every top-level LSTM node (see ``artifact_lstms``'
    ``nodes``; a function's, inlined, included) what it received and wrote
    in each run, captured as extra graph outputs of a copy of the model;
    for every node in an If branch or a Loop/Scan body, the same lifted out
    through the enclosing nodes (:func:`_lift`).  Reply meta ``{"pairs",
    "casts", "captured": [top-level positions], "uncaptured": [[position,
    why]], "lifted": [subgraph positions], "runs": [[call, position,
    iteration label, iteration counts]], "not_run": [[call, position,
    why]], "how": {position: how it was lifted}}``, arrays
    ``{call}:{i}:<x|mask|h0|c0|h|final_h|final_c>`` (top-level),
    ``{call}:{i}@{label}:<...>`` (lifted; label ``""`` outside any body,
    ``"2"``, ``"1.3"``) and ``{call}:out:<output name>`` (the model's own
    outputs)."""
    entry = _load(meta["path"])
    model = entry["model"]
    calls = int(meta.get("calls", 1))
    pairs = state_pairs(model)
    given = {k[3:]: v for k, v in arrays.items() if k.startswith("in:")}
    if calls > 1 and not pairs:
        names = ", ".join(v.name for v in model.graph.input)
        outs = ", ".join(v.name for v in model.graph.output)
        raise protocol.UserError(
            f"--calls {calls}: no input of the model takes a state that an output returns (inputs {names}; outputs "
            f"{outs}); a state output is named like its input plus N/_n/_out/_next, or with a trailing 0/_in "
            "replaced so (state -> stateN, h0 -> hn, c_in -> c_out), of the same type"
        )
    top, inner = {}, {}
    ordinals = {id(node): k for k, (_, _, node, _, _) in enumerate(_walk(model.graph))}
    for i, info in enumerate(entry["meta"]["nodes"]):
        if info["where"] is None:
            top[i] = (entry["protos"][i][0], info["dtype"])
        else:
            inner[ordinals[id(entry["protos"][i][0])]] = (i, info["dtype"])
    per_call, casts = _feeds(model, given, calls, {src for src, _ in pairs})
    feeds = per_call[0]
    captured, wanted = _captured_outputs(model, top)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), SAVE_OPSET)
    state = {"ordinal": 0, "count": 0, "why": {}, "opset": opset}
    lifted = _lift(captured.graph, inner, "", state) if inner else []
    for e in lifted:
        if e["i"] not in state["why"]:
            captured.graph.output.append(_value_info(e["name"], e))
    uncaptured = [[i, state["why"][i]] for i in sorted(state["why"])]
    subgraph = {}  # position -> {slot: exposure}
    for e in lifted:
        if e["i"] not in state["why"]:
            subgraph.setdefault(e["i"], {})[e["slot"]] = e
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(captured.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT's refusal of the model, for the user
        raise protocol.UserError(f"onnxruntime {ort.__version__} cannot load the model: {_ort_message(exc)}") from None
    names = [o.name for o in session.get_outputs()]
    model_outputs = [v.name for v in model.graph.output]
    out, runs, not_run = {}, [], []
    for call in range(calls):
        try:
            values = dict(zip(names, session.run(names, feeds)))
        except Exception as exc:  # noqa: BLE001 - the run's failure on these inputs, for the user
            raise protocol.UserError(
                f"onnxruntime {ort.__version__} fails to run the model (call {call + 1}): {_ort_message(exc)}"
            ) from None
        known = {**feeds, **values}
        for i, slots in wanted.items():
            got = {}
            for slot, name in slots.items():
                if name in known:
                    got[slot] = known[name]
                elif slot in entry["protos"][i][2]:
                    got[slot] = entry["protos"][i][2][slot]
            out.update(_case_arrays(entry["meta"]["nodes"][i]["config"], got, f"{call}:{i}:"))
        for i, slots in subgraph.items():
            _unstack(i, slots, values, entry["meta"]["nodes"][i]["config"], call, out, runs, not_run)
        for name in model_outputs:
            out[f"{call}:out:{name}"] = values[name]
        if call + 1 < calls:
            feeds = {**per_call[call + 1], **{src: np.ascontiguousarray(values[dst]) for src, dst in pairs}}
    how = {
        str(i): "as extra " + ", then ".join(slots["X"]["via"]) + ", up to graph outputs of the model"
        for i, slots in subgraph.items()
    }
    reply = {"pairs": pairs, "casts": casts, "captured": sorted(top), "uncaptured": uncaptured, "calls": calls}
    return {**reply, "lifted": sorted(subgraph), "runs": runs, "not_run": not_run, "how": how}, out


def _unstack(i, slots, values, config, call, out, runs, not_run):
    """The captures of the subgraph node ``i`` in one call: none where an If
    took the other branch (``not_run``), else one per iteration of the
    enclosing Loops/Scans (``runs``: ``[call, i, label]``, label ``"2"`` or
    ``"1.3"`` for nested bodies, 1-based; ``""`` outside any body), as
    ``{call}:{i}@{label}:<x|mask|...>``."""
    if slots["X"].get("seq"):
        return _unsequence(i, slots, values, config, call, out, runs, not_run)
    taken = slots.get("taken")
    if taken is not None and not bool(np.asarray(values[taken["name"]])):
        not_run.append([call, i, "its If branch was not taken in this run: the node did not run"])
        return
    loops = slots["X"]["loops"]
    arrays = {s: np.asarray(values[e["name"]]) for s, e in slots.items() if s != "taken"}
    shape = arrays["X"].shape[:loops]
    if loops and 0 in shape:
        not_run.append([call, i, "its Loop/Scan body ran 0 iterations in this run: the node did not run"])
        return
    for index in np.ndindex(*shape):
        label = ".".join(str(k + 1) for k in index)
        got = {s: a[index] for s, a in arrays.items()}
        out.update(_case_arrays(config, got, f"{call}:{i}@{label}:"))
        runs.append([call, i, label, ".".join(str(n) for n in shape)])


def _unsequence(i, slots, values, config, call, out, runs, not_run):
    """The captures of a node in an If inside a Loop (carried out as
    sequences, :func:`_carry_as_sequences`): one per iteration whose branch
    ran it, labelled by the iteration (1-based) among all of them."""
    seqs = {s: values[e["name"]] for s, e in slots.items()}
    count = len(seqs["taken"])
    ran = [k for k in range(count) if bool(np.asarray(seqs["taken"][k]))]
    if not ran:
        not_run.append(
            [
                call,
                i,
                f"its If branch was taken in none of the {count} iterations of its Loop in this run"
                if count
                else "its Loop did not run (0 iterations, or the branch around the Loop was not taken)",
            ]
        )
        return
    for k in ran:
        got = {s: np.asarray(seq[k]) for s, seq in seqs.items() if s != "taken"}
        out.update(_case_arrays(config, got, f"{call}:{i}@{k + 1}:"))
        runs.append([call, i, str(k + 1), str(count)])


HANDLERS = {
    "artifact_lstms": artifact_lstms,
    "artifact_run": artifact_run,
    "save_lstms": save_lstms,
    "run_chain": run_chain,
    "artifact_as_run": artifact_as_run,
}
