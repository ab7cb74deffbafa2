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
    rounding: float = 0.0  # times the reference's own rounding error (compare.own_rounding)


# Measured with `python -m parity_tests.measure_tolerances 300` (TF 2.21.0,
# Keras 3.15.1, tf_keras 2.21, tfa 0.23 on TF 2.15.1, NumPy 2.4.6, AMD EPYC,
# oneDNN on) over ~1,600 derandomized live draws of all five kinds (all
# activations, masks, go_backwards, states, clips, saturating gates, up to
# 80 steps).  ``t`` is the worst value with |ref - tf| <= t (1 + |tf|); ``k``
# the worst factor on the reference's own rounding error (see
# ``compare.own_rounding``) still needed on top of atol/rtol.
#
# Where the state cancels two large terms (c of a few hundred with relu6 and
# a tanh forget gate, say), both sides lose the same absolute precision, and
# no fixed relative bound fits both that and a well-conditioned case without
# going blind on the latter: that is what ``rounding`` is for.
TOLERANCES = {
    # plain t: 7.3e-15 worst over 321 float64 draws, but 8.5e-13 when oracle
    # mode is compared with TF in float64 on float32 draws (1,140 twins; the
    # cancelling-c Keras case); no wider type to estimate float64's own
    # rounding, so 2e-12 (2.4x) with no rounding term.
    "float64": Tolerance(atol=2e-12, rtol=2e-12),
    # plain t: 3.9e-7 (3.3 eps) on well-conditioned draws; 9.5e-5 on the
    # cancelling-c Keras case, which needs k = 5.3 on top of 2e-6: 16 is 3x.
    "float32": Tolerance(atol=2e-6, rtol=2e-6, rounding=16.0),
    # plain t: 6.3e-3 for the float16 reference (Keras), 2.8e-2 for TF's own
    # float16 rounding (oracle mode), 5.1e-2 contrib (k = 0.03 on top of
    # 5e-2); 5e-2 with rounding 16, as float32.
    "float16": Tolerance(atol=5e-2, rtol=5e-2, rounding=16.0),
}


# Per-kind overrides live in each kind's record (``records.py``,
# ``KindRecord.tolerances``), each with its measurement; they are joined with
# the dtype entry by taking the max (as JAX does).  Each is a measured
# amplification of *TF's own* rounding, shown by oracle mode being as far
# from TF as the reference is; none hides a semantic difference (the
# report's discrimination column shows the margin to the nearest wrong
# semantics).


# One activation op alone (no recurrence): |ours - tf| <= k eps (1 + |tf|).
# Measured over every Keras 3 and tf_keras activation on 483 points in
# [-12, 12]: worst k = 0.88 (float16, silu), 1.79 (float32, mish), 2.05
# (float64, mish); 6 is ~3x the worst.
ACTIVATION_EPS_FACTOR = 6.0


def activation_tolerance(dtype) -> Tolerance:
    t = ACTIVATION_EPS_FACTOR * float(np.finfo(dtype).eps)
    return Tolerance(atol=t, rtol=t)


def tolerance_for(dtype, kind=None) -> Tolerance:
    name = np.dtype(dtype).name
    try:
        base = TOLERANCES[name]
    except KeyError:
        raise KeyError(f"no tolerance for dtype {name!r}; the table has {sorted(TOLERANCES)}") from None
    override = None
    if kind is not None:
        from .records import BY_KIND  # records import this module

        record = BY_KIND.get(kind)
        override = record and (record.tolerances or {}).get(name)
    if override is None:
        return base
    return Tolerance(atol=max(base.atol, override.atol), rtol=max(base.rtol, override.rtol),
                     rounding=max(base.rounding, override.rounding))
