"""Keras 3 on every backend: a case run on the backend its config names,
judged by that backend's tolerance; ``lstm-ref check MODEL --backend``.

A kind whose record lists ``backends`` (``kinds/record.py``, ``Backend``:
Keras 3's ``tensorflow``, ``jax`` and ``torch``) takes ``config["backend"]``
(default: the first, the kind's own oracle).  The reference reproduces what
each backend computes (``lstm_ref/keras_backends.py``); the case runs in
that backend's worker (``ORACLES``: ``keras3``, ``keras3_jax``,
``keras3_torch``), each in its own process and venv.  The TF worker takes
Keras' own kwargs, so the ``backend`` key is dropped on its wire; the other
workers check that it names their backend.
"""

from dataclasses import dataclass

import numpy as np

from .. import keras_backends
from ..trace import Trace
from .check import check_model
from .compare import compare, one_step_exemption, own_rounding_of, run_and_compare, teacher_of
from .oracles.client import OracleUnavailable
from .records import RECORDS, record_of
from .tolerances import Tolerance

DEFAULT = "tensorflow"


def records_with_backends() -> list:
    return [r for r in RECORDS if r.backends]


def backends_of(kind) -> dict:
    """``{name: Backend}`` of ``kind`` (empty: it has no backend axis)."""
    return {b.name: b for b in record_of(kind).backends}


def backend_of(case) -> str:
    """The backend a case runs on: its ``config["backend"]``, or the record's first."""
    rows = record_of(case.kind).backends
    return case.config.get("backend", rows[0].name if rows else DEFAULT)


def on_backend(case, backend):
    """``case`` with ``config["backend"] = backend``."""
    if backend not in backends_of(case.kind):
        raise ValueError(f"{case.kind}: no backend {backend!r}; it has {sorted(backends_of(case.kind))}")
    return case.replace(config={**case.config, "backend": backend})


def oracle_name(case) -> str:
    return backends_of(case.kind)[backend_of(case)].oracle.name


def wire(case):
    """The case as its worker takes it: the kind's own oracle (the first
    backend) gets Keras' kwargs, without ``backend``."""
    if backend_of(case) == record_of(case.kind).backends[0].name and "backend" in case.config:
        return case.replace(config={k: v for k, v in case.config.items() if k != "backend"})
    return case


def run(pool, case, cross_check=False) -> dict:
    """The framework's outputs on ``case``, run on its backend's worker; a
    case without a ``platform`` gets that worker's, and ``case.meta["path"]``
    says which code path the layer took (the other backends' workers)."""
    worker = pool.get(oracle_name(case))
    if case.platform is None:
        case.platform = worker.platform
    meta = {"op": "run", "kind": case.kind, "config": wire(case).config, "cross_check": cross_check}
    reply, out = worker.request(meta, case.arrays())
    case.meta["path"] = reply.get("path", "")
    return out


def cudnn_view(trace, case, fields):
    """What a cuDNN path returns of the reference's ``trace``: ``fields``
    only (no per-step c), the sequence in input order where the backend
    flips it back (JAX under ``go_backwards``: ``keras_backends.cudnn_output_order``)."""
    out = {name: trace[name] for name in trace.fields if name in fields}
    order = keras_backends.cudnn_output_order(backend_of(case), case.config.get("go_backwards", False))
    if order == "input" and "h" in out:
        out["h"] = out["h"][:, ::-1]
    return Trace(out)


def tolerance(case, ref=None):
    """The tolerance ``case`` is judged by: the kind's for the dtype its layer
    rounds in (``KerasLSTM.tolerance_dtype``: float32 for a float64 layer
    that rounds to float32 inside), joined with its backend's overrides."""
    ref = ref or case.reference()
    dtype = ref.tolerance_dtype(case.mask) if hasattr(ref, "tolerance_dtype") else ref.policy.compute
    base = record_of(case.kind).tolerance(dtype)
    row = backends_of(case.kind).get(backend_of(case))
    override = (row.tolerances or {}).get(np.dtype(dtype).name) if row is not None else None
    if override is None:
        return base
    # A backend's entry replaces the one-step claim (None: it makes none) and
    # is joined with the kind's bound by taking the max.
    return Tolerance(
        atol=max(base.atol, override.atol),
        rtol=max(base.rtol, override.rtol),
        rounding=max(base.rounding, override.rounding),
        one_step=override.one_step,
    )


