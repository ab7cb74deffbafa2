"""``lstm-ref check MODEL``: every LSTM a user's saved model contains,
reference against TF, each on exactly what it receives in one run of the
model.

The model is opened inside the oracle worker of its framework (Keras 3 for
``.keras`` and Keras 3 ``.h5``; tf_keras for Keras 2 ``.h5`` and SavedModel
directories, see :mod:`~lstm_ref.harness.model_format`).  The worker runs
the model once on the user's inputs (or drawn ones), records for every LSTM
the sequence, mask and initial state it received, and returns them with the
layer's weights and TF's per-step h and c.  Each layer is then compared as
the tests compare: :func:`~lstm_ref.harness.compare.run_and_compare` and the
one tolerance table.  A ``Bidirectional`` is checked per direction and on
its merged output.  A TF1 checkpoint is checked by ``--scope``, with the
cell's kind and config given on the command line.  ``.onnx`` and ``.pt``
files (and ``--source``) are checked by :mod:`~lstm_ref.harness.artifacts`
into the same rows.

Inputs are sent in batches of ``batch_size`` rows, one request each; per
layer the worst batch is kept, so memory stays flat however many sequences
there are.
"""

from dataclasses import dataclass, field

import numpy as np

from ..case import Case
from ..errors import InputError, LstmRefError
from ..platform import chosen
from ..trace import Trace
from .checkpoints import load_weights
from .compare import compare, own_rounding_of, run_and_compare
from .oracles.pool import OraclePool
from .records import record_of


@dataclass
class LayerResult:
    """One row of a check: a layer (or a Bidirectional's merged output)."""

    layer: str
    kind: str
    status: str  # "pass", "fail" or "skipped"
    reason: str = ""
    dtype: str = ""
    shape: str = ""  # the x the layer received, rows x time x features (the worst batch's time)
    ratio: float = None  # worst |ref - tf| / bound (<= 1 passes)
    h_max_abs: float = None
    c_max_abs: float = None
    worst: dict = field(default_factory=dict)  # field, step, row, unit, ref, tf
    tolerance: dict = field(default_factory=dict)
    rows: int = 0  # sequences compared
    source: str = ""  # LSTM, RNN(LSTMCell), RNN(StackedRNNCells)[k], Bidirectional
    masked: bool = False  # the layer received a mask in the model run
    initial_state: bool = False  # ... and an initial state
    # TF's own consistency: what the layer returned in the model run equals,
    # bit for bit, TF re-running the layer's class on the recorded inputs
    # (for a merged row: the Bidirectional's output equals the merge of its
    # directions).  None where there is nothing to compare.
    tf_bitwise: bool = None
    # lstm-ref check ARTIFACT --source SOURCE (artifacts.py): which two
    # models' LSTMs a row compares, and per weight tensor max |converted
    # source - artifact|; notes say what differs by convention.
    pair: dict = None
    weights_max_abs: dict = None
    notes: str = ""
    # lstm-ref check WEIGHTS.h5 (keras_weights.py): the config a weights-only
    # file's LSTM was checked under, and where each value came from.
    assumed: dict = None
    # lstm-ref check FILE.tflite (tflite_cli.layer_results): the deployed mode,
    # lowering, what was compared, max |d|, per-step |d|...
    tflite: dict = None
    # lstm-ref check MODEL.onnx --input (artifacts.check_as_run): the node
    # checked on what it received in the whole model's run: which call of
    # how many, and how its inputs were captured.
    as_run: dict = None
    # lstm-ref check MODEL --grad (check_grad.py): the loss, the upstream
    # fields the layer received, and per array (x, h0, c0, w:<name>,
    # steps:<h|c_carried>) max |d|, ratio, verdict, worst index, first step over.
    grad: dict = None
    # lstm-ref check MODEL --backend (backends.py): the Keras backend that ran it.
    backend: str = None

    def merge(self, other: "LayerResult") -> "LayerResult":
        """The same layer over one more batch: the worst of both."""
        worst = other if (other.ratio or 0) > (self.ratio or 0) else self
        out = LayerResult(**{**worst.__dict__})
        out.rows = self.rows + other.rows
        if out.shape:  # the x of every batch: all the rows
            out.shape = "x".join([str(out.rows)] + out.shape.split("x")[1:])
        out.h_max_abs = _max(self.h_max_abs, other.h_max_abs)
        out.c_max_abs = _max(self.c_max_abs, other.c_max_abs)
        out.status = "fail" if "fail" in (self.status, other.status) else self.status
        out.masked, out.initial_state = self.masked or other.masked, self.initial_state or other.initial_state
        if self.tf_bitwise is not None or other.tf_bitwise is not None:
            out.tf_bitwise = self.tf_bitwise is not False and other.tf_bitwise is not False
        return out

    def as_json(self):
        return {k: v for k, v in self.__dict__.items()}


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _result(name, kind, result, x_shape, row_offset, output=None, state=None):
    fields = result.fields
    worst_name = max(fields, key=lambda k: fields[k].ratio)
    f = fields[worst_name]
    step, row, unit = f.worst
    return LayerResult(
        layer=name,
        kind=kind,
        status="pass" if result.passed else "fail",
        dtype=result.dtype,
        shape="x".join(map(str, x_shape)) if len(x_shape) == 3 else "",
        ratio=result.ratio,
        h_max_abs=fields[output].max_abs if output in fields else None,
        c_max_abs=fields[state].max_abs if state in fields else None,
        worst={
            "field": worst_name,
            "step": step,
            "row": row + row_offset,
            "unit": unit,
            "ref": f.worst_ref,
            "tf": f.worst_tf,
        },
        tolerance={"atol": result.tolerance.atol, "rtol": result.tolerance.rtol, "rounding": result.tolerance.rounding},
        rows=int(x_shape[0]),
    )


