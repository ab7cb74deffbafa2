"""The LSTMs of a user's ``.pt``/``.pth`` file, for the torch worker (``.venv-torch``).

Ops (registered in ``torch_worker.HANDLERS``):

* ``artifact_lstms`` ``{"path"}``: what the file holds, opened with
  ``torch.load(path, weights_only=True)`` -- never with pickle's code
  execution:

  - a ``state_dict`` (or a checkpoint dict that nests one, e.g. under
    ``"model"``): keys are flattened with ``.`` and grouped by
    ``^(prefix)(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\\d+)(_reverse)?$``;
    each group's config is read from its shapes (``input_size`` =
    ``weight_ih_l0.shape[1]``; ``hidden_size`` = ``weight_hh_l0.shape[0] / 4``,
    or ``weight_hr_l0.shape[1]`` with a projection; ``num_layers`` = 1 + the
    largest k; ``bidirectional`` from ``_reverse``; ``bias`` from
    ``bias_ih_l0``).  A group whose ``weight_hh`` has 3 (GRU) or 1 (RNN)
    blocks of rows per column is listed as skipped.  The oracle of such an
    LSTM is ``torch.nn.LSTM`` built from that config with those weights
    (the file has no code of its own).  A ``torch.nn.LSTMCell``'s keys have
    no layer suffix: ``(prefix)(weight_ih|weight_hh|bias_ih|bias_hh)``,
    ``weight_ih`` (4H, in), ``weight_hh`` (4H, H), both biases or none;
    its oracle is ``torch.nn.LSTMCell`` built from those shapes, stepped
    over the sequence.  A cell with 3 (``GRUCell``) or 1 (``RNNCell``)
    blocks is listed as skipped;
  - a TorchScript archive (``torch.load`` refuses it: "Cannot use
    ``weights_only=True`` with TorchScript archives"): ``torch.jit.load``,
    and every submodule whose ``original_name`` is ``LSTM``.  A scripted
    LSTM keeps its constructor attributes (``input_size``, ...,
    ``batch_first``) and both of ``nn.LSTM.forward``'s overloads
    (``forward__0`` on a Tensor, ``forward__1`` on a ``PackedSequence``); a
    traced one keeps only its parameters and one ``forward`` with the
    arguments and outputs it was traced with, and ``has_biases``,
    ``num_layers``, ``bidirectional`` and ``batch_first`` are constants of
    its ``aten::lstm`` call.  The archive's own module is what runs.
    Every submodule whose ``original_name`` is ``LSTMCell`` is a cell, run
    by its own code stepped over the sequence, ``h, c = cell(x[:, t], (h,
    c))``: a scripted cell keeps ``LSTMCell.forward`` (``hx`` optional:
    zeros); a traced one keeps one method per call it was traced in
    (``forward``, ``forward1``, ...), each with the arguments of that call
    in an order of the tracer's own, and runs the one that takes
    ``(x, h, c)`` and returns ``(h, c)`` (which argument is which is read
    from its graph: the ``aten::linear`` on ``weight_ih`` reads x, the one
    on ``weight_hh`` reads h).  A cell the trace never called, or only
    called without a state or without returning c, has no code that can
    step a sequence and is listed as skipped, as are ``GRU``, ``RNN``,
    ``GRUCell`` and ``RNNCell``;
  - a whole pickled module (``torch.save(model)``): ``weights_only=True``
    refuses it, and so does this op (``UserError``: save a state_dict or
    TorchScript).

  Reply: meta ``{"format", "lstms": [{"name", "kind", "config", "source",
  "scripted", "takes_state", "takes_packed", "returns"}], "skipped": [[name,
  reason]]}``; arrays ``{i}:w:<state_dict name>`` (float tensors as they
  are stored).

  A cell is given in one of two forms.  With ``"cells": true`` in the
  request, as itself: kind ``torch.nn.LSTMCell``, config ``input_size``,
  ``hidden_size``, ``bias`` (``dtype``), weights ``weight_ih``,
  ``weight_hh``, ``bias_ih``, ``bias_hh``, states ``(batch, H)``, returns
  ``h``, ``c``, ``final_h``, ``final_c``.  Without it (a caller that knows
  only ``torch.nn.LSTM``), as the one-layer, one-direction ``torch.nn.LSTM``
  it equals (``lstm_ref.convert``: the same cell, weights renamed
  ``weight_ih -> weight_ih_l0``...): kind ``torch.nn.LSTM``, states
  ``(1, batch, H)``, ``"cell": true``; a state_dict's cell then runs as
  that ``torch.nn.LSTM`` through the worker's ``run`` op, and the source
  says so.  A cell takes no ``PackedSequence`` (``takes_packed`` false).

* ``artifact_run`` ``{"path", "index"}`` (and ``"cells"`` as above) with
  arrays ``x`` (batch-major), optional ``mask`` (right-padded, as a
  ``PackedSequence``), ``h0``, ``c0``: the TorchScript archive's own LSTM
  submodule run on them; reply ``h`` (batch-major) and, where its forward
  returns them, ``final_h``, ``final_c``; a cell is stepped over x by its
  own code and also replies ``c`` at every step.  (A state_dict's LSTM runs
  through the worker's ``run`` op.)

* ``save_state_dict`` ``{"path"}`` with arrays ``w:<key>``: ``torch.save``
  of those tensors, in the order given.
"""

