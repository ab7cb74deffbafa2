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

ONNX's ``LSTM`` adds three parts (``lstm_ref/onnx_lstm.py``): ``gate_clip``
bounds every gate's pre-activation (``f(clip(z))``, after the bias and the
peepholes), ``act_out`` is its own ``h()`` on ``c`` (``g()`` is ``act``),
and ``coupled`` (``input_forget=1``) makes ``f = 1 - i``.  ONNX Runtime has
no gradient of its own (no training in this build); the gate clip's
subgradient is the same closed interval as TF's, which is also PyTorch's
``clamp`` (``clamp_backward`` in ``torch/csrc/autograd/FunctionsManual.cpp``
passes the gradient where ``self >= min`` and ``self <= max``).

The layer-norm cells (``lstm_ref/layer_norm_cells.py``) normalise parts of
the same equations, each :class:`LayerNorm` or None: ``norm_x`` on ``x Wx``
and ``norm_h`` on ``h_prev Wh`` (tfa's ``kernel_norm``/``recurrent_norm``,
the bias added after them), ``norm_z`` on ``x Wx + h_prev Wh`` per gate
block (contrib, before its forget bias) and ``norm_c`` on the new ``c``
(both; the carried ``c`` is the normalised one)::

    z = norm_z(norm_x(x_t Wx) + norm_h(h_prev Wh)) + b
    c = norm_c(f * c_prev + i * g)

A layer norm is differentiated in full, through its mean and its variance
(:meth:`LayerNorm.vjp`), as TF differentiates it: contrib's ``layer_norm``
is ``nn.moments`` then ``nn.batch_normalization``
(``tensorflow/python/ops/nn_impl.py``: ``inv = rsqrt(variance +
variance_epsilon) * scale``; ``moments`` takes the variance of
``squared_difference(y, stop_gradient(mean))``, which changes no gradient,
as its comment says, because d variance / d mean is zero), and Keras 2.15's
``LayerNormalization`` either the same pair or, on its fused path,
``tf.compat.v1.nn.fused_batch_norm`` with ``is_training`` left True
(``keras/src/layers/normalization/layer_normalization.py``), whose gradient
(``FusedBatchNormGradV3`` in training mode) is that of the batch statistics:
the same function, the same derivative.  Epsilon sits inside the rsqrt (1e-12
for contrib, 1e-3 in float16; tfa's ``norm_epsilon``).

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

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .activations import OUTPUT_DERIVATIVES, derivative
from .runner import split_gates


def permute_blocks(w, order):
    """``w`` with its gate blocks (the last axis split in 4) in ``order``."""
    blocks = split_gates(w)
    return np.concatenate([blocks[k] for k in order], axis=-1)


@dataclass
class LayerNorm:
    """``gamma * (v - mean) / sqrt(var + epsilon) + beta`` over the last
    axis, in ``groups`` equal blocks normalised apart (contrib's per-gate
    norms: 4), float64; biased variance (``nn.moments``)."""

    gamma: np.ndarray
    beta: np.ndarray
    epsilon: float
    groups: int = 1

    def forward(self, v):
        """``(out, cache)``."""
        g = v.reshape(v.shape[:-1] + (self.groups, -1))
        centred = g - g.mean(axis=-1, keepdims=True)
        inv = 1.0 / np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True) + self.epsilon)
        xhat = centred * inv
        return xhat.reshape(v.shape) * self.gamma + self.beta, (xhat, inv)

    def vjp(self, d_out, cache):
        """``(dv, dgamma, dbeta)`` for ``d_out`` on the output.  ``dv`` is
        the full derivative: the centring gives ``- mean(dxhat)``, the
        variance ``- xhat * mean(dxhat * xhat)`` (d rsqrt(var + eps) / dv,
        which with contrib's epsilon 1e-12 is as large as the first term)."""
        xhat, inv = cache
        rows = tuple(range(d_out.ndim - 1))
        dgamma = np.sum(d_out * xhat.reshape(d_out.shape), axis=rows)
        dbeta = np.sum(d_out, axis=rows)
        dxhat = (d_out * self.gamma).reshape(xhat.shape)
        d_var_path = xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)
        dv = inv * (dxhat - np.mean(dxhat, axis=-1, keepdims=True) - d_var_path)
        return dv.reshape(d_out.shape), dgamma, dbeta


