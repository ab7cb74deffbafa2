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
class OneStepBound:
    """A claim about one step's arithmetic, judged with teacher forcing
    (``Reference.run(teacher=...)``: every step starts from the framework's
    own state): at least ``exact`` of the h and c values are bitwise the
    framework's, and every one is within ``atol + atol |tf|``.  What it
    catches that a free-running bound cannot: a reference rounding in
    another place, which moves one value in a few by an ulp."""

    exact: float
    atol: float


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    rounding: float = 0.0  # times the reference's own rounding error (compare.own_rounding)
    one_step: OneStepBound = None  # float16: the ulp-level claim, where the dtype has one


# Measured with `python -m tools.measure_tolerances 300` (TF 2.21.0,
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
    # float16 (and mixed_float16, which computes in float16): the reference
    # rounds where TF rounds, op by op, so float16 cases are mostly bitwise
    # TF: every live float16 draw of the TF1 cells, contrib and tfa (52, 50,
    # 48, 42 of `measure_tolerances 300`) and every small Keras one but
    # those with softmax-family gates over 8+ units.  What is left is the
    # float32 GEMM summation order of TF 2.21 (and some Eigen orders of TF
    # 2.15's half GEMM) on long reductions, 1 ulp in ~0.1% of the sums, the
    # activations in FLOAT16_ACTIVATION_ULPS, and a recurrence carrying
    # such a difference on.  Worst over two runs of 30 wide draws per kind
    # (`measure_tolerances --wide 30`: 128/256 inputs, 32/64 units, batch
    # 1-4, 5-30 steps), TF1: free-running t = 9.4e-4, no rounding term
    # needed (k = 0 everywhere), so none is given: 3e-3 is 3.2x.  One step
    # from TF's own state (OneStepBound): at worst 0.39% of a case's values
    # not bitwise (Keras; TF1 0.2%; every small case 0%), t 7.2e-4 (Keras),
    # 6.2e-4 (TF1): >= 98% bitwise (5x the inexact share) and 2e-3 (2.8x).
    # Keras, contrib and tfa override in their records.
    "float16": Tolerance(atol=3e-3, rtol=3e-3, one_step=OneStepBound(exact=0.98, atol=2e-3)),
}


# Per-kind overrides live in each kind's record (``kinds/<id>.py``,
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


# float16 activations, each alone on all 63,488 finite float16 values against
# TF 2.21 (Keras 3, tf_keras; Keras 2.15's ten on TF 2.15.1 are all bitwise),
# in ulps (``compare.ulps_apart``), per platform profile (lstm_ref/platform.py:
# the claim is exact, so it is made where it was measured and nowhere else):
# bitwise, except those listed with (worst ulps, how many values are not
# bitwise), as measured by ``parity_tests/test_float16.py`` (live) and
# ``parity_tests/test_platforms.py`` (each recording's tables); the bound is
# the measurement itself, since the sweep is exhaustive and deterministic.
#
# Rows of 4 (a gate block of 4 units, for softmax).  The same on both x86
# profiles (AMD EPYC and Xeon with oneDNN off: x86-eigen; Xeon AVX512-FP16
# with oneDNN on, live and recorded: x86-onednn-fp16):
_ROWS_OF_4 = {
    # Eigen's float tanh is a rational approximation; np.tanh in float32,
    # rounded once, lands on the other neighbour for 2 inputs (and so does
    # x - tanh(x), where cancellation makes those 2 values 256 ulps).
    "tanh": (1, 2),
    "tanh_shrink": (256, 2),
    "mish": (1, 1),
    "celu": (1, 1),  # expm1 in float32 rounded once: one input rounds otherwise
}
FLOAT16_ACTIVATION_ULPS = {"x86-eigen": _ROWS_OF_4, "x86-onednn-fp16": _ROWS_OF_4}
# softmax and log_softmax over rows of 62.  x86-eigen: over HALF_PACKET (8)
# or more halves, Eigen's packet reduction sums in an order not modelled
# (activations._half_sum is exact below 8).  x86-onednn-fp16: softmax is
# oneDNN's, float32 rounded once (activations.softmax_rounded_once), bitwise
# in rows of 62 too; log_softmax is still Eigen's, with the same 9,111
# values off.  A float16 case with an unmodelled wide gate block has no
# one-step claim (``compare.one_step_exemption`` says so).
FLOAT16_WIDE_SOFTMAX_ULPS = {
    "x86-eigen": {"softmax": (8, 17208), "log_softmax": (7, 9111)},
    "x86-onednn-fp16": {"softmax": (0, 0), "log_softmax": (7, 9111)},
}
WIDE_SOFTMAX_NAMES = ("softmax", "log_softmax")


def float16_activation_ulps(name, profile, width=4):
    """The measured ``(worst ulps, values not bitwise)`` of float16
    activation ``name`` on ``profile`` (a :class:`~lstm_ref.platform.Profile`)
    in rows of ``width`` (4, or 62 for the softmax family)."""
    table = FLOAT16_WIDE_SOFTMAX_ULPS if width > 4 and name in WIDE_SOFTMAX_NAMES else FLOAT16_ACTIVATION_ULPS
    return table[profile.claims].get(name, (0, 0))


def activation_tolerance(dtype) -> Tolerance:
    t = ACTIVATION_EPS_FACTOR * float(np.finfo(dtype).eps)
    return Tolerance(atol=t, rtol=t)


