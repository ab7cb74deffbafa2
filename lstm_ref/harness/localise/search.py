"""Localisation: where a port no catalogue fault explains goes wrong, and
the smallest correction that explains it.

1. Where the target first leaves tolerance (step, row, unit), and which of
   the fields the family declares leaves first.
2. The reference is forced with the target's own states (:mod:`.forcing`),
   so that each step is judged alone; the corrections of :mod:`.families`
   are fitted one family at a time by least squares
   (:func:`scipy.optimize.least_squares`), on the residual in units of the
   tolerance, and ranked by what is left.  They are searched from the
   smallest scope up: whole parts (discrete), one parameter per gate, then
   one unit (the units the forced residual points at).  A continuous family
   is screened first by Gauss-Newton steps from "no correction" (one run
   per parameter and step), and the most promising are fitted in full.
3. The best fits are run free, as the port would run, and judged by the one
   comparison (:func:`lstm_ref.harness.compare.compare`, the kind's
   tolerance).  The answer is the correction with the fewest parameters that
   brings the target within tolerance, when no other within tolerance
   points elsewhere (then: ambiguous); when none does, the best
   localisation, only when the fits agree on it; else it says it is not
   sure.
"""

import time as _time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from . import forcing, gates
from .families import Builder

FOUND, AMBIGUOUS, LOCALISED, UNSURE = "correction found", "ambiguous", "localised", "not localised"

# A residual the run cannot give (NaN, inf), in tolerance units.
BIG = 1e12
# How many fits of a stage are run free and judged (best first by the
# one-step residual), and how many screened continuous corrections are
# fitted in full: at most FIT, those within PROMISING times the best
# screen.  Measured on parity_tests/test_localise.py's table (41
# injections): the right correction ranked first by one-step residual in
# every one, and first or second by screening (second only behind its own
# tensor and gate's other family: scale for an offset of a bias near 1).
CONFIRM = 6
FIT = 6
PROMISING = 20.0
# ... but the best FIT_ALWAYS are fitted whatever the screen says: one
# Gauss-Newton step misjudges a strongly nonlinear correction (an offset
# before a layer norm and a hard_sigmoid: the step lands at 1.74 or
# 0.31 for 0.5 and ranks it below corrections already at their best, out of
# FIT_ALWAYS), which BACKTRACK (fractions of the step, each tried), a second
# step for the best SECOND and the full fit put right.
FIT_ALWAYS = 3
BACKTRACK = (1.0, 0.5, 0.25)
SECOND = 12  # the screens that take a second step (that offset: 8th after one step, 1st after two)
# A one-step residual (forced, in tolerance units, worst value) above which
# a fit is not run free: the right correction leaves at most 0.071 on the
# table (the float32 rounding of the target against a float64 step); the
# nearest fit that was not within tolerance free-running, 2.9.
CONFIRM_ONE_STEP = 10.0
# The most units a one-unit correction is tried on: a fault that moves more
# units one step at a time is not a one-unit fault.
MAX_SUSPECTS = 4
# The best localisation when nothing is within tolerance.  The best fit
# must take away at least LOCALISE_MIN of the one-step residual's sum of
# squares; the fits that take away at least CLOSE times as much are its
# peers.  A gate is named when every peer that names gates (not all of
# them) names it; a tensor when every peer names it and the peers that do
# come from two families at least (one family alone cannot tell the tensors
# that feed one gate apart).  Measured on faults outside every family
# (parity_tests/test_localise.py and the notes of docs/diagnose.md): one
# gate's recurrent block replaced at random, best 52%; a cell clip changed,
# best 23%; rounding noise at 1.5x tolerance, 11%; noise on one gate's input
# block: best 82%, another gate's fit at 51% of it (peers from 60%).
LOCALISE_MIN = 0.4
CLOSE = 0.6
# Closer than this to tolerance (the correct reference's ratio), a
# correction the size of the rounding would explain the rounding: nothing is
# localised.
LOCALISE_FROM = 10.0
# Two corrections compute the same on the probe (one fault, two spellings:
# torch's bias_ih and bias_hh, ONNX's Wb and Rb) when, with the same
# parameters, their one-step residuals differ by at most this, in tolerance
# units: such pairs differ by the float32 rounding of the edited weights,
# measured <= 0.0018 on the table; 0.05 is 27x that.
SAME = 0.05


