"""Reverse mode through the LSTM families: ``Reference.grad``.

The loss is ``sum(field * upstream[field])`` over the trace fields given in
``upstream`` (any field the family declares: the per-step output ``h``, the
traced ``c``, ``final_h``, ``final_c``).  Everything here is float64: the
forward is recomputed in float64 from the inputs rounded as ``run`` rounds
them (what ``run(oracle=True)`` computes), its intermediates are kept, and the
backward runs in float64 over them.  The gradient is therefore the exact
gradient (to float64 rounding) of the float64 forward at those inputs; what a
float32 framework computes differs from it by its own rounding, measured in
``parity_tests/test_grad_live.py``.

The cell is declared once, as :class:`LSTMCell`: the equations Keras 3's
``LSTMCell.call`` (``keras/src/layers/rnn/lstm.py``) and PyTorch's
``LSTMCell::operator()`` (``aten/src/ATen/native/RNN.cpp``) share::

    z = x_t Wx + h_prev Wh + b            (gate blocks i, f, c|g, o)
    i, f, o = ract(z_i), ract(z_f), ract(z_o)      g = act(z_c)
    c = f * c_prev + i * g
    m = o * act(c)
    h = m Wp     (PyTorch's proj_size; h = m without a projection)

with the optional parts TF1's ``LSTMCell`` (``legacy_cells.py``) adds to the
same equations, each None where a family has none: peepholes ``P = (Pi, Pf,
Po)`` (``z_i += Pi * c_prev``, ``z_f += Pf * c_prev`` and, after the clip,
``z_o += Po * c``), ``cell_clip`` (``c = clip(c, -cell_clip, cell_clip)``
before ``m``) and ``proj_clip`` (``h = clip(m Wp, -proj_clip, proj_clip)``).
A clip's gradient is ``tf.clip_by_value``'s: that function is
``maximum(minimum(t, hi), lo)`` (``tensorflow/python/ops/clip_ops.py``), and
``_MinimumGrad``/``_MaximumGrad`` (``math_grad.py``,
``_MaximumMinimumGrad`` with ``less_equal``/``greater_equal``) pass the
gradient to ``t`` where ``t <= hi`` and ``t >= lo``: 1 on the closed interval
``[lo, hi]``, boundaries included, 0 strictly outside (:func:`clip_passes`).
A constant ``forget_bias`` is folded into ``b``.

Each family says how its weights map onto ``Wx``, ``Wh``, ``b`` and ``Wp``
(``grad_cell``) and how the gradients of those map back onto its weight
names (``grad_weights``): Keras' ``kernel`` is ``Wx``; torch's ``weight_ih``
is ``Wx``'s transpose, and ``bias_ih`` and ``bias_hh`` both add into ``b``,
so both receive ``db``.

The sequence rules are the runner's (:mod:`lstm_ref.runner`), differentiated:
at a masked step ``state = where(mask, new, old)`` and ``output = where(mask,
new_h, prev_output)`` (or zeros with ``zero_output_for_mask``).  ``tf.where``
sends the gradient to the branch it took (``_SelectGrad``/``_SelectV2Grad``
in ``tensorflow/python/ops/math_grad.py``), so a masked step's cell receives
no gradient at all, the carried state's gradient skips over it to the step
that wrote the state, and the repeated output's gradient goes to the output
it repeats (nowhere, before the first valid step: that output is a constant
zero, not ``h0``).
"""

from dataclasses import dataclass, field

import numpy as np

from .activations import derivative
from .runner import split_gates


@dataclass
class LSTMCell:
    """One direction's cell in the shared form (all float64)."""

    Wx: np.ndarray  # (features, 4 units)
    Wh: np.ndarray  # (state width, 4 units)
    b: np.ndarray  # (4 units,) or None
    Wp: np.ndarray  # (units, proj) or None
    act: object
    ract: object
    P: tuple = None  # peepholes (Pi, Pf, Po), each (units,)
    cell_clip: float = None
    proj_clip: float = None

    def __post_init__(self):
        # Derivatives of the activations the family configured; a ConfigError
        # naming the activation where none is exact.
        self.dact = derivative(self.act)
        self.dract = derivative(self.ract)


@dataclass
class CellGrads:
    Wx: np.ndarray
    Wh: np.ndarray
    b: np.ndarray
    Wp: np.ndarray
    P: tuple = None


def clip_passes(v, bound):
    """Where ``tf.clip_by_value(v, -bound, bound)`` passes the gradient: the
    closed interval (module docstring)."""
    return ((v >= -bound) & (v <= bound)).astype(np.float64)


