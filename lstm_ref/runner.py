"""The sequence runner shared by every cell family.

It owns everything that is not the cell's equations: go_backwards, masks,
initial states, preallocated outputs and the hoisted input projection (one
GEMM for all time steps, since ``x_t @ kernel`` does not depend on the state).

Masking follows ``keras/src/backend/tensorflow/rnn.py`` (``rnn``): at a masked
step the carried states keep their previous value, and the output is the
previous step's *output* -- zeros before the first valid step, not ``h0`` --
unless the layer asks for zeros (``zero_output_for_mask``, or the TF1
``dynamic_rnn`` convention).
"""

import numpy as np

from .trace import Trace


def run_sequence(cell, params, x, h0, c0, mask):
    """Run ``cell`` over ``x`` (batch, time, features) in processing order.

    ``cell`` provides ``project_input(params, x)`` and
    ``recurrence(params, xz_t, (h, c)) -> (output, (h, c))`` and the flags
    ``go_backwards`` and ``zero_output_for_mask``.
    """
    if cell.go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    batch, time = x.shape[:2]
    xz = cell.project_input(params, x)  # (batch, time, gates): one GEMM
    h, c = h0, c0
    # Time-major buffers: each step writes one contiguous block.
    hs = np.empty((time, batch, h0.shape[-1]), dtype=h0.dtype)
    cs = np.empty((time, batch, c0.shape[-1]), dtype=c0.dtype)
    prev_out = np.zeros_like(h0)
    with np.errstate(over="ignore", under="ignore"):  # exp overflow in a saturated gate is expected
        for t in range(time):
            out, (h_new, c_new) = cell.recurrence(params, xz[:, t], (h, c))
            if mask is not None:
                m = mask[:, t, None]
                h = np.where(m, h_new, h)
                c = np.where(m, c_new, c)
                out = np.where(m, out, 0 if cell.zero_output_for_mask else prev_out).astype(out.dtype, copy=False)
            else:
                h, c = h_new, c_new
            hs[t] = out
            cs[t] = c
            prev_out = out
    return Trace(h=hs.transpose(1, 0, 2).copy(), c=cs.transpose(1, 0, 2).copy(), final_h=h, final_c=c)