@dataclass
class Fit:
    family: str
    where: tuple  # (parts, gates, units)
    k: int
    theta: list
    rss: float  # forced: sum of squared residuals, in tolerance units
    one_step: float  # forced: worst |residual|, in tolerance units
    says: str
    fix: str
    ratio: float = None  # free-running, the one comparison (None: not run free)
    max_abs: float = None
    equivalent: list = field(default_factory=list)  # other corrections computing the same on the probe
    also: list = field(default_factory=list)  # their locations (parts, gates, units)
    residual: np.ndarray = field(default=None, repr=False)
    port: tuple = field(default=None, repr=False)  # (gate attributes or None, weights): the corrected port
    correction: object = field(default=None, repr=False)

    def as_json(self):
        return {
            "family": self.family,
            "parts": list(self.where[0]),
            "gates": list(self.where[1]),
            "units": [int(u) for u in self.where[2]],
            "parameters": self.k,
            "theta": [float(t) for t in self.theta],
            "one_step_rss": self.rss,
            "one_step_ratio": self.one_step,
            "says": self.says,
            "fix": self.fix,
            "ratio": self.ratio,
            "max_abs": self.max_abs,
            "equivalent": list(self.equivalent),
        }

    def places(self):
        """Its location and those of the corrections computing the same."""
        return [self.where, *self.also]


@dataclass
class Localisation:
    verdict: str
    departure: dict  # where the target first leaves tolerance
    best: Fit = None  # the correction found, or the best fit
    within: list = field(default_factory=list)  # fits within tolerance (several: ambiguous)
    ranked: list = field(default_factory=list)  # every fit, best one-step residual first
    where: dict = field(default_factory=dict)  # the localisation: {"parts": [...], "gates": [...]}
    forced: str = ""  # what the fits were forced with
    notes: list = field(default_factory=list)
    baseline_rss: float = 0.0
    seconds: float = 0.0
    runs: int = 0  # reference runs it took

    @property
    def named(self):
        return self.verdict == FOUND

    def lines(self):
        """The answer, as ``lstm-ref diagnose`` prints it (indented)."""
        out = [f"  where: {departure_text(self.departure)}"]
        if self.verdict == FOUND:
            best = self.best
            residual = f"fit residual {best.ratio:.2g}x tolerance, max |d| {best.max_abs:.3g}"
            out.append(f"  correction found: {best.says} ({residual})")
            out.append(f"  fix: {best.fix}")
            if best.equivalent:
                out.append(f"  (the probe cannot tell it from: {'; '.join(best.equivalent)}: one fault, either fix)")
        elif self.verdict == AMBIGUOUS:
            out.append(
                f"  {len(self.within)} corrections bring it within tolerance and the probe cannot tell them apart:"
            )
            for f in self.within:
                same = f" (= {'; '.join(f.equivalent)})" if f.equivalent else ""
                out.append(f"    {f.says}{same} ({f.ratio:.2g}x tolerance); fix: {f.fix}")
            families = {f.family for f in self.within}
            if families & {"scale", "tensor scale"} and "offset" in families:
                out.append(
                    "  (a scale and an offset of a block compute the same where the block holds one value in "
                    "every unit, as an untrained model's bias does: diagnose a trained model to separate them)"
                )
        elif self.verdict == LOCALISED:
            out.append(
                f"  no small correction brings it within tolerance; the fits agree on {where_text(self.where)} "
                f"(the best, {self.best.says}, takes away {100 * self.where['improvement']:.0f}% of the one-step "
                f"residual and leaves it {self.best.one_step:.3g}x tolerance)"
            )
        else:
            best = "" if self.best is None else f" (best: {self.best.says}, {self._share()})"
            out.append(
                "  not sure where: no correction brings it within tolerance, and the fits do not agree on one "
                f"tensor and gate{best}"
            )
        out += [f"  note: {note}" for note in self.notes]
        return out

    def _share(self):
        if not self.baseline_rss:
            return "no one-step residual"
        return f"takes away {100 * max(0.0, 1 - self.best.rss / self.baseline_rss):.0f}% of the one-step residual"

    def as_json(self):
        return {
            "verdict": self.verdict,
            "departure": self.departure,
            "best": None if self.best is None else self.best.as_json(),
            "within": [f.as_json() for f in self.within],
            "where": self.where,
            "forced": self.forced,
            "notes": list(self.notes),
            "one_step_rss_before": self.baseline_rss,
            "ranked": [f.as_json() for f in self.ranked[:10]],
            "seconds": self.seconds,
            "runs": self.runs,
        }


