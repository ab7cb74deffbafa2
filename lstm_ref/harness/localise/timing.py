"""``make bench``'s localisation line: how long ``diagnose`` takes to
localise a fault no catalogue lists, on the probe of the default size
(:func:`lstm_ref.harness.diagnose.probe`: batch 3, 8 steps), per kind, at
the bench's own middle shape (128 inputs, 256 units) and at a small one.

The fault is one gate's bias offset in one unit, which the search reaches
in its last stage (one unit), after the catalogue and its pairs found
nothing; each line gives the localisation alone and the whole diagnosis.
"""

import time

import numpy as np

GOAL_S = 10.0  # localisation on the default probe, on this 2-core machine
KINDS = (
    ("keras.layers.LSTM", lambda f, u: {"units": u}),
    ("torch.nn.LSTM", lambda f, u: {"input_size": f, "hidden_size": u}),
    ("onnx.LSTM", lambda f, u: {"hidden_size": u}),
)
SHAPES = ((32, 64), (128, 256))  # (inputs, units)


def measure(kind, config, features):
    """(localisation seconds, diagnose seconds, the answer) for one gate's
    bias offset by 0.5 in unit 3 of ``kind`` on its default probe."""
    from ..diagnose import diagnose, probe

    case = probe(kind, config, features)
    ref = case.reference()
    weights = {k: np.array(v, copy=True) for k, v in case.weights.items()}
    name = next(k for k in weights if "bias" in k or k == "B")
    axis, _ = ref.gate_blocks(name, weights[name].shape)
    idx = [slice(None)] * weights[name].ndim
    idx[axis] = ref.GATES.index("f") * ref.units + 3
    weights[name][tuple(idx)] += 0.5
    observed = case.run(ref, weights=weights).fields
    start = time.perf_counter()
    d = diagnose(case, observed)
    total = time.perf_counter() - start
    loc = d.localisation
    return loc.seconds, total, f"{loc.verdict}: {loc.best.says if loc.best else '-'}"


def lines():
    out, worst = [], 0.0
    for features, units in SHAPES:
        for kind, make in KINDS:
            seconds, total, answer = measure(kind, make(features, units), features)
            worst = max(worst, seconds)
            out.append(
                f"  {kind} ({features} inputs, {units} units): localisation {seconds:.2f} s "
                f"(diagnose {total:.2f} s with the catalogue and its pairs); {answer}"
            )
    verdict = "met" if worst < GOAL_S else "MISSED"
    head = f"diagnose: localising a fault no catalogue lists, on the default probe (goal < {GOAL_S:g} s: {verdict}):"
    return [head, *out]


if __name__ == "__main__":
    print("\n".join(lines()))