@dataclass
class Tape:
    """One direction's float64 forward with what the backward reads."""

    x: np.ndarray
    mask: np.ndarray
    zero_output_for_mask: bool
    h_prev: list = field(default_factory=list)
    c_prev: list = field(default_factory=list)
    z: list = field(default_factory=list)  # gate pre-activations, peepholes included
    c_raw: list = field(default_factory=list)  # c before cell_clip
    c_new: list = field(default_factory=list)
    m: list = field(default_factory=list)
    p: list = field(default_factory=list)  # h before proj_clip


def forward(cell: LSTMCell, x, state0, mask, zero_output_for_mask):
    """Run ``cell`` over ``x`` (batch, time, features), processing order,
    float64: ``(tape, fields)``, ``fields`` as the runner's trace holds them
    (``h``, ``c``, ``final_h``, ``final_c``)."""
    tape = Tape(x, mask, zero_output_for_mask)
    h, c = state0
    batch, time = x.shape[:2]
    xz = x @ cell.Wx
    outs, cs = [], []
    prev_out = np.zeros_like(h)
    with np.errstate(over="ignore", under="ignore"):
        for t in range(time):
            z = xz[:, t] + h @ cell.Wh
            if cell.b is not None:
                z = z + cell.b
            z_i, z_f, z_c, z_o = split_gates(z)
            if cell.P is not None:  # input and forget peepholes read c_prev
                z_i, z_f = z_i + cell.P[0] * c, z_f + cell.P[1] * c
            c_raw = cell.ract(z_f) * c + cell.ract(z_i) * cell.act(z_c)
            c_new = c_raw if cell.cell_clip is None else np.clip(c_raw, -cell.cell_clip, cell.cell_clip)
            if cell.P is not None:  # the output peephole reads the clipped c
                z_o = z_o + cell.P[2] * c_new
                z = np.concatenate([z_i, z_f, z_c, z_o], axis=-1)
            m = cell.ract(z_o) * cell.act(c_new)
            p = m @ cell.Wp if cell.Wp is not None else m
            h_new = p if cell.proj_clip is None else np.clip(p, -cell.proj_clip, cell.proj_clip)
            tape.h_prev.append(h)
            tape.c_prev.append(c)
            tape.z.append(z)
            tape.c_raw.append(c_raw)
            tape.c_new.append(c_new)
            tape.m.append(m)
            tape.p.append(p)
            if mask is not None:
                mt = mask[:, t, None]
                h, c = np.where(mt, h_new, h), np.where(mt, c_new, c)
                out = np.where(mt, h_new, 0.0 if zero_output_for_mask else prev_out)
            else:
                h, c, out = h_new, c_new, h_new
            outs.append(out)
            cs.append(c)
            prev_out = out
    fields = {"h": np.stack(outs, axis=1), "c": np.stack(cs, axis=1), "final_h": h, "final_c": c}
    return tape, fields


def backward(cell: LSTMCell, tape: Tape, d_out, d_c, d_final_h, d_final_c):
    """The vector-Jacobian product of :func:`forward`.

    ``d_out`` (batch, time, out) and ``d_c`` (batch, time, units): the
    upstream gradients on the per-step output and carried c, or None;
    ``d_final_*``: on the final states, or None.  Returns ``(dx, (dh0,
    dc0), CellGrads, steps)``: ``steps["h"]``/``steps["c"]`` (batch, time,
    width) are dL/dh_t and dL/dc_t of the state the cell computes at step t
    (zero at a masked step, whose cell output nothing reads): the full
    derivative, ``c_t``'s through ``h_t = o * act(c_t)`` included (what
    autograd gives for PyTorch's ``c_t`` tensor); ``steps["c_carried"]``
    is dL/dc_t with ``h_t`` held (only the paths through the carried c and
    the traced ``c`` field: what perturbing the cell's returned c, after it
    computed h, measures -- the Keras worker's probe)."""
    x, mask = tape.x, tape.mask
    batch, time = x.shape[:2]
    h0, c0 = tape.h_prev[0], tape.c_prev[0]
    dh = np.zeros_like(h0) if d_final_h is None else np.array(d_final_h, dtype=np.float64)
    dc = np.zeros_like(c0) if d_final_c is None else np.array(d_final_c, dtype=np.float64)
    d_repeat = 0.0  # gradient on the previous output from later masked steps' repeats
    dz_all = np.empty((batch, time, cell.Wh.shape[1]))
    dWh = np.zeros_like(cell.Wh)
    dWp = None if cell.Wp is None else np.zeros_like(cell.Wp)
    dP = None if cell.P is None else [np.zeros_like(q) for q in cell.P]
    steps_h = np.zeros((batch, time, h0.shape[-1]))
    steps_c = np.zeros((batch, time, c0.shape[-1]))
    carried_c = np.zeros_like(steps_c)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for t in reversed(range(time)):
            if d_c is not None:
                dc = dc + d_c[:, t]  # the carried c after step t
            d_output = d_repeat + (0.0 if d_out is None else d_out[:, t])
            if mask is not None:
                mt = mask[:, t, None]
                dh_new = np.where(mt, dh + d_output, 0.0)
                dc_new = np.where(mt, dc, 0.0)
                dh_skip, dc_skip = np.where(mt, 0.0, dh), np.where(mt, 0.0, dc)
                d_repeat = 0.0 if tape.zero_output_for_mask else np.where(mt, 0.0, d_output)
            else:
                dh_new, dc_new, dh_skip, dc_skip = dh + d_output, dc, 0.0, 0.0
            steps_h[:, t], carried_c[:, t] = dh_new, dc_new
            dz, dh_prev, dc_prev, steps_c[:, t] = _cell_vjp(cell, tape, t, dh_new, dc_new, dWp, dP)
            dz_all[:, t] = dz
            dWh += tape.h_prev[t].T @ dz
            dh, dc = dh_prev + dh_skip, dc_prev + dc_skip
    dx = dz_all @ cell.Wx.T
    dWx = np.einsum("btf,btg->fg", x, dz_all)
    db = None if cell.b is None else dz_all.sum(axis=(0, 1))
    steps = {"h": steps_h, "c": steps_c, "c_carried": carried_c}
    return dx, (dh, dc), CellGrads(dWx, dWh, db, dWp, None if dP is None else tuple(dP)), steps