def compare_layer(name, case, desired, row_offset=0, returned=None, return_sequences=True, tolerance=None):
    """A :class:`LayerResult` for one layer on one batch, and the traces
    (reference and oracle mode) for a Bidirectional merge.

    ``returned`` is what the layer returned in the model run (``model:h``:
    its sequence, or its last step without ``return_sequences``;
    ``model:final_h``/``model:final_c`` with ``return_state``): it is
    compared too, so that a layer whose call computes something else than
    its class does with its config and weights fails here."""
    ref = case.reference()
    if not returned:
        trace, exact, own, result = run_and_compare(case, desired, ref)
        if tolerance is not None:  # another backend's bound (backends.py)
            result = compare(trace, desired, ref.policy.compute, tolerance, own=own)
    else:
        trace = _with_returned(case.run(ref), returned, return_sequences)
        exact = None
        if ref.policy.compute != np.float64:
            exact = _with_returned(case.run(ref, oracle=True), returned, return_sequences)
        own = None if exact is None else own_rounding_of(trace, exact)
        result = compare(trace, {**desired, **returned}, ref.policy.compute, tolerance, kind=ref.kind, own=own)
    row = _result(name, case.kind, result, np.shape(case.x), row_offset, ref.OUTPUT, ref.TRACED_STATES[0])
    if row.status == "fail" and not any(f.passed is False for k, f in result.fields.items() if ":" not in k):
        row.reason = (
            "what the layer returned in the model run differs from what its class computes with its "
            "config and weights: a custom call or a subclass"
        )
    return row, trace, exact


def _with_returned(trace, returned, return_sequences):
    """``trace`` plus its view of what the layer returns (``model:<field>``):
    the per-step output (its first field), or its last step without
    ``return_sequences``, and the final states."""
    output = next(iter(trace.fields))
    views = {f"model:{name}": value for name, value in trace.fields.items() if name.startswith("final_")}
    views[f"model:{output}"] = trace[output] if return_sequences else trace[output][:, -1]
    return Trace({**trace.fields, **{k: views[k] for k in returned}})


