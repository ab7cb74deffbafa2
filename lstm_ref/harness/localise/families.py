"""The corrections localisation fits, built from what each family declares.

Nothing here names a kind.  A family declares where each weight holds its
gate blocks (``gate_blocks``: an axis and a number of runs of 4), its gate
letters in its own order (``GATES``: Keras i,f,c,o, TF1 i,j,f,o, PyTorch
i,f,g,o, ONNX i,o,f,c), its units and its output width; from those, the
weights split into *parts*: a weight's run of 4 gate blocks (ONNX's ``B``
holds two, ``Wb`` then ``Rb``), and a kernel over ``concat([x, h])`` (TF1's)
into the rows fed by x and the rows fed by h.

A :class:`Correction` changes the port in one place, with ``k`` free
parameters ``theta`` (none for a discrete one), and applies to the weights
(in the kind's own names) or inside the step (:mod:`.gates`):

========================  =====================================================  ===
family                    the port ...                                           k
========================  =====================================================  ===
``permutation``           reads one part's gate blocks in another order          0
``swap``                  loads two parts of one shape each into the other's     0
                          place (kernel and recurrent_kernel, ...)
``activation``            applies another known activation to one gate           0
``tensor scale``          scales a whole part                                    1
``scale``, ``offset``     scales / offsets one gate's block of a part            1
``clip``                  clips one gate's value (a saturating quantiser)        1
``unit offset``           offsets one gate's bias (or a peephole) in some units  n
``bias offsets``          offsets every gate's bias in some units                4n
``shift``                 reads one unit's weights rolled by one along its       0
                          inputs
``neighbour``             reads one unit's weights from the next or previous     0
                          column
========================  =====================================================  ===
"""

from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

from . import gates

# The most parameters of "bias offsets" (every gate's bias in some units).
MAX_BIAS_PARAMETERS = 16


@dataclass(frozen=True)
class Part:
    """A run of 4 gate blocks in one weight (the blocks along ``axis``
    from ``start``; ``rows``: a range on axis 0, for a kernel over [x, h])."""

    weight: str
    axis: int
    start: int
    units: int
    label: str
    rows: tuple = None
    bias: bool = False

    def index(self, ndim, block=None, unit=None):
        idx = [slice(None)] * ndim
        if self.rows is not None:
            idx[0] = slice(*self.rows)
        if block is None:
            idx[self.axis] = slice(self.start, self.start + 4 * self.units)
        elif unit is None:
            idx[self.axis] = slice(self.start + block * self.units, self.start + (block + 1) * self.units)
        else:
            idx[self.axis] = self.start + block * self.units + unit
        return tuple(idx)


def spelled(name, idx, shape):
    """``name[idx]`` as NumPy reads it, trailing whole axes left out."""
    terms = []
    for i, n in zip(idx, shape):
        if isinstance(i, slice):
            lo, hi = i.start or 0, n if i.stop is None else i.stop
            terms.append(":" if (lo, hi) == (0, n) else f"{lo}:" if hi == n else f"{lo}:{hi}" if lo else f":{hi}")
        else:
            terms.append(str(i))
    while terms and terms[-1] == ":":
        terms.pop()
    return f"{name}[{', '.join(terms)}]" if terms else name


def _is_bias(name):
    return "bias" in name.lower() or name == "B"  # as lstm_ref.faults tells a bias


def parts(ref, case):
    """The gate parts of ``case.weights`` and the names of the other
    weights (peepholes, projections)."""
    units, features = ref.units, np.shape(case.x)[-1]
    found, others = [], []
    for name, w in case.weights.items():
        shape = np.shape(w)
        where = ref.gate_blocks(name, shape)
        if where is None or shape[where[0]] != 4 * units * where[1]:
            others.append(name)
            continue
        axis, groups = where
        splits = [None]
        if len(shape) == 2 and axis == 1 and shape[0] == features + ref.out_units and not _is_bias(name):
            splits = [(0, features), (features, shape[0])]  # concat([x, h]) @ kernel
        for g in range(groups):
            for rows in splits:
                part = Part(name, axis, g * 4 * units, units, name, rows, _is_bias(name))
                label = name if groups == 1 and rows is None else spelled(name, part.index(len(shape)), shape)
                if rows is not None:
                    label += " (rows fed by x)" if rows[0] == 0 else " (rows fed by h)"
                found.append(Part(name, axis, g * 4 * units, units, label, rows, part.bias))
    return found, others


