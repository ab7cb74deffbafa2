"""``make report``'s gradient section: ``Reference.grad`` against each
framework's reverse mode on every kind's sweep, and one long sequence's
per-step ``dL/dc_t``.

Each sweep case whose kind has a gradient oracle and a measured bound for
its dtype (``KindRecord.grad``) gets a seeded upstream on the fields the
framework returns, the framework's gradient (``tf.GradientTape`` /
``torch.autograd`` on the real layer or cell; ONNX through the torch oracle:
:mod:`~lstm_ref.harness.grad_oracle`) and the reference's, compared by the
one gradient verdict (:func:`~lstm_ref.harness.grad_oracle.check`: the
kind's bound plus the reference's own rounding spread).  A case the
reference or the framework refuses is a row with the reason, not a crash.

The long sequence: a Keras 3 LSTM over T=200 steps, the loss on the last
step's output alone, so ``dL/dc_t`` carries the gradient back through every
step: how fast it vanishes (or grows, with a forget bias driven high), and
whether TF agrees at each step, plotted as ``|dL/dc_t|`` for both and their
per-step ratio to the bound.
"""

from dataclasses import dataclass, field

import numpy as np

from ..case import Case, build_weights
from ..errors import LstmRefError
from . import check_grad, grad_oracle
from .oracles.client import OracleError, OracleInputError
from .records import RECORDS

LONG = 200


@dataclass
class GradRow:
    case: str
    kind: str
    dtype: str
    tol: float = None
    ratio: float = None
    worst: str = ""  # the array with the worst ratio
    arrays: dict = field(default_factory=dict)  # name -> ratio
    error: str = ""  # the framework failed or crashed on the case: a finding
    refused: str = ""  # no framework computes this case's gradient (said, not a failure)

    @property
    def passed(self):
        return bool(self.refused) or (not self.error and self.ratio is not None and self.ratio <= 1.0)

    @property
    def verdict(self):
        if self.refused:
            return f"not covered: {self.refused}"
        if self.error:
            return f"ERROR: {self.error}"
        return "PASS" if self.passed else "FAIL"


def measure(case, pool, tol, seed=0):
    """``{array: GradVerdict}`` for one case: the framework's gradient
    (:mod:`~lstm_ref.harness.grad_oracle`; ONNX through the torch oracle)
    against the reference's, on a seeded upstream."""
    upstream = grad_oracle.draw_upstream(case, np.random.default_rng([seed, 29]))
    return grad_oracle.check(pool.for_kind, case, upstream, tol)


def collect(pool, progress=True):
    """``[GradRow]`` over every kind's sweep (cases with a gradient bound)."""
    jobs = []
    for record in RECORDS:
        if not record.grad:
            continue
        for case in record.sweep():
            try:
                tol = record.grad_tolerance(case.config.get("dtype"))
            except KeyError:
                continue
            jobs.append((record, case, tol))
    try:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="gradients", unit="case", disable=not progress)
    except ImportError:  # pragma: no cover
        pass
    rows = []
    for _record, case, tol in jobs:
        row = GradRow(case.name, case.kind, str(case.config.get("dtype", "float32")), tol)
        try:
            stats = measure(case, pool, tol)
        except (LstmRefError, OracleInputError) as exc:  # the converter or the worker refuses the config
            row.refused = str(exc).splitlines()[0]
            rows.append(row)
            continue
        except (OracleError, KeyError) as exc:
            row.error = str(exc).splitlines()[0]
            rows.append(row)
            continue
        ratios = {k: v["ratio"] for k, v in check_grad.arrays(stats).items()}
        row.worst = max(ratios, key=ratios.get)
        row.ratio, row.arrays = ratios[row.worst], ratios
        rows.append(row)
    return rows


@dataclass
class LongRun:
    """The T=200 sequence: per step ``|dL/dc_t|`` (max over rows and units),
    the reference's and TF's, and their per-step ratio to the allowance
    ``tol`` (the kind's float64 bound plus k x the reference's own spread
    over the array, ``grad_oracle.verdicts``)."""

    forget_bias: float
    ref: np.ndarray
    tf: np.ndarray
    ratio: np.ndarray
    tol: float

    @property
    def passed(self):
        return bool(self.ratio.max() <= 1.0)


def long_sequence(pool, forget_bias=0.0, seed=0):
    """One Keras 3 LSTM (float64, 4 units) over ``LONG`` steps, the loss on
    the last output; ``forget_bias`` is added to the forget gate's bias
    (0: the gradient vanishes; 3: it carries far)."""
    from .records import record_of

    kind = "keras.layers.LSTM"
    config = {"units": 4, "dtype": "float64", "return_sequences": True}
    rng = np.random.default_rng([seed, 31])
    probe = Case(kind, config, rng.standard_normal((2, LONG, 3)), {})
    weights = build_weights(probe.reference(), rng, 3)
    weights["bias"] = np.array(weights["bias"])
    weights["bias"][4:8] += forget_bias  # Keras' gate order i, f, c, o
    case = Case(kind, config, probe.x, weights, name=f"long_T{LONG}_forget{forget_bias:+g}")
    up = {"h": np.zeros((2, LONG, 4))}
    up["h"][:, -1] = rng.standard_normal((2, 4))
    theirs, _ = grad_oracle.framework_grads(pool.for_kind, case, up)
    tol = record_of(kind).grad_tolerance("float64")
    ours = grad_oracle.reference_grads(case, up)
    allowed = grad_oracle.verdicts(case, up, ours, theirs, tol)["steps:c_carried"].allowed  # tol + k x spread
    ref, tf = ours["steps:c_carried"], np.asarray(theirs["steps:c_carried"])
    ratio = np.abs(tf - ref) / (allowed * (1 + np.abs(ref)))
    return LongRun(
        forget_bias, np.abs(ref).max(axis=(0, 2)), np.abs(tf).max(axis=(0, 2)), ratio.max(axis=(0, 2)), allowed
    )


