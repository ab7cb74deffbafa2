"""The TFLite target: a Keras LSTM case, converted by TF's ``TFLiteConverter``
in each mode, run by LiteRT, and compared with the reference step by step.

Pipeline, for a :class:`lstm_ref.case.Case` of ``keras.layers.LSTM`` (Keras
3) or ``tf_keras.layers.LSTM`` (Keras 2, ``TF_USE_LEGACY_KERAS=1``):

1. ``convert_one.py`` (a subprocess of this interpreter, see
   ``converter.py``) builds ``Input(shape=(T, F), batch_size=B) ->
   LSTM(**config, return_sequences=True)`` with the case's weights and
   converts it with ``from_keras_model`` in each mode (``modes.py``); a
   crash or a refusal is a row.
2. The ``litert`` oracle (``.venv-litert``) runs each ``.tflite`` on the
   case's ``x``, with ``reset_all_variables()`` before every invoke, twice,
   and says whether the two invokes agree bitwise.
3. The output is compared with ``case.run()``: per step when the converted
   graph returns the sequence (``compared == "h per step"``), else the final
   output (``"final h"``); with ``return_state=True`` the final h and c too.

What TFLite does with these models (TF 2.21, Keras 3.15, tf_keras 2.21,
ai-edge-litert 2.3.0, measured here):

- tf_keras' LSTM becomes one fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (its
  ``standard_lstm`` carries ``api_implements``); Keras 3's becomes
  ``TRANSPOSE -> WHILE -> TRANSPOSE``, the step in the WHILE body's
  subgraph (which ``get_tensor_details()`` does not list).
  ``return_state=True`` and a mask give a WHILE loop under tf_keras too.
- The fused op keeps h and c in variable tensors across ``invoke()`` calls
  (tensorflow#47813): a second invoke on the same input starts from the
  first one's final state, until ``reset_all_variables()``.
- Masks convert (a second, boolean input, or a ``Masking`` layer), to a
  WHILE loop in both lowerings; this target compares unmasked cases with
  zero initial state only and refuses the others (``ValueError``).

Entry points: :func:`tflite_rows` (one case, every mode) and
:func:`sweep_rows` (many cases: one converter process per lowering);
:func:`error_growth` and :func:`plot_growth` for the per-step view.
"""

import dataclasses
import json
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...trace import Trace
from ..compare import compare, per_step_max_abs
from ..oracles.client import OracleError
from ..oracles.pool import OraclePool
from ..tolerances import TFLITE_TOLERANCES, Tolerance
from . import converter
from .modes import MODES, Mode, conversion_order, mode_of
from .spec import LEGACY, TARGET

REPRESENTATIVE_SAMPLES = 16

# What the converter does instead of converting, by lowering and mode (TF
# 2.21, measured by tools/measure_tflite.py; the tests assert these
# rows exactly, so that a fix upstream is noticed).  A WHILE-loop LSTM
# (Keras 3; tf_keras with return_state) crashes TF's calibrator: SIGSEGV in
# ``Calibrator.FeedTensor`` (tensorflow/lite/python/optimize/calibrator.py,
# ``_feed_tensors``).  The fused op is refused by the 16x8 quantizer
# (tensorflow/lite/tools/optimize/quantize_model.cc: an op whose property is
# not quantizable with int16 activations, and no float fallback allowed).
KNOWN_REFUSALS = {
    ("while", "int8"): ("crashed", "converter crashed: SIGSEGV in calibration"),
    ("while", "int16x8"): ("crashed", "converter crashed: SIGSEGV in calibration"),
    ("fused", "int16x8"): (
        "unsupported",
        "unsupported: Quantization to 16x8-bit not yet supported for op: 'UNIDIRECTIONAL_SEQUENCE_LSTM'.",
    ),
}