@dataclass
class Correction:
    family: str
    where: tuple  # (parts, gates, units): the location it names (gates in the kind's letters, "out")
    k: int
    apply: object  # theta -> (gate attributes or None, weights)
    text: object  # theta -> (what the port does, the fix)
    starts: list = field(default_factory=list)  # theta to try first (continuous families)
    bounds: tuple = (-np.inf, np.inf)
    order: tuple = (2, 0)  # which of corrections computing the same is named: biases, then the weights' order


def _edit(weights, name, fn):
    out = dict(weights)
    w = np.array(weights[name], dtype=np.float64)
    fn(w)
    out[name] = w
    return out


def _num(a):
    return f"{0.0 if abs(a) < 5e-4 else a:.3f}"


def _amount(a):
    return f"{0.0 if abs(a) < 5e-4 else a:+.3f}"


def _scale_fix(s, where):
    if abs(s) < 5e-4:
        return f"load {where}: the port reads it as zeros"
    return f"divide {where} by {_num(s)}"


def _offset_fix(a, where):
    return f"subtract {abs(a):.3f} from {where}" if a > 0 else f"add {abs(a):.3f} to {where}"


class Builder:
    """The corrections of one case: ``ref`` and ``case`` give the parts,
    the gate letters and the units."""

    def __init__(self, ref, case, gate_view):
        self.ref, self.case = ref, case
        self.weights = {k: np.asarray(v) for k, v in case.weights.items()}
        self.parts, self.others = parts(ref, case)
        self.letters = ref.GATES
        self.gate_view = gate_view  # whether in-step corrections can be run (gates.usable)

    def _ordered(self, corrections):
        names = list(self.weights)
        for corr in corrections:
            if corr is None:
                continue
            first = corr.where[0][0] if corr.where[0] else ""
            part = next((p for p in self.parts if p.label == first), None)
            weight = part.weight if part else first
            if weight in names:
                corr.order = (0 if part is not None and part.bias else 1, names.index(weight))
        return [c for c in corrections if c is not None]

    def _role(self, letter):
        return letter if letter in "ifo" else "c"

    def _letter(self, role):
        return "out" if role == "out" else next(g for g in self.letters if self._role(g) == role)

    def _gate_name(self, role):
        return "the output activation (of c)" if role == "out" else f"gate {self._letter(role)}"

    # -- discrete ------------------------------------------------------------
    def discrete(self):
        out = []
        for part in self.parts:
            for perm in permutations(range(4)):
                if perm != (0, 1, 2, 3):
                    out.append(self._permutation(part, perm))
        for a_i, a in enumerate(self.parts):
            for b in self.parts[a_i + 1 :]:
                if self._shape(a) == self._shape(b) and a.bias == b.bias:
                    out.append(self._swap(a, b))
        if self.gate_view:
            for role in gates.ROLES:
                now = gates.current(self.ref, self.case, role)
                for name, fn in gates.KNOWN.items():
                    if fn is not now:
                        out.append(self._activation(role, name, fn, now))
        return self._ordered(out)

    def _shape(self, part):
        w = self.weights[part.weight]
        return w[part.index(w.ndim)].shape

    def _permutation(self, part, perm):
        letters = self.letters
        inverse = [int(i) for i in np.argsort(perm)]
        w = self.weights[part.weight]

        def apply(theta):
            def change(a):
                blocks = [a[part.index(a.ndim, p)].copy() for p in perm]
                for k, block in enumerate(blocks):
                    a[part.index(a.ndim, k)] = block

            return None, _edit(self.weights, part.weight, change)

        order = ",".join(letters[p] for p in perm)
        return Correction(
            "permutation",
            ((part.label,), tuple(letters[p] for p, q in enumerate(perm) if p != q), ()),
            0,
            apply,
            lambda theta: (
                f"the gate blocks of {part.label} alone are read as {order} (truth {','.join(letters)})",
                f"reorder the gate blocks of {spelled(part.weight, part.index(w.ndim), w.shape)} as {inverse}",
            ),
        )

    def _swap(self, a, b):
        def apply(theta):
            out = {k: np.array(v, dtype=np.float64) for k, v in self.weights.items()}
            wa, wb = out[a.weight], out[b.weight]
            ia, ib = a.index(wa.ndim), b.index(wb.ndim)
            va, vb = wa[ia].copy(), wb[ib].copy()
            wa[ia], wb[ib] = vb, va
            return None, out

        return Correction(
            "swap",
            ((a.label, b.label), tuple(self.letters), ()),
            0,
            apply,
            lambda theta: (
                f"{a.label} and {b.label} are swapped",
                f"load {a.label} where the port loads {b.label}, and {b.label} where it loads {a.label}",
            ),
        )

    def _activation(self, role, name, fn, now):
        gate = self._gate_name(role)
        now_name = next((n for n, f in gates.KNOWN.items() if f is now), getattr(now, "__name__", "its own"))

        def apply(theta):
            return {"changes": {role: fn}}, self.weights

        return Correction(
            "activation",
            (("activation",), (self._letter(role),), ()),
            0,
            apply,
            lambda theta: (
                f"{gate} applies {name} where {self.ref.kind} applies {now_name}",
                f"apply {now_name} to {gate}",
            ),
        )

    # -- one parameter per gate -----------------------------------------------
    def per_gate(self):
        out = []
        for part in self.parts:
            out.append(self._tensor_scale(part))
            for block in range(4):
                out.append(self._scale(part, block))
                out.append(self._offset(part, block))
        for name in self.others:
            out.append(self._other_scale(name))
        if self.gate_view:
            for role in gates.ROLES:
                out.append(self._clip(role, None))
        return self._ordered(out)

    def _tensor_scale(self, part):
        w = self.weights[part.weight]
        where = spelled(part.weight, part.index(w.ndim), w.shape)

        def apply(theta):
            idx = part.index(w.ndim)
            return None, _edit(self.weights, part.weight, lambda a: a.__setitem__(idx, a[idx] * theta[0]))

        return Correction(
            "tensor scale",
            ((part.label,), tuple(self.letters), ()),
            1,
            apply,
            lambda theta: (
                f"{part.label} is scaled by {_num(theta[0])} (every gate)",
                _scale_fix(theta[0], where),
            ),
            starts=[np.array([1.0])],
        )

    def _scale(self, part, block):
        w = self.weights[part.weight]
        where = spelled(part.weight, part.index(w.ndim, block), w.shape)
        letter = self.letters[block]

        def apply(theta):
            idx = part.index(w.ndim, block)
            return None, _edit(self.weights, part.weight, lambda a: a.__setitem__(idx, a[idx] * theta[0]))

        return Correction(
            "scale",
            ((part.label,), (letter,), ()),
            1,
            apply,
            lambda theta: (
                f"{part.label} of gate {letter} is scaled by {_num(theta[0])}",
                _scale_fix(theta[0], where),
            ),
            starts=[np.array([1.0])],
        )

    def _offset(self, part, block):
        w = self.weights[part.weight]
        where = spelled(part.weight, part.index(w.ndim, block), w.shape)
        letter = self.letters[block]

        def apply(theta):
            idx = part.index(w.ndim, block)
            return None, _edit(self.weights, part.weight, lambda a: a.__setitem__(idx, a[idx] + theta[0]))

        each = "in every unit" if part.bias else "in every entry"
        return Correction(
            "offset",
            ((part.label,), (letter,), ()),
            1,
            apply,
            lambda theta: (
                f"{part.label} of gate {letter} is offset by {_amount(theta[0])} {each}",
                _offset_fix(theta[0], where),
            ),
            starts=[np.array([0.0])],
        )

    def _other_scale(self, name):
        def apply(theta):
            return None, _edit(self.weights, name, lambda a: a.__setitem__(Ellipsis, a * theta[0]))

        return Correction(
            "tensor scale",
            ((name,), (), ()),
            1,
            apply,
            lambda theta: (f"{name} is scaled by {_num(theta[0])}", _scale_fix(theta[0], name)),
            starts=[np.array([1.0])],
        )

    def _clip(self, role, unit):
        gate = self._gate_name(role)
        mask = None
        if unit is not None:
            mask = np.zeros(self.ref.units, bool)
            mask[unit] = True

        def apply(theta):
            return {"clips": {role: (theta[0], mask)}}, self.weights

        where = "in every unit" if unit is None else f"in unit {unit}"
        return Correction(
            "clip",
            (("activation",), (self._letter(role),), () if unit is None else (unit,)),
            1,
            apply,
            lambda theta: (
                f"{gate} saturates at {_num(theta[0])} {where}: looks like a clipped quantiser",
                f"compute {gate} unclipped {where} (no saturation at {_num(theta[0])})",
            ),
            starts=[np.array([q]) for q in (0.99, 0.95, 0.9, 0.8, 0.6)],
            bounds=(0.0, np.inf),
        )

    # -- some units -------------------------------------------------------------
    def per_unit(self, units):
        """The one-unit corrections for ``units`` (the units that leave
        tolerance one step at a time)."""
        out = []
        units = tuple(sorted(units))
        for part in self.parts:
            if part.bias:
                for block in range(4):
                    out += [self._unit_offset(part, block, (u,)) for u in units]
                    if len(units) > 1:
                        out.append(self._unit_offset(part, block, units))
                if 4 * len(units) <= MAX_BIAS_PARAMETERS:
                    out.append(self._bias_offsets(part, units))
        for name in self.others:
            w = self.weights[name]
            if w.shape and w.shape[-1] % self.ref.units == 0 and w.ndim <= 2:
                for block in range(w.shape[-1] // self.ref.units):
                    out += [self._other_unit_offset(name, block, (u,)) for u in units]
                    if len(units) > 1:
                        out.append(self._other_unit_offset(name, block, units))
        matrices = sorted({p.weight for p in self.parts if not p.bias and self.weights[p.weight].ndim >= 2})
        for name in matrices:
            part = next(p for p in self.parts if p.weight == name)
            for block in range(4):
                for unit in units:
                    for s in (1, -1):
                        out.append(self._shift(name, part, block, unit, s))
                        out.append(self._neighbour(name, part, block, unit, s))
        if self.gate_view:
            for role in gates.ROLES:
                for unit in units:
                    out.append(self._clip(role, unit))
        return self._ordered(out)

    def _unit_offset(self, part, block, units):
        w = self.weights[part.weight]
        letter = self.letters[block]
        idx = [part.index(w.ndim, block, u) for u in units]

        def apply(theta):
            def change(a):
                for i, t in zip(idx, theta):
                    a[i] = a[i] + t

            return None, _edit(self.weights, part.weight, change)

        def text(theta):
            if len(units) == 1:
                return (
                    f"{part.label} of gate {letter} is offset by {_amount(theta[0])} in unit {units[0]}",
                    _offset_fix(theta[0], spelled(part.weight, idx[0], w.shape)),
                )
            return (
                f"{part.label} of gate {letter} is offset in units {list(units)} by "
                f"[{', '.join(_amount(t) for t in theta)}]",
                "; ".join(_offset_fix(t, spelled(part.weight, i, w.shape)) for t, i in zip(theta, idx)),
            )

        return Correction(
            "unit offset", ((part.label,), (letter,), units), len(units), apply, text, starts=[np.zeros(len(units))]
        )

    def _bias_offsets(self, part, units):
        """Every gate's bias offset in ``units``: a bias loaded wrong."""
        w = self.weights[part.weight]
        idx = [[part.index(w.ndim, block, u) for u in units] for block in range(4)]

        def apply(theta):
            def change(a):
                for row, values in zip(idx, np.reshape(theta, (4, len(units)))):
                    for i, t in zip(row, values):
                        a[i] = a[i] + t

            return None, _edit(self.weights, part.weight, change)

        def text(theta):
            rows = np.reshape(theta, (4, len(units)))
            each = "; ".join(f"{g} [{', '.join(_amount(t) for t in row)}]" for g, row in zip(self.letters, rows))
            return (
                f"{part.label} is offset in every gate, units {list(units)}: {each}",
                f"subtract those offsets from {spelled(part.weight, part.index(w.ndim), w.shape)}",
            )

        return Correction(
            "bias offsets",
            ((part.label,), tuple(self.letters), units),
            4 * len(units),
            apply,
            text,
            starts=[np.zeros(4 * len(units))],
        )

    def _other_unit_offset(self, name, block, units):
        cols = [block * self.ref.units + u for u in units]

        def apply(theta):
            def change(a):
                for c, t in zip(cols, theta):
                    a[..., c] = a[..., c] + t

            return None, _edit(self.weights, name, change)

        def text(theta):
            fixes = "; ".join(_offset_fix(t, f"{name}[..., {c}]") for t, c in zip(theta, cols))
            return (
                f"{name}[..., {cols}] (units {list(units)}) offset by [{', '.join(_amount(t) for t in theta)}]",
                fixes,
            )

        return Correction("unit offset", ((name,), (), units), len(units), apply, text, starts=[np.zeros(len(units))])

    def _column(self, name, part, block, unit):
        w = self.weights[name]
        j = part.start + block * part.units + unit
        return w, j, [a for a in range(w.ndim) if a != part.axis][-1]

    def _shift(self, name, part, block, unit, s):
        w, j, fan_in = self._column(name, part, block, unit)
        letter = self.letters[block]
        idx = tuple(j if a == part.axis else slice(None) for a in range(w.ndim))
        axis = fan_in - (fan_in > part.axis)  # the fan-in axis once the gate axis is taken

        def apply(theta):
            return None, _edit(self.weights, name, lambda a: a.__setitem__(idx, np.roll(a[idx], s, axis=axis)))

        where = spelled(name, idx, w.shape)
        return Correction(
            "shift",
            ((name,), (letter,), (unit,)),
            0,
            apply,
            lambda theta: (
                f"unit {unit} of gate {letter} in {name} is read shifted by one ({where} rolled by {s:+d} along "
                "its inputs)",
                f"read {where} unshifted (np.roll by {-s:+d} undoes it)",
            ),
        )

    def _neighbour(self, name, part, block, unit, s):
        w, j, _ = self._column(name, part, block, unit)
        if not 0 <= j + s < w.shape[part.axis]:
            return None
        letter = self.letters[block]
        idx = tuple(j if a == part.axis else slice(None) for a in range(w.ndim))
        src = tuple(j + s if a == part.axis else slice(None) for a in range(w.ndim))

        def apply(theta):
            return None, _edit(self.weights, name, lambda a: a.__setitem__(idx, a[src]))

        return Correction(
            "neighbour",
            ((name,), (letter,), (unit,)),
            0,
            apply,
            lambda theta: (
                f"unit {unit} of gate {letter} in {name} holds its neighbour's weights ({spelled(name, idx, w.shape)} "
                f"reads {spelled(name, src, w.shape)})",
                f"read {spelled(name, idx, w.shape)} from its own place, not {spelled(name, src, w.shape)}",
            ),
        )
