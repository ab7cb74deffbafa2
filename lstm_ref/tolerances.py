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


# Measured with `python -m parity_tests.measure_tolerances 400` (TF 2.21.0,
# Keras 3.15.1, NumPy 2.4.6, AMD EPYC, oneDNN on): the worst t such that
# |ref - tf| <= t (1 + |tf|) held on every step, row and unit of 400
# derandomized live draws (all activations, masks, go_backwards, states,
# saturating gates, sequences up to 80 steps).
TOLERANCES = {
    # worst 3.2e-15 (14 eps) in both modes over 91 draws; 2e-14 is ~6x that.
    "float64": Tolerance(atol=2e-14, rtol=2e-14),
    # worst 3.9e-7 (3.3 eps) for the float32 reference, 3.7e-7 in oracle
    # mode, over 137 draws (worst: softmax/softsign, 80 steps); 2e-6 is ~5x.
    "float32": Tolerance(atol=2e-6, rtol=2e-6),
    # worst 6.3e-3 (6.4 eps) for the float16 reference over 172 draws, but
    # 2.8e-2 in oracle mode: TF's own float16 rounding (log_softmax /
    # hard_shrink, mixed_float16) is that far from exact arithmetic, and the
    # oracle-mode decomposition must stay readable under the same table.
    # 5e-2 is 1.8x the oracle-mode worst, 8x the float16-reference worst.
    "float16": Tolerance(atol=5e-2, rtol=5e-2),
}


def tolerance_for(dtype) -> Tolerance:
    name = np.dtype(dtype).name
    try:
        return TOLERANCES[name]
    except KeyError:
        raise KeyError(f"no tolerance for dtype {name!r}; the table has {sorted(TOLERANCES)}") from None