def merge_directions(forward, backward, merge_mode, return_sequences):
    """A ``Bidirectional``'s output from its two directions' per-step outputs
    (both in processing order), as ``keras/src/layers/rnn/bidirectional.py``
    (``Bidirectional.call``) builds it: the backward sequence is flipped
    back to input order (``ops.flip(y_rev, axis=1)``) when sequences are
    returned, otherwise each direction gives its last processed step; then
    concat / sum / ave / mul, or both (merge_mode None)."""
    if return_sequences:
        y, y_rev = forward, backward[:, ::-1]
    else:
        y, y_rev = forward[:, -1], backward[:, -1]
    if merge_mode == "concat":
        return [np.concatenate([y, y_rev], axis=-1)]
    if merge_mode == "sum":
        return [y + y_rev]
    if merge_mode == "ave":
        return [(y + y_rev) / np.asarray(2, y.dtype)]
    if merge_mode == "mul":
        return [y * y_rev]
    if merge_mode is None:
        return [y, y_rev]
    raise ValueError(f"unknown Bidirectional merge_mode {merge_mode!r}")


def compare_merged(group, traces, exacts, desired, kind, dtype, row_offset=0, tolerance=None):
    """The merged output of Bidirectional ``group`` against TF's, with the
    same tolerance (and rounding allowance) as its layers."""
    f, b = group["forward"], group["backward"]
    names = [f"merged:{i}" for i in range(len(desired))]

    def merged(fw, bw):
        return Trace(
            dict(zip(names, merge_directions(_output(fw), _output(bw), group["merge_mode"], group["return_sequences"])))
        )

    trace = merged(traces[f], traces[b])
    own = None if exacts[f] is None else own_rounding_of(trace, merged(exacts[f], exacts[b]))
    result = compare(trace, dict(zip(names, desired)), dtype, tolerance, kind=kind, own=own)
    return _result(
        f"{group['path']} (merged)",
        f"Bidirectional(merge_mode={group['merge_mode']})",
        result,
        np.shape(desired[0])[:1],
        row_offset,
    )


def _output(trace):
    """The per-step output field: the first one a family declares."""
    return next(iter(trace.fields.values()))


def check_model(
    path,
    worker,
    inputs: dict,
    batch=2,
    time=7,
    seed=0,
    batch_size=256,
    progress=None,
    custom_objects=(),
    tolerance=None,
):
    """Every LSTM of the saved model at ``path`` through ``worker``:
    ``(results, skipped, described)``.  ``inputs`` maps input name to array
    ("" for the model's only input; empty: the worker draws ``batch`` x
    ``time`` inputs); ``custom_objects`` are ``.py`` files the worker imports
    first (custom layers registered with ``register_keras_serializable``);
    ``tolerance(case, ref)``: another bound than the kind's for a row, or
    None (``backends.py``: a Keras backend's)."""
    chunks = _chunks(inputs, batch_size)
    results, skipped, described = {}, [], None
    offset, casts = 0, {}
    for chunk in progress(chunks) if progress else chunks:
        meta, out = worker.request(
            {
                "op": "model_lstms",
                "path": str(path),
                "batch": batch,
                "time": time,
                "seed": seed,
                "custom_objects": [str(p) for p in custom_objects],
                "row_offset": offset,
            },
            {f"in:{k}": v for k, v in chunk.items()},
        )
        described, skipped = meta, [tuple(s) for s in meta.get("skipped", [])]
        for cast in meta.get("casts", []):
            seen = casts.setdefault(cast["input"], dict(cast))
            seen["exact"] = seen["exact"] and cast["exact"]
            seen["max_change"] = max(seen["max_change"], cast["max_change"])
        traces, exacts, bounds = {}, {}, {}
        for i, layer in enumerate(meta["layers"]):
            case = _layer_case(layer, out, i)
            case.platform = chosen() or worker.platform  # where TF ran, unless --platform names another
            try:
                fields = case.reference().fields()
            except LstmRefError as exc:  # a config the reference refuses: say so, check the rest
                skipped.append((layer["path"], f"{layer.get('class', 'LSTM')}: {exc}"))
                continue
            desired = {name: out[f"{i}:{name}"] for name in fields}
            returned = {k[len(f"{i}:") :]: v for k, v in out.items() if k.startswith(f"{i}:model:")}
            bound = tolerance(case, case.reference()) if tolerance else None  # (case, ref) -> a Tolerance or None
            bounds[i] = bound
            row, traces[i], exacts[i] = compare_layer(
                layer["path"], case, desired, offset, returned, layer.get("return_sequences", True), bound
            )
            row.source, row.masked, row.initial_state = (
                layer.get("source", ""),
                case.mask is not None,
                bool(case.initial_state),
            )
            if returned:
                tf_view = _with_returned(Trace(desired), returned, layer.get("return_sequences", True))
                row.tf_bitwise = all(
                    v.dtype == tf_view[k].dtype and np.array_equal(v, tf_view[k], equal_nan=True)
                    for k, v in returned.items()
                )
            results[layer["path"]] = results[layer["path"]].merge(row) if layer["path"] in results else row
        for j, group in enumerate(meta.get("merged", [])):
            if group["forward"] not in traces or group["backward"] not in traces:
                skipped.append((f"{group['path']} (merged)", "a direction was not checked (see its row)"))
                continue
            desired = [out[k] for k in sorted(k for k in out if k == f"merged:{j}" or k.startswith(f"merged:{j}:"))]
            layer = meta["layers"][group["forward"]]
            dtype = _output(traces[group["forward"]]).dtype
            row = compare_merged(
                group, traces, exacts, desired, layer["kind"], dtype, offset, bounds.get(group["forward"])
            )
            row.source = "Bidirectional"
            output = meta["layers"][group["forward"]].get("output", "h")
            tf_merge = merge_directions(
                out[f"{group['forward']}:{output}"],
                out[f"{group['backward']}:{output}"],
                group["merge_mode"],
                group["return_sequences"],
            )
            row.tf_bitwise = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(tf_merge, desired))
            key = row.layer
            results[key] = results[key].merge(row) if key in results else row
        offset += _rows(chunk)
    if described is not None:
        described["casts"] = list(casts.values())
    notes = "; ".join(cast_note(c) for c in casts.values())
    for row in results.values():
        row.notes = "; ".join(n for n in (row.notes, notes) if n)
    return list(results.values()), skipped, described