def markdown(rows, longs):
    lines = [
        "## Gradients (BPTT)",
        "",
        f"{sum(r.passed and not r.refused for r in rows)}/{len(rows)} sweep cases within their gradient bound, "
        f"{sum(bool(r.refused) for r in rows)} not covered (no framework computes that config's gradient: the "
        "finite differences of parity_tests/test_grad.py check them). `ratio` is the worst "
        "t / allowed over dL/dx, the initial states, every weight and the per-step dL/dh_t, dL/dc_t the "
        "framework gives (<= 1 passes): t = max |g_ref - g_framework| / (1 + |g_ref|), allowed = tol + k x the "
        "reference's own gradient spread under one rounding of its inputs (grad_oracle); `tol` is the kind's "
        "measured bound (KindRecord.grad). The upstream is seeded N(0, 1) on the fields the framework returns.",
        "",
        "| case | kind | dtype | tol | ratio | worst array | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = r.verdict
        ratio = "" if r.ratio is None else f"{r.ratio:.3g}"
        lines.append(f"| {r.case} | {r.kind} | {r.dtype} | {r.tol:g} | {ratio} | {r.worst} | {verdict} |")
    for run in longs:
        lines += [
            "",
            f"Long sequence (T={LONG}, loss on the last output, forget bias {run.forget_bias:+g}): max |dL/dc_t| "
            f"{run.ref[-2]:.3g} one step before the last, {run.ref[0]:.3g} at step 0 (reference), "
            f"{run.tf[0]:.3g} (TF); "
            f"worst per-step ratio {run.ratio.max():.3g} at step {int(run.ratio.argmax())} "
            f"({'PASS' if run.passed else 'FAIL'}).",
        ]
    return lines


def as_json(rows, longs):
    return {
        "rows": [{**r.__dict__, "passed": r.passed} for r in rows],
        "long": [
            {
                "forget_bias": run.forget_bias,
                "tol": run.tol,
                "ref_max_abs_dc": run.ref.tolist(),
                "tf_max_abs_dc": run.tf.tolist(),
                "ratio": run.ratio.tolist(),
                "passed": run.passed,
            }
            for run in longs
        ],
    }


def html_section(rows, longs):
    """The section as HTML: the table, the long runs' lines and their plot."""
    import html

    md = markdown(rows, longs)
    head = ("case", "kind", "dtype", "tol", "ratio", "worst array", "verdict")
    out = [f"<h2>{html.escape(md[0][3:])}</h2>", f"<p>{html.escape(md[2])}</p>", "<div class='wrap'><table><tr>"]
    out.append("".join(f"<th>{h}</th>" for h in head) + "</tr>")
    for r in rows:
        verdict = r.verdict
        cells = (r.case, r.kind, r.dtype, f"{r.tol:g}", "" if r.ratio is None else f"{r.ratio:.3g}", r.worst, verdict)
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        out.append(f"<tr class='{'' if r.passed else 'fail'}'>{tds}</tr>")
    out.append("</table></div>")
    if longs:
        out += [f"<p>{html.escape(line)}</p>" for line in md[len(rows) + 6 :] if line]
        out.append(f"<img alt='dL/dc_t over T={LONG}' src='data:image/png;base64,{plot(longs)}'>")
    return "\n".join(out)


def plot(longs):
    """A PNG (base64) of |dL/dc_t| against t, reference and TF, for each long run."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def positive(v):  # the last step's carried dL/dc is exactly 0 (the loss reads h_T): not drawn on a log axis
        return np.where(v > 0, v, np.nan)

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for run in longs:
        steps = np.arange(len(run.ref))
        axes[0].semilogy(steps, positive(run.ref), label=f"reference, forget bias {run.forget_bias:+g}")
        axes[0].semilogy(steps, positive(run.tf), ":", label=f"TF, forget bias {run.forget_bias:+g}")
        axes[1].semilogy(steps, positive(run.ratio), label=f"forget bias {run.forget_bias:+g}")
    axes[0].set(xlabel="step t", ylabel="max |dL/dc_t|", title=f"gradient carried back over T={LONG}")
    axes[1].axhline(1.0, color="k", lw=0.8)
    axes[1].set(xlabel="step t", ylabel="|d| / bound", title="reference vs TF per step (<= 1 passes)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()