import re
from collections import OrderedDict

import numpy as np
import torch  # noqa: E402

from lstm_ref.harness.oracles import protocol

_KEY = re.compile(
    r"^(?P<prefix>.*?)(?P<name>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)"
    r"(?P<reverse>_reverse)?$"
)
_NOT_LSTM = {
    3: "a GRU (weight_hh has 3 gate blocks of rows), not an LSTM",
    1: "an RNN (weight_hh has 1 gate block of rows), not an LSTM",
}
TORCH, CELL = "torch.nn.LSTM", "torch.nn.LSTMCell"
_CELL_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # LSTMCell.__init__ (RNNCellBase), no suffix
_CELLS = {4: "LSTMCell", 3: "GRUCell", 1: "RNNCell"}
_INTERNAL = ("prefix", "method", "call")  # kept in the worker, not replied


def _first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _flatten(obj, prefix=""):
    """``{dotted key: tensor}`` of every tensor in nested dicts (a state_dict,
    or a checkpoint dict holding one next to an optimizer, an epoch...)."""
    out = OrderedDict()
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
    elif isinstance(obj, torch.Tensor):
        out[prefix[:-1]] = obj
    return out


def _numpy(t):
    return t.detach().cpu().contiguous().numpy().copy()


def _groups(tensors):
    """``{prefix: {suffixed name: tensor}}`` in first-appearance order."""
    groups = OrderedDict()
    for key, value in tensors.items():
        m = _KEY.match(key)
        if m:
            groups.setdefault(m["prefix"], OrderedDict())[key[len(m["prefix"]) :]] = value
    return groups


def _config_from_shapes(name, weights):
    """``(config, None)`` or ``(None, reason)`` from one group's shapes."""
    try:
        w_ih, w_hh = weights["weight_ih_l0"], weights["weight_hh_l0"]
    except KeyError as exc:
        return None, f"no {exc.args[0]}: not a complete LSTM state_dict"
    if w_ih.ndim != 2 or w_hh.ndim != 2:
        return None, f"weight_ih_l0 {tuple(w_ih.shape)} / weight_hh_l0 {tuple(w_hh.shape)} are not matrices"
    hr = weights.get("weight_hr_l0")
    if hr is not None:
        hidden = int(hr.shape[1])
        if w_hh.shape[0] != 4 * hidden:
            return None, (
                f"weight_hh_l0 has {w_hh.shape[0]} rows, weight_hr_l0 {tuple(hr.shape)}: not an LSTM with a "
                "projection (4 * hidden_size rows)"
            )
    else:
        rows, cols = int(w_hh.shape[0]), int(w_hh.shape[1])
        if rows != 4 * cols:
            if rows in (3 * cols, cols):
                return None, f"{_NOT_LSTM[rows // cols]}, not an LSTM; lstm_ref has no reference for it"
            return None, f"weight_hh_l0 {(rows, cols)}: rows are not 4 gate blocks of hidden_size"
        hidden = cols
    layers = 1 + max(int(_KEY.match(k)["layer"]) for k in weights)
    config = {
        "input_size": int(w_ih.shape[1]),
        "hidden_size": hidden,
        "num_layers": layers,
        "bias": "bias_ih_l0" in weights,
        "bidirectional": any(k.endswith("_reverse") for k in weights),
        "proj_size": 0 if hr is None else int(hr.shape[0]),
    }
    dtype = str(w_ih.dtype).replace("torch.", "")
    if dtype != "float32":
        config["dtype"] = dtype
    return config, None