NORMS = ("norm_x", "norm_h", "norm_z", "norm_c")


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
    # ONNX: h = o * act_out(c) (None: act), clip(z) of every gate, f = 1 - i
    act_out: object = None
    gate_clip: float = None
    coupled: bool = False
    # layer norms (module docstring), each a LayerNorm or None
    norm_x: LayerNorm = None
    norm_h: LayerNorm = None
    norm_z: LayerNorm = None
    norm_c: LayerNorm = None

    def __post_init__(self):
        # Derivatives of the activations the family configured, each as
        # ``slope(z, y)`` of the input z and the output y (:func:`_slope`);
        # a ConfigError naming the activation where none is exact.
        self.act_out = self.act if self.act_out is None else self.act_out
        self.slope_act, self.slope_ract, self.slope_act_out = (_slope(f) for f in (self.act, self.ract, self.act_out))


def _slope(fn):
    """``fn``'s derivative as ``slope(z, y)`` (``y = fn(z)``): from the
    output for sigmoid and tanh, as TF and PyTorch take it
    (:data:`~lstm_ref.activations.OUTPUT_DERIVATIVES`), else from the input
    -- an activation bound to parameters (ONNX's alpha/beta) carries its own
    as ``.derivative``."""
    own = getattr(fn, "derivative", None)
    if own is not None:
        return lambda z, y: own(z)
    of_output = OUTPUT_DERIVATIVES.get(fn)
    if of_output is not None:
        return lambda z, y: of_output(y)
    of_input = derivative(fn)
    return lambda z, y: of_input(z)


@dataclass
class CellGrads:
    Wx: np.ndarray
    Wh: np.ndarray
    b: np.ndarray
    Wp: np.ndarray
    P: tuple = None
    norms: dict = None  # {"norm_x": (dgamma, dbeta), ...} for the cell's layer norms


def clip_passes(v, bound):
    """Where ``tf.clip_by_value(v, -bound, bound)`` passes the gradient: the
    closed interval (module docstring)."""
    return ((v >= -bound) & (v <= bound)).astype(np.float64)


@dataclass
class Tape:
    """One direction's float64 forward with what the backward reads, time
    major: ``slopes[t]`` holds, per gate block, what dL/dz of that gate is
    the upstream times -- ``d raw_c * g * i'`` (``g - c_prev`` with a coupled
    forget gate), ``d raw_c * c_prev * f'``, ``d raw_c * i * g'`` and ``dm *
    act_out(c) * o'``, each with the gate clip's pass-through -- ``dc_of_m[t]``
    ``o * act_out'(c)`` (dL/dc from dm) and ``forget[t]`` f.  The backward
    then needs no activation, only products (4-5x fewer passes over the
    gates than evaluating the derivatives again: ``make bench``'s gradient
    lines).  ``h_prev`` is batch-major storage (the weight gradient's one
    GEMM reads it whole), written through a time-major view."""

    x: np.ndarray
    mask: np.ndarray
    zero_output_for_mask: bool
    slopes: np.ndarray = None  # (time, batch, 4 units)
    dc_of_m: np.ndarray = None  # (time, batch, units)
    forget: np.ndarray = None  # (time, batch, units)
    h_prev: np.ndarray = None  # (batch, time, width)
    c_prev: list = field(default_factory=list)  # peepholes only
    c_raw: list = field(default_factory=list)  # cell_clip only: c before the clip and norm_c
    c_new: list = field(default_factory=list)  # peepholes only
    m: list = field(default_factory=list)  # projections only: h before Wp
    p: list = field(default_factory=list)  # proj_clip only: h before the clip
    norm_x: tuple = None  # norm_x's cache over the whole sequence
    norms: dict = field(default_factory=lambda: {"norm_h": [], "norm_z": [], "norm_c": []})  # per step


def _gate_clip(cell, z):
    return z if cell.gate_clip is None else np.clip(z, -cell.gate_clip, cell.gate_clip)


def _through_clip(cell, slope, z):
    """``slope`` times the gate clip's pass-through at ``z`` (``slope`` as
    it is where there is no clip)."""
    return slope if cell.gate_clip is None else slope * clip_passes(z, cell.gate_clip)


