"""``make report``: how close is the reference to TF, where, and can each case
even tell right from wrong semantics?

Runs every golden fixture (against TF's stored outputs) and the seeded live
sweep (against each oracle worker), through ``compare`` and the one tolerance
table, and writes ``reports/parity.{md,json,html}``.  Exit code 1 when any
case is over tolerance.
"""

import base64
import html
import io
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import platform as profiles
from . import backends, cross_framework, grad_report, tflite_report
from .compare import compare, per_step_max_abs, run_and_compare
from .golden import store
from .oracles import provenance
from .oracles.client import OracleError
from .oracles.pool import OraclePool
from .records import RECORDS, record_of

REPORTS = Path("reports")


@dataclass
class Row:
    case: str
    source: str  # "golden" or "live"
    kind: str
    oracle: str
    dtype: str
    shape: str  # batch x time x features -> units
    tolerance: dict
    fields: dict  # h/c -> stats
    passed: bool
    ratio: float  # worst |err| / tolerance over h and c (<= 1 passes)
    oracle_mode: dict = None  # float64 reference against TF: what is TF's own rounding
    variants: dict = field(default_factory=dict)  # wrong semantics -> ratio to tolerance
    error: str = None
    per_step: dict = field(default_factory=dict)  # h/c -> max |err| per step (not in JSON)
    one_step: str = ""  # float16: the share of one-step values bitwise TF's (tolerances.OneStepBound)
    platform: str = ""  # the platform profile the reference reproduced (the oracle's, or the golden's)

    @property
    def nearest_wrong(self):
        if not self.variants:
            return None, None
        name = min(self.variants, key=self.variants.get)
        return name, self.variants[name]

    @property
    def blind_to(self):
        return sorted(n for n, r in self.variants.items() if r <= 1.0)


def _field_stats(f):
    return {
        "max_abs": f.max_abs,
        "max_rel": f.max_rel,
        "max_ulp": f.max_ulp,
        "worst_step_row_unit": list(f.worst),
        "ratio": f.ratio,
        "margin": (1.0 / f.ratio) if f.ratio > 0 else float("inf"),
        "passed": f.passed,
    }


def _one_step_text(result, profile):
    """The float16 one-step claim, and the platform profile it was proved on."""
    if result.one_step:
        shares = " / ".join(f"{k} {100 * f.exact_share:.2f}%" for k, f in result.one_step.items())
        return f"{shares} bitwise (on {profile})"
    return result.one_step_note.replace("no one-step claim: ", "n/a: ")


def evaluate(source, case, desired, oracle_label):
    ref = case.reference()
    dtype = ref.policy.compute
    trace, exact, own, result = run_and_compare(case, desired, ref)
    sequences = [name for name in trace.fields if np.ndim(trace[name]) == 3]
    row = Row(
        case=case.name,
        source=source,
        kind=case.kind,
        oracle=oracle_label,
        dtype=ref.policy.name,
        shape=f"{case.x.shape[0]}x{case.x.shape[1]}x{case.x.shape[2]}->{ref.units}",
        tolerance={"atol": result.tolerance.atol, "rtol": result.tolerance.rtol, "rounding": result.tolerance.rounding},
        fields={k: _field_stats(f) for k, f in result.fields.items()},
        passed=result.passed,
        ratio=result.ratio,
        per_step={k: per_step_max_abs(trace, desired, k) for k in sequences},
        one_step=_one_step_text(result, ref.platform),
        platform=str(ref.platform),
    )
    if exact is not None:
        r64 = compare(exact, desired, dtype, kind=case.kind)
        row.oracle_mode = {"ratio": r64.ratio, **{f"{k}_max_abs": r64.fields[k].max_abs for k in sequences}}
    for variant in record_of(case.kind).variants:
        if variant.applies(case):
            with np.errstate(all="ignore"):
                row.variants[variant.name] = compare(variant.run(case), desired, dtype, kind=case.kind, own=own).ratio
    return row


