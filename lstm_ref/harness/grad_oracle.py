"""The gradient of a case, as the framework computes it and as the reference
does, keyed alike -- what the live gradient tests and the gradient goldens
compare (``compare.compare_grads``).

A gradient case is a :class:`~lstm_ref.case.Case` and an ``upstream``
``{field: dL/d field}``: the loss is ``sum(field * upstream[field])``.  Keys
of both sides: ``x``, ``h0``/``c0`` (when the case gives them),
``w:<weight>`` and the per-step ``steps:h``, ``steps:c`` or
``steps:c_carried`` that the framework's worker returns (``Reference.grad``
computes all three; the framework's subset is compared).

Every worker's ``grad`` op is ``tf.GradientTape`` or ``torch.autograd`` on
the real layer or cell.  ONNX Runtime has no training in this CPU build, so
an ``onnx.LSTM`` case is converted to ``torch.nn.LSTM`` (``lstm_ref.convert``,
a permutation of the same numbers), differentiated by the torch oracle, and
its gradients converted back to ONNX's layout by the same converter: where
the converter refuses the config (``clip``, ``input_forget``, activations
other than Sigmoid/Tanh, a reverse-only direction, a row of length 0) there
is no live gradient, and the finite differences of
``parity_tests/test_grad.py`` are the only check.  Peepholes ``P`` are
refused too: torch has none, so it gives no gradient for them.

A gradient amplifies rounding where the problem is ill-conditioned (a long
sequence whose gradient explodes, a layer norm over a near-constant block
of 2 or 3 values), and a rounded forward can land on the other side of an
activation's kink (hard_sigmoid's corners, relu's 0) and take the other
subgradient: there the framework's float32 gradient can be 1e-3 away from
the exact one, its float16 gradient wrong in sign, and even float64 off by
1e-7 (measured, ``tools/measure_grad.py``; central differences side with
the reference).  So the bound has a term for that (:func:`check`): how far
the reference's own gradient moves when every input (x, initial states,
weights) is perturbed by one rounding of the case's compute dtype
(:func:`rounding_spread`), times :data:`CONDITIONING`.  A well-conditioned
case has a spread of a few eps and keeps its tight bound; a semantic
difference does not depend on the inputs' last bits.
"""

import copy
from dataclasses import dataclass

import numpy as np

from ..case import Case
from ..convert import ONNX, TORCH, TORCH_CELL, ConversionError, convert
from ..dtypes import resolve_policy
from .compare import compare_grads

# The conditioning factor per dtype: the worst t / spread over every array
# whose spread is at least 10 eps of the dtype (where conditioning or a kink
# decides, not one rounding), 3x.  Measured with `python -m tools.measure_grad
# 40` (two runs, seeds 0 and 7; TF 2.21 / Keras 3.15 / tf_keras 2.21, tfa
# 0.23 on TF 2.15.1, torch 2.13, Intel Xeon): 12,760 gradient arrays of the 9
# kinds (the live module's cases and 80 Hypothesis draws a kind and run).
# float64 48.1 (contrib, 2 units: a per-gate norm of 2 values), float32 16.5
# (contrib, 3 units), float16 2.07 (tfa), mixed_float16 1.24 (tfa,
# hard_sigmoid next to its corner).  What the term leaves over is each kind's
# plain bound (KindRecord.grad).
CONDITIONING = {"float64": 144.0, "float32": 50.0, "float16": 6.2, "mixed_float16": 3.7}
SPREAD_SAMPLES = 4  # perturbed copies of the inputs per case

# The fields each framework's grad op takes upstream: what the real layer
# returns (none but the stepped LSTMCell returns its per-step c).
_CELL_FIELDS = ("h", "c", "final_h", "final_c")
_LAYER_FIELDS = ("h", "final_h", "final_c")


def upstream_fields(kind) -> tuple:
    return _CELL_FIELDS if kind == TORCH_CELL else _LAYER_FIELDS


def draw_upstream(case, rng) -> dict:
    """Seeded N(0, 1) upstream on every field the framework takes, shaped as
    the reference's trace and rounded to the case's compute dtype (the
    framework multiplies its outputs by it in that dtype)."""
    ref = case.reference()
    trace = case.run(ref)
    return {f: rng.standard_normal(np.shape(trace[f])).astype(ref.policy.compute) for f in upstream_fields(case.kind)}


def reference_grads(case, upstream) -> dict:
    """``Reference.grad`` on the case, keyed as the workers key theirs."""
    return _grads_of(case.reference(), case, upstream)


def request_arrays(case, upstream) -> dict:
    return {**case.arrays(), **{f"up:{k}": np.asarray(v) for k, v in upstream.items()}}


def framework_grads(oracle_for, case, upstream):
    """``(grads, provenance)``: the framework's gradient of the case
    (``oracle_for(kind)`` gives a started worker), keyed as
    :func:`reference_grads`; ONNX through the torch oracle (module
    docstring), its provenance saying so."""
    if case.kind == ONNX:
        return _onnx_through_torch(oracle_for, case, upstream)
    oracle = oracle_for(case.kind)
    _, theirs = oracle.request({"op": "grad", "kind": case.kind, "config": case.config}, request_arrays(case, upstream))
    return theirs, oracle.hello()