def forward(cell: LSTMCell, x, state0, mask, zero_output_for_mask):
    """Run ``cell`` over ``x`` (batch, time, features), processing order,
    float64: ``(tape, fields)``, ``fields`` as the runner's trace holds them
    (``h``, ``c``, ``final_h``, ``final_c``)."""
    tape = Tape(x, mask, zero_output_for_mask)
    h, c = state0
    batch, time = x.shape[:2]
    gates = cell.Wh.shape[1]
    units = gates // 4
    tape.slopes = np.empty((time, batch, gates))
    tape.dc_of_m, tape.forget = np.empty((time, batch, units)), np.empty((time, batch, units))
    tape.h_prev = np.empty((batch, time, h.shape[-1]))
    h_prev = tape.h_prev.transpose(1, 0, 2)
    # the fields, batch-major storage written through time-major views (as the runner's)
    outs = np.empty((batch, time, h.shape[-1])).transpose(1, 0, 2)
    cs = np.empty((batch, time, c.shape[-1])).transpose(1, 0, 2)
    xz = x @ cell.Wx
    if cell.norm_x is not None:
        xz, tape.norm_x = cell.norm_x.forward(xz)
    prev_out = np.zeros_like(h)
    z = np.empty((batch, gates))
    with np.errstate(over="ignore", under="ignore"):
        for t in range(time):
            h_prev[t] = h
            if cell.norm_h is None:
                np.matmul(h, cell.Wh, out=z)
            else:
                hz, cache = cell.norm_h.forward(h @ cell.Wh)
                tape.norms["norm_h"].append(cache)
                z[...] = hz
            z += xz[:, t]  # == x_t Wx + h_prev Wh
            if cell.norm_z is not None:
                normed, cache = cell.norm_z.forward(z)
                tape.norms["norm_z"].append(cache)
                z[...] = normed
            if cell.b is not None:
                z += cell.b
            z_i, z_f, z_c, z_o = split_gates(z)
            if cell.P is not None:  # input and forget peepholes read c_prev
                z_i += cell.P[0] * c
                z_f += cell.P[1] * c
                tape.c_prev.append(c)
            zc_i, zc_f, zc_c = (_gate_clip(cell, v) for v in (z_i, z_f, z_c))
            i = cell.ract(zc_i)
            f = 1.0 - i if cell.coupled else cell.ract(zc_f)
            g = cell.act(zc_c)
            c_raw = f * c + i * g
            c_new = c_raw if cell.cell_clip is None else np.clip(c_raw, -cell.cell_clip, cell.cell_clip)
            if cell.cell_clip is not None:
                tape.c_raw.append(c_raw)
            if cell.norm_c is not None:
                c_new, cache = cell.norm_c.forward(c_new)
                tape.norms["norm_c"].append(cache)
            if cell.P is not None:  # the output peephole reads the new (clipped) c
                z_o += cell.P[2] * c_new
                tape.c_new.append(c_new)
            zc_o = _gate_clip(cell, z_o)
            o = cell.ract(zc_o)
            out_c = cell.act_out(c_new)
            m = o * out_c
            p = m @ cell.Wp if cell.Wp is not None else m
            h_new = p if cell.proj_clip is None else np.clip(p, -cell.proj_clip, cell.proj_clip)
            if cell.Wp is not None:
                tape.m.append(m)
            if cell.proj_clip is not None:
                tape.p.append(p)
            # what the backward multiplies by (Tape)
            s_i, s_f, s_c, s_o = split_gates(tape.slopes[t])
            di = _through_clip(cell, cell.slope_ract(zc_i, i), z_i)
            np.multiply(g - c if cell.coupled else g, di, out=s_i)  # c = f c_prev + i g, f = 1 - i when coupled
            if cell.coupled:
                s_f[...] = 0.0
            else:
                np.multiply(c, _through_clip(cell, cell.slope_ract(zc_f, f), z_f), out=s_f)
            np.multiply(i, _through_clip(cell, cell.slope_act(zc_c, g), z_c), out=s_c)
            np.multiply(out_c, _through_clip(cell, cell.slope_ract(zc_o, o), z_o), out=s_o)
            np.multiply(o, cell.slope_act_out(c_new, out_c), out=tape.dc_of_m[t])
            tape.forget[t] = f
            if mask is not None:
                mt = mask[:, t, None]
                h, c = np.where(mt, h_new, h), np.where(mt, c_new, c)
                out = np.where(mt, h_new, 0.0 if zero_output_for_mask else prev_out)
            else:
                h, c, out = h_new, c_new, h_new
            outs[t] = out
            cs[t] = c
            prev_out = out
    fields = {"h": outs.transpose(1, 0, 2), "c": cs.transpose(1, 0, 2), "final_h": h, "final_c": c}
    return tape, fields