def collect(pool, with_live=True, progress=True):
    jobs = [("golden", cid) for cid in store.case_ids()]
    if with_live:
        for record in RECORDS:
            jobs.extend(("live", case) for case in record.sweep())
    try:
        from tqdm import tqdm

        iterator = tqdm(jobs, desc="parity", unit="case", disable=not progress)
    except ImportError:  # pragma: no cover
        iterator = jobs
    rows = []
    for source, job in iterator:
        if source == "golden":
            golden = store.load(job)
            prov = golden.meta["provenance"]
            label = f"golden ({prov.get('oracle', '?')}: {_versions(prov)})"
            rows.append(evaluate("golden", golden.case, golden.expected, label))
            continue
        case = job
        oracle = pool.for_kind(case.kind)
        try:
            desired = oracle.run(case)
            info = oracle.hello()
        except OracleError as exc:
            rows.append(
                Row(
                    case.name,
                    "live",
                    case.kind,
                    oracle.spec.name,
                    case.config.get("dtype", "float32"),
                    "",
                    {},
                    {},
                    False,
                    float("inf"),
                    error=str(exc).splitlines()[0],
                )
            )
            continue
        label = f"{info.get('oracle')}: {_versions(info)}"
        rows.append(evaluate("live", case, desired, label))
    return rows


def profile_env():
    """This machine's profile: the live rows' (each worker's own machine)."""
    profile = profiles.detect()
    return {
        "platform_profile": {
            "name": profile.name,
            "source": "detected (the workers' machine)",
            "summary": profile.summary,
        }
    }


def fingerprint(pool):
    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": provenance.numpy_blas(),
        "cpu": provenance.cpu_model(),
        "cpu_flags": provenance.cpu_flags(),
        "onednn": provenance.onednn_setting(),
        "platform": platform.platform(),
        "oracles": {},
        **profile_env(),
    }
    for name in sorted({record.oracle.name for record in RECORDS}):
        try:
            env["oracles"][name] = pool.get(name).hello()
        except OracleError as exc:
            env["oracles"][name] = {"error": str(exc).splitlines()[0]}
    return env


def _fmt(v, spec=".2e"):
    return "n/a" if v is None else format(v, spec)


def _discrimination(row):
    name, ratio = row.nearest_wrong
    if name is None:
        return "no wrong variant applies"
    if row.blind_to:
        return f"BLIND to {', '.join(row.blind_to)}"
    return f"{ratio:.3g}x tol ({name})"


def _profile_line(env):
    p = env.get("platform_profile", {})
    return (
        f"Platform profile of this machine: {p.get('name')} ({p.get('summary')}). Live rows are judged on it; "
        "goldens on the profile they were recorded on; exact float16 claims (the one-step column) name the "
        "profile they hold on; other CPUs are replayed from their recordings (parity_tests/test_platforms.py)."
    )