def _onnx_through_torch(oracle_for, case, upstream):
    if "P" in case.weights:
        raise ConversionError(
            "onnx.LSTM's gradient is checked through torch.nn.LSTM, which has no peepholes: "
            "no framework gives P's gradient (leave P out; the finite differences check it)"
        )
    port = convert(case, TORCH).case
    oracle = oracle_for(TORCH)
    _, theirs = oracle.request({"op": "grad", "kind": TORCH, "config": port.config}, request_arrays(port, upstream))
    # The converter maps weights linearly (a permutation; bias_ih, bias_hh to
    # Wb, Rb): applied to the weight gradients, it gives ONNX's.
    torch_grads = {k[2:]: v for k, v in theirs.items() if k.startswith("w:")}
    back = convert(Case(TORCH, port.config, port.x, torch_grads, port.mask, **port.initial_state), ONNX).case
    out = {k: v for k, v in theirs.items() if not k.startswith("w:")}
    out.update((f"w:{k}", np.asarray(v)) for k, v in back.weights.items())
    info = dict(oracle.hello())
    info["note"] = "onnx.LSTM's gradient: torch.autograd on torch.nn.LSTM through lstm_ref.convert (no ONNX training)"
    return out, info


def paired(ours: dict, theirs: dict) -> dict:
    """``ours`` restricted to what the framework returned: its per-step
    subset; every other array of ours must be there (a KeyError naming the
    missing ones otherwise)."""
    missing = sorted(k for k in ours if k not in theirs and not k.startswith("steps:"))
    extra = sorted(k for k in theirs if k not in ours)
    if missing or extra:
        raise KeyError(f"gradients differ in their arrays: the framework lacks {missing}, the reference {extra}")
    return {k: v for k, v in ours.items() if k in theirs}


@dataclass
class GradVerdict:
    """One gradient array: ``t = max |d| / (1 + |g_ref|)`` against the
    framework, ``spread`` the same measure of the reference's own gradient
    moved by one rounding of its inputs (:func:`rounding_spread`), and
    ``allowed = tol + CONDITIONING[dtype] * spread``."""

    name: str
    t: float
    spread: float
    allowed: float
    worst: tuple
    first_step: int = None

    @property
    def passed(self):
        return bool(self.t <= self.allowed)


def check(oracle_for, case, upstream, tol) -> dict:
    """``{array: GradVerdict}``: the reference's gradient against the
    framework's, under ``tol`` (the record's for the case's dtype) plus the
    rounding-spread term (module docstring)."""
    theirs, _ = framework_grads(oracle_for, case, upstream)
    return verdicts(case, upstream, reference_grads(case, upstream), theirs, tol)


def verdicts(case, upstream, ours, theirs, tol) -> dict:
    """:func:`check` on given gradients (a golden's stored ones)."""
    ours = paired(ours, theirs)
    stats = compare_grads(ours, theirs, 1.0)
    spread = rounding_spread(case, upstream, ours)
    k = CONDITIONING[case.reference().policy.name]
    return {
        name: GradVerdict(name, s.ratio, spread[name], tol + k * spread[name], s.worst, s.first_step)
        for name, s in stats.items()
    }


def rounding_spread(case, upstream, ours, samples=SPREAD_SAMPLES) -> dict:
    """``{array: max over samples of max |g' - g| / (1 + |g|)}`` for the
    arrays of ``ours`` (the reference's gradient ``g``): ``g'`` is the
    reference's gradient with every input -- x, initial states, weights, as
    the case rounds them -- multiplied by ``1 + eps u``, ``u`` uniform in
    [-1, 1] (seeded: the same on every run), ``eps`` the compute dtype's.
    The cell is the case's, configured as the case configures it (contrib's
    float16 epsilon, TF1's rounded constants), computing on the perturbed
    numbers without rounding them back (its policy swapped for float64)."""
    ref = case.reference()
    compute, variable = ref.policy.compute, ref.policy.variable
    eps = float(np.finfo(compute).eps)
    exact = copy.copy(ref)
    exact.policy = resolve_policy("float64")
    rng = np.random.default_rng(0)

    def jitter(a, dtype):
        a = np.asarray(a).astype(dtype).astype(np.float64)
        return a * (1.0 + eps * rng.uniform(-1.0, 1.0, a.shape))

    worst = dict.fromkeys(ours, 0.0)
    for _ in range(samples):
        moved = case.replace(
            x=jitter(case.x, compute),
            weights={k: jitter(v, variable) for k, v in case.weights.items()},
            **{k: jitter(v, compute) for k, v in case.initial_state.items()},
        )
        g = _grads_of(exact, moved, upstream)
        for name, value in ours.items():
            d = np.abs(g[name] - value) / (1.0 + np.abs(value))
            worst[name] = max(worst[name], float(np.nan_to_num(d, nan=np.inf).max(initial=0.0)))
    return worst


def _grads_of(ref, case, upstream) -> dict:
    g = ref.grad(case.x, case.weights, upstream, mask=case.mask, **case.initial_state)
    out = {"x": g.x, **{k: g.initial[k] for k in case.initial_state}}
    out.update((f"w:{k}", v) for k, v in g.weights.items())
    out.update((f"steps:{k}", v) for k, v in g.steps.items())
    return out
