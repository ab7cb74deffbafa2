"""The sequence runner shared by every cell family.

It owns everything that is not the cell's equations: go_backwards, masks,
initial states, preallocated outputs and the hoisted input projection (one
GEMM for all time steps, since ``x_t @ kernel`` does not depend on the state).
It knows nothing of h or c: the family declares its carried state
(``STATE``), which of those states it records at every step
(``TRACED_STATES``) and the name of its per-step output (``OUTPUT``).

Masking follows ``keras/src/backend/tensorflow/rnn.py`` (``rnn``): at a masked
step the carried states keep their previous value, and the output is the
previous step's *output* -- zeros before the first valid step, not ``h0`` --
unless the layer asks for zeros (``zero_output_for_mask``, or the TF1
``dynamic_rnn`` convention).

A family whose ``recurrence`` is marked :func:`takes_workspace` gets a
:class:`Workspace` (``ws=``) for the run: it writes each step's temporaries
and new state into buffers allocated at the first step (``out=``) instead of
fresh arrays, the same ops in the same order, so the bits are those of the
allocating form.  Fresh arrays every step cost the most at large shapes:
glibc hands blocks of 128 KB and more back to the kernel when they are freed
(z is 512 KB at batch 64, units 512), so every step faulted its pages in
again: 34% of a run at (64, 200, 256, 512) in a default process.
"""

import functools

import numpy as np

from .trace import Trace


def split_gates(z, n=4):
    """``np.split(z, n, axis=-1)`` as views, without its Python overhead."""
    width = z.shape[-1] // n
    return [z[..., k * width : (k + 1) * width] for k in range(n)]


def is_right_padded(mask) -> np.ndarray:
    """Per row: is it True... then False... (what a sequence length expresses)?"""
    mask = np.asarray(mask, bool)
    return ~(mask[:, 1:] & ~mask[:, :-1]).any(axis=1)


def takes_workspace(recurrence):
    """Mark a family's ``recurrence(params, xz_t, state, ws=None)`` as one
    that can reuse a :class:`Workspace`.  The mark is read on the class, so
    a subclass or wrapper with a ``recurrence`` of its own (teacher forcing,
    a port that changes the step) gets no workspace unless it says so."""
    recurrence.takes_workspace = True
    return recurrence


class Workspace:
    """Buffers that one run's steps reuse, allocated at the first step.

    ``scratch(make, *args)``: ``make(*args)``, made at the first call for
    ``make`` and the same object after (a family's temporaries, or None
    where its step cannot reuse any); ``new_state(state)``: arrays for the
    step's new state, shaped and typed as ``state``, from two sets used in
    turn, so that a step never writes the state it reads.  Call it once a
    step: the state a step returns is good until the step after next, by
    which time the runner has copied it into the trace (or replaced it,
    under a mask, by a fresh array).  A run's shapes and dtypes do not
    change from step to step, so neither is checked again.
    """

    def __init__(self):
        self._scratch = {}
        self._states = None
        self._turn = 0

    def scratch(self, make, *args):
        try:
            return self._scratch[make]
        except KeyError:
            value = self._scratch[make] = make(*args)
            return value

    def new_state(self, state):
        if self._states is None:
            self._states = [tuple(np.empty(s.shape, s.dtype) for s in state) for _ in range(2)]
        self._turn ^= 1
        return self._states[self._turn]


def stepper(cell):
    """``cell.recurrence``, with a fresh :class:`Workspace` (``ws=``) where it
    takes one: what one run steps with."""
    if getattr(type(cell).recurrence, "takes_workspace", False):
        return functools.partial(cell.recurrence, ws=Workspace())
    return cell.recurrence


def run_sequence(cell, params, x, state0, mask):
    """Run ``cell`` over ``x`` (batch, time, features) in processing order.

    ``cell`` provides ``project_input(params, x)``,
    ``recurrence(params, xz_t, state) -> (output, state)`` with ``state`` a
    tuple in ``cell.STATE`` order, the declarations ``OUTPUT``, ``STATE`` and
    ``TRACED_STATES``, and the flags ``go_backwards`` and
    ``zero_output_for_mask``.  ``state0`` is the initial state tuple.  A
    ``recurrence`` marked :func:`takes_workspace` also gets a
    :class:`Workspace` for the run (``ws=``).
    """
    if cell.go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    batch, time = x.shape[:2]
    xz = cell.project_input(params, x)  # (batch, time, gates): one GEMM
    state = tuple(state0)
    traced = [(name, cell.STATE.index(name)) for name in cell.TRACED_STATES]
    dtype = state[0].dtype
    # Time-major views (step t writes outs[t]) of batch-major storage, the
    # Trace's layout, so that the fields need no copy at the end: the
    # transposing copies measured 5 ms of a 55 ms run at (batch 32, time 100,
    # units 256), as much as 20 steps' h @ recurrent_kernel.
    outs = np.empty((batch, time, cell.out_units), dtype=dtype).transpose(1, 0, 2)
    seqs = {name: np.empty((batch, time, state[i].shape[-1]), dtype=dtype).transpose(1, 0, 2) for name, i in traced}
    prev_out = np.zeros((batch, cell.out_units), dtype=dtype)
    step = stepper(cell)
    with np.errstate(over="ignore", under="ignore"):  # exp overflow in a saturated gate is expected
        for t in range(time):
            out, new_state = step(params, xz[:, t], state)
            if mask is not None:
                m = mask[:, t, None]
                state = tuple(np.where(m, new, old) for new, old in zip(new_state, state))
                out = np.where(m, out, 0 if cell.zero_output_for_mask else prev_out).astype(out.dtype, copy=False)
            else:
                state = new_state
            outs[t] = out
            for name, i in traced:
                seqs[name][t] = state[i]
            prev_out = out
    fields = {cell.OUTPUT: outs.transpose(1, 0, 2)}
    fields.update((name, seq.transpose(1, 0, 2)) for name, seq in seqs.items())
    fields.update((f"final_{name}", value) for name, value in zip(cell.STATE, state))
    return Trace(fields)