class Problem:
    """The target, the reference and the forced residual of a port."""

    def __init__(self, case, observed, fields, tolerance, measure):
        self.case, self.fields, self.measure = case, tuple(fields), measure
        self.ref = case.reference()
        self.teacher = forcing.schedule(self.ref, case, observed)
        self.observed = {k: np.asarray(observed[k], np.float64) for k in self.fields}
        self.scale = {k: 1.0 / (tolerance.atol + tolerance.rtol * np.abs(v)) for k, v in self.observed.items()}
        eps = np.finfo(self.ref.policy.variable).eps  # oracle runs read the weights as the variables hold them
        self.diff_step = float(np.sqrt(eps)) if eps > np.finfo(np.float64).eps else None
        # A float64 kind's tolerance is 2e-12: its fits must get that close;
        # any other stops where the target's own rounding floors the residual.
        self.ftol = 1e-12 if self.ref.policy.compute == np.float64 else 1e-8
        self.runs = 0

    def residual(self, attributes, weights):
        cls = gates.gated(type(self.ref)) if attributes else None
        inst = forcing.instance(self.ref, self.teacher, cls=cls, **(attributes or {}))
        self.runs += 1
        with np.errstate(all="ignore"):
            try:
                trace = self.case.run(inst, oracle=True, weights=weights)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                return None
            r = np.concatenate([((trace[k] - self.observed[k]) * self.scale[k]).ravel() for k in self.fields])
        return np.nan_to_num(r, nan=BIG, posinf=BIG, neginf=-BIG)

    def free(self, attributes, weights):
        """The port with the correction, run as it runs (its dtype), against
        the target: (ratio, max |d|) by the one comparison."""
        ref = gates.instance(self.ref, **attributes) if attributes else self.ref
        with np.errstate(all="ignore"):  # a wrong correction may overflow; the comparison says how far off
            return self.measure(self.case.run(ref, weights=weights))


def _fit_record(corr, theta, r, port):
    says, fix = corr.text(theta)
    return Fit(
        corr.family,
        corr.where,
        corr.k,
        [float(t) for t in np.atleast_1d(theta)],
        float(r @ r),
        float(np.max(np.abs(r), initial=0.0)),
        says,
        fix,
        residual=r,
        port=port,
        correction=corr,
    )


def _discrete(problem, corrections):
    out = []
    for corr in corrections:
        if corr is None:
            continue
        port = corr.apply(())
        r = problem.residual(*port)
        if r is not None:
            out.append(_fit_record(corr, (), r, port))
    return out


def _gauss_newton(problem, corr, theta0, r0, steps):
    """The fit one Gauss-Newton step from ``theta0`` (its residual ``r0``)
    reaches, trying each fraction in ``steps`` of it (one run per
    parameter, one per fraction), or None."""
    theta0, h = np.asarray(theta0, np.float64), 1e-3
    columns = []
    for i in range(corr.k):
        step = theta0.copy()
        step[i] += h
        r = problem.residual(*corr.apply(step))
        if r is None:
            return None
        columns.append((r - r0) / h)
    delta = np.linalg.lstsq(np.stack(columns, axis=1), -r0, rcond=None)[0]
    best = None
    for fraction in steps:
        theta = theta0 + fraction * delta
        port = corr.apply(theta)
        r = problem.residual(*port)
        if r is not None and (best is None or r @ r < best.rss):
            best = _fit_record(corr, theta, r, port)
    return best


