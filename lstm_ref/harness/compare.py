"""The one comparison: reference trace against oracle outputs.

``compare`` measures; ``assert_parity`` raises with a note that reproduces
the failure.  The oracle goes in ``desired`` as in ``numpy.testing``.  The
report calls ``compare`` too, so a verdict and a report cannot disagree.
"""

from dataclasses import dataclass, field

import numpy as np

from lstm_ref.activations import HALF_PACKET
from lstm_ref.reference import Reference

from .records import tolerance_of
from .tolerances import WIDE_SOFTMAX_NAMES, Tolerance, float16_activation_ulps


@dataclass
class FieldStats:
    name: str
    max_abs: float
    max_rel: float
    max_ulp: float
    worst: tuple  # (step, row, unit) of the largest tolerance ratio; step None for final states
    worst_ref: float
    worst_tf: float
    ratio: float  # max |ref - tf| / (atol + rtol |tf|); passes when <= 1
    first_fail: tuple = None  # first (step, row, unit) over tolerance, in step order
    nan_mismatch: bool = False
    exact_share: float = None  # one-step fields: the share of values bitwise the oracle's

    @property
    def passed(self):
        return self.ratio <= 1.0 and not self.nan_mismatch


@dataclass
class Comparison:
    dtype: str
    tolerance: Tolerance
    fields: dict = field(default_factory=dict)
    # Teacher-forced fields (``Tolerance.one_step``), by field name; empty
    # where the dtype makes no one-step claim or the case cannot be forced
    # (then ``one_step_note`` says why, where the dtype makes one).
    one_step: dict = field(default_factory=dict)
    one_step_note: str = ""

    @property
    def passed(self):
        return all(f.passed for f in (*self.fields.values(), *self.one_step.values()))

    @property
    def ratio(self):
        return max(f.ratio for f in (*self.fields.values(), *self.one_step.values()))


def ulp_distance(actual, desired, dtype):
    """|actual - desired| in units of ``dtype``'s spacing at ``desired``."""
    dtype = np.dtype(dtype)
    spacing = np.spacing(np.abs(desired).astype(dtype)).astype(np.float64)
    spacing = np.maximum(spacing, np.finfo(dtype).smallest_subnormal)
    return np.abs(actual.astype(np.float64) - desired.astype(np.float64)) / spacing


def ulps_apart(actual, desired, dtype) -> np.ndarray:
    """How many ``dtype`` values lie between ``actual`` and ``desired``,
    both rounded to ``dtype``: 0 is bitwise equal (+0 and -0 alike), 1 is
    neighbours.  NaN against NaN is 0."""
    dtype = np.dtype(dtype)
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[dtype.itemsize]

    def ordered(v):
        i = np.asarray(v, dtype).view(ints).astype(np.int64)
        return np.where(i < 0, -(i & np.iinfo(ints).max), i)

    a, d = np.asarray(actual, dtype), np.asarray(desired, dtype)
    return np.where(np.isnan(a) & np.isnan(d), 0, np.abs(ordered(a) - ordered(d)))


def own_rounding(actual, exact):
    """How far the reference's own rounding has carried it from exact
    arithmetic so far: ``|ref - ref_float64|``, maxed over units and over
    the steps up to each step (per row).  A badly conditioned case (a cell
    state that cancels two large terms, a layer norm over a near-constant
    block) shows up here, in the correct semantics' own numbers."""
    err = np.abs(np.asarray(actual, np.float64) - np.asarray(exact, np.float64))
    err = np.where(np.isfinite(err), err, 0.0)
    if err.ndim == 3:  # (batch, time, units)
        return np.maximum.accumulate(err.max(axis=2, keepdims=True), axis=1)
    return err.max(axis=-1, keepdims=True)


def as_rows(name, arr):
    """A field as (batch, time, units) or (batch, units): a final state
    stacked per layer and direction, (slots, batch, width), becomes
    (batch, slots * width) -- unit ``slot * width + u``."""
    arr = np.asarray(arr)
    if name.startswith("final_") and arr.ndim == 3:
        return arr.transpose(1, 0, 2).reshape(arr.shape[1], -1)
    return arr