def tolerance_for(dtype, overrides=None) -> Tolerance:
    """The table's entry for ``dtype``, joined by taking the max with a
    kind's ``overrides`` (its record's ``tolerances``; passed down, so that
    this table never looks a record up)."""
    if isinstance(overrides, str):
        raise TypeError(
            f"tolerance_for(dtype, overrides) takes a record's overrides, not the kind {overrides!r}: "
            "use lstm_ref.harness.records.tolerance_of(kind, dtype)"
        )
    name = np.dtype(dtype).name
    try:
        base = TOLERANCES[name]
    except KeyError:
        raise KeyError(f"no tolerance for dtype {name!r}; the table has {sorted(TOLERANCES)}") from None
    override = (overrides or {}).get(name)
    if override is None:
        return base
    return Tolerance(
        atol=max(base.atol, override.atol),
        rtol=max(base.rtol, override.rtol),
        rounding=max(base.rounding, override.rounding),
        one_step=_looser(base.one_step, override.one_step),
    )


def _looser(a, b):
    if a is None or b is None:
        return a or b
    return OneStepBound(exact=min(a.exact, b.exact), atol=max(a.atol, b.atol))


@dataclass(frozen=True)
class TFLiteTolerance(Tolerance):
    """A TFLite mode's bound: ``atol + rtol |tflite| + steps * scale``, where
    ``scale`` is the quantised output's scale (one code), 0 for a float
    output."""

    steps: float = 0.0

    def for_output(self, scale: float) -> Tolerance:
        return Tolerance(atol=self.atol + self.steps * scale, rtol=self.rtol)


# The TFLite target (lstm_ref/harness/tflite/): |reference - tflite| <= atol
# + rtol |tflite| at every step, row and unit of h (and the final h and c
# with return_state), keyed by conversion mode; tflite/modes.py states each
# quantisation scheme.  Measured with `python -m tools.measure_tflite
# 30` (TF 2.21.0, Keras 3.15.1, tf_keras 2.21.0, ai-edge-litert 2.3.0, AMD
# EPYC): 60 seeded draws, 30 per Keras (Keras 3: WHILE loop; tf_keras: 22
# fused UNIDIRECTIONAL_SEQUENCE_LSTM, 8 WHILE with return_state), units 1-32,
# 1-8 features, 5-40 steps, batch 1-3, go_backwards, with and without bias,
# x at 0.5/1/2 x N(0, 1), per-gate weights at 0.5/1/1.5 x build_weights'
# scales; no masks.  ``t`` is the worst value with |d| <= t (1 + |tflite|);
# each entry is ~2.5 t, with atol = rtol as in TOLERANCES.  A quantised mode's
# error is ~ scale / 2 per quantised op, fed back through h and c: it grows
# over the first steps, then stays bounded (the forget gate damps old error;
# tools/measure_tflite.py --closing plots it per step).
TFLITE_TOLERANCES = {
    # t = 3.6e-7 (Keras 3, 16 units, T=40, step 23); fused 2.8e-7.  Step 0
    # is already 3.1e-7: TFLite's float kernels (XNNPACK takes the WHILE
    # loop's outer ops) round otherwise than TF, not growth.
    # 1e-6 is 2.8x.
    "float32": TFLiteTolerance(atol=1e-6, rtol=1e-6),
    # Weights rounded to float16 (relative 2^-11), arithmetic in float32:
    # t = 2.0e-3 (Keras 3, 32 units, 8 features, weights 1.5x, step 11),
    # 1.3e-3 at step 0, no growth beyond.  5e-3 is 2.6x.
    "float16": TFLiteTolerance(atol=5e-3, rtol=5e-3),
    # Only the WHILE loop's kernels >= 1024 elements are int8 (the fused op
    # keeps float32 weights: there t = 2.8e-7, as float32).  t = 4.2e-2
    # (Keras 3, 32 units, 8 features, weights 1.5x, no bias, step 11; 1.7e-2
    # at step 0 where the input kernel is quantised too, else ~1e-7 at step
    # 0 and growing, as the recurrent kernel only acts from step 1).
    # 0.11 is 2.6x.
    "dynamic_range": TFLiteTolerance(atol=0.11, rtol=0.11),
    # Full integer, fused op only (the WHILE loop crashes the calibrator:
    # target.KNOWN_REFUSALS), calibrated on 16 samples of the case's own
    # input vectors.  The error scales with the calibrated ranges, so the
    # bound is in steps of the output's own quantisation (its int8 scale,
    # the value of one code): worst |d| = 9.7 steps (tf_keras, 32 units, 8
    # features, x 2x, weights 1.5x, T=5, step 4: |d| 7.6e-2, scale 7.8e-3);
    # T=200 8.6 steps.  A fixed atol would have to be 0.14 (2.6 x t = 5.4e-2)
    # and would pass the seed scenario, whose int8 kernel saturates (every
    # output at the top code, 0.17 off: 188 steps).  25 steps is 2.6x.
    "int8": TFLiteTolerance(atol=0.0, rtol=0.0, steps=25.0),
    # Never converted here: the fused op is refused, the WHILE loop crashes
    # the calibrator (target.KNOWN_REFUSALS); nothing to measure, so no
    # tolerance: a 16x8 model that converts is a "fail" row until measured.
    "int16x8": None,
}
