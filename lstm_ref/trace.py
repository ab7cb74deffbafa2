"""The result of a reference run."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trace:
    """Per-step states of one run, in processing order (as TF returns them).

    h: (batch, time, out_units) the per-step output, exactly what TF returns
       with ``return_sequences=True`` (masked steps included).
    c: (batch, time, units) the cell state carried after each step.
    final_h, final_c: the carried states after the last step, what TF returns
       with ``return_state=True``.
    """

    h: np.ndarray
    c: np.ndarray
    final_h: np.ndarray
    final_c: np.ndarray