def _screen(problem, corr, r0):
    """A continuous correction at its most promising start: one
    Gauss-Newton step from "no correction", tried at fractions
    :data:`BACKTRACK` of itself, or, for a family whose start is not "no
    correction" (a clip), the best of its starts.  Returns its :class:`Fit`
    there, or None."""
    if len(corr.starts) > 1:
        best = None
        for theta in corr.starts:
            port = corr.apply(theta)
            r = problem.residual(*port)
            if r is not None and (best is None or r @ r < best.rss):
                best = _fit_record(corr, theta, r, port)
        return best
    return _gauss_newton(problem, corr, corr.starts[0], r0, BACKTRACK)


def _second_step(problem, first):
    """``first`` (a screened fit) one more Gauss-Newton step on, if that is better."""
    if len(first.correction.starts) > 1:
        return first
    second = _gauss_newton(problem, first.correction, first.theta, first.residual, (1.0,))
    return second if second is not None and second.rss < first.rss else first


def _least_squares(problem, corr, start):
    def fun(theta):
        r = problem.residual(*corr.apply(theta))
        return np.full(problem.baseline.shape, BIG) if r is None else r

    lo, hi = corr.bounds
    bounded = np.isfinite(lo) or np.isfinite(hi)
    start = np.clip(np.asarray(start, np.float64), lo + 1e-9 if np.isfinite(lo) else -np.inf, hi)
    result = least_squares(
        fun,
        start,
        method="trf" if bounded else "lm",
        bounds=(lo, hi),
        diff_step=problem.diff_step,
        max_nfev=20 * (corr.k + 1),
        ftol=problem.ftol,
        xtol=problem.ftol,
        gtol=problem.ftol,
    )
    return result.x


def _continuous(problem, corrections):
    """Every correction screened; the most promising (at most :data:`FIT`,
    within :data:`PROMISING` of the best screen) fitted in full."""
    screened = [f for f in (_screen(problem, corr, problem.baseline) for corr in corrections) if f is not None]
    screened.sort(key=lambda f: f.rss)
    screened[:SECOND] = sorted((_second_step(problem, f) for f in screened[:SECOND]), key=lambda f: f.rss)
    out = []
    for i, f in enumerate(screened):
        if i < FIT_ALWAYS or (i < FIT and f.rss <= PROMISING * screened[0].rss):
            theta = _least_squares(problem, f.correction, np.asarray(f.theta))
            port = f.correction.apply(theta)
            r = problem.residual(*port)
            if r is not None and r @ r <= f.rss:
                f = _fit_record(f.correction, theta, r, port)
        out.append(f)
    return out


def _suspects(problem):
    """The units whose forced residual leaves tolerance; every unit where
    the step does not keep units apart or nothing is forced (then None,
    unless there are at most :data:`MAX_SUSPECTS`)."""
    ref = problem.ref
    if problem.teacher is None or ref.out_units != ref.units:
        return list(range(ref.units)) if ref.units <= MAX_SUSPECTS else None
    r = problem.baseline
    units, offset = set(), 0
    for name in problem.fields:
        v = problem.observed[name]
        n = v.size
        block = np.abs(r[offset : offset + n]).reshape(v.shape)
        offset += n
        cols = np.flatnonzero((block > 1).reshape(-1, v.shape[-1]).any(axis=0))
        units |= {int(c) % ref.units for c in cols}
    return sorted(units)


def _contains(outer, inner, all_units):
    """Whether location ``inner`` lies within ``outer`` (parts, gates, units)."""
    o_units = () if set(outer[2]) >= all_units else set(outer[2])
    i_units = () if set(inner[2]) >= all_units else set(inner[2])
    return (
        set(inner[0]) <= set(outer[0])
        and set(inner[1]) <= set(outer[1])
        and (o_units == () or (i_units != () and i_units <= o_units))
    )


def _same(problem, a, b):
    """Whether corrections ``a`` and ``b`` compute the same on the probe:
    ``b`` with ``a``'s parameters against ``a``."""
    if a.k != b.k or a.family != b.family:
        return False
    r = problem.residual(*b.correction.apply(np.asarray(a.theta)))
    return r is not None and np.max(np.abs(r - a.residual), initial=0.0) <= SAME