def write_markdown(rows, env, path, cross=None, tflite=None, grads=None):
    lines = [
        "# lstm_ref parity report",
        "",
        _profile_line(env),
        "",
        f"{sum(r.passed for r in rows)}/{len(rows)} cases within tolerance. "
        "`ratio` is the worst |ref - tf| / bound over h, c and the final states (<= 1 passes), where the bound is "
        "atol + rtol |tf| + rounding x the reference's own rounding error (lstm_ref/harness/tolerances.py); "
        "`oracle mode` is the same for the float64 reference (TF's own rounding); "
        "`nearest wrong` is the smallest ratio any plausible wrong semantics reaches (> 1 means the case "
        "can tell it from the truth); `float16 one step` is the share of h and c values bitwise TF's when "
        "every step starts from TF's own state (part of the ratio).",
        "",
        "| case | source | kind | oracle | dtype | shape | h max abs | h max rel | h max ulp | h worst (step,row,unit) "
        "| c max abs | c max rel | c max ulp | c worst (step,row,unit) | atol / rtol / rounding | ratio | margin "
        "| oracle mode "
        "| nearest wrong | float16 one step | verdict |",
        "|" + "---|" * 21,
    ]
    for r in rows:
        if r.error:
            lines.append(
                f"| {r.case} | {r.source} | {r.kind} | {r.oracle} | {r.dtype} | | " + "| " * 13 + f"ERROR: {r.error} |"
            )
            continue
        h, c = _main_fields(r)
        lines.append(
            f"| {r.case} | {r.source} | {r.kind} | {r.oracle} | {r.dtype} | {r.shape} "
            f"| {_fmt(h['max_abs'])} | {_fmt(h['max_rel'])} | {h['max_ulp']:.3g} | {tuple(h['worst_step_row_unit'])} "
            f"| {_fmt(c['max_abs'])} | {_fmt(c['max_rel'])} | {c['max_ulp']:.3g} | {tuple(c['worst_step_row_unit'])} "
            f"| {r.tolerance['atol']:g} / {r.tolerance['rtol']:g} / {r.tolerance['rounding']:g} | {r.ratio:.3g} "
            f"| {1 / r.ratio if r.ratio else float('inf'):.3g}x "
            f"| {_fmt(r.oracle_mode and r.oracle_mode['ratio'], '.3g')} | {_discrimination(r)} | {r.one_step} "
            f"| {'PASS' if r.passed else 'FAIL'} |"
        )
    blind = [r for r in rows if r.blind_to or (not r.variants and not r.error)]
    lines += ["", "## Cases that prove little", ""]
    lines += [f"- `{r.case}`: {_discrimination(r)}" for r in blind] or ["- none"]
    if cross:
        lines += [""] + cross_framework.markdown(cross)
    lines += [""] + backends.findings_markdown()
    if tflite:
        lines += [""] + tflite_report.markdown(tflite)
    if grads:
        lines += [""] + grad_report.markdown(*grads)
    lines += ["", "## Environment", "", "```json", json.dumps(env, indent=1), "```", ""]
    path.write_text("\n".join(lines))


def write_json(rows, env, path, cross=None, tflite=None, grads=None):
    payload = {
        "environment": env,
        "cases": [],
        "cross_framework": cross_framework.as_json(cross or {}),
        "keras_backend_findings": backends.findings_json(),
        "tflite": tflite_report.as_json(tflite or []),
        "gradients": grad_report.as_json(*(grads or ([], []))),
    }
    for r in rows:
        d = asdict(r)
        d.pop("per_step")
        d["nearest_wrong"], d["nearest_wrong_ratio"] = r.nearest_wrong
        d["blind_to"] = r.blind_to
        payload["cases"].append(d)
    path.write_text(json.dumps(payload, indent=1, default=float))


def _plot(row):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(4.2, 2.3), dpi=90)
    floor = row.tolerance["atol"] * 1e-6  # where an exact (0) step is drawn
    exact = True
    for (name, errors), style in zip(row.per_step.items(), ("-", "--", ":", "-.")):
        errors = np.asarray(errors, dtype=np.float64)
        exact &= bool((errors == 0).all())
        ax.semilogy(
            np.arange(len(errors)),
            np.maximum(errors, floor),
            style,
            label=name,
            marker="." if len(errors) < 30 else None,
        )
    ax.axhline(row.tolerance["atol"], color="red", lw=0.8, ls=":", label="atol")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time step (processing order)", fontsize=8)
    ax.set_ylabel("max |ref - tf|", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(row.case + ("  (bitwise equal)" if exact else ""), fontsize=8)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    # fixed margins: tight_layout measured every tick label of 162 plots (half of `report --no-live`)
    fig.subplots_adjust(left=0.17, right=0.98, bottom=0.19, top=0.89)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1700px}
