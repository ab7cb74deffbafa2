"""Oracle worker that runs ``.tflite`` models with LiteRT (``ai-edge-litert``,
CPU), in ``.venv-litert``: what a phone runs.

``ai_edge_litert.interpreter.Interpreter``, not ``tf.lite.Interpreter``
(deprecated: "scheduled for deletion in TF 2.20", says TF 2.21's own
``tensorflow/lite/python/interpreter.py``), with
its default op resolver: XNNPACK takes the float ops it supports, as on a
device (the executed op list shows ``DELEGATE``).

Ops:

- ``hello``: versions.
- ``run``: arrays ``model`` (the .tflite bytes, uint8) and ``in:<i>`` (float32,
  in the order of ``get_input_details()``); a quantised input (an integer
  type with a scale) is quantised with the model's own scale and zero point
  (``round(x / s) + z``, clipped to the type), a quantised output
  dequantised (``(q - z) * s``); an integer input or output without a
  scale (token ids into an Embedding) is passed as it is.  Reply arrays
  ``out:<i>`` (float32, in ``get_output_details()`` order) and ``raw:<i>``
  (as the model returned them); meta ``inputs``/``outputs`` (name, shape,
  dtype, scale, zero point, ``shape_signature``: -1 for a size the model
  leaves open, which LiteRT runs as 1), ``ops`` (the model's operators per subgraph,
  read from the flatbuffer: the WHILE loop's body is a subgraph that
  ``get_tensor_details()`` does not list), ``executed`` (the primary
  subgraph's nodes after delegation), ``constants`` (elements of weight data per
  type), ``lowering`` (``fused`` when the
  model holds ``UNIDIRECTIONAL_SEQUENCE_LSTM``, ``while`` for a WHILE loop,
  else ``unrolled``), and ``repeat``: the model is invoked twice on the same
  input, and ``repeat.bitwise`` says whether the two outputs are identical
  (``repeat.max_abs`` how far apart, dequantised).

  ``reset`` (default true): ``reset_all_variables()`` before *every* invoke.
  The fused LSTM keeps its h and c in variable tensors between invokes
  (tensorflow#47813): without the reset, the second invoke starts from the
  first one's final state.  ``reset=false`` resets once, before the first
  invoke only, to show that.
"""

import hashlib
import importlib.metadata

import numpy as np
from ai_edge_litert import schema_py_generated as schema  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from lstm_ref.harness.oracles import protocol, provenance

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_CACHE = {}
_CACHE_SIZE = 16


def model_ops(blob: bytes) -> list:
    """Operator names per subgraph, from the flatbuffer itself."""
    model = schema.ModelT.InitFromPackedBuf(blob, 0)
    codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in model.operatorCodes]
    names = []
    for sub in model.subgraphs:
        names.append(
            [_OP_NAMES.get(codes[op.opcodeIndex], f"op{codes[op.opcodeIndex]}") for op in (sub.operators or [])]
        )
    return names


_TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def constant_types(blob: bytes) -> dict:
    """Elements of constant data (weights, biases) per tensor type, over
    all subgraphs: ``{"int8": 1024, "float32": 96}``; shows which weights a
    mode quantised (dynamic range leaves tensors under 1024 elements float)."""
    model = schema.ModelT.InitFromPackedBuf(blob, 0)
    counts, seen = {}, set()
    for sub in model.subgraphs:
        for t in sub.tensors or []:
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            if buf is None or t.buffer in seen or (buf.data is None and not buf.size):
                continue
            seen.add(t.buffer)
            name = _TYPE_NAMES.get(t.type, str(t.type))
            counts[name] = counts.get(name, 0) + int(np.prod(t.shape if t.shape is not None else []))
    return counts


def lowering(ops) -> str:
    flat = {op for sub in ops for op in sub}
    if "UNIDIRECTIONAL_SEQUENCE_LSTM" in flat or "BIDIRECTIONAL_SEQUENCE_LSTM" in flat:
        return "fused"
    if "WHILE" in flat:
        return "while"
    return "unrolled"