def _lstm_call(module):
    """The ``aten::lstm`` node of a traced LSTM's forward graph, or None."""
    try:
        graph = module.graph
    except (AttributeError, RuntimeError):
        return None
    for node in graph.nodes():
        if node.kind() == "aten::lstm":
            return node
    return None


def _constant(value):
    node = value.node()
    return node.output().toIValue() if node.kind() == "prim::Constant" else None


def _scripted_info(name, module):
    """``(entry, weights)`` for one TorchScript LSTM submodule, or ``(None, reason)``."""
    weights = OrderedDict(
        (k, v) for k, v in module.state_dict().items() if _KEY.match(k) and not _KEY.match(k)["prefix"]
    )  # its own parameters
    if not weights:  # a user's module named LSTM around an nn.LSTM: the inner one is found by itself
        return None, None
    config, why = _config_from_shapes(name, weights)
    if config is None:
        return None, why
    methods = set(module._c._method_names())
    scripted = "forward__0" in methods
    if scripted:  # nn.LSTM compiled by torch.jit.script: its attributes survive
        for key in ("input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size"):
            value = getattr(module, key, None)
            if value is not None:
                config[key] = value if isinstance(value, bool) else int(value)
        batch_first = bool(getattr(module, "batch_first", False))
        takes_state, takes_packed, returns = True, "forward__1" in methods, ["h", "final_h", "final_c"]
        how = "the archive's scripted nn.LSTM (forward__0 / forward__1)"
    else:  # traced: constants of its aten::lstm call, and the forward it was traced with
        call = _lstm_call(module)
        if call is None:
            return None, "a traced LSTM submodule whose forward has no aten::lstm call"
        args = list(call.inputs())
        # aten::lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        batch_first = bool(_constant(args[8]))
        schema_args = module.forward.schema.arguments[1:]  # self first
        takes_state, takes_packed = len(schema_args) > 1, False
        outputs = list(module.graph.outputs())[0].type()
        n_out = len(_flat_types(outputs))
        returns = ["h", "final_h", "final_c"] if n_out >= 3 else ["h"]  # (y, (h_n, c_n)) or y alone
        how = "the archive's traced LSTM (its forward as traced)"
    config["batch_first"] = batch_first
    return {
        "name": name,
        "kind": TORCH,
        "config": config,
        "source": how,
        "scripted": scripted,
        "takes_state": takes_state,
        "takes_packed": takes_packed,
        "returns": returns,
    }, weights


def _flat_types(t):
    if t.kind() == "TupleType":
        return [leaf for e in t.elements() for leaf in _flat_types(e)]
    return [t]


