"""Faults a port makes in its backward pass only: its forward is right, its
gradient is not.  The catalogue ``lstm-ref diagnose`` searches when given a
target's gradients (:func:`lstm_ref.harness.diagnose.diagnose_grad`):

* truncated BPTT: h detached between steps (``h_prev.detach()``,
  ``tf.stop_gradient``), so no gradient reaches the previous step through h;
* c detached: no gradient through ``c_prev``;
* the gradient clipped per step: dL/dh_t clipped elementwise to [-v, v] at
  every step (a hook on h_t), v one of :data:`CLIP_VALUES` or fitted to the
  target's per-step gradient;
* the bias gradient doubled: PyTorch's ``bias_ih`` and ``bias_hh`` each given
  the sum of both gradients, or a port that adds the one bias twice in its
  backward.

Each is a :class:`GradFault`: the ``faults`` :func:`lstm_ref.grad.backward`
takes, a name and the fix.  :func:`grad_with` is ``Reference.grad`` with the
fault injected (every cell of every layer and direction).
"""

from dataclasses import dataclass, field

import numpy as np

from . import grad as G

CLIP_VALUES = (1.0, 5.0)


@dataclass(frozen=True)
class GradFault:
    name: str
    faults: dict = field(hash=False)  # {backward fault: value} (lstm_ref.grad.BACKWARD_FAULTS)
    fix: str = ""

    def applies(self, case):
        """The bias fault needs a bias."""
        if "double_db" in self.faults:
            return _has_bias(case)
        return True


def _has_bias(case):
    return any("bias" in k.lower() or k == "B" for k in case.weights)


TRUNCATED = GradFault(
    "truncated BPTT (h detached between steps)",
    {"detach_h": True},
    fix="do not detach h between steps (no stop_gradient/.detach() on the carried h)",
)
DETACHED_C = GradFault(
    "c detached (no gradient through c_prev)",
    {"detach_c": True},
    fix="do not detach the carried c: dL/dc_prev = dL/dc * f (+ the peepholes)",
)
DOUBLED_BIAS = GradFault(
    "bias gradient doubled",
    {"double_db": True},
    fix="give each bias its own gradient dL/db once (torch: bias_ih and bias_hh each receive dL/db, not their sum)",
)


def clipped(v):
    v = float(v)
    return GradFault(
        f"gradient clipped per step to [-{v:g}, {v:g}]",
        {"clip_dh": v},
        fix="do not clip dL/dh_t inside the recurrence (clip the parameters' gradients after the backward, if at all)",
    )


def catalogue(observed=None):
    """The backward faults: the clip at each of :data:`CLIP_VALUES` and, where
    ``observed`` (the target's gradients, keyed as ``grad_oracle`` keys them)
    has ``steps:h``, at the largest |dL/dh_t| it shows (the fitted bound)."""
    values = list(CLIP_VALUES)
    steps = None if observed is None else observed.get("steps:h")
    if steps is not None and np.size(steps):
        fitted = float(np.max(np.abs(np.asarray(steps, np.float64))))
        if np.isfinite(fitted) and fitted > 0 and fitted not in values:
            values.append(fitted)
    return [TRUNCATED, DETACHED_C, *(clipped(v) for v in values), DOUBLED_BIAS]


def grad_with(ref, case, upstream, fault):
    """``ref.grad`` on ``case`` with ``fault`` (a :class:`GradFault`, or
    None: the correct gradient) injected into every backward pass."""
    with G.injected(None if fault is None else fault.faults):
        return ref.grad(case.x, case.weights, upstream, mask=case.mask, **case.initial_state)
