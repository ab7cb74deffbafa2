"""The report's TFLite section: what the phone runs, per mode, step by step.

For the seed scenario and one long sequence (T=200), under both lowerings
(Keras 3's WHILE loop, tf_keras' fused ``UNIDIRECTIONAL_SEQUENCE_LSTM``),
every mode is converted, run in LiteRT and compared with the reference
(:mod:`lstm_ref.harness.tflite.target`): a table row per mode -- max error,
what was compared, the step at which the mode first leaves float32's
tolerance, a converter crash or refusal as its own row -- and a plot of the
error against the step, per mode.
"""

import base64
import html
from pathlib import Path

import numpy as np

from ..case import Case, build_weights
from ..reference import from_config
from .kinds.keras3 import keras_seed_the_mice_had
from .kinds.tf_keras import tf_keras_seed_the_mice_had
from .tflite.target import error_growth, markdown_table, plot_growth, sweep_rows


def cases():
    """The seed scenario under both lowerings, and T=200 (8 features, 16 units)."""

    out = [
        keras_seed_the_mice_had().replace(name="seed (Keras 3)"),
        tf_keras_seed_the_mice_had().replace(name="seed (tf_keras)"),
    ]
    for kind, label in (("keras.layers.LSTM", "Keras 3"), ("tf_keras.layers.LSTM", "tf_keras")):
        rng = np.random.default_rng(200)
        weights = build_weights(from_config(kind, {"units": 16}), rng, 8)
        x = rng.standard_normal((2, 200, 8)).astype(np.float32)
        out.append(Case(kind, {"units": 16}, x, weights, name=f"T=200 (8 features, 16 units, {label})"))
    return out


def collect(pool, out_dir, progress=True):
    """``[(case name, rows, plot path)]``: every mode of every case."""

    chosen = cases()
    if progress:
        print(f"tflite: converting {len(chosen)} cases in every mode (one converter process per lowering)")
    rows = sweep_rows(chosen, pool=pool)
    sections = []
    for case in chosen:
        mine = [r for r in rows if r.case == case.name]
        slug = "".join(ch if ch.isalnum() else "_" for ch in case.name).strip("_").lower()
        sections.append(
            (
                case.name,
                mine,
                plot_growth(mine, Path(out_dir) / f"tflite_{slug}.png", title=f"{case.name}: error per step, per mode"),
            )
        )
    return sections


def failed(sections):
    """Rows over their mode's measured tolerance (a crash or refusal is a finding, not a failure)."""
    return [r for _, rows, _ in sections for r in rows if r.status == "fail"]


def markdown(sections) -> list:

    lines = [
        "## TFLite deployment (tflite target)",
        "",
        "Each mode converted by TF's TFLiteConverter in a process of its own (a crash is a row), run by "
        "LiteRT with its variables reset before every invoke, against the reference; quantised modes "
        "within their measured tolerances (lstm_ref/harness/tolerances.py, TFLITE_TOLERANCES).",
        "",
    ]
    for name, rows, plot in sections:
        lines += [f"### {name}", "", markdown_table(rows), "", f"![error per step]({plot.name})", ""]
    return lines


def html_section(sections) -> str:

    out = [
        "<h2>TFLite deployment</h2><p>Each mode converted in a process of its own (a crash is a row), run by "
        "LiteRT with its variables reset before every invoke, against the reference.</p>"
    ]
    for name, rows, plot in sections:
        table = markdown_table(rows).splitlines()
        head = [c.strip() for c in table[0].strip("|").split("|")]
        body = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
        out.append(
            f"<h3>{html.escape(name)}</h3><table class='summary'><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr>"
            + "".join("<tr>" + "".join(f"<td class='l'>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
            + "</table>"
        )
        data = base64.b64encode(Path(plot).read_bytes()).decode()
        out.append(
            f"<figure><img alt='TFLite error per step for {html.escape(name)}' "
            f"src='data:image/png;base64,{data}'></figure>"
        )
    return "".join(out)


def as_json(sections) -> list:

    return [
        {
            "case": name,
            "plot": str(plot),
            "modes": {
                m: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in g.items()}
                for m, g in error_growth(rows).items()
            },
        }
        for name, rows, plot in sections
    ]