@protocol.last_file
def _load(path):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except RuntimeError as exc:
        if "TorchScript" not in str(exc):
            raise protocol.UserError(f"{path}: torch.load cannot read it ({_first_line(exc)})") from None
        entry = _load_script(path)
    except Exception as exc:  # noqa: BLE001 - pickle's refusal names a class or a bad byte
        text = str(exc)
        if "Weights only load failed" in text:
            culprit = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" (it holds {culprit.group(1)})" if culprit else ""
            raise protocol.UserError(
                f"{path} is a pickled Python object{what}, e.g. torch.save(model): lstm-ref reads .pt files with "
                "torch.load(weights_only=True) and never runs pickled code; save torch.save(model.state_dict(), "
                "path) or TorchScript (torch.jit.script(model).save(path))"
            ) from None
        raise protocol.UserError(f"{path}: not a PyTorch file torch.load can read ({_first_line(exc)})") from None
    else:
        entry = _load_state_dict(path, obj)
    return entry


def _load_state_dict(path, obj):
    tensors = _flatten(obj)
    if not tensors:
        raise protocol.UserError(f"{path}: torch.load gave a {type(obj).__name__} holding no tensors, not a state_dict")
    groups, cells, order = _groups(tensors), OrderedDict(), OrderedDict()
    for key, value in tensors.items():  # LSTM layers (suffix _l{k}) and cells (no suffix), in the file's order
        m = _KEY.match(key)
        if m:
            order.setdefault(("lstm", m["prefix"]), None)
            continue
        prefix, _, last = key.rpartition(".")
        if last in _CELL_NAMES:
            cells.setdefault(prefix, OrderedDict())[last] = value
            order.setdefault(("cell", prefix), None)
    lstms, skipped, weights = [], [], []
    for what, prefix in order:
        if what == "cell":
            name = prefix or "cell"
            config, why = _cell_config(cells[prefix])
            if config is None:
                skipped.append([name, why])
                continue
            lstms.append(
                _cell_entry(
                    name,
                    config,
                    "torch.nn.LSTMCell built from the config the shapes give, with these weights, stepped over "
                    "the sequence: h, c = cell(x[:, t], (h, c))",
                    scripted=False,
                )
            )
            weights.append(cells[prefix])
            continue
        group = groups[prefix]
        name = prefix[:-1] if prefix.endswith(".") else (prefix or "lstm")
        config, why = _config_from_shapes(name, group)
        if config is None:
            skipped.append([name, why])
            continue
        lstms.append(
            {
                "name": name,
                "kind": TORCH,
                "config": config,
                "prefix": prefix,
                "scripted": False,
                "takes_state": True,
                "takes_packed": True,
                "returns": ["h", "final_h", "final_c"],
                "source": "torch.nn.LSTM built from the config the shapes give, with these weights",
            }
        )
        weights.append(group)
    return {"format": "state_dict", "lstms": lstms, "skipped": skipped, "weights": weights, "module": None}


# -- torch.nn.LSTMCell ------------------------------------------------------------------------------


def _cell_config(weights):
    """``(config, None)`` or ``(None, reason)`` from a cell's own tensors,
    as ``RNNCellBase.__init__`` makes them: ``weight_ih`` (G * H, in),
    ``weight_hh`` (G * H, H), ``bias_ih`` and ``bias_hh`` (G * H,) or
    neither; G = 4 gate blocks for an LSTMCell (3 GRUCell, 1 RNNCell)."""
    w_ih, w_hh = weights.get("weight_ih"), weights.get("weight_hh")
    if w_ih is None or w_hh is None:
        return None, f"no {'weight_hh' if w_hh is None else 'weight_ih'}: not a complete recurrent cell"
    if w_ih.ndim != 2 or w_hh.ndim != 2:
        return None, f"weight_ih {tuple(w_ih.shape)} / weight_hh {tuple(w_hh.shape)} are not matrices"
    rows, hidden = int(w_hh.shape[0]), int(w_hh.shape[1])
    blocks = rows // hidden if hidden and rows % hidden == 0 else 0
    if blocks in (3, 1):
        return None, (
            f"a torch.nn.{_CELLS[blocks]} (weight_hh {(rows, hidden)}: {blocks} gate block(s) of rows), "
            "not an LSTM; lstm_ref has no reference for it"
        )
    if blocks != 4:
        return None, f"weight_hh {(rows, hidden)}: its rows are not 4 gate blocks of hidden_size, not an LSTMCell"
    if int(w_ih.shape[0]) != rows:
        return None, f"weight_ih has {w_ih.shape[0]} rows, weight_hh {rows}: not one LSTMCell"
    biases = [k for k in ("bias_ih", "bias_hh") if k in weights]
    if len(biases) == 1:
        return None, f"{biases[0]} without the other bias: a torch.nn.LSTMCell has both or neither"
    for key in biases:
        if tuple(weights[key].shape) != (rows,):
            return None, f"{key} {tuple(weights[key].shape)}: expected ({rows},) for an LSTMCell"
    config = {"input_size": int(w_ih.shape[1]), "hidden_size": hidden, "bias": bool(biases)}
    dtype = str(w_ih.dtype).replace("torch.", "")
    if dtype != "float32":
        config["dtype"] = dtype
    return config, None


