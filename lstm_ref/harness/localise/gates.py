"""The gates of any family, one by one: for corrections inside the step.

A weight correction (a scale, an offset, a swap) is a change to the kind's
own weights, run by the kind's own reference.  A change *inside* the step --
one gate's activation replaced, one gate's value clipped as a quantiser
clips it -- needs the gates one by one, and the families write their steps
each in its own way.  Each family says once how its weights map onto the
shared cell of :mod:`lstm_ref.grad` (``grad_cell``: ``Wx``, ``Wh``, ``b``,
peepholes, clips, norms, activations, gate order i, f, c, o); :func:`gated`
runs that cell's equations (as :func:`lstm_ref.grad.forward` writes them) in
place of the family's step, with the changes, inside the family's own
``_run`` (masks, directions, ``go_backwards`` as the family has them).

:func:`usable` checks the view before any change is searched: unchanged, it
must compute what the family computes (float64), or the kind gets no
in-step corrections (a family without ``grad_cell``, an activation the
shared cell cannot take, a step the shared cell does not describe).
"""

import numpy as np

from ...activations import hard_sigmoid, keras2_hard_sigmoid, linear, relu, sigmoid, softsign, tanh
from ...runner import split_gates

# The roles of the shared cell: the four gates in its order, and "out", the
# activation of the cell state before the output gate multiplies it.
ROLES = ("i", "f", "c", "o", "out")

# The activations a port may put on one gate in place of the right one:
# Keras 3's and Keras 2's hard_sigmoid (quantisation-friendly exports), tanh
# for sigmoid and back, and the piecewise-linear stand-ins converters use.
KNOWN = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "hard_sigmoid (Keras 3: relu6(x + 3) / 6)": hard_sigmoid,
    "hard_sigmoid (Keras 2: clip(0.2 x + 0.5, 0, 1))": keras2_hard_sigmoid,
    "softsign": softsign,
    "linear": linear,
    "relu": relu,
}

# The view, unchanged, against the family in float64: at most 7.1e-17
# (relative) on every port of parity_tests/test_localise.py (the same ops,
# another order); a view that misses a part of the step (a norm, a clip)
# is off by that part, far more than 1e-9.
SELF_CHECK = 1e-9

_CLASSES = {}


def view(ref, params):
    """The shared cell of one direction (``params`` as the family's
    ``recurrence`` gets them), or None where the family has none."""
    make = getattr(ref, "grad_cell", None)
    if make is None:
        return None
    return make(params)


def _norm(norm, v):
    return v if norm is None else norm.forward(v)[0]


def _quantised(v, clip):
    """``v`` clipped to [-bound, bound] in the units of ``clip`` ((bound,
    unit mask or None for all units)), as a saturating quantiser does."""
    if clip is None:
        return v
    bound, units = clip
    clipped = np.clip(v, -bound, bound)
    return clipped if units is None else np.where(units, clipped, v)


def step(cell, x_t, state, changes, clips):
    """One step of the shared cell (lstm_ref.grad.forward's equations), with
    ``changes`` ({role: activation}) and ``clips`` ({role: clip}) applied."""
    h, c = state
    act = {"i": cell.ract, "f": cell.ract, "c": cell.act, "o": cell.ract}
    act["out"] = getattr(cell, "act_out", None) or cell.act
    act.update(changes)
    gate_clip = getattr(cell, "gate_clip", None)

    def pre(z):
        return z if gate_clip is None else np.clip(z, -gate_clip, gate_clip)

    z = _norm(getattr(cell, "norm_x", None), x_t @ cell.Wx) + _norm(getattr(cell, "norm_h", None), h @ cell.Wh)
    z = _norm(getattr(cell, "norm_z", None), z)
    if cell.b is not None:
        z = z + cell.b
    z_i, z_f, z_c, z_o = split_gates(z)
    if cell.P is not None:  # input and forget peepholes read c_prev
        z_i, z_f = z_i + cell.P[0] * c, z_f + cell.P[1] * c
    i = _quantised(act["i"](pre(z_i)), clips.get("i"))
    f = 1.0 - i if getattr(cell, "coupled", False) else _quantised(act["f"](pre(z_f)), clips.get("f"))
    c_new = f * c + i * _quantised(act["c"](pre(z_c)), clips.get("c"))
    if cell.cell_clip is not None:
        c_new = np.clip(c_new, -cell.cell_clip, cell.cell_clip)
    c_new = _norm(getattr(cell, "norm_c", None), c_new)
    if cell.P is not None:  # the output peephole reads the new c
        z_o = z_o + cell.P[2] * c_new
    m = _quantised(act["o"](pre(z_o)), clips.get("o")) * _quantised(act["out"](c_new), clips.get("out"))
    p = m @ cell.Wp if cell.Wp is not None else m
    h_new = p if cell.proj_clip is None else np.clip(p, -cell.proj_clip, cell.proj_clip)
    return h_new, (h_new, c_new)


def gated(base):
    """``base`` stepping the shared cell with an instance's ``changes`` and
    ``clips`` (both {role: ...}, empty by default)."""
    cls = _CLASSES.get(base)
    if cls is not None:
        return cls

    class Gated(base):
        changes = {}
        clips = {}
        _cell = (None, None)

        def project_input(self, params, x):
            return x  # the shared cell projects x itself, in the step

        def recurrence(self, params, x_t, state):
            if self._cell[0] is not params:  # one direction's params object for the whole run
                self._cell = (params, view(self, params))
            return step(self._cell[1], x_t, state, self.changes, self.clips)

    Gated.__name__ = Gated.__qualname__ = f"{base.__name__}_gates"
    _CLASSES[base] = Gated
    return Gated


def instance(ref, **attributes):
    inst = gated(type(ref))(ref.config, platform=ref.platform)
    for name, value in attributes.items():
        setattr(inst, name, value)
    return inst


def usable(ref, case):
    """Whether the gate view of ``ref`` computes what ``ref`` computes on
    ``case`` (float64): ``(True, "")`` or ``(False, why)``."""
    try:
        with np.errstate(all="ignore"):
            mine = case.run(instance(ref), oracle=True)
    except Exception as exc:  # noqa: BLE001 - no shared cell for this family or config: say why
        return False, f"{type(exc).__name__}: {exc}"
    truth = case.run(ref, oracle=True)
    for name in truth.fields:
        a, b = np.asarray(mine[name], np.float64), np.asarray(truth[name], np.float64)
        worst = float(np.max(np.abs(a - b) / (1 + np.abs(b)), initial=0.0))
        if not worst <= SELF_CHECK:
            return False, f"the shared cell is {worst:.2g} from the family's own step on {name}"
    return True, ""


def current(ref, case, role):
    """The activation ``role`` has in ``ref`` (a function), or None."""
    try:
        params = ref.params(case.weights, np.shape(case.x)[-1], np.float64)
        if hasattr(ref, "direction_params"):
            params = ref.direction_params(params, 0, 0)
        cell = view(ref, params)
    except Exception:  # noqa: BLE001 - no view: no current activation to name
        return None
    if cell is None:
        return None
    return {"i": cell.ract, "f": cell.ract, "c": cell.act, "o": cell.ract}.get(role) or (
        getattr(cell, "act_out", None) or cell.act
    )