def _cell_vjp(cell, tape, t, dh_new, dc_new, dWp, dP):
    """One step of the cell, backwards: ``(dz, dh_prev, dc_prev, dc)``
    (``dc``: dL/d the carried, clipped c in full); adds into ``dWp`` and
    the peepholes' ``dP``."""
    z, c_prev, c_new, m = tape.z[t], tape.c_prev[t], tape.c_new[t], tape.m[t]
    z_i, z_f, z_c, z_o = split_gates(z)
    if cell.proj_clip is not None:  # h = clip(p): tf.clip_by_value's gradient
        dh_new = dh_new * clip_passes(tape.p[t], cell.proj_clip)
    if cell.Wp is not None:  # h = m Wp
        dWp += m.T @ dh_new
        dm = dh_new @ cell.Wp.T
    else:
        dm = dh_new
    i, f, g, o = cell.ract(z_i), cell.ract(z_f), cell.act(z_c), cell.ract(z_o)
    act_c = cell.act(c_new)
    dz_o = dm * act_c * cell.dract(z_o)
    dc = dc_new + dm * o * cell.dact(c_new)  # m = o * act(c): dL/dc_t in full
    if cell.P is not None:  # z_o += Po * c
        dc = dc + dz_o * cell.P[2]
        dP[2] += np.sum(dz_o * c_new, axis=0)
    d_raw = dc if cell.cell_clip is None else dc * clip_passes(tape.c_raw[t], cell.cell_clip)
    dz_i = d_raw * g * cell.dract(z_i)  # c = f * c_prev + i * g
    dz_f = d_raw * c_prev * cell.dract(z_f)
    dz = np.concatenate([dz_i, dz_f, d_raw * i * cell.dact(z_c), dz_o], axis=-1)
    dc_prev = d_raw * f
    if cell.P is not None:  # z_i += Pi * c_prev, z_f += Pf * c_prev
        dc_prev = dc_prev + dz_i * cell.P[0] + dz_f * cell.P[1]
        dP[0] += np.sum(dz_i * c_prev, axis=0)
        dP[1] += np.sum(dz_f * c_prev, axis=0)
    return dz, dz @ cell.Wh.T, dc_prev, dc


class GradResult:
    """What :meth:`Reference.grad` returns.

    ``x``: dL/dx, shaped as x (input order); ``initial``: ``{"h0": ...,
    "c0": ...}`` (also as attributes ``g.h0``, ``g.c0``), shaped as
    ``run`` takes them; ``weights``: ``{name: dL/dweight}`` keyed as
    ``run`` takes the weights; ``steps``: ``{state: (..., batch, time,
    width)}`` dL/d(state the cell computes at step t), in processing order
    (``c`` in full, and ``c_carried`` with that step's h held: see
    :func:`backward`)
    for one cell (stacked kinds: ``(num_layers * num_directions, batch,
    time, width)``, each direction's steps in input order); ``trace``: the
    float64 forward the gradient is taken at.  All float64.
    """

    def __init__(self, x, initial, weights, steps, trace):
        self.x, self.initial, self.weights, self.steps, self.trace = x, initial, weights, steps, trace

    def __getattr__(self, name):
        initial = self.__dict__.get("initial", {})
        if name in initial:
            return initial[name]
        raise AttributeError(f"this gradient has no {name!r}; it has x, {sorted(initial)}, weights, steps, trace")

    def __repr__(self):
        return f"GradResult(x={self.x.shape}, {', '.join(sorted(self.initial))}, weights={sorted(self.weights)})"