def _cell_entry(name, config, source, scripted, method=None, call=None):
    return {
        "name": name,
        "kind": CELL,
        "config": config,
        "source": source,
        "scripted": scripted,
        "takes_state": True,
        "takes_packed": False,
        "returns": ["h", "c", "final_h", "final_c"],
        "method": method,
        "call": call,
    }


def _traced_call(module, method):
    """Where x, h and c go among a traced cell method's arguments, or None:
    the method must take three tensors and return ``(h, c)``; x is the one
    ``aten::linear`` multiplies by ``weight_ih``, h the one by ``weight_hh``."""
    graph = module._c._get_method(method).graph
    inputs, outputs = list(graph.inputs())[1:], list(graph.outputs())  # self first
    if len(inputs) != 3 or len(outputs) != 1 or len(_flat_types(outputs[0].type())) != 2:
        return None
    roles = {}
    for node in graph.nodes():
        if node.kind() != "aten::linear":
            continue
        data, weight = list(node.inputs())[:2]
        attr = weight.node()
        if attr.kind() == "prim::GetAttr" and data.node().kind() == "prim::Param":
            roles[attr.s("name")] = data.offset() - 1
    if set(roles) != {"weight_ih", "weight_hh"} or roles["weight_ih"] == roles["weight_hh"]:
        return None
    x, h = roles["weight_ih"], roles["weight_hh"]
    (c,) = {0, 1, 2} - {x, h}
    return [x, h, c]


def _script_cell(name, module):
    """``(entry, weights)`` for one TorchScript LSTMCell submodule, or ``(None, reason)``."""
    weights = OrderedDict((k, v) for k, v in module.state_dict().items() if k in _CELL_NAMES)
    if not weights:  # a user's module named LSTMCell around an nn.LSTMCell: the inner one is found by itself
        return None, None
    config, why = _cell_config(weights)
    if config is None:
        return None, why
    methods = list(module._c._method_names())
    forward = module._c._get_method("forward") if "forward" in methods else None
    if forward is not None and [a.name for a in forward.schema.arguments[1:]] == ["input", "hx"]:
        for key in ("input_size", "hidden_size", "bias"):  # LSTMCell compiled by torch.jit.script: its attributes
            value = getattr(module, key, None)
            if value is not None:
                config[key] = value if isinstance(value, bool) else int(value)
        how = (
            "the archive's scripted torch.nn.LSTMCell (LSTMCell.forward), stepped over the sequence: "
            "h, c = cell(x[:, t], (h, c))"
        )
        return _cell_entry(name, config, how, scripted=True), weights
    for method in methods:  # traced: one method per call the tracer saw
        call = _traced_call(module, method)
        if call is not None:
            how = (
                f"the archive's traced torch.nn.LSTMCell ({method}, a call traced with a state), stepped over the "
                "sequence: h, c = cell(x[:, t], (h, c))"
            )
            return _cell_entry(name, config, how, scripted=False, method=method, call=call), weights
    seen = ", ".join(methods) if methods else "none: the traced forward never called it"
    return None, (
        f"a traced LSTMCell with no traced call that takes (x, h, c) and returns (h, c) (its methods: {seen}): "
        "the archive holds no code that steps it over a sequence (trace a loop that passes the state)"
    )