# Faults a port can make in its backward pass only (:mod:`lstm_ref.grad_faults`
# names them): ``detach_h`` (h detached between steps: truncated BPTT),
# ``detach_c`` (no gradient through c_prev), ``clip_dh`` (dL/dh_t clipped
# elementwise to [-v, v] at every step, before the cell reads it), and
# ``double_db`` (the bias gradient doubled).  None of them is active unless
# given: the default path computes exactly what it computes without them.
BACKWARD_FAULTS = ("detach_h", "detach_c", "clip_dh", "double_db")
_ACTIVE = contextvars.ContextVar("lstm_ref_backward_faults", default=None)


@contextmanager
def injected(faults):
    """Every :func:`backward` inside the block runs with ``faults`` (a
    ``{name: value}`` over :data:`BACKWARD_FAULTS`): how a fault reaches the
    families' own ``_grad`` (stacked layers, every direction) unchanged."""
    token = _ACTIVE.set(_checked(faults))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _checked(faults):
    faults = dict(faults or {})
    unknown = sorted(set(faults) - set(BACKWARD_FAULTS))
    if unknown:
        raise ValueError(f"unknown backward fault(s) {unknown}; known: {list(BACKWARD_FAULTS)}")
    return faults or None


def backward(cell: LSTMCell, tape: Tape, d_out, d_c, d_final_h, d_final_c, *, faults=None):
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
    computed h, measures -- the Keras worker's probe).

    ``faults``: backward-only faults to inject (:data:`BACKWARD_FAULTS`;
    default: those of an enclosing :func:`injected`, else none)."""
    faults = (_checked(faults) if faults is not None else _ACTIVE.get()) or {}
    clip_dh = faults.get("clip_dh")
    x, mask = tape.x, tape.mask
    batch, time = x.shape[:2]
    gates = cell.Wh.shape[1]
    width, units = tape.h_prev.shape[-1], gates // 4
    dh = np.zeros((batch, width)) if d_final_h is None else np.array(d_final_h, dtype=np.float64)
    dc = np.zeros((batch, units)) if d_final_c is None else np.array(d_final_c, dtype=np.float64)
    d_repeat = 0.0  # gradient on the previous output from later masked steps' repeats
    # d(x Wx) after norm_x (below) and d(h_prev Wh) per step, batch-major
    # storage written through time-major views: each weight gradient is one
    # product over every (row, step)
    dz_all = np.empty((batch, time, gates))
    dz_steps = dz_all.transpose(1, 0, 2)
    dhz_all = dz_all if cell.norm_h is None else np.empty((batch, time, gates))
    dhz_steps = dhz_all.transpose(1, 0, 2)
    dz = dz_steps[0] if cell.norm_z is None else np.empty((batch, gates))  # dL/dz, before norm_z's vjp
    dWp = None if cell.Wp is None else np.zeros_like(cell.Wp)
    dP = None if cell.P is None else [np.zeros_like(q) for q in cell.P]
    db = None if cell.b is None or cell.norm_z is None else np.zeros_like(cell.b)  # else: one sum at the end
    d_norms = {n: [0.0, 0.0] for n in NORMS if getattr(cell, n) is not None}
    steps_h = np.zeros((batch, time, width))
    steps_c = np.zeros((batch, time, units))
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
                dh_new, dc_new, dh_skip, dc_skip = dh + d_output, dc, None, None
            if clip_dh is not None:  # fault: dL/dh_t clipped at each step, before the cell reads it
                dh_new = np.clip(dh_new, -clip_dh, clip_dh)
            steps_h[:, t], carried_c[:, t] = dh_new, dc_new
            if cell.norm_z is None:
                dz = dz_steps[t]
            dc_prev, steps_c[:, t] = _cell_vjp(cell, tape, t, dh_new, dc_new, dz, dWp, dP, d_norms)
            if cell.norm_z is not None:
                if db is not None:
                    db += dz.sum(axis=0)
                dz_steps[t] = _norm_vjp(cell, "norm_z", dz, tape.norms["norm_z"], t, d_norms)
            if cell.norm_h is not None:
                dhz_steps[t] = _norm_vjp(cell, "norm_h", dz_steps[t], tape.norms["norm_h"], t, d_norms)
            dh_prev = dhz_steps[t] @ cell.Wh.T
            if faults.get("detach_h"):  # fault: h_prev a constant (truncated BPTT)
                dh_prev = np.zeros_like(dh_prev)
            if faults.get("detach_c"):  # fault: c_prev a constant
                dc_prev = np.zeros_like(dc_prev)
            dh, dc = (dh_prev, dc_prev) if dh_skip is None else (dh_prev + dh_skip, dc_prev + dc_skip)
    if cell.b is not None and cell.norm_z is None:  # z = ... + b: db sums dL/dz over every (row, step)
        db = dz_all.reshape(-1, gates).sum(axis=0)
    if cell.norm_x is not None:
        dz_all = _norm_vjp(cell, "norm_x", dz_all, [tape.norm_x], 0, d_norms)
    dx = dz_all @ cell.Wx.T
    # The weight gradients as one GEMM each over every (row, step), not a
    # sum of per-step products: the same sums in another order (float64
    # rounding apart), 4-6x faster at batch 32 (`make bench`'s backward line).
    dWx = x.reshape(-1, x.shape[-1]).T @ dz_all.reshape(-1, gates)
    dWh = tape.h_prev.reshape(-1, width).T @ dhz_all.reshape(-1, gates)
    if db is not None and faults.get("double_db"):  # fault: the bias gradient counted twice
        db = 2.0 * db
    steps = {"h": steps_h, "c": steps_c, "c_carried": carried_c}
    grads = CellGrads(dWx, dWh, db, dWp, None if dP is None else tuple(dP), {k: tuple(v) for k, v in d_norms.items()})
    return dx, (dh, dc), grads, steps


def _norm_vjp(cell, name, d_out, caches, t, d_norms):
    """Back through ``cell``'s norm ``name`` (identity where it has none),
    its gamma/beta gradients added into ``d_norms``."""
    norm = getattr(cell, name)
    if norm is None:
        return d_out
    dv, dgamma, dbeta = norm.vjp(d_out, caches[t])
    d_norms[name][0] = d_norms[name][0] + dgamma
    d_norms[name][1] = d_norms[name][1] + dbeta
    return dv


def _cell_vjp(cell, tape, t, dh_new, dc_new, dz, dWp, dP, d_norms):
    """One step of the cell, backwards, down to the gate pre-activations,
    written into ``dz`` (batch, 4 units): returns ``(dc_prev, dc)`` (``dc``:
    dL/d the carried -- clipped, normalised -- c in full); adds into
    ``dWp``, the peepholes' ``dP`` and ``norm_c``'s entry of ``d_norms``."""
    if cell.proj_clip is not None:  # h = clip(p): tf.clip_by_value's gradient
        dh_new = dh_new * clip_passes(tape.p[t], cell.proj_clip)
    if cell.Wp is not None:  # h = m Wp
        dWp += tape.m[t].T @ dh_new
        dm = dh_new @ cell.Wp.T
    else:
        dm = dh_new
    slopes = tape.slopes[t]
    dz_o = split_gates(dz)[3]
    np.multiply(dm, split_gates(slopes)[3], out=dz_o)
    dc = dm * tape.dc_of_m[t]  # m = o * act_out(c): dL/dc_t in full
    dc += dc_new
    if cell.P is not None:  # z_o += Po * c
        dc = dc + dz_o * cell.P[2]
        dP[2] += np.sum(dz_o * tape.c_new[t], axis=0)
    d_raw = _norm_vjp(cell, "norm_c", dc, tape.norms["norm_c"], t, d_norms)
    if cell.cell_clip is not None:
        d_raw = d_raw * clip_passes(tape.c_raw[t], cell.cell_clip)
    for dz_gate, slope in zip(split_gates(dz)[:3], split_gates(slopes)[:3]):  # dz_i, dz_f, dz_c (Tape)
        np.multiply(d_raw, slope, out=dz_gate)
    dc_prev = d_raw * tape.forget[t]  # c = f * c_prev + ...
    if cell.P is not None:  # z_i += Pi * c_prev, z_f += Pf * c_prev
        dz_i, dz_f = split_gates(dz)[:2]
        dc_prev = dc_prev + dz_i * cell.P[0] + dz_f * cell.P[1]
        dP[0] += np.sum(dz_i * tape.c_prev[t], axis=0)
        dP[1] += np.sum(dz_f * tape.c_prev[t], axis=0)
    return dc_prev, dc


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