def own_rounding_of(trace, exact) -> dict:
    """:func:`own_rounding` for every field of a trace and its oracle-mode twin."""
    return {name: own_rounding(as_rows(name, trace[name]), as_rows(name, exact[name])) for name in trace.fields}


def _field(name, actual, desired, dtype, tol, own=None):
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    if a.shape == d.shape:
        a, d = as_rows(name, a), as_rows(name, d)
    if a.shape != d.shape:
        raise AssertionError(f"{name}: reference shape {a.shape} != oracle shape {d.shape}")
    nan_mismatch = bool((np.isnan(a) != np.isnan(d)).any())
    both_nan = np.isnan(a) & np.isnan(d)
    same = both_nan | (a == d)  # NaN where TF has NaN, and equal infinities, match
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - d))
    diff = np.where(np.isnan(diff), np.inf, diff)  # a lone NaN, or inf against finite
    finite_d = np.where(np.isfinite(d), d, 0.0)
    bound = tol.atol + tol.rtol * np.abs(finite_d)
    if own is not None and tol.rounding:
        bound = bound + tol.rounding * own
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / bound)  # an exact match passes even a zero tolerance
    rel = diff / np.maximum(np.abs(np.where(finite_d == 0, 1.0, finite_d)), np.finfo(dtype).tiny)
    ulp = np.where(same, 0.0, ulp_distance(np.where(same, 0.0, a), finite_d, dtype))
    # Arrays are (batch, time, units) or (batch, units); report (step, row, unit).
    if ratio.ndim == 3:
        ratio_tbu = ratio.transpose(1, 0, 2)
    else:
        ratio_tbu = ratio[None]
    flat = int(np.argmax(ratio_tbu))
    worst = np.unravel_index(flat, ratio_tbu.shape)
    fails = np.argwhere(ratio_tbu > 1.0)
    first_fail = tuple(int(i) for i in fails[0]) if len(fails) else None
    step = int(worst[0]) if ratio.ndim == 3 else None
    row, unit = int(worst[1]), int(worst[2])
    idx = (row, step, unit) if ratio.ndim == 3 else (row, unit)
    return FieldStats(
        name=name,
        max_abs=float(diff.max()),
        max_rel=float(rel.max()),
        max_ulp=float(ulp.max()),
        worst=(step, row, unit),
        worst_ref=float(a[idx]),
        worst_tf=float(d[idx]),
        ratio=float(ratio.max()),
        first_fail=None
        if first_fail is None
        else (first_fail[0] if ratio.ndim == 3 else None, first_fail[1], first_fail[2]),
        nan_mismatch=nan_mismatch,
    )


def _one_step_field(name, actual, desired, dtype, bound):
    """A teacher-forced field against ``OneStepBound``: its ratio is the
    worse of ``|d| / (atol + atol |tf|)`` and the share of values that are
    not bitwise the oracle's over the share allowed."""
    stats = _field(name, actual, desired, dtype, Tolerance(bound.atol, bound.atol))
    exact = float(np.mean(ulps_apart(actual, desired, dtype) == 0))
    share_ratio = (1 - exact) / (1 - bound.exact) if bound.exact < 1 else float(exact < 1) * np.inf
    stats.exact_share = exact
    stats.ratio = max(stats.ratio, share_ratio)
    return stats


def teacher_of(ref, case, desired):
    """The oracle's states after every step, as ``Reference.run(teacher=)``
    takes them, or None where the case cannot be forced: a kind that runs
    layers and directions, a mask that holds states, or a carried state the
    oracle does not return per step."""

    if type(ref)._run is not Reference._run or (case.mask is not None and not np.asarray(case.mask).all()):
        return None
    per_step = {name: desired.get(name) for name in ref.TRACED_STATES}
    per_step[ref.OUTPUT] = desired.get(ref.OUTPUT)
    if any(per_step.get(name) is None for name in ref.STATE):
        return None
    return {name: per_step[name] for name in ref.STATE}