def _as_lstm(info, weights):
    """A cell's entry and weights as the one-layer, one-direction
    ``torch.nn.LSTM`` it equals (``lstm_ref.convert``), for a caller that
    knows only that kind."""
    cfg = info["config"]
    config = {
        "input_size": cfg["input_size"],
        "hidden_size": cfg["hidden_size"],
        "num_layers": 1,
        "bias": cfg["bias"],
        "bidirectional": False,
        "proj_size": 0,
    }
    if "dtype" in cfg:
        config["dtype"] = cfg["dtype"]
    if info["scripted"] or info["method"]:
        how = (
            info["source"] + "; compared as the one-layer torch.nn.LSTM it equals (weight_ih -> weight_ih_l0, "
            "weight_hh -> weight_hh_l0, bias_ih -> bias_ih_l0, bias_hh -> bias_hh_l0)"
        )
    else:  # a state_dict's cell runs through the worker's run op: as that torch.nn.LSTM
        how = (
            "torch.nn.LSTM(num_layers=1) built from the LSTMCell's shapes, its weights renamed weight_ih -> "
            "weight_ih_l0, weight_hh -> weight_hh_l0, bias_ih -> bias_ih_l0, bias_hh -> bias_hh_l0: the same "
            "cell (aten's LSTMCell) over the sequence"
        )
    entry = {**info, "kind": TORCH, "config": config, "source": how, "returns": ["h", "final_h", "final_c"]}
    entry["cell"] = True
    return entry, OrderedDict((f"{k}_l0", v) for k, v in weights.items())


def _load_script(path):
    try:
        archive = torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise protocol.UserError(
            f"{path}: a TorchScript archive torch.jit.load cannot open ({_first_line(exc)})"
        ) from None
    archive.eval()
    lstms, skipped, weights, modules = [], [], [], []
    for name, module in archive.named_modules():
        original = getattr(module, "original_name", None)
        if original in ("GRU", "RNN", "GRUCell", "RNNCell"):
            skipped.append([name or "(root)", f"a {original}, not an LSTM; lstm_ref has no reference for it"])
            continue
        if original == "LSTMCell":
            entry, found = _script_cell(name or "cell", module)
        elif original == "LSTM":
            entry, found = _scripted_info(name or "lstm", module)
        else:
            continue
        if entry is None:
            if found:
                skipped.append([name or "lstm", found])
            continue
        lstms.append(entry)
        weights.append(found)
        modules.append(module)
    return {"format": "torchscript", "lstms": lstms, "skipped": skipped, "weights": weights, "modules": modules}


def artifact_lstms(meta, arrays):
    entry = _load(meta["path"])
    out, lstms = {}, []
    for i, (info, weights) in enumerate(zip(entry["lstms"], entry["weights"])):
        if info["kind"] == CELL and not meta.get("cells"):
            info, weights = _as_lstm(info, weights)
        for key, value in weights.items():
            out[f"{i}:w:{key}"] = _numpy(value)
        lstms.append({k: v for k, v in info.items() if k not in _INTERNAL})
    return {"format": entry["format"], "lstms": lstms, "skipped": entry["skipped"]}, out