def _merge_same(problem, fits):
    """Fits computing the same on the probe become one, the others' names kept."""
    out = []
    for f in fits:
        for g in out:
            if _same(problem, g, f):
                g.equivalent.append(f.says)
                g.also.append(f.where)
                break
        else:
            out.append(f)
    return out


def _decide_within(problem, within, all_units):
    """One correction, or an ambiguity.  The fewest parameters first; the
    same correction spelled on another tensor (same family and size, the
    same trace: torch's two biases) is one answer.  Another correction
    within tolerance is a rival -- and the answer ambiguous -- when it
    points elsewhere (neither place inside the other), or has as few
    parameters in another family (a scale and an offset of a bias block
    that is the same in every unit: an untrained model's)."""
    within = _merge_same(problem, sorted(within, key=lambda f: (f.k, f.correction.order, f.ratio)))
    best = within[0]

    def nested(f):
        return any(_contains(a, b, all_units) or _contains(b, a, all_units) for a in f.places() for b in best.places())

    rivals = [f for f in within[1:] if not nested(f) or (f.k == best.k and f.family != best.family)]
    return (AMBIGUOUS if rivals else FOUND), best, [best, *rivals]


def _where(fits, baseline_rss, letters):
    """The best localisation when nothing is within tolerance, or {}: see
    :data:`LOCALISE_MIN`, :data:`CLOSE`."""
    fits = [f for f in fits if f.k <= MAX_SUSPECTS]  # a catch-all (every gate's bias) names, never localises
    if not fits or baseline_rss <= 0:
        return {}, None
    best = fits[0]
    gain = 1 - best.rss / baseline_rss
    if gain < LOCALISE_MIN:
        return {}, best
    close = [f for f in fits if 1 - f.rss / baseline_rss >= CLOSE * gain]
    every = set(letters)
    gates_ = set(best.where[1]) or every
    if gates_ != every:  # a whole-tensor best fit is not narrowed to a gate by weaker ones
        for f in close:
            if set(f.where[1]) and set(f.where[1]) != every:
                gates_ &= set(f.where[1])
    parts = set(best.where[0])
    for f in close:
        parts &= set(f.where[0])
    if len({f.family for f in close if parts <= set(f.where[0])}) < 2:
        parts = set()  # one family alone does not tell the tensor from the others feeding that gate
    if not gates_ or (gates_ == every and not parts):
        return {}, best
    return {"parts": sorted(parts), "gates": [] if gates_ == every else sorted(gates_), "improvement": gain}, best