@dataclass
class TFLiteRow:
    """One case in one mode: converted or not, and how close.

    ``status``: ``pass``/``fail`` (within the mode's ``TFLITE_TOLERANCES``
    entry or not), the conversion's ``unsupported``, ``crashed``, ``hung``,
    ``failed`` (``message`` says it, e.g. "converter crashed: SIGSEGV in
    calibration"), or ``run failed`` (LiteRT refused or crashed on it).  ``per_step`` is the max |tflite - reference|
    over rows and units at each step (processing order), ``None`` when only
    the final output was compared.  ``leaves_float32_at``: the first step
    whose error exceeds float32's TFLite tolerance (``None``: never).
    ``keras_max_abs``: the Keras model itself against the reference, which
    shows that the converted model is the case's."""

    kind: str
    case: str
    mode: str
    status: str
    message: str = ""
    compared: str = ""
    lowering: str = ""
    ops: list = field(default_factory=list)
    executed: list = field(default_factory=list)
    max_abs: float = float("nan")
    ratio: float = float("nan")
    worst: tuple = None  # (step, row, unit) of the largest ratio
    t_worst: float = float("nan")  # the least t with |d| <= t (1 + |tflite|) everywhere (tolerance measurement)
    max_codes: float = None  # max |d| in codes of a quantised output (|d| / its scale); None for a float output
    per_step: np.ndarray = None
    leaves_float32_at: int = None
    tolerance: Tolerance = None
    bitwise_repeat: bool = None
    repeat_max_abs: float = None
    final_c_max_abs: float = None
    keras_max_abs: float = float("nan")
    io: dict = field(default_factory=dict)
    constants: dict = field(default_factory=dict)  # elements of weight data per type: what the mode quantised
    convert_seconds: float = 0.0
    bytes: int = 0
    detail: str = ""

    @property
    def passed(self):
        return self.status == "pass"

    def as_dict(self) -> dict:
        """JSON-able, for the report."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("per_step", "tolerance", "detail")}
        d["per_step"] = None if self.per_step is None else [float(v) for v in self.per_step]
        d["tolerance"] = None if self.tolerance is None else {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol}
        return d


def check_case(case):
    """Refuse what the target does not compare (``ValueError``, naming it)."""
    if case.kind not in LEGACY:
        raise ValueError(f"the TFLite target converts {sorted(LEGACY)}; not {case.kind!r}")
    if case.mask is not None:
        raise ValueError(
            "the TFLite target compares unmasked cases (a mask converts, to a WHILE loop, but is not compared here)"
        )
    if case.initial_state:
        raise ValueError("the TFLite target compares cases with zero initial state")
    dtype = case.config.get("dtype")
    if dtype not in (None, "float32"):
        raise ValueError(f"the TFLite target converts float32 models; the case computes in {dtype!r}")


def representative_dataset(case, samples=REPRESENTATIVE_SAMPLES, seed=0) -> np.ndarray:
    """``samples`` inputs shaped like ``case.x``, each made of the case's own
    input vectors (one per row and step) drawn with replacement, seeded: the
    same distribution of x_t (one-hot stays one-hot), never the evaluated
    sequence itself."""
    x = np.asarray(case.x, np.float32)
    flat = x.reshape(-1, x.shape[-1])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(flat), size=(samples,) + x.shape[:2])
    return flat[idx]


def _model_id(i):
    return f"m{i}"


def convert_cases(
    cases, modes=None, workdir=None, *, timeout=180.0, samples=REPRESENTATIVE_SAMPLES, seed=0, return_sequences=True
) -> dict:
    """Convert every case in every mode: ``{(case index, mode): Conversion}``,
    plus ``keras`` outputs at ``(case index, "keras")``.  One converter
    process per lowering (Keras 3, tf_keras), restarted after a crash; the
    modes that may crash are converted last."""

    names = conversion_order([m.name if isinstance(m, Mode) else m for m in (modes or MODES)])
    workdir = Path(workdir or tempfile.mkdtemp(prefix="lstm_parity_tflite_"))
    out = {}
    for legacy in (False, True):
        picked = [i for i, c in enumerate(cases) if LEGACY[c.kind] == legacy]
        if not picked:
            continue
        models = {}
        for i in picked:
            case = cases[i]
            check_case(case)
            models[_model_id(i)] = converter.ModelSpec(
                _model_id(i),
                case.config,
                case.x,
                case.weights,
                representative_dataset(case, samples, seed),
                return_sequences,
            )
        safe = [(_model_id(i), n) for n in names if not mode_of(n).may_crash for i in picked]
        risky = [(_model_id(i), n) for i in picked for n in names if mode_of(n).may_crash]
        lowering_dir = workdir / ("tf_keras" if legacy else "keras3")
        results = converter.convert(models, safe + risky, lowering_dir, legacy=legacy, timeout=timeout)
        for i in picked:
            for n in names:
                out[(i, n)] = results[(_model_id(i), n)]
            keras_out = lowering_dir / f"{_model_id(i)}.keras.npz"
            if keras_out.exists():
                with np.load(keras_out) as npz:
                    out[(i, "keras")] = [npz[f"out:{k}"] for k in range(len(npz.files))]
    return out


def dump_conversions(conversions, path):
    """Write :func:`convert_cases`' output as JSON (the ``.tflite`` files and
    Keras outputs stay where they are): for a cache shared between processes."""

    out = {"conversions": [], "keras": {}}
    for (i, mode), value in conversions.items():
        if mode == "keras":
            npz = Path(path).with_name(f"{Path(path).stem}.keras{i}.npz")
            np.savez(npz, *value)
            out["keras"][str(i)] = str(npz)
        else:
            d = dataclasses.asdict(value)
            d["path"] = None if value.path is None else str(value.path)
            out["conversions"].append({"case": i, **d})
    Path(path).write_text(json.dumps(out))


def load_conversions(path) -> dict:
    """The inverse of :func:`dump_conversions`."""

    data = json.loads(Path(path).read_text())
    out = {}
    for d in data["conversions"]:
        i = d.pop("case")
        d["path"] = None if d["path"] is None else Path(d["path"])
        out[(i, d["mode"])] = converter.Conversion(**d)
    for i, npz in data["keras"].items():
        with np.load(npz) as f:
            out[(int(i), "keras")] = [f[f"arr_{k}"] for k in range(len(f.files))]
    return out


def _match_outputs(lite_outs, keras_outs):
    """TFLite may list a model's outputs in another order: each Keras output
    gets the TFLite output of its shape that is closest to it."""
    matched, free = [], list(range(len(lite_outs)))
    for k in keras_outs:
        same = [i for i in free if lite_outs[i].shape == k.shape]
        if not same:
            raise AssertionError(f"no TFLite output of shape {k.shape}; it has {[o.shape for o in lite_outs]}")
        best = min(same, key=lambda i: float(np.max(np.abs(lite_outs[i].astype(np.float64) - k))))
        matched.append(best)
        free.remove(best)
    return matched  # TFLite output index of each Keras output


def _describe_tol(tol, scale):
    text = f"atol={tol.atol:g}, rtol={tol.rtol:g}"
    return text + (f", {tol.steps:g} x output scale {scale:.3g}" if getattr(tol, "steps", 0) else "")


def _t(ref, lite):
    ref, lite = np.asarray(ref, np.float64), np.asarray(lite, np.float64)
    return float(np.max(np.abs(ref - lite) / (1.0 + np.abs(lite))))


def evaluate(case, mode, conversion, keras_outs, worker, *, case_name="", reset=True) -> TFLiteRow:
    """Run one converted model in LiteRT and compare it with the reference."""
    row = TFLiteRow(
        case.kind,
        case_name or case.name,
        mode,
        conversion.status,
        conversion.message,
        convert_seconds=conversion.seconds,
        bytes=conversion.bytes,
        detail=conversion.detail,
    )
    if not conversion.ok:
        return row
    try:
        meta, arrays = worker.request(
            {"op": "run", "reset": reset},
            {
                "model": np.frombuffer(Path(conversion.path).read_bytes(), np.uint8),
                "in:0": np.asarray(case.x, np.float32),
            },
        )
    except OracleError as exc:  # LiteRT refused or crashed on the model: a row too
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        row.status, row.message, row.detail = (
            "run failed",
            f"LiteRT failed: {lines[-1] if lines else exc}"[:400],
            str(exc),
        )
        return row
    order = _match_outputs([arrays[f"out:{i}"] for i in range(len(meta["outputs"]))], keras_outs)
    lite = [arrays[f"out:{i}"] for i in order]
    scales = [meta["outputs"][i]["scale"] if meta["outputs"][i]["dtype"].startswith("int") else 0.0 for i in order]
    trace = case.run()
    sequence = lite[0].ndim == 3
    mode_tol = TFLITE_TOLERANCES[mode]
    unmeasured = mode_tol is None
    # A quantised output's bound includes ``steps`` codes of its own scale.
    tol = mode_tol.for_output(scales[0]) if mode_tol else Tolerance(atol=0.0, rtol=0.0)
    desired = lite[0] if sequence else lite[0][:, None, :]
    ref_h = trace.h if sequence else trace.h[:, -1:, :]
    sub = Trace(h=ref_h)
    stats = compare(sub, {"h": desired}, "float32", tolerance=tol).fields["h"]
    f32 = compare(sub, {"h": desired}, "float32", tolerance=TFLITE_TOLERANCES["float32"].for_output(0.0)).fields["h"]
    keras_h = keras_outs[0] if sequence else keras_outs[0][:, None, :]
    row.compared = f"h per step ({desired.shape[1]} steps)" if sequence else "final h"
    row.lowering, row.ops, row.executed = meta["lowering"], meta["ops"], meta["executed"]
    row.max_abs, row.ratio, row.worst = stats.max_abs, stats.ratio, stats.worst
    row.per_step = per_step_max_abs(sub, {"h": desired}, "h") if sequence else None
    row.leaves_float32_at = f32.first_fail[0] if (f32.first_fail and sequence) else None
    row.tolerance = tol
    row.bitwise_repeat, row.repeat_max_abs = meta["repeat"]["bitwise"], meta["repeat"]["max_abs"]
    row.io = {"inputs": meta["inputs"], "outputs": meta["outputs"]}
    row.constants = meta["constants"]
    row.keras_max_abs = float(np.max(np.abs(keras_h.astype(np.float64) - ref_h)))
    row.t_worst = _t(ref_h, desired)
    row.max_codes = stats.max_abs / scales[0] if scales[0] else None
    passed = stats.passed
    if len(lite) == 3:  # return_state: [sequence, final h, final c]
        finals = [
            compare(
                Trace(**{name: trace[name]}),
                {name: out},
                "float32",
                tolerance=mode_tol.for_output(scale) if mode_tol else tol,
            ).fields[name]
            for name, out, scale in (("final_h", lite[1], scales[1]), ("final_c", lite[2], scales[2]))
        ]
        row.final_c_max_abs = finals[1].max_abs
        row.t_worst = max(row.t_worst, _t(trace.final_h, lite[1]), _t(trace.final_c, lite[2]))
        row.compared += ", final h and c"
        passed = passed and all(f.passed for f in finals)
    row.status = "pass" if passed and not unmeasured else "fail"
    if unmeasured:
        row.tolerance = None
        row.message = (
            f"no measured tolerance for {mode} (it never converted when measured): measure it with "
            f"tools/measure_tflite.py; max |d| = {stats.max_abs:.3g}"
        )
    elif not passed:
        step, r, u = stats.first_fail or stats.worst
        row.message = (
            f"over the {mode} tolerance ({_describe_tol(mode_tol, scales[0])}): first at step {step}, "
            f"row {r}, unit {u}; max |d| = {stats.max_abs:.3g} ({stats.ratio:.3g}x)"
        )
    return row


def sweep_rows(cases, modes=None, *, pool=None, workdir=None, timeout=180.0, conversions=None, names=None) -> list:
    """Every case (Keras 3 and tf_keras mixed) in every mode: a list of
    :class:`TFLiteRow`, case-major, modes in the order given.  ``pool``: an
    :class:`~lstm_ref.harness.oracles.pool.OraclePool` (one is made and
    closed otherwise); ``conversions``: the output of :func:`convert_cases`,
    to reuse converted models."""
    modes = [m.name if isinstance(m, Mode) else m for m in (modes or MODES)]
    conversions = conversions or convert_cases(cases, modes, workdir, timeout=timeout)
    own = pool is None
    pool = pool or OraclePool()
    try:
        worker = pool.get(TARGET.oracle.name)
        rows = []
        for i, case in enumerate(cases):
            keras_outs = conversions.get((i, "keras"))
            for mode in modes:
                name = (names[i] if names else "") or case.name or f"case {i}"
                rows.append(evaluate(case, mode, conversions[(i, mode)], keras_outs, worker, case_name=name))
        return rows
    finally:
        if own:
            pool.close()


def tflite_rows(case, modes=None, **kwargs) -> list:
    """One case in every mode (or ``modes``): a list of :class:`TFLiteRow`.

    For the report::

        from lstm_ref.harness.tflite.target import tflite_rows
        for row in tflite_rows(case):          # converts, runs, compares
            row.mode, row.status, row.message, row.max_abs, row.leaves_float32_at, row.compared, row.lowering

    ``kwargs`` as :func:`sweep_rows` (``pool``, ``workdir``, ``timeout``)."""
    return sweep_rows([case], modes, **kwargs)


def error_growth(rows) -> dict:
    """Per mode (rows of one case): ``{"per_step": array | None,
    "max_abs", "leaves_float32_at", "status", "message"}``: how the error
    grows with the step, and the first step at which it leaves float32's
    TFLite tolerance (``None``: never)."""
    return {
        r.mode: {
            "per_step": r.per_step,
            "max_abs": r.max_abs,
            "leaves_float32_at": r.leaves_float32_at,
            "status": r.status,
            "message": r.message,
        }
        for r in rows
    }


def plot_growth(rows, path, title=""):
    """Error vs step per mode (log y), PNG at ``path``; a mode that did not
    convert is named in the legend with its message.  Needs matplotlib (the
    ``report`` extra)."""
    import matplotlib

    matplotlib.use("Agg")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    styles = {
        "float32": ("-", "o", 6),
        "float16": ("-", ".", 4),
        "dynamic_range": ("--", "x", 5),
        "int8": ("-", ".", 4),
        "int16x8": ("-", ".", 4),
    }  # dynamic range often equals float32: dashed on top
    for r in rows:
        if r.per_step is not None:
            steps = np.arange(len(r.per_step))
            exact = np.where(r.per_step > 0, r.per_step, np.nan)  # an exact step (0) has no place on a log axis
            ls, marker, size = styles.get(r.mode, ("-", ".", 4))
            ax.semilogy(
                steps,
                exact,
                ls=ls,
                marker=marker,
                ms=size,
                lw=1,
                mfc="none" if marker == "o" else None,
                label=f"{r.mode} (max {r.max_abs:.2g}" + (", exact steps not drawn)" if np.isnan(exact).any() else ")"),
            )
        else:
            ax.plot([], [], " ", label=textwrap.fill(f"{r.mode}: {r.message or r.status}", 48))
    f32 = TFLITE_TOLERANCES["float32"]
    ax.axhline(f32.atol, color="gray", ls=":", lw=0.8, label=f"float32 tolerance: {f32.atol:g} + {f32.rtol:g} |h|")
    ax.set_xlabel("step")
    ax.set_ylabel("max |tflite - reference| over rows, units")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def markdown_table(rows) -> str:
    """The per-mode table of one or more cases, as Markdown."""
    lines = [
        "| case | kind | mode | lowering | status | compared | max abs | leaves float32 at step | "
        "invokes bitwise | message |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        leaves = "-" if r.per_step is None else ("never" if r.leaves_float32_at is None else str(r.leaves_float32_at))
        lines.append(
            f"| {r.case} | {r.kind} | {r.mode} | {r.lowering or '-'} | {r.status} | {r.compared or '-'} | "
            f"{'-' if np.isnan(r.max_abs) else f'{r.max_abs:.2g}'} | {leaves} | "
            f"{'-' if r.bitwise_repeat is None else r.bitwise_repeat} | {r.message} |"
        )
    return "\n".join(lines)
