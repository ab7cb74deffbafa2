"""``lstm-ref diagnose``: which known fault explains a port's disagreement.

The catalogue of a kind is its record's wrong-semantics variants (the faults
particular to it, declared beside its reference) plus the faults every port
can make (:mod:`lstm_ref.faults`: the 23 other gate orders, a reshaped
kernel, the bias missing or doubled, the sequence reversed, h and c
swapped, a mask read as lengths, float16 rounded once).  Each candidate --
every fault, and when none explains the target alone every pair -- is run
by the reference on the same case, and compared with what the target
computed by the one comparison and tolerance table
(:func:`~lstm_ref.harness.compare.compare`, the truth's own rounding as the
allowance).  Candidates are ranked by that ratio.

Where the target can be run again, :func:`probe` designs the case so that
the faults leave distinct fingerprints: one-hot inputs, gate blocks at
distinct scales and signs, distinct non-zero biases, distinct initial h and
c, and a mask with left padding and holes where the kind takes one.
Candidates the data cannot tell apart (identical on it, or all within
tolerance) are reported together, as an ambiguity.

When nothing in the catalogue explains the target (verdict "no known
fault"), :mod:`lstm_ref.harness.localise` localises the fault: where the
target first leaves tolerance, and the smallest correction to the
reference's weights or gates (a scale, an offset, a swap, another
activation, ...) that brings it within tolerance, or else the tensor and
gate the fits agree on (``Diagnosis.localisation``).
"""

from dataclasses import dataclass, field

import numpy as np

from ..case import Case, build_weights
from ..faults import common
from ..grad_faults import catalogue as grad_catalogue
from ..grad_faults import grad_with
from ..reference import from_config
from ..variants import compose
from .compare import compare, compare_grads, own_rounding_of
from .grad_oracle import paired, verdicts
from .localise import localise as _localise
from .records import record_of, tolerance_of

WITHIN, AMBIGUOUS, NONE, CORRECT = "fault found", "ambiguous", "no known fault", "no fault: within tolerance"


@dataclass
class Candidate:
    name: str
    ratio: float  # worst |fault - target| / bound, <= 1: this fault explains the target
    max_abs: float
    fix: str = ""
    equivalent: list = field(default_factory=list)  # other faults that compute the same on this case
    parts: list = field(default_factory=list)  # a pair: [(name, fix)] of each of its two faults


@dataclass
class Diagnosis:
    verdict: str
    truth_ratio: float  # the correct reference against the target
    truth_max_abs: float
    candidates: list  # ranked, best first
    fields: tuple  # what was compared
    note: str = ""
    localisation: object = None  # localise.Localisation, where no catalogue fault explains the target

    @property
    def explained(self):
        """A catalogue fault, a correction localisation found, or nothing to explain."""
        return self.verdict in (WITHIN, CORRECT) or bool(self.localisation and self.localisation.named)

    def best(self):
        return self.candidates[0] if self.candidates else None

    def as_json(self):
        return {
            "verdict": self.verdict,
            "truth_ratio": self.truth_ratio,
            "truth_max_abs": self.truth_max_abs,
            "fields": list(self.fields),
            "note": self.note,
            "candidates": [c.__dict__ for c in self.candidates[:10]],
            "localisation": None if self.localisation is None else self.localisation.as_json(),
        }


# Record variants the common faults hold under another name, with a fix: the
# report's "gate order ..." (all 23 other orders are common faults) and the
# Keras "go_backwards output flipped back" (the output sequence reversed).
COVERED = ("gate order ", "go_backwards output flipped back")


def catalogue(kind):
    """The kind's faults: its record's variants, then the common ones (less
    those in :data:`COVERED`)."""
    record = record_of(kind)
    seen, out = set(), []
    for fault in (*record.variants, *common(record.reference)):
        if fault.name.startswith(COVERED):
            continue
        if fault.name not in seen:
            seen.add(fault.name)
            out.append(fault)
    return out


def _measure(trace, observed, fields, ref, own):
    result = _comparison(trace, observed, fields, ref, own)
    return result.ratio, max(f.max_abs for f in result.fields.values())


def _comparison(trace, observed, fields, ref, own):
    subset = {k: trace[k] for k in fields}
    return compare(
        _Only(subset),
        {k: observed[k] for k in fields},
        ref.policy.compute,
        kind=ref.kind,
        own=None if own is None else {k: own[k] for k in fields},
    )


class _Only:
    """A trace restricted to some fields (compare iterates ``.fields``)."""

    def __init__(self, fields):
        self.fields = fields

    def __getitem__(self, name):
        return self.fields[name]


