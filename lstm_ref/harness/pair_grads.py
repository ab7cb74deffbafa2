"""``lstm-ref check PORT --source MODEL --grad``: does the port train the same?

For each pair ``check --source`` compares (:func:`artifacts.check_pairs`), a
seeded upstream is drawn on the artifact's outputs (``h``, ``final_h``,
``final_c`` in its layout) and pulled back to the source's layout by the
adjoint of the pair's alignment (``Conversion.pull_back``).  Then:

* the source's framework differentiates the source's layer (TF's tape on the
  Keras layer, ``torch.autograd``...) and the artifact's framework the
  port's (``grad_oracle.framework_grads``), each on the same numbers it ran
  forward;
* each is judged against its own kind's reference fed the same upstream
  (:func:`~lstm_ref.harness.grad_oracle.verdicts`: the kind's measured
  bound plus the reference's own rounding spread): every weight of each
  side, in its own names;
* and the two frameworks are compared with each other where the gradient
  means the same thing in both layouts: ``dL/dx`` (a Bidirectional's two
  directions summed: both read x) and ``dL/d(initial state)`` (stacked as
  the artifact stacks states), within the sum of the two sides' allowances.

Chained layers (an ONNX export's nodes as one ``torch.nn.LSTM(num_layers=N)``)
are differentiated top down: the top layer takes the sequence's upstream,
each layer its slice of the stacked states, and a lower layer's sequence the
dL/dx the source's framework gave the layer above (what training the chain
back-propagates); dL/dx across is the bottom layer's.

The weights' gradients are compared per side, not across: a converter maps
weights by an affine map (a constant ``forget_bias`` folded in, two biases
summed), whose gradients relate by its adjoint, and the reference of each
kind is the referee of its own names.  An ``onnx.LSTM`` port is
differentiated by the torch oracle through the converter (ONNX Runtime has
no training in this build): said in the row.
"""

import numpy as np

from ..convert import ONNX, ConversionError, GroupConversion
from ..errors import LstmRefError
from . import check_grad, grad_oracle
from .check import LayerResult
from .compare import compare_grads
from .oracles.client import OracleError
from .records import record_of

FIELDS = ("h", "final_h", "final_c")


def _bound(case):
    return record_of(case.kind).grad_tolerance(case.reference().policy)


def _upstream(case, rng):
    trace = case.run()
    compute = case.reference().policy.compute
    return {f: rng.standard_normal(np.shape(trace[f])).astype(compute) for f in FIELDS}


def _side(prefix, case, upstream, pool):
    """``(verdicts keyed "<prefix>:<array>", the framework's arrays)`` for one side."""
    theirs, _ = grad_oracle.framework_grads(pool.for_kind, case, upstream)
    verdicts = grad_oracle.verdicts(case, upstream, grad_oracle.reference_grads(case, upstream), theirs, _bound(case))
    return {f"{prefix}:{k}": v for k, v in verdicts.items()}, theirs


def grad_pair(name, conversion, art_case, pool, seed=0):
    """A ``NAME (grad)`` row for one pair, or ``(name, why)`` when it cannot be made."""
    row_name = f"{name} (grad)"
    try:
        upstream = _upstream(art_case, np.random.default_rng([seed, 41]))
        group = isinstance(conversion, GroupConversion)
        if not group:  # none where the source defines no output (a Flax port's padding)
            upstream = conversion.restrict(upstream)
        sources = list(conversion.sources) if group else [conversion.source]
        pulled = conversion.pull_back(upstream) if group else [conversion.pull_back(upstream)]
        parts = conversion.parts() if group else [conversion]
        layers = group and conversion.how == "layers"
        stats, src_grads = {}, [None] * len(sources)
        for k in reversed(range(len(sources))) if layers else range(len(sources)):
            src, up = sources[k], pulled[k]
            if layers and k + 1 < len(sources):  # the layer above read this one's h as its x
                up = {**up, "h": src_grads[k + 1]["x"]}
            compute = src.reference().policy.compute
            up = {f: np.asarray(v).astype(compute) for f, v in up.items()}
            side, src_grads[k] = _side(f"source[{k}]" if group else "source", src, up, pool)
            stats.update(side)
        side, art_grads = _side("artifact", art_case, upstream, pool)
        stats.update(side)
        tol = _bound(art_case)
        # dL/dx of the model's input: the bottom layer's, or both directions' (both read x)
        bottom = src_grads[:1] if layers else src_grads
        cross = {"x": sum(np.asarray(g["x"], np.float64) for g in bottom)}
        states = [part.states_to_target({k: g[k] for k in ("h0", "c0") if k in g}) for part, g in zip(parts, src_grads)]
        for key in ("h0", "c0"):
            if key in art_grads and all(key in s for s in states):
                cross[key] = np.concatenate([s[key] for s in states], axis=0) if group else states[0][key]
        for key, s in compare_grads(cross, art_grads, 1.0).items():
            # each framework is within its allowance of the exact gradient: the two, within the sum
            # (dL/dx of a stack of layers: the bottom layer's alone)
            ks = [0] if layers and key == "x" else range(len(sources))
            allowed = stats[f"artifact:{key}"].allowed + max(
                stats[f"source[{k}]:{key}" if group else f"source:{key}"].allowed for k in ks
            )
            stats[f"source vs artifact:{key}"] = grad_oracle.GradVerdict(key, s.ratio, 0.0, allowed, s.worst)
    except (ConversionError, LstmRefError, OracleError, KeyError) as exc:
        return row_name, f"no gradient pair: {str(exc).splitlines()[0]}"
    return _row(row_name, art_case, stats, tol, upstream)


def _row(name, art_case, verdicts, tol, upstream):
    stats = check_grad.arrays(verdicts)
    worst = max(stats.items(), key=lambda kv: kv[1]["ratio"])
    note = (
        "the onnx.LSTM port differentiated by torch.autograd through lstm_ref.convert (no ONNX training)"
        if art_case.kind == ONNX
        else ""
    )
    return LayerResult(
        layer=name,
        kind=art_case.kind,
        status="pass" if all(s["passed"] for s in stats.values()) else "fail",
        dtype=str(np.dtype(art_case.reference().policy.compute)),
        shape="x".join(map(str, np.shape(art_case.x))),
        ratio=worst[1]["ratio"],
        worst={"field": worst[0], "index": worst[1]["worst"]},
        tolerance={"grad": tol, "measure": check_grad.MEASURE + "; across the frameworks, the sum of both sides'"},
        rows=int(np.shape(art_case.x)[0]),
        source="gradient pair",
        notes=note,
        grad={
            "loss": "sum of the artifact's h, final_h, final_c times N(0, 1) upstreams, pulled back to the source",
            "upstream": sorted(upstream),
            "arrays": stats,
        },
    )
