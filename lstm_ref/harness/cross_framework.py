"""The reference as referee between frameworks: each kind x each framework.

For every kind's sweep case and every kind a converter reaches
(:mod:`lstm_ref.convert`), the case is converted, the target's framework
runs the converted case, and its outputs are compared, step by step, with
*the source kind's reference* put in the target's layout
(``Conversion.align``): does that framework compute what the source kind
means?  The bound is the one tolerance of the target kind, with the
rounding allowance of the target case's reference.  A cell holds the worst
ratio (<= 1 passes) and its margin (1 / ratio) over the cases converted, and
how many cases the converter refused (with one of the reasons).

A target kind whose record lists other backends (Keras 3 on JAX and torch,
:mod:`~lstm_ref.harness.backends`) has a column per backend too,
``<id>@<backend>``: the converted case run by Keras on that backend, against
the same source reference -- where a backend computes something else than
the layer means (JAX's h0 before a row's first valid step), its cell shows it.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from ..convert import KINDS as CONVERTIBLE
from ..convert import ConversionError, convert
from . import backends
from .compare import compare, own_rounding_of, run_and_compare
from .oracles.client import OracleError
from .records import RECORDS, record_of


@dataclass
class Cell:
    cases: int = 0
    ratio: float = 0.0  # worst over the cases compared
    refused: int = 0
    reason: str = ""  # one refusal, as the converter words it
    errors: list = field(default_factory=list)

    @property
    def margin(self):
        return float("inf") if self.ratio == 0 else 1.0 / self.ratio

    @property
    def passed(self):
        return not self.errors and self.ratio <= 1.0


def referee(case, target_kind, pool, backend=None) -> float:
    """Worst ratio of ``target_kind``'s framework, run on ``case`` converted,
    against ``case``'s own reference aligned to the target's layout (a kind
    no converter reaches: its own framework on the case itself).
    ``backend``: the target run by its framework on that backend, judged by
    that backend's tolerance."""
    if case.kind not in CONVERTIBLE:
        return run_and_compare(case, pool.for_kind(case.kind).run(case))[3].ratio
    conversion = convert(case, target_kind)
    target = conversion.case
    if backend is not None:
        target = backends.on_backend(target, backend)
        desired = backends.run(pool, target)
    else:
        desired = pool.for_kind(target_kind).run(target)  # stamps target.platform: the worker's profile
    ref = target.reference()
    source = case.replace(platform=case.platform or target.platform)
    expected = target.run(ref).replace(**conversion.align(source.run().fields))
    own = own_rounding_of(target.run(ref), target.run(ref, oracle=True)) if ref.policy.compute != np.float64 else None
    tolerance = backends.tolerance(target, ref) if backend is not None else None
    return compare(expected, desired, ref.policy.compute, tolerance, kind=target_kind, own=own).ratio


def collect(pool, progress=True) -> dict:
    """``{source record id: {target record id: Cell}}`` over every sweep."""
    jobs = [(record, case) for record in RECORDS for case in record.sweep()]
    targets = [record_of(kind) for kind in CONVERTIBLE]
    others = [(t, b.name) for t in targets for b in t.backends[1:]]  # the backend columns
    try:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="cross-framework", unit="case", disable=not progress)
    except ImportError:  # pragma: no cover
        pass
    table = {}
    for record, case in jobs:
        row = table.setdefault(record.id, {})
        for target in targets if record.kind in CONVERTIBLE else [record]:
            cell = row.setdefault(target.id, Cell())
            try:
                ratio = referee(case, target.kind, pool)
            except ConversionError as exc:
                cell.refused += 1
                cell.reason = cell.reason or _reason(exc)
                continue
            except OracleError as exc:
                cell.errors.append(f"{case.name}: {str(exc).splitlines()[0]}")
                continue
            cell.cases += 1
            cell.ratio = max(cell.ratio, ratio)
        for target, backend in others if record.kind in CONVERTIBLE else []:
            cell = row.setdefault(f"{target.id}@{backend}", Cell())
            try:
                ratio = referee(case, target.kind, pool, backend)
            except ConversionError as exc:
                cell.refused += 1
                cell.reason = cell.reason or _reason(exc)
                continue
            except (OracleError, ValueError) as exc:  # a backend's crash, or the reference refusing what it cannot run
                cell.errors.append(f"{case.name}: {str(exc).splitlines()[0]}")
                continue
            cell.cases += 1
            cell.ratio = max(cell.ratio, ratio)
    return table


def frameworks():
    """The table's columns: target record id -> the framework that runs it
    (``<id>@<backend>``: that kind on another backend)."""
    cols = {record_of(kind).id: record_of(kind).oracle.name for kind in CONVERTIBLE}
    for kind in CONVERTIBLE:
        cols.update({f"{record_of(kind).id}@{b.name}": b.oracle.name for b in record_of(kind).backends[1:]})
    return cols


def markdown(table) -> list:
    cols = frameworks()
    lines = [
        "## Each kind x each framework",
        "",
        "Each kind's sweep cases, converted (lstm_ref/convert.py) and run by every framework a converter "
        "reaches, against the *source kind's* reference: worst ratio (<= 1 passes) and margin; `refused` "
        "counts cases a framework cannot express.",
        "",
        "| kind | " + " | ".join(f"{c} ({f})" for c, f in cols.items()) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for source, row in table.items():
        cells = []
        for target in cols:
            cell = row.get(target)
            cells.append("—" if cell is None else _text(cell))
        if source not in cols:  # a kind no converter reaches: its own framework only
            own = row[source]
            cells = [f"own framework: {_text(own)}"] + ["—"] * (len(cols) - 1)
        lines.append(f"| {record_of_id(source).label} | " + " | ".join(cells) + " |")
    return lines


def _text(cell):
    if cell.errors:
        return f"ERROR ({len(cell.errors)}): {cell.errors[0]}"
    if not cell.cases:
        return f"refused ({cell.refused}): {cell.reason}"
    text = f"{cell.ratio:.3g} ({cell.margin:.3g}x margin, {cell.cases} cases)"
    return text + (f"; {cell.refused} refused" if cell.refused else "")


def record_of_id(record_id):
    return next(r for r in RECORDS if r.id == record_id)


def as_json(table) -> dict:
    return {
        s: {
            t: {
                "cases": c.cases,
                "ratio": c.ratio,
                "margin": c.margin,
                "refused": c.refused,
                "reason": c.reason,
                "errors": c.errors,
            }
            for t, c in row.items()
        }
        for s, row in table.items()
    }


def _reason(exc) -> str:
    """A converter's refusal in a cell: what it could not convert and why
    (``cannot convert peepholes to torch.nn.LSTMCell: it has none`` ->
    ``peepholes: it has none``), else the message after its kind's prefix."""
    text = str(exc)
    refused = re.match(r"cannot convert (.+?) to \S+: (.*)$", text, re.S)
    return f"{refused.group(1)}: {refused.group(2)}" if refused else text.split(": ", 1)[-1]