def _runs(case, faults):
    """(fault, trace) for every fault that applies and runs on the case."""
    out = []
    for fault in faults:
        if not fault.applies(case):
            continue
        try:
            with np.errstate(all="ignore"):
                out.append((fault, fault.run(case)))
        except (ValueError, KeyError, IndexError):  # a fault this case cannot express (a shape it changes)
            continue
    return out


def diagnose(case, observed: dict, fields=None, pairs=True, localise=True) -> Diagnosis:
    """Which fault of ``case.kind``'s catalogue makes the reference compute
    ``observed`` (the target's outputs on ``case``, in the kind's layout:
    any of its trace fields, e.g. only ``final_h``).  Where none does and
    ``localise``, the fault is localised (``Diagnosis.localisation``)."""
    ref = case.reference()
    truth = case.run(ref)
    fields = tuple(fields or [k for k in truth.fields if k in observed])
    if not fields:
        raise ValueError(f"observed holds none of {list(truth.fields)}; it holds {sorted(observed)}")
    own = None
    if ref.policy.compute != np.float64:
        own = own_rounding_of(truth, case.run(ref, oracle=True))
    truth_ratio, truth_abs = _measure(truth, observed, fields, ref, own)
    if truth_ratio <= 1:
        return Diagnosis(CORRECT, truth_ratio, truth_abs, [], fields)
    singles = _runs(case, catalogue(case.kind))
    ranked = _rank(singles, truth, observed, fields, ref, own)
    note = ""
    if pairs and not any(c.ratio <= 1 for c in ranked):
        combos = [compose(a, b) for i, (a, _) in enumerate(singles) for b, _ in singles[i + 1 :]]
        ranked = _rank(singles + _runs(case, combos), truth, observed, fields, ref, own)
        note = f"searched {len(singles)} faults and their pairs"
    else:
        note = f"searched {len(singles)} faults"
    within = [c for c in ranked if c.ratio <= 1]
    # one candidate within tolerance is an answer only if no other fault computes the same trace on this case
    # (an untrained Keras bias [0, 1, 0, 0]: "forget bias +1" and "bias counted twice" are one trace)
    verdict = WITHIN if len(within) == 1 and not within[0].equivalent else AMBIGUOUS if within else NONE
    localisation = None
    if verdict == NONE and localise:
        localisation = _localise(
            case,
            observed,
            fields,
            tolerance_of(ref.kind, ref.policy.compute),
            lambda trace: _measure(trace, observed, fields, ref, own),
            _comparison(truth, observed, fields, ref, own),
        )
    return Diagnosis(verdict, truth_ratio, truth_abs, ranked, fields, note, localisation)


def mask_part(candidate):
    """The name of ``candidate``'s fault (or part of its pair) that is about
    the mask ("mask ignored", "mask read as lengths ..."), or None."""
    names = [name for name, _ in candidate.parts] or [candidate.name]
    return next((name for name in names if "mask" in name.lower()), None)


def _rank(runs, truth, observed, fields, ref, own):
    """Candidates best first; faults that compute the same trace on this
    case (or the truth's) are merged into one, their names kept."""
    groups = []
    for fault, trace in runs:
        if all(np.array_equal(trace[k], truth[k], equal_nan=True) for k in fields):
            continue  # computes the truth here: says nothing
        for group in groups:
            if all(np.array_equal(trace[k], group[1][k], equal_nan=True) for k in fields):
                group[2].append(fault.name)
                break
        else:
            groups.append((fault, trace, []))
    out = []
    for fault, trace, same in groups:
        ratio, max_abs = _measure(trace, observed, fields, ref, own)
        out.append(
            Candidate(fault.name, ratio, max_abs, fault.fix, same, [(part.name, part.fix) for part in fault.parts])
        )
    return sorted(out, key=lambda c: (c.ratio, len(c.name)))


def probe(kind, config, input_dim, batch=3, time=8, seed=0, weights=None, no_mask=False):
    """A case designed to separate the faults: one-hot inputs (a different
    feature per step and row), gate blocks at distinct scales and signs,
    distinct non-zero biases (the one weight builder), distinct initial h
    and c, and a mask with a full row, left padding and holes where the kind
    takes any mask (right-padded rows of distinct lengths otherwise).
    ``weights`` keeps a model's own (an artifact's fixed weights);
    ``no_mask``: no mask at all (a port that takes none, or ignores it)."""

    ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    dtype = ref.policy.variable
    x = np.zeros((batch, time, input_dim), dtype)
    for b in range(batch):
        for t in range(time):
            x[b, t, (t + 2 * b) % input_dim] = 1.0 + 0.5 * b
    weights = weights if weights is not None else build_weights(ref, rng, input_dim, scales=(0.9, -0.6, 1.3, 0.45))
    states = {
        f"{s}0": (
            np.linspace(-0.8, 0.9, int(np.prod(ref.state_shape(s, batch)))).reshape(ref.state_shape(s, batch))
            * (1.0 if s == "h" else -1.3)
        ).astype(dtype)
        for s in ref.STATE
    }
    mask = np.ones((batch, time), bool)
    try:  # a kind that takes any mask gets left padding, holes and right padding
        mask[1, :2] = False
        mask[2, 3::3] = False
        mask[2, -2:] = False  # the first steps processed under go_backwards
        ref._check_mask(mask)
    except ValueError:  # right-padded rows only
        mask = np.arange(time)[None, :] < np.array([time, time - 2, time - 5][:batch] + [time] * (batch - 3))[:, None]
    return Case(kind, config, x, weights, None if no_mask else mask, name=f"probe for {kind}", **states)