def departure(comparison, ref, fields):
    """Where the target first leaves tolerance: per field, the first
    (step, row, unit) over tolerance; which per-step field leaves first."""
    out = {"fields": {}}
    width = ref.out_units
    directions = len(getattr(ref, "directions", ()) or ()) or 1
    for name in fields:
        stats = comparison.fields.get(name)
        if stats is None or stats.first_fail is None:
            continue
        step, row, unit = stats.first_fail
        entry = {"step": step, "row": row, "unit": unit}
        if name == ref.OUTPUT and directions > 1:
            entry.update(direction=unit // width, unit=unit % width)
        out["fields"][name] = entry
    per_step = {k: v for k, v in out["fields"].items() if v["step"] is not None}
    if per_step:
        first = min(v["step"] for v in per_step.values())
        out["first"] = sorted(k for k, v in per_step.items() if v["step"] == first)
        out["step"] = first
        right = [s for s in ref.TRACED_STATES if s in fields and s not in out["first"]]
        if ref.OUTPUT in out["first"] and right:
            out["note"] = (
                f"{', '.join(right)} still within tolerance at step {first} while {ref.OUTPUT} is not: "
                "the output gate or the output activation"
            )
    elif out["fields"]:
        out["first"] = sorted(out["fields"])
    return out


def where_text(where):
    """A localisation in words: "recurrent_kernel, gate o", "gate o (the
    tensor not told apart)", "recurrent_kernel (every gate)"."""
    gates_ = " and ".join("the output activation" if g == "out" else f"gate {g}" for g in where["gates"])
    tensors = " and ".join(where["parts"])
    if tensors and gates_:
        return f"{tensors}, {gates_}"
    return f"{tensors} (every gate)" if tensors else f"{gates_} (the tensor not told apart)"


def departure_text(dep):
    """``departure`` in words."""
    fields = dep.get("fields", {})
    if not fields:
        return "nothing leaves tolerance on its own"

    def at(name):
        e = fields[name]
        direction = f"direction {e['direction']}, " if "direction" in e else ""
        return f"{name}: row {e['row']}, {direction}unit {e['unit']}"

    first = dep.get("first", sorted(fields))
    verb = "leaves" if len(first) == 1 else "leave"
    where = "; ".join(at(n) for n in first)
    if "step" in dep:
        text = f"{' and '.join(first)} {verb} tolerance first, at step {dep['step']} ({where})"
    else:
        text = f"{' and '.join(first)} {verb} tolerance ({where})"
    return text + (f"; {dep['note']}" if dep.get("note") else "")


def localise(case, observed, fields, tolerance, measure, comparison):
    """Localise the fault of a target that computed ``observed`` on
    ``case`` (see the module docstring).  ``tolerance``: the kind's entry;
    ``measure(trace) -> (ratio, max_abs)``: the one comparison with the
    target; ``comparison``: the correct reference's comparison with it."""
    start = _time.perf_counter()
    problem = Problem(case, observed, fields, tolerance, measure)
    ref = problem.ref
    notes = []
    forced_with = (
        "nothing (no per-step output): every fit runs free"
        if problem.teacher is None
        else "the target's "
        + ", ".join(sorted({ref.OUTPUT} | {s for s in ref.TRACED_STATES if s in observed and s in ref.STATE}))
        + " at every step"
    )
    if comparison.ratio < LOCALISE_FROM:
        return Localisation(
            UNSURE,
            departure(comparison, ref, fields),
            notes=[
                f"the target is {comparison.ratio:.3g}x tolerance from the correct reference: too close to its "
                f"rounding to localise (localisation needs {LOCALISE_FROM:g}x)"
            ],
            seconds=_time.perf_counter() - start,
        )
    baseline = problem.residual(None, case.weights)
    problem.baseline = baseline
    baseline_rss = float(baseline @ baseline)
    usable, why = gates.usable(ref, case)
    if not usable:
        notes.append(f"no in-step corrections (activation, clip) for this kind: {why}")
    builder = Builder(ref, case, usable)
    suspects = _suspects(problem)
    all_units = set(range(ref.units))
    stages = [lambda: _discrete(problem, builder.discrete()), lambda: _continuous(problem, builder.per_gate())]
    if suspects is not None and 0 < len(suspects) <= MAX_SUSPECTS:
        units = tuple(suspects)
        stages.append(lambda: _unit_stage(problem, builder, units))
    elif suspects is None:
        notes.append(
            f"one-unit corrections not searched: {ref.units} units, and the step does not keep them apart "
            "or nothing is forced"
        )
    else:
        notes.append(f"one-unit corrections not searched: {len(suspects)} units leave tolerance one step at a time")
    fits, verdict, best, within = [], UNSURE, None, []
    for stage in stages:
        fits += stage()
        fits.sort(key=lambda f: f.rss)
        for f in [f for f in fits if f.ratio is None][:CONFIRM]:
            if problem.teacher is None or f.one_step <= CONFIRM_ONE_STEP:
                f.ratio, f.max_abs = problem.free(*f.port)
        candidates = [f for f in fits if f.ratio is not None and f.ratio <= 1]
        if candidates:
            verdict, best, within = _decide_within(problem, candidates, all_units)
            break
    where = {}
    if not within:
        where, best = _where(fits, baseline_rss, ref.GATES)
        verdict = LOCALISED if where else UNSURE
    return Localisation(
        verdict,
        departure(comparison, ref, fields),
        best,
        within,
        fits,
        where,
        forced_with,
        notes,
        baseline_rss,
        _time.perf_counter() - start,
        problem.runs,
    )


def _unit_stage(problem, builder, units):
    corrections = [c for c in builder.per_unit(units) if c is not None]
    return _discrete(problem, [c for c in corrections if c.k == 0]) + _continuous(
        problem, [c for c in corrections if c.k > 0]
    )