def one_step_exemption(ref, case, desired) -> str:
    """Why a float16 case makes no one-step claim ('' where it makes one)."""

    for role in ("activation", "recurrent_activation"):
        fn = getattr(ref, role, None)
        name = getattr(fn, "__name__", "")
        if (
            name in WIDE_SOFTMAX_NAMES
            and ref.units >= HALF_PACKET
            and float16_activation_ulps(name, ref.platform, width=62) != (0, 0)
        ):
            return (
                f"no one-step claim: {role} {name} over {ref.units} >= {HALF_PACKET} units sums in "
                f"TF's packet order, not modelled on {ref.platform} (tolerances.FLOAT16_WIDE_SOFTMAX_ULPS)"
            )
    if teacher_of(ref, case, desired) is None:
        return "no one-step claim: the case cannot be teacher-forced (layers/directions, a mask, or no per-step state)"
    return ""


def compare(
    trace, desired: dict, dtype, tolerance: Tolerance = None, kind: str = None, own=None, one_step=None
) -> Comparison:
    """Compare a reference :class:`~lstm_ref.trace.Trace` with an oracle's
    outputs (a dict with the trace's fields: ``h``, ``c``, ``final_h``,
    ``final_c`` for the LSTMs), under the table's tolerance for the compute
    ``dtype`` and ``kind`` (or an explicit ``tolerance``).

    ``own`` is the correct reference's own rounding error per field
    (:func:`own_rounding_of` its trace and its oracle-mode trace).  When
    given, the bound grows by ``tolerance.rounding`` times it: TF rounds as
    the reference does, so where the case amplifies rounding, both sides
    drift together.  Without it the bound is the plain ``atol + rtol |tf|``.
    A wrong-semantics variant is judged with the correct reference's ``own``.

    ``one_step`` is the reference's teacher-forced trace on the same case
    (``Reference.run(teacher=teacher_of(...))``); where the tolerance has a
    ``one_step`` bound, its per-step fields are judged against it too.
    """
    dtype = np.dtype(dtype)
    tol = tolerance or tolerance_of(kind, dtype)
    result = Comparison(dtype=dtype.name, tolerance=tol)
    missing = sorted(set(trace.fields) - set(desired))
    if missing:
        raise AssertionError(f"the oracle returned no {missing}; it returned {sorted(desired)}")
    for name in trace.fields:
        result.fields[name] = _field(name, trace[name], desired[name], dtype, tol, None if own is None else own[name])
    if one_step is not None and tol.one_step is not None:
        for name in one_step.fields if hasattr(one_step, "fields") else one_step:
            if not name.startswith("final_"):  # the last step's state is already in the per-step fields
                result.one_step[name] = _one_step_field(name, one_step[name], desired[name], dtype, tol.one_step)
    return result


def per_step_max_abs(trace, desired: dict, name: str):
    """max over (row, unit) of |ref - tf| at each step, for plots."""
    a = np.asarray(trace[name], dtype=np.float64)
    d = np.asarray(desired[name], dtype=np.float64)
    return np.nanmax(np.abs(a - d), axis=(0, 2))


def failure_note(result: Comparison, trace, desired, context: str) -> str:
    tol = result.tolerance
    lines = [f"parity failed ({result.dtype}, atol={tol.atol:g}, rtol={tol.rtol:g}, rounding={tol.rounding:g})"]
    for f in result.fields.values():
        if f.passed:
            continue
        step, row, unit = f.first_fail or f.worst
        if step is None:
            ref_v = as_rows(f.name, trace[f.name])[row, unit]
            tf_v = as_rows(f.name, desired[f.name])[row, unit]
            where = f"row {row}, unit {unit}"
        else:
            ref_v = trace[f.name][row, step, unit]
            tf_v = desired[f.name][row, step, unit]
            where = f"step {step}, row {row}, unit {unit}"
        lines.append(
            f"  {f.name}: first divergence at {where}: ref={ref_v!r} tf={tf_v!r}; "
            f"max|d|={f.max_abs:.3g} ({f.ratio:.3g}x tolerance, {f.max_ulp:.3g} ulp)"
            + ("; NaN pattern differs" if f.nan_mismatch else "")
        )
    bound = tol.one_step
    for f in result.one_step.values():
        if f.passed:
            continue
        step, row, unit = f.first_fail or f.worst
        lines.append(
            f"  {f.name}, one step from the oracle's own state: {100 * f.exact_share:.2f}% of values bitwise "
            f"the oracle's (bound >= {100 * bound.exact:g}%); worst |d|={f.max_abs:.3g} ({f.max_ulp:.3g} ulp) at "
            f"step {step}, row {row}, unit {unit}: ref={f.worst_ref!r} tf={f.worst_tf!r}"
        )
    lines.append(f"  reproduce: {context}")
    return "\n".join(lines)


