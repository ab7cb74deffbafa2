"""Judge the reference on a recording: each recorded case through the one
comparison (``compare.run_and_compare``: tolerance and one-step claim), each
float16 activation table against its profile's ulp bounds.  The replay
tests and ``lstm-ref replay`` both call :func:`replay_case` and
:func:`replay_activation`, so their verdicts cannot disagree."""

import numpy as np

from .. import activations
from .compare import failure_note, run_and_compare, ulps_apart
from .tolerances import float16_activation_ulps

LOOKUP = {"keras.layers.LSTM": activations.get, "tf_keras.layers.LSTM": activations.get_keras2}


def float16_inputs(width):
    """Every finite float16, in rows of ``width`` (as recorded)."""
    bits = np.arange(2**16, dtype=np.uint16).view(np.float16)
    finite = bits[np.isfinite(bits)]
    return finite[: finite.size // width * width].reshape(-1, width)


def replay_case(recording, name):
    """``(passed, detail, Comparison)`` for one recorded case."""
    case, expected = recording.case(name)
    trace, _, _, result = run_and_compare(case, expected)
    detail = "" if result.passed else failure_note(result, trace, expected, f"{recording.name}/{name}")
    return result.passed, detail, result


def replay_activation(recording, kind, name, width, tf_y):
    """``(passed, detail, (worst ulps, values off))`` for one activation table."""
    profile = recording.profile
    x = float16_inputs(width)
    with np.errstate(all="ignore"):
        ours = LOOKUP[kind](name, role="activation", platform=profile)(x)
    ulps = ulps_apart(ours, tf_y, np.float16)
    measured = (int(ulps.max()), int(np.count_nonzero(ulps)))
    worst, count = float16_activation_ulps(name, profile, width)
    passed = measured[0] <= worst and measured[1] <= count
    detail = (
        ""
        if passed
        else (
            f"{name} ({kind}, rows of {width}, {profile}): {measured[1]} values not bitwise "
            f"(bound {count}), worst {measured[0]} ulp (bound {worst})"
        )
    )
    return passed, detail, measured


def replay(recording, progress=None):
    """Every case and activation table of ``recording``: a list of rows."""
    rows = [
        {"name": name, "passed": False, "detail": f"refused when recording: {why}"}
        for name, why in sorted(recording.refused().items())
    ]
    names = recording.case_names()
    tables = recording.activations()
    total = len(names) + len(tables)
    for i, name in enumerate(names, 1):
        passed, detail, result = replay_case(recording, name)
        rows.append(
            {
                "name": name,
                "passed": passed,
                "ratio": result.ratio,
                "detail": detail,
                "one_step_exact": {k: f.exact_share for k, f in result.one_step.items()},
            }
        )
        if progress:
            progress(i, total, name)
    for i, ((kind, name, width), tf_y) in enumerate(sorted(tables.items()), len(names) + 1):
        passed, detail, measured = replay_activation(recording, kind, name, width, tf_y)
        rows.append({"name": f"activation {kind}|{name}|{width}", "passed": passed, "ulps": measured, "detail": detail})
        if progress:
            progress(i, total, name)
    return rows