def check_tolerance(case, ref):
    """For ``check_model``: None on the kind's own backend (its rows judged as
    ever), else :func:`tolerance`."""
    return None if backend_of(case) == record_of(case.kind).backends[0].name else tolerance(case, ref)


def judge(case, desired, ref=None):
    """``compare.run_and_compare`` under :func:`tolerance`: ``(trace, exact,
    own, Comparison)``; the kind's own backend is judged exactly as before."""
    ref = ref or case.reference()
    if backend_of(case) == record_of(case.kind).backends[0].name:
        return run_and_compare(case, desired, ref)
    tol = tolerance(case, ref)
    trace = case.run(ref)
    exact = own = one_step = None
    cudnn = "cuDNN" in case.meta.get("path", "")
    if ref.policy.compute != np.float64:
        exact = case.run(ref, oracle=True)
    if cudnn:  # no per-step c, no one-step claim
        trace = cudnn_view(trace, case, desired)
        exact = None if exact is None else cudnn_view(exact, case, desired)
    if exact is not None:
        own = own_rounding_of(trace, exact)
    note = tol.one_step and (
        "no one-step claim: a cuDNN path returns no per-step state"
        if cudnn
        else _torch_half_exemption(ref, case) or one_step_exemption(ref, case, desired)
    )
    if tol.one_step and not note:
        one_step = case.run(ref, teacher=teacher_of(ref, case, desired))
    result = compare(trace, desired, ref.policy.compute, tol, own=own, one_step=one_step)
    result.one_step_note = note or ""
    return trace, exact, own, result


def _torch_half_exemption(ref, case) -> str:
    """torch float16 with an activation that is not bitwise alone
    (``keras_backends.TORCH_HALF_NOT_BITWISE``) makes no one-step claim."""
    if backend_of(case) != "torch":
        return ""
    for role in ("activation", "recurrent_activation"):
        name = getattr(getattr(ref, role, None), "__name__", "")
        if name in keras_backends.TORCH_HALF_NOT_BITWISE:
            worst, off = keras_backends.TORCH_HALF_NOT_BITWISE[name]
            return f"no one-step claim: torch's float16 {name} is {worst} ulp off on {off} halves (not modelled)"
    return ""


# -- lstm-ref check MODEL --backend ---------------------------------------------------------------


@dataclass
class Unavailable:
    backend: str
    reason: str


class _OnBackend:
    """A worker whose ``model_lstms`` rows carry ``config["backend"]``."""

    def __init__(self, worker, backend):
        self.worker, self.backend = worker, backend

    @property
    def platform(self):
        return self.worker.platform

    def request(self, meta, arrays):
        reply, out = self.worker.request(meta, arrays)
        for layer in reply.get("layers", []):
            layer["config"] = {**layer["config"], "backend": self.backend}
        return reply, out


def parse(value, kind="keras.layers.LSTM") -> list:
    """``--backend`` to a list of names: one of the kind's backends, or ``all``."""
    names = list(backends_of(kind))
    if value == "all":
        return names
    if value not in names:
        raise ValueError(f"--backend {value!r}: expected one of {names} or 'all'")
    return [value]


def available(backends, pool, kind="keras.layers.LSTM"):
    """``(usable, unavailable)``: the backends whose worker starts, and an
    :class:`Unavailable` (with the ``make`` target) for each that does not."""
    usable, missing = [], []
    rows = backends_of(kind)
    for name in backends:
        where = rows[name].oracle.locate()
        if where.problem:
            missing.append(Unavailable(name, where.problem))
            continue
        try:
            pool.get(rows[name].oracle.name).hello()
        except OracleUnavailable as exc:
            missing.append(Unavailable(name, str(exc)))
            continue
        usable.append(name)
    return usable, missing


def check_model_on(path, backends, pool, inputs, kind="keras.layers.LSTM", **options):
    """:func:`~lstm_ref.harness.check.check_model` once per backend: every
    LSTM of the model run by Keras on that backend against the reference of
    that backend.  ``(rows, skipped, described)``; each row's ``backend``
    says which."""
    rows, skipped, described = [], [], None
    for name in backends:
        worker = _OnBackend(pool.get(backends_of(kind)[name].oracle.name), name)
        results, skips, described = check_model(path, worker, inputs, tolerance=check_tolerance, **options)
        for row in results:
            row.backend = name
        rows += results
        skipped += [(f"{layer} [{name}]", why) for layer, why in skips]
    return rows, skipped, described