table{border-collapse:collapse;font-size:12px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;position:sticky;top:0}td.l,th.l{text-align:left}tr.fail td{background:#fdd}td.blind{color:#a60}
td.pass{color:#070;font-weight:600}td.failv{color:#b00;font-weight:700}.wrap{overflow-x:auto}
.plots{display:flex;flex-wrap:wrap;gap:8px}.plots figure{margin:0;border:1px solid #ddd;padding:4px}
.plots figcaption{font-size:11px;max-width:380px;white-space:normal}pre{background:#f7f7f7;padding:8px;font-size:11px}
.summary td{text-align:right}.summary td:first-child{text-align:left}"""


def _short(kind):
    return record_of(kind).label


def _main_fields(row):
    """(output, a state) of the row's family: the h and c columns (c is the
    per-step cell state where the family traces it, else the final one)."""
    reference = record_of(row.kind).reference
    state = reference.TRACED_STATES[0] if reference.TRACED_STATES else f"final_{reference.STATE[-1]}"
    return row.fields[reference.OUTPUT], row.fields[state]


def _versions(info):
    """The framework versions a worker's hello (or a golden's provenance) names."""
    return ", ".join(f"{label} {info[key]}" for key, label in provenance.FRAMEWORKS.items() if key in info) or "?"


def _kind_summary(rows):
    out = [
        "<table class='summary'><tr><th class='l'>kind</th><th>cases</th><th>pass</th><th>worst ratio</th>"
        "<th>worst h max abs</th><th>prove little</th></tr>"
    ]
    for kind in sorted({r.kind for r in rows}):
        mine = [r for r in rows if r.kind == kind and not r.error]
        errors = sum(1 for r in rows if r.kind == kind and r.error)
        worst = max((r.ratio for r in mine), default=float("nan"))
        worst_h = max((_main_fields(r)[0]["max_abs"] for r in mine), default=float("nan"))
        blind = sum(1 for r in mine if r.blind_to or not r.variants)
        out.append(
            f"<tr><td>{_short(kind)}</td><td>{len(mine) + errors}</td><td>{sum(r.passed for r in mine)}</td>"
            f"<td>{worst:.3g}</td><td>{worst_h:.2e}</td><td>{blind}</td></tr>"
        )
    return "".join(out) + "</table>"


def _cross_html(cross):

    cols = cross_framework.frameworks()
    out = [
        "<h2>Each kind &times; each framework</h2><p>Each kind's sweep cases, converted and run by every framework "
        "a converter reaches, against the <i>source kind's</i> reference: worst ratio (&le; 1 passes), margin, "
        "cases; <i>refused</i>: what a framework cannot express.</p><table class='summary'><tr><th class='l'>kind</th>"
        + "".join(f"<th>{html.escape(c)}<br>({html.escape(f)})</th>" for c, f in cols.items())
        + "</tr>"
    ]
    for source, row in cross.items():
        cells = [row.get(t) for t in cols] if source in cols else [row[source]] + [None] * (len(cols) - 1)
        tds = "".join(
            "<td>&mdash;</td>"
            if c is None
            else f"<td class='{'' if c.passed else 'failv'}'>{html.escape(cross_framework._text(c))}</td>"
            for c in cells
        )
        out.append(f"<tr><td class='l'>{html.escape(cross_framework.record_of_id(source).label)}</td>{tds}</tr>")
    return "".join(out) + "</table>"


def write_html(rows, env, path, cross=None, tflite=None, grads=None):

    head = [
        "case",
        "kind",
        "dtype",
        "verdict",
        "ratio",
        "nearest wrong semantics",
        "oracle mode",
        "h max abs",
        "h max rel",
        "h worst (step,row,unit)",
        "c max abs",
        "c max rel",
        "c worst (step,row,unit)",
        "h / c max ulp",
        "float16 one step",
        "shape",
        "oracle",
    ]
    left = {"case", "kind", "nearest wrong semantics", "oracle"}
    n_pass = sum(r.passed for r in rows)
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>lstm_ref parity</title>"
        f"<style>{_CSS}</style></head><body>",
        "<h1>lstm_ref parity report</h1>",
        f"<p>{html.escape(_profile_line(env))}</p>",
        f"<p><b>{n_pass}/{len(rows)} cases within tolerance.</b> <i>ratio</i> = worst |ref&minus;tf| / bound over h, c "
        "and the final states (&le; 1 passes; the bound is atol + rtol|tf| + rounding &times; the reference's own "
        "rounding error, see <code>lstm_ref/harness/tolerances.py</code>). "
        "<i>oracle mode</i> = the same ratio for the float64 "
        "reference: TF's own rounding. <i>nearest wrong semantics</i> = the smallest ratio a plausible wrong "
        "semantics reaches: &gt; 1 means the case can tell it from the truth; BLIND lists those it cannot.</p>",
        _kind_summary(rows),
        _cross_html(cross) if cross else "",
        tflite_report.html_section(tflite) if tflite else "",
        grad_report.html_section(*grads) if grads else "",
        "<h2>Cases</h2><div class='wrap'><table><tr>"
        + "".join(f"<th class='{'l' if h in left else ''}'>{h}</th>" for h in head)
        + "</tr>",
    ]
    for r in rows:
        if r.error:
            out.append(
                f"<tr class='fail'><td class='l'>{html.escape(r.case)}</td><td class='l'>{_short(r.kind)}</td>"
                f"<td>{r.dtype}</td><td class='failv'>ERROR</td><td colspan='{len(head) - 4}' class='l'>"
                f"{html.escape(r.error)}</td></tr>"
            )
            continue
        h, c = _main_fields(r)
        cells = [
            (f"{r.case} ({r.source})", "l"),
            (_short(r.kind), "l"),
            (r.dtype, ""),
            ("PASS" if r.passed else "FAIL", "pass" if r.passed else "failv"),
            (f"{r.ratio:.3g}", ""),
            (_discrimination(r), "l blind" if r.blind_to else "l"),
            (_fmt(r.oracle_mode and r.oracle_mode["ratio"], ".3g"), ""),
            (_fmt(h["max_abs"]), ""),
            (_fmt(h["max_rel"]), ""),
            (str(tuple(h["worst_step_row_unit"])), ""),
            (_fmt(c["max_abs"]), ""),
            (_fmt(c["max_rel"]), ""),
            (str(tuple(c["worst_step_row_unit"])), ""),
            (f"{h['max_ulp']:.3g} / {c['max_ulp']:.3g}", ""),
            (r.one_step, "l"),
            (r.shape, ""),
            (r.oracle, "l"),
        ]
        tds = "".join(f"<td class='{cls}'>{html.escape(str(v))}</td>" for v, cls in cells)
        out.append(f"<tr class='{'' if r.passed else 'fail'}'>{tds}</tr>")
    out.append(
        "</table></div><h2 id='plots'>Error against time step</h2>"
        "<p>max over rows and units of |ref&minus;tf| per step, for h and c; the dotted line is atol.</p>"
        "<div class='plots'>"
    )
    for r in rows:
        if r.error:
            continue
        out.append(
            f"<figure><img alt='error per step for {html.escape(r.case)}' src='data:image/png;base64,{_plot(r)}'>"
            f"<figcaption>{html.escape(r.case)}: {html.escape(_discrimination(r))}</figcaption></figure>"
        )
    out.append(f"</div><h2>Environment</h2><pre>{html.escape(json.dumps(env, indent=1))}</pre></body></html>")
    path.write_text("\n".join(out))


def print_summary(rows):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for r in rows:
            print(r.case, "PASS" if r.passed else "FAIL", f"{r.ratio:.3g}")
        return
    table = Table(title="lstm_ref parity", show_lines=False)
    for col in ("case", "dtype", "h max abs", "c max abs", "ratio", "oracle mode", "nearest wrong", "verdict"):
        table.add_column(col, justify="left" if col in ("case", "nearest wrong") else "right")
    for r in rows:
        if r.error:
            table.add_row(r.case, r.dtype, "", "", "", "", r.error[:60], "[red]ERROR")
            continue
        h, c = _main_fields(r)
        table.add_row(
            r.case,
            r.dtype,
            _fmt(h["max_abs"]),
            _fmt(c["max_abs"]),
            f"{r.ratio:.3g}",
            _fmt(r.oracle_mode and r.oracle_mode["ratio"], ".3g"),
            ("[yellow]" if r.blind_to else "") + _discrimination(r),
            "[green]PASS" if r.passed else "[red]FAIL",
        )
    console = Console(width=160)
    console.print(table)
    failed = [r.case for r in rows if not r.passed]
    console.print(
        f"{len(rows) - len(failed)}/{len(rows)} within tolerance" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )


def main(out_dir=REPORTS, with_live=True, progress=True):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pool = OraclePool()
    try:
        env = fingerprint(pool) if with_live else profile_env()
        rows = collect(pool, with_live=with_live, progress=progress)
        cross = cross_framework.collect(pool, progress=progress) if with_live else {}
        tflite = tflite_report.collect(pool, out_dir, progress=progress) if with_live else []
        grads = (
            (
                grad_report.collect(pool, progress=progress),
                [grad_report.long_sequence(pool, bias) for bias in (0.0, 3.0)],
            )
            if with_live
            else None
        )
    finally:
        pool.close()
    write_json(rows, env, out_dir / "parity.json", cross, tflite, grads)
    write_markdown(rows, env, out_dir / "parity.md", cross, tflite, grads)
    write_html(rows, env, out_dir / "parity.html", cross, tflite, grads)
    print_summary(rows)
    cells = [c for row in cross.values() for c in row.values()]
    # A Keras backend's column judges what Keras computes on JAX or torch against the layer's TF meaning:
    # where it differs that is a finding about the backend (docs/backends.md, reproduced by the reference with
    # config["backend"] and checked there), not a parity failure of the reference, as TFLite's below.
    backend = {(s, t) for s, row in cross.items() for t in row if "@" in t}
    found = [f"{s} -> {t}" for s, t in sorted(backend) if not cross[s][t].passed and not cross[s][t].errors]
    bad = [c for s, row in cross.items() for t, c in row.items() if not c.passed and f"{s} -> {t}" not in found]
    if cross:
        print(
            f"cross-framework: {len(cells) - len(bad) - len(found)}/{len(cells)} kind x framework cells within "
            "tolerance; Keras backends against the TF meaning, findings (docs/backends.md): "
            f"{', '.join(found) or 'none'}"
        )
    if tflite:  # what a deployment loses is a finding about the deployment, not a parity failure of the reference
        over = tflite_report.failed(tflite)
        print(
            f"tflite: {sum(len(r) for _, r, _ in tflite)} mode rows; findings over their mode's tolerance: "
            f"{', '.join(f'{r.case} {r.mode}' for r in over) or 'none'}"
        )
    grad_bad = []
    if grads:
        grad_bad = [r.case for r in grads[0] if not r.passed] + [
            f"long forget {run.forget_bias:+g}" for run in grads[1] if not run.passed
        ]
        print(
            f"gradients: {sum(r.passed and not r.refused for r in grads[0])}/{len(grads[0])} sweep cases "
            f"({sum(bool(r.refused) for r in grads[0])} not covered) and "
            f"{sum(run.passed for run in grads[1])}/{len(grads[1])} T={grad_report.LONG} runs within their bound"
            + (f"; FAILED: {', '.join(grad_bad)}" if grad_bad else "")
        )
    print(f"wrote {out_dir / 'parity.md'}, {out_dir / 'parity.json'}, {out_dir / 'parity.html'}")
    return 0 if all(r.passed for r in rows) and not bad and not grad_bad else 1