def artifact_run(meta, arrays):
    entry = _load(meta["path"])
    if entry["format"] != "torchscript":
        raise protocol.UserError(
            "artifact_run runs a TorchScript archive's own LSTM; a state_dict's LSTM runs through the 'run' op"
        )
    info, module = entry["lstms"][meta["index"]], entry["modules"][meta["index"]]
    dtype = next(iter(entry["weights"][meta["index"]].values())).dtype
    if info["kind"] == CELL:
        return {}, _step_cell(info, module, dtype, arrays, stacked=not meta.get("cells"))
    batch_first = info["config"]["batch_first"]
    x = torch.from_numpy(np.ascontiguousarray(arrays["x"])).to(dtype)
    xs = x if batch_first else x.transpose(0, 1)
    state = None
    if "h0" in arrays:
        if not info["takes_state"]:
            raise protocol.UserError(f"{info['name']}: its traced forward takes no initial state")
        state = (torch.from_numpy(arrays["h0"]).to(dtype), torch.from_numpy(arrays["c0"]).to(dtype))
    with torch.no_grad():
        if "mask" in arrays:
            if not info["takes_packed"]:
                raise protocol.UserError(f"{info['name']}: its forward takes no PackedSequence")
            lengths = torch.from_numpy(protocol.sequence_lengths(arrays["mask"]).astype(np.int64))
            packed = torch.nn.utils.rnn.pack_padded_sequence(xs, lengths, batch_first=batch_first, enforce_sorted=False)
            out, (hn, cn) = module.forward__1(packed, state)
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1])
            result = [y, hn, cn]
        elif info["scripted"]:
            y, (hn, cn) = module.forward__0(xs, state)
            result = [y, hn, cn]
        else:
            got = module(xs) if state is None else module(xs, state)
            result = _flat_values(got)
    y = result[0] if batch_first else result[0].transpose(0, 1)
    reply = {"h": _numpy(y)}
    if len(result) >= 3 and "final_h" in info["returns"]:
        reply["final_h"], reply["final_c"] = _numpy(result[1]), _numpy(result[2])
    return {}, reply


def _step_cell(info, module, dtype, arrays, stacked):
    """The archive's cell stepped over x by its own code (``stacked``: the
    states in and out as the one-layer ``torch.nn.LSTM``'s, ``(1, batch, H)``)."""
    if "mask" in arrays:
        raise protocol.UserError(f"{info['name']}: an LSTMCell takes no PackedSequence (its loop steps every row)")
    x = torch.from_numpy(np.ascontiguousarray(arrays["x"])).to(dtype)
    if x.ndim != 3 or x.shape[1] == 0:
        raise protocol.UserError(f"{info['name']}: x must be (batch, time >= 1, features), got {tuple(x.shape)}")
    state = None
    if "h0" in arrays:
        h0, c0 = (np.asarray(arrays[k]) for k in ("h0", "c0"))
        h0, c0 = (h0[0], c0[0]) if stacked else (h0, c0)
        state = tuple(torch.from_numpy(np.ascontiguousarray(s)).to(dtype) for s in (h0, c0))
    call = info["call"]
    if call is not None:  # a traced method takes the state: zeros, as LSTMCell.forward makes them
        method = getattr(module, info["method"])
        if state is None:
            zeros = torch.zeros(x.shape[0], info["config"]["hidden_size"], dtype=dtype)
            state = (zeros, zeros.clone())
    hs, cs = [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            if call is None:
                state = module(x[:, t], state)
            else:
                args = [None] * 3
                args[call[0]], args[call[1]], args[call[2]] = x[:, t], state[0], state[1]
                state = tuple(method(*args))
            hs.append(_numpy(state[0]))
            cs.append(_numpy(state[1]))
    h, c = np.stack(hs, axis=1), np.stack(cs, axis=1)
    final_h, final_c = (h[:, -1][None], c[:, -1][None]) if stacked else (h[:, -1], c[:, -1])
    return {"h": h, "c": c, "final_h": final_h, "final_c": final_c}


def _flat_values(value):
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flat_values(v)]
    return [value]


def save_state_dict(meta, arrays):
    state = OrderedDict(
        (k[2:], torch.from_numpy(np.ascontiguousarray(v))) for k, v in arrays.items() if k.startswith("w:")
    )
    order = meta.get("order") or list(state)
    torch.save(OrderedDict((k, state[k]) for k in order), meta["path"])
    return {"path": meta["path"], "keys": len(state)}, {}


HANDLERS = {"artifact_lstms": artifact_lstms, "artifact_run": artifact_run, "save_state_dict": save_state_dict}
