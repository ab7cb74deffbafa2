"""Teacher forcing from a target's own outputs, for any family, any mask.

``Reference.run(teacher=...)`` forces one cell over an unmasked sequence.
Localisation needs more: the probe is masked (left padding and holes), the
target may give only its per-step output (PyTorch and ONNX return no
per-step c), and PyTorch's and ONNX's kinds run one cell per direction.  So
the forcing is a subclass of the family (:func:`forced`) whose
``recurrence`` starts each step from the target's carried state where the
target gives it, and from the cell's own where it does not; the family's own
``_run`` (masks, ``go_backwards``, directions, ONNX's empty rows) runs
unchanged around it.

The carried state is read from what the family declares, never from h or c
by name: the per-step ``OUTPUT`` is the carried state of that name after a
valid step, and the state kept since the last valid step (the initial state
before any) after a masked one (:mod:`lstm_ref.runner`'s masking); a
``TRACED_STATES`` field is the carried state itself.  :func:`schedule`
checks itself: forcing the reference with its own trace must give that trace
back, or there is no schedule (the caller then fits free-running).
"""

import numpy as np

from ...stacked import REVERSE, StackedReference, reverse_within

_CLASSES = {}

# Forcing the reference with its own float64 trace gives the trace back:
# measured 0 (bitwise) on every port of parity_tests/test_localise.py; a
# schedule read wrong is off by the step-to-step change (an initial state
# not rounded as the reference rounds it, mixed_float16: 6e-6; a state taken
# from the wrong step: >= 1e-3).
SELF_CHECK = 1e-9


def forced(base):
    """``base`` (a family's Reference class) with teacher forcing: an
    instance's ``teacher`` is ``{slot: states}``, ``slot`` as
    ``StackedReference`` numbers layers and directions (0 for one cell),
    ``states`` a tuple in ``STATE`` order of (batch, time, width) arrays in
    processing order (the carried state after each step), or None for a
    state the cell carries itself."""
    cls = _CLASSES.get(base)
    if cls is not None:
        return cls

    class Forced(base):
        teacher = None
        _slot = 0
        _t = 0

        def _run(self, params, xs, state0, mask):
            self._slot, self._t = 0, 0
            return super()._run(params, xs, state0, mask)

        def direction_params(self, params, layer, direction):  # StackedReference: one cell per slot
            self._slot, self._t = layer * len(self.directions) + direction, 0
            return super().direction_params(params, layer, direction)

        def recurrence(self, params, xz_t, state):  # no workspace: the state is replaced every step
            states = (self.teacher or {}).get(self._slot)
            if states is not None and self._t:
                state = tuple(own if given is None else given[:, self._t - 1] for own, given in zip(state, states))
            self._t += 1
            return super().recurrence(params, xz_t, state)

    Forced.__name__ = Forced.__qualname__ = f"{base.__name__}_teacher_forced"
    _CLASSES[base] = Forced
    return Forced


def instance(ref, teacher=None, cls=None, **attributes):
    """A forced instance of ``cls`` (default: ``ref``'s class) with ``ref``'s
    config and platform, and ``attributes`` set on it (a gate view's
    changes)."""
    inst = forced(cls or type(ref))(ref.config, platform=ref.platform)
    inst.teacher = teacher
    for name, value in attributes.items():
        setattr(inst, name, value)
    return inst


def _carried_output(out, mask, initial):
    """The carried state named ``OUTPUT`` after each step: the output of the
    last valid step so far, else the initial state."""
    if mask is None:
        return out
    steps = np.where(mask, np.arange(mask.shape[1])[None, :], -1)
    last = np.maximum.accumulate(steps, axis=1)
    taken = np.take_along_axis(out, np.maximum(last, 0)[..., None], axis=1)
    return np.where((last >= 0)[..., None], taken, initial[:, None, :])


def _rounded(ref, value):
    """An initial state as the reference reads it: rounded to its compute
    dtype, then float64 (a target's own states are in that dtype already)."""
    return np.asarray(value).astype(ref.policy.compute).astype(np.float64)


def _initial(ref, case, name, slot, batch, stacked):
    given = case.initial_state.get(f"{name}0")
    width = ref.state_width(name)
    if given is None:
        return np.zeros((batch, width))
    given = _rounded(ref, given)
    return given[slot] if stacked else given


def build(ref, case, observed):
    """The teacher (see :func:`forced`) that ``observed`` gives, or None
    where it gives no per-step output, or the kind stacks layers (only the
    last one's output is seen)."""
    out = observed.get(ref.OUTPUT)
    if out is None or np.ndim(out) != 3:
        return None
    out = np.asarray(out, np.float64)
    batch = out.shape[0]
    mask = None if case.mask is None else np.asarray(case.mask, bool)
    stacked = isinstance(ref, StackedReference)
    if stacked:
        if ref.num_layers != 1:
            return None
        lengths = None if mask is None else mask.sum(axis=1)
        width = ref.state_width(ref.OUTPUT)
        teacher = {}
        for d, direction in enumerate(ref.directions):
            mine = out[..., d * width : (d + 1) * width]
            if direction == REVERSE:  # its processing order, padding left in place (as StackedReference runs it)
                mine = reverse_within(mine, lengths)
            teacher[d] = _states(ref, case, mine, {}, mask, d, batch, stacked)
        return teacher
    seq_mask = mask[:, ::-1] if (mask is not None and ref.go_backwards) else mask
    traced = {name: np.asarray(observed[name], np.float64) for name in ref.TRACED_STATES if name in observed}
    return {0: _states(ref, case, out, traced, seq_mask, 0, batch, stacked)}


def _states(ref, case, out, traced, mask, slot, batch, stacked):
    states = []
    for name in ref.STATE:
        if name == ref.OUTPUT:
            states.append(_carried_output(out, mask, _initial(ref, case, name, slot, batch, stacked)))
        else:
            states.append(traced.get(name))
    return tuple(states)


def schedule(ref, case, observed):
    """:func:`build`, kept only where forcing the reference (float64) with
    its own trace gives that trace back (:data:`SELF_CHECK`)."""
    teacher = build(ref, case, observed)
    if teacher is None:
        return None
    truth = case.run(ref, oracle=True)
    own = build(ref, case, truth.fields)
    with np.errstate(all="ignore"):
        again = case.run(instance(ref, own), oracle=True)
    for name in truth.fields:
        a, b = np.asarray(again[name], np.float64), np.asarray(truth[name], np.float64)
        if not np.all(np.abs(a - b) <= SELF_CHECK * (1 + np.abs(b))):
            return None
    return teacher