def cast_note(cast):
    """What casting a given input to the model's dtype did, in words."""
    how = "exact" if cast["exact"] else f"rounded: max |change| {cast['max_change']:.3g}"
    return f"input {cast['input']!r} given as {cast['given']}, cast to the model's {cast['cast_to']} ({how})"


def _layer_case(layer, out, i):

    weights = {k[len(f"{i}:w:") :]: v for k, v in out.items() if k.startswith(f"{i}:w:")}
    names = [f"{s}0" for s in record_of(layer["kind"]).reference.STATE]  # the family's carried state
    states = {name: out[f"{i}:{name}"] for name in names if f"{i}:{name}" in out}
    return Case(
        layer["kind"], layer["config"], out[f"{i}:x"], weights, out.get(f"{i}:mask"), name=layer["path"], **states
    )


def _rows(chunk):
    return int(next(iter(chunk.values())).shape[0]) if chunk else 0


def _chunks(inputs, batch_size):
    if not inputs:
        return [{}]
    rows = {np.shape(v)[0] if np.ndim(v) else None for v in inputs.values()}
    if len(rows) != 1 or None in rows:
        shapes = {k: np.shape(v) for k, v in inputs.items()}
        raise InputError(f"the inputs must all have the same number of rows (axis 0); got shapes {shapes}")
    (n,) = rows
    return [{k: v[start : start + batch_size] for k, v in inputs.items()} for start in range(0, n, batch_size)]


def check_checkpoint(path, scope, kind, config, x, pool):
    """The cell under ``scope`` of a TF checkpoint or SavedModel, run by the
    kind's framework on the checkpoint's weights, against the reference.
    The weights are checked against the config's shapes first, so that a
    mismatch gets the reference's message, not TF's."""

    ref = Case(kind, config, x, {}).reference()
    weights = load_weights(path, scope)
    ref.params(weights, np.shape(x)[-1], ref.policy.compute)  # WeightError naming the culprit
    case = Case(kind, config, x, weights, name=scope, platform=chosen())
    desired = pool.for_kind(kind).run(case)
    row, _, _ = compare_layer(scope, case, desired)
    return [row], []


def open_pool():
    return OraclePool()