def diagnose_grad(case, upstream, observed_grads: dict, observed=None, tol=None) -> Diagnosis:
    """Which backward-only fault (:mod:`lstm_ref.grad_faults`) makes the
    reference compute ``observed_grads``: the target's gradient of
    ``sum(field * upstream[field])`` on ``case``, keyed as
    :mod:`~lstm_ref.harness.grad_oracle` keys it (``x``, ``h0``, ``c0``,
    ``w:<name>``, ``steps:*``).  Where ``observed`` (the target's outputs)
    is given, the forward is diagnosed first (:func:`diagnose`, single
    faults, no localisation): a forward that differs is that diagnosis,
    its note saying the gradients were not searched.  Each candidate's
    ratio is the worst over the arrays of ``t / (tol + k spread)``
    (:func:`grad_oracle.verdicts`: ``tol`` the kind's gradient bound,
    default its record's for the case's dtype, the spread the correct
    reference's): <= 1 names it."""
    if observed is not None:
        forward = diagnose(case, observed, pairs=False, localise=False)
        if forward.verdict != CORRECT:
            forward.note = f"the forward differs ({forward.note}): the gradients were not searched"
            return forward
    ref = case.reference()
    tol = record_of(case.kind).grad_tolerance(case.config.get("dtype")) if tol is None else tol
    truth = paired(_grad_keys(grad_with(ref, case, upstream, None), case), observed_grads)
    names = tuple(truth)
    allowed = {k: v.allowed for k, v in verdicts(case, upstream, truth, observed_grads, tol).items()}
    truth_ratio, truth_abs = _grad_measure(truth, observed_grads, allowed)
    if truth_ratio <= 1:
        return Diagnosis(CORRECT, truth_ratio, truth_abs, [], names, "forward and gradients within tolerance")
    groups = []  # (fault, grads, equivalent names)
    faults = [f for f in grad_catalogue(observed_grads) if f.applies(case)]
    for fault in faults:
        with np.errstate(all="ignore"):
            g = {k: v for k, v in _grad_keys(grad_with(ref, case, upstream, fault), case).items() if k in truth}
        if all(np.array_equal(g[k], truth[k], equal_nan=True) for k in names):
            continue  # the truth on this case: says nothing
        same = next(
            (grp for grp in groups if all(np.array_equal(g[k], grp[1][k], equal_nan=True) for k in names)), None
        )
        if same is not None:
            same[2].append(fault.name)
        else:
            groups.append((fault, g, []))
    ranked = sorted(
        (Candidate(f.name, *_grad_measure(g, observed_grads, allowed), f.fix, same) for f, g, same in groups),
        key=lambda c: (c.ratio, len(c.name)),
    )
    within = [c for c in ranked if c.ratio <= 1]
    verdict = WITHIN if len(within) == 1 and not within[0].equivalent else AMBIGUOUS if within else NONE
    note = (
        f"forward {'within tolerance' if observed is not None else 'not given'}; searched {len(faults)} backward faults"
    )
    return Diagnosis(verdict, truth_ratio, truth_abs, ranked, names, note)


def _grad_keys(g, case):
    """A :class:`~lstm_ref.grad.GradResult` keyed as ``grad_oracle`` keys it."""
    out = {"x": g.x, **{k: g.initial[k] for k in case.initial_state}}
    out.update((f"w:{k}", v) for k, v in g.weights.items())
    out.update((f"steps:{k}", v) for k, v in g.steps.items())
    return out


def _grad_measure(ours, theirs, allowed):
    """``(worst t / allowed, worst |d|)`` over the arrays."""
    stats = compare_grads(ours, theirs, 1.0)
    ratio = max((s.ratio / allowed[k] for k, s in stats.items()), default=0.0)
    return float(ratio), max((s.max_abs for s in stats.values()), default=0.0)