def _interpreter(blob: bytes):
    key = hashlib.sha256(blob).hexdigest()
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        try:
            interp = Interpreter(model_content=blob, num_threads=1)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise protocol.UserError(f"LiteRT cannot load the model: {str(exc).strip()}") from None
        _CACHE[key] = interp
    return _CACHE[key]


def _describe(d) -> dict:
    scale, zero = d["quantization"]
    signature = d.get("shape_signature", d["shape"])  # -1 where the model leaves a size open
    return {
        "name": d["name"],
        "shape": [int(s) for s in d["shape"]],
        "dtype": np.dtype(d["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero),
        "shape_signature": [int(s) for s in (signature if len(signature) else d["shape"])],
    }


def quantize(x, detail):
    """What the model's input takes: a float input as is; a quantised one
    (an integer type with a scale) as ``round(x / s) + z``; an integer
    input without a scale (token ids into an Embedding, an index) is not
    quantised: its values are passed as they are, and must be whole numbers
    of the type's range."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return np.asarray(x, dtype)
    scale, zero = detail["quantization"]
    if not scale or dtype.kind not in "iu":
        values = np.asarray(x)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if values.size and (
                not np.array_equal(values, np.round(values)) or values.min() < info.min or values.max() > info.max
            ):
                raise protocol.UserError(
                    f"input {detail['name']!r} takes {dtype.name} values as they are (token ids: it is not "
                    f"quantised); got values in [{values.min()}, {values.max()}] that are not whole "
                    f"{dtype.name} numbers"
                )
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x, np.float64) / scale) + zero, info.min, info.max).astype(dtype)


def dequantize(q, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return np.asarray(q, np.float32)
    scale, zero = detail["quantization"]
    if not scale:  # an integer output that is not quantised (an index, a count): its values as they are
        return np.asarray(q, np.float32)
    return ((np.asarray(q, np.float64) - zero) * scale).astype(np.float32)


def _invoke(interp, feeds, reset):
    if reset:
        interp.reset_all_variables()
    for detail, value in zip(interp.get_input_details(), feeds):
        interp.set_tensor(detail["index"], value)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def hello(meta, arrays):
    info = provenance.base()
    info.update(ai_edge_litert=importlib.metadata.version("ai-edge-litert"), oracle="litert")
    return info, {}


def run(meta, arrays):
    blob = arrays["model"].tobytes()
    interp = _interpreter(blob)
    inputs, outputs = interp.get_input_details(), interp.get_output_details()
    given = sorted(k for k in arrays if k.startswith("in:"))
    if len(given) != len(inputs):
        raise protocol.UserError(f"the model has {len(inputs)} input(s), {len(given)} given")
    feeds = []
    for i, detail in enumerate(inputs):
        x = arrays[f"in:{i}"]
        if list(x.shape) != [int(s) for s in detail["shape"]]:
            raise protocol.UserError(
                f"input {detail['name']!r} expects shape {list(detail['shape'])}, got {list(x.shape)}"
            )
        feeds.append(quantize(x, detail))
    reset = meta.get("reset", True)
    interp.reset_all_variables()  # whatever an earlier request left
    first = _invoke(interp, feeds, reset)
    second = _invoke(interp, feeds, reset)
    diffs = [
        float(np.max(np.abs(dequantize(a, d).astype(np.float64) - dequantize(b, d)), initial=0.0))
        for a, b, d in zip(first, second, outputs)
    ]
    ops = model_ops(blob)
    reply = {
        "inputs": [_describe(d) for d in inputs],
        "outputs": [_describe(d) for d in outputs],
        "ops": ops,
        "executed": [d["op_name"] for d in interp._get_ops_details()],
        "lowering": lowering(ops),
        "constants": constant_types(blob),
        "reset": bool(reset),
        "repeat": {"bitwise": all(np.array_equal(a, b) for a, b in zip(first, second)), "max_abs": max(diffs)},
    }
    out = {f"out:{i}": dequantize(q, d) for i, (q, d) in enumerate(zip(first, outputs))}
    out.update({f"raw:{i}": q for i, q in enumerate(first)})
    out.update({f"second:{i}": dequantize(q, d) for i, (q, d) in enumerate(zip(second, outputs))})
    return reply, out


def inputs(meta, arrays):
    """The model's inputs (name, shape, dtype, quantization), to draw x for it."""
    interp = _interpreter(arrays["model"].tobytes())
    return {"inputs": [_describe(d) for d in interp.get_input_details()]}, {}


# UNIDIRECTIONAL_SEQUENCE_LSTM's inputs (tensorflow/lite/kernels/lstm_shared.h): 1-4 input-to-gate
# weights i, f, c, o (units, inputs); 5-8 recurrent-to-gate (units, units); 9-11 peepholes; 12-15 biases;
# 16-17 projection; 18-19 the h and c variables; 20-23 layer-norm coefficients.
_FUSED = "UNIDIRECTIONAL_SEQUENCE_LSTM"


def _value(interp, details, index):
    """A tensor's value as float32, dequantised (per channel where the tensor says so)."""
    d = details[index]
    value = interp.get_tensor(index)
    q = d.get("quantization_parameters", {})
    scales = np.asarray(q.get("scales", []), np.float64)
    if np.dtype(d["dtype"]).kind == "f" or scales.size == 0:
        return np.asarray(value, np.float32)
    zeros = np.asarray(q.get("zero_points", np.zeros_like(scales)), np.float64)
    if scales.size > 1:  # per channel, along quantized_dimension
        shape = [1] * np.ndim(value)
        shape[int(q.get("quantized_dimension", 0))] = -1
        scales, zeros = scales.reshape(shape), zeros.reshape(shape)
    return ((np.asarray(value, np.float64) - zeros) * scales).astype(np.float32)


def fused_lstms(meta, arrays):
    """Every fused LSTM op of the model, after one invoke (variables reset)
    on ``in:0``: its weights as a Keras LSTM holds them (kernel (inputs, 4u),
    recurrent_kernel (u, 4u), bias (4u,), gates i, f, c, o), dequantised,
    and the sequence it received and returned (dequantised)."""
    blob = arrays["model"].tobytes()
    interp = Interpreter(model_content=blob, num_threads=1, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inputs = interp.get_input_details()
    if len(inputs) != 1:
        raise protocol.UserError(f"the model has {len(inputs)} inputs; check reads single-input models")
    interp.reset_all_variables()
    interp.set_tensor(inputs[0]["index"], quantize(arrays["in:0"], inputs[0]))
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    ops, out = [], {}
    for op in interp._get_ops_details():
        if op["op_name"] != _FUSED:
            continue
        ins = [int(i) for i in op["inputs"]]
        k = len(ops)
        extras = [
            name
            for name, slots in (
                ("peepholes", (9, 10, 11)),
                ("a projection", (16, 17)),
                ("layer norm", (20, 21, 22, 23)),
            )
            if any(ins[s] >= 0 for s in slots)
        ]
        if ins[1] < 0 or extras:
            ops.append(
                {
                    "name": details[int(op["outputs"][0])]["name"],
                    "refused": "a fused LSTM with "
                    + (", ".join(extras) or "coupled input and forget gates")
                    + ": not what a Keras LSTM converts to",
                }
            )
            continue
        gate = lambda idx: _value(interp, details, idx)  # noqa: E731
        out[f"{k}:kernel"] = np.concatenate([gate(i) for i in ins[1:5]], axis=0).T.copy()
        out[f"{k}:recurrent_kernel"] = np.concatenate([gate(i) for i in ins[5:9]], axis=0).T.copy()
        out[f"{k}:bias"] = np.concatenate([gate(i) for i in ins[12:16]])
        out[f"{k}:x"] = _value(interp, details, ins[0])
        out[f"{k}:h"] = _value(interp, details, int(op["outputs"][0]))
        ops.append(
            {
                "name": details[int(op["outputs"][0])]["name"],
                "weight_types": sorted({np.dtype(details[i]["dtype"]).name for i in ins[1:9]}),
                "output_scale": float(details[int(op["outputs"][0])]["quantization"][0]),
            }
        )
    return {"ops": ops, "lowering": lowering(model_ops(blob))}, out


HANDLERS = {"hello": hello, "run": run, "inputs": inputs, "fused_lstms": fused_lstms}

if __name__ == "__main__":
    protocol.serve(HANDLERS)