def assert_parity(
    trace, desired: dict, dtype, context: str = "", tolerance: Tolerance = None, kind: str = None, own=None
) -> Comparison:
    """Raise ``AssertionError`` naming the first diverging step, row and unit."""
    result = compare(trace, desired, dtype, tolerance, kind, own)
    if not result.passed:
        raise AssertionError(failure_note(result, trace, desired, context))
    return result


def run_and_compare(case, desired: dict, ref=None):
    """Run the reference on ``case`` (and, below float64, its oracle mode for
    the rounding allowance) and compare with ``desired``:
    ``(trace, exact, own, Comparison)``."""
    ref = ref or case.reference()
    trace = case.run(ref)
    exact = own = one_step = None
    if ref.policy.compute != np.float64:
        exact = case.run(ref, oracle=True)
        own = own_rounding_of(trace, exact)
    tol = tolerance_of(ref.kind, ref.policy.compute)
    note = tol.one_step and one_step_exemption(ref, case, desired)
    if tol.one_step and not note:
        one_step = case.run(ref, teacher=teacher_of(ref, case, desired))
    result = compare(trace, desired, ref.policy.compute, tol, own=own, one_step=one_step)
    result.one_step_note = note or ""
    return trace, exact, own, result


def assert_run_parity(case, desired: dict, ref=None, context: str = "") -> Comparison:
    """:func:`run_and_compare`, raising with a note that reproduces a failure."""
    trace, _, _, result = run_and_compare(case, desired, ref)
    if not result.passed:
        raise AssertionError(failure_note(result, trace, desired, context or case.describe()))
    return result


@dataclass
class GradStats:
    """One gradient array (``x``, ``h0``, ``w:kernel``, ``steps:h``...)
    against the framework's: ``ratio = max |d| / (tol (1 + |g_ref|))``,
    passing when <= 1; ``worst`` the index of that max, ``first_step`` for a
    per-step array the first step (processing order) over tolerance."""

    name: str
    max_abs: float
    ratio: float
    worst: tuple
    first_step: int = None

    @property
    def passed(self):
        return bool(self.ratio <= 1.0)


def compare_grads(ours: dict, theirs: dict, tol: float) -> dict:
    """``{name: GradStats}`` for every array of ``ours`` (the reference's
    float64 gradient) against ``theirs`` (the framework's, any dtype): the
    one gradient measure of the live tests, ``check --grad`` and the report.
    ``tol`` is the kind's measured bound for the compute dtype
    (``KindRecord.grad``).  A NaN on one side only is a failure (ratio inf)."""
    out = {}
    for name, ref in ours.items():
        ref = np.asarray(ref, np.float64)
        got = np.asarray(theirs[name], np.float64)
        if got.shape != ref.shape:
            raise ValueError(f"gradient {name}: shape {got.shape} against the reference's {ref.shape}")
        d = np.abs(got - ref)
        d = np.where(np.isnan(got) & np.isnan(ref), 0.0, np.where(np.isnan(d), np.inf, d))
        r = d / (tol * (1 + np.abs(np.nan_to_num(ref))))
        k = np.unravel_index(int(np.argmax(r)), r.shape) if r.size else ()
        first = None
        if name.startswith("steps:") and r.size and (r > 1).any():
            first = int(np.argwhere(r > 1)[:, -2].min())  # (..., batch, time, width): the time axis
        out[name] = GradStats(
            name, float(d.max()) if d.size else 0.0, float(r.max()) if r.size else 0.0, tuple(map(int, k)), first
        )
    return out
