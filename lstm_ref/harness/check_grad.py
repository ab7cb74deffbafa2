"""``lstm-ref check MODEL --grad``: every LSTM layer of a saved Keras model,
its gradient as TF computes it through the whole model against the
reference's.

The model's worker runs it once under ``tf.GradientTape``, the loss a seeded
random projection of its outputs, and returns for each LSTM call the
upstream gradient the layer received and TF's gradient of that call alone
(``oracles/keras_model_grads.py``).  The reference takes the same upstream
(``Reference.grad``, float64 at the inputs rounded as ``run`` rounds them)
and each array -- ``x``, ``h0``/``c0``, every weight, and the per-step
``dL/dh_t``, ``dL/dc_t`` where the worker gives them -- is judged by the
one gradient verdict of the live tests and goldens
(:func:`~lstm_ref.harness.grad_oracle.verdicts`): the kind's measured
bound (``KindRecord.grad``) plus the reference's own rounding spread.  One row per
layer, ``NAME (grad)``, in the same table and JSON schema as ``check``;
``row.grad`` holds the per-array verdicts.
"""

import numpy as np

from ..errors import LstmRefError
from ..platform import chosen
from . import grad_oracle
from .check import LayerResult, _layer_case
from .records import record_of


def grad_tolerance(kind, policy):
    """The kind's measured gradient bound for dtype ``policy``, or None."""
    try:
        return record_of(kind).grad_tolerance(policy)
    except KeyError:
        return None


def check_model_grads(path, worker, inputs: dict, batch=2, time=7, seed=0, custom_objects=()):
    """``(results, skipped, meta)`` for the Keras model at ``path``."""
    meta, out = worker.request(
        {
            "op": "model_grads",
            "path": str(path),
            "batch": batch,
            "time": time,
            "seed": seed,
            "custom_objects": [str(p) for p in custom_objects],
        },
        {f"in:{k}": v for k, v in inputs.items()},
    )
    skipped = [tuple(s) for s in meta.get("skipped", [])]
    results, dx, late = [], {}, []  # late: skip rows, in the walk's (top-down) order
    # top down: a stacked cell's sequence upstream is the dL/dx of the cell above it
    for i in reversed(range(len(meta["layers"]))):
        layer = meta["layers"][i]
        name = f"{layer['path']} (grad)"
        case = _layer_case(layer, out, i)
        case.platform = chosen() or worker.platform
        upstream = {k[len(f"{i}:up:") :]: v for k, v in out.items() if k.startswith(f"{i}:up:")}
        stack = layer.get("stack") or {"index": 0, "above": None}
        if stack["above"] is not None:
            above = dx.get(stack["above"])
            if above is None:
                late.append((name, "the stacked cell above it has no reference gradient to pass down"))
                continue
            upstream["h"] = np.ascontiguousarray(above[:, ::-1] if stack["flip"] else above)
        try:
            ref = case.reference()
            g = ref.grad(case.x, case.weights, upstream, mask=case.mask, **case.initial_state)
        except LstmRefError as exc:  # a config or activation the reference has no gradient for: say so
            late.append((name, str(exc)))
            continue
        dx[i] = g.x
        dtype = np.dtype(ref.policy.compute).name
        tol = grad_tolerance(layer["kind"], ref.policy)
        if tol is None:
            late.append((name, f"no measured gradient tolerance for {layer['kind']} under {ref.policy.name}"))
            continue
        theirs = {k[len(f"{i}:g:") :]: v for k, v in out.items() if k.startswith(f"{i}:g:")}
        # a stacked cell above the bottom one: its x is inside the RNN's loop, where TF's tape cannot see
        ours = {"x": g.x} if stack["index"] == 0 else {}
        ours.update({k: g.initial[k] for k in case.initial_state})
        if not layer.get("frozen"):  # a frozen cell of a stack: no weight gradient in training
            ours.update({f"w:{k}": v for k, v in g.weights.items()})
        ours.update({f"steps:{k}": v for k, v in g.steps.items()})
        verdicts = grad_oracle.verdicts(case, upstream, ours, theirs, tol)
        results.append(_row(name, layer, case, dtype, tol, verdicts, upstream, meta))
    return results[::-1], skipped + late[::-1], meta


def _row(name, layer, case, dtype, tol, verdicts, upstream, meta):
    stats = arrays(verdicts)
    worst = max(stats.items(), key=lambda kv: kv[1]["ratio"])
    steps = {k: s for k, s in stats.items() if k.startswith("steps:")}
    return LayerResult(
        layer=name,
        kind=layer["kind"],
        status="pass" if all(s["passed"] for s in stats.values()) else "fail",
        dtype=dtype,
        shape="x".join(map(str, np.shape(case.x))),
        ratio=worst[1]["ratio"],
        h_max_abs=steps["steps:h"]["t"] if "steps:h" in steps else None,
        c_max_abs=steps["steps:c_carried"]["t"] if "steps:c_carried" in steps else None,
        worst={"field": worst[0], "index": worst[1]["worst"]},
        tolerance={"grad": tol, "measure": MEASURE},
        rows=int(np.shape(case.x)[0]),
        source=layer.get("source", ""),
        masked=case.mask is not None,
        initial_state=bool(case.initial_state),
        notes="; ".join(
            n for n in (STACKED_NOTE if layer.get("stack") else "", FROZEN_NOTE if layer.get("frozen") else "") if n
        ),
        grad={
            "loss": f"sum of the model's floating outputs times N(0, 1) projections (seed [{meta['seed']}, 17])",
            "upstream": sorted(upstream),
            "arrays": stats,
        },
    )


STACKED_NOTE = (
    "a StackedRNNCells cell: TF's tape sees the RNN's call only, so its sequence's upstream is the reference's "
    "dL/dx of the cell above (dL/dx itself: the bottom cell's)"
)
FROZEN_NOTE = "a frozen cell (trainable=False): its weights take no gradient and are not compared"
MEASURE = "t = max |d| / (1 + |g_ref|) <= grad + k x the reference's own rounding spread (grad_oracle)"


def arrays(verdicts) -> dict:
    """``grad_oracle.GradVerdict``s as the JSON's ``grad.arrays``: ``t``,
    the ``allowed`` bound, ``ratio = t / allowed`` (<= 1 passes)."""
    return {
        k: {
            "t": v.t,
            "allowed": v.allowed,
            "spread": v.spread,
            "ratio": v.t / v.allowed if v.allowed else (0.0 if v.t == 0 else float("inf")),
            "passed": v.passed,
            "worst": list(map(int, v.worst)),
            **({"first_step": v.first_step} if v.first_step is not None else {}),
        }
        for k, v in verdicts.items()
    }