def print_table(model, description, results, skipped, names):
    """One row per layer, one column per backend (ratio and verdict; a
    backend that could not run says why), then the tolerances, the
    failures' worst values and one summary line."""
    by_layer = {}
    for r in results:
        if r.status != "skipped":
            by_layer.setdefault(r.layer, {})[r.backend] = r
    down = {r.backend: r.reason for r in results if r.status == "skipped" and r.backend}
    checked = [r for r in results if r.status != "skipped"]
    failed = [r for r in checked if r.status != "pass"]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich comes with the report extra
        Console = None
    cells = {}
    for layer, row in by_layer.items():
        cells[layer] = ["not run" if name in down else _cell(row.get(name)) for name in names]
    title = f"lstm-ref check {model.name} ({description}): the reference of each Keras backend against Keras on it"
    if Console is None:
        print(title)
        for layer, texts in cells.items():
            print(f"{layer}  " + "  ".join(f"{n}: {t}" for n, t in zip(names, texts)))
    else:
        console = Console(highlight=False)
        table = Table(title=title, title_justify="left")
        for column in ("layer", "source", "dtype", *names):
            table.add_column(column, justify="left" if column in ("layer", "source") else "right", overflow="fold")
        for layer, texts in cells.items():
            first = next(iter(by_layer[layer].values()))
            table.add_row(layer, first.source, first.dtype, *texts)
        if not console.is_terminal:
            natural = console.measure(table, options=console.options.update_width(10_000)).maximum
            console = Console(highlight=False, width=max(80, natural))
        console.print(table)
    lines = []
    for name in names:
        if name in down:
            lines.append(f"backend {name}: not run: {down[name]}")
    bounds = {}
    for r in checked:
        key = (r.dtype, tuple(sorted(r.tolerance.items())))
        bounds.setdefault(key, []).extend([] if r.backend in bounds.get(key, []) else [r.backend])
    for (dtype, tol), on in sorted(bounds.items()):
        t = dict(tol)
        lines.append(
            f"tolerance ({dtype}; {', '.join(on)}): |ref - keras| <= {t.get('atol', 0):g} + {t.get('rtol', 0):g} "
            f"|keras| + {t.get('rounding', 0):g} x the reference's own rounding (lstm_ref/harness/tolerances.py)"
        )
    for r in failed:
        w = r.worst or {}
        lines.append(
            f"{r.layer} [{r.backend}]: {r.reason or 'over tolerance'}; worst at {w.get('field')} step "
            f"{w.get('step')} row {w.get('row')} unit {w.get('unit')}: ref={w.get('ref')!r} keras={w.get('tf')!r}"
        )
    lines += [f"skipped {layer}: {why}" for layer, why in skipped]
    worst = max((r.ratio for r in checked if r.ratio is not None), default=0.0)
    ran = [n for n in names if n not in down]
    summary = (
        f"{'FAIL' if failed else 'PASS'}: {len(checked) - len(failed)}/{len(checked)} within tolerance on "
        f"{', '.join(ran)} (worst ratio {worst:.3g})"
    )
    if failed:
        summary += "; over tolerance: " + ", ".join(f"{r.layer} [{r.backend}]" for r in failed)
    if down:
        summary += f"; not run: {', '.join(down)}"
    for line in lines + [summary]:
        print(line)


def _cell(row):
    if row is None:
        return ""
    return f"{row.ratio:.3g} {'PASS' if row.status == 'pass' else 'FAIL'}"


# -- the report's findings ------------------------------------------------------------------------


def findings_markdown() -> list:
    lines = [
        "## Keras 3 on each backend: the differences found",
        "",
        "What Keras 3.15.1 computes on JAX and torch (CPU; GPU paths from the source and a fake GPU) where it "
        "is not what the TF backend computes, each reproduced by the reference with `config['backend']` "
        "(lstm_ref/keras_backends.py) or refused; the cross-framework table's `keras3@jax` and `keras3@torch` "
        "columns judge each backend against the layer's TF meaning.",
        "",
        "| finding | backend | what | source | upstream |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {f.id} | {f.backend} | {f.what} | `{f.source}` | {f.upstream} |" for f in keras_backends.FINDINGS]
    return lines


def findings_json() -> list:
    return [f._asdict() for f in keras_backends.FINDINGS]
