"""float16 arithmetic, pinned to the ulp, per platform profile.

The free-running float16 bound (``tolerances.TOLERANCES``) has to absorb
what a recurrence does to a one-ulp difference; these tests do not.  Each
activation alone is checked on every finite float16 value, and the cells'
one-step claim (``tolerances.OneStepBound``: a step started from TF's own
state is bitwise TF's) is checked by every float16 case of the golden and
live tests through the one comparison (``compare.run_and_compare``).

What TF computes in float16 depends on the CPU (``lstm_ref/platform.py``),
so the live tests run under each of this machine's TF settings
(``conftest.TF_SETTINGS``: TF's default, and ``TF_ENABLE_ONEDNN_OPTS=0``),
each judged by the profile its worker reports; other CPUs are replayed
from their recordings (``test_platforms.py``).
"""

import numpy as np
import pytest

from conftest import TF_SETTINGS
from lstm_ref import activations, platform
from lstm_ref.harness.compare import ulps_apart
from lstm_ref.harness.tolerances import WIDE_SOFTMAX_NAMES, float16_activation_ulps

# The kinds this module checks: `make mutants` runs it against their mutants.
pytestmark = pytest.mark.kinds("keras3", "tf_keras")

ALL_FLOAT16 = np.arange(2**16, dtype=np.uint16).view(np.float16)
FINITE = ALL_FLOAT16[np.isfinite(ALL_FLOAT16)]

WORKERS = {  # the activation names each worker resolves, and the reference's lookup for them
    "keras.layers.LSTM": (sorted(activations.KERAS3), activations.get),
    "tf_keras.layers.LSTM": (activations.TF_KERAS_NAMES, activations.get_keras2),
}


def assert_activation_ulps(ours_fn, tf_y, name, x, bound, where):
    """``ours_fn(x)`` against TF's ``tf_y`` within ``bound`` = (worst ulps, values off)."""
    with np.errstate(all="ignore"):
        ours = ours_fn(x)
    ulps = ulps_apart(ours, tf_y, np.float16)
    worst, count = bound
    off = np.flatnonzero(ulps)
    assert ulps.max() <= worst and off.size <= count, (
        f"{name} (float16, {where}, rows of {x.shape[-1]}): {off.size} of {ulps.size} inputs not bitwise TF "
        f"(bound {count}), worst {ulps.max()} ulp (bound {worst}); first x={x.flat[off[0]]!r}: "
        f"ours={ours.flat[off[0]]!r} tf={tf_y.flat[off[0]]!r}"
    )


def _live(oracle_for_setting, kind, setting, name, width):
    oracle = oracle_for_setting(kind, setting)
    profile = oracle.platform
    # The worker's profile is the one its setting decides on this CPU.
    assert profile == platform.detect(onednn=TF_SETTINGS[setting].get("TF_ENABLE_ONEDNN_OPTS")), oracle.hello()
    x = FINITE[: FINITE.size // width * width].reshape(-1, width)
    _, out = oracle.request({"op": "activation", "name": name}, {"x": x})
    assert_activation_ulps(
        WORKERS[kind][1](name, role="activation", platform=profile),
        out["y"],
        name,
        x,
        float16_activation_ulps(name, profile, width),
        f"{kind}, {profile}",
    )


@pytest.mark.parametrize("setting", sorted(TF_SETTINGS))
@pytest.mark.parametrize("kind,name", [(k, n) for k, (names, _) in WORKERS.items() for n in names])
def test_float16_activation_to_the_ulp(oracle_for_setting, kind, name, setting):
    """Every finite float16 input, in rows of 4 (a gate block): bitwise TF,
    or the measured ulps listed for the worker's profile."""
    _live(oracle_for_setting, kind, setting, name, 4)


@pytest.mark.parametrize("setting", sorted(TF_SETTINGS))
@pytest.mark.parametrize(
    "kind,name", [(k, n) for k, (names, _) in WORKERS.items() for n in names if n in WIDE_SOFTMAX_NAMES]
)
def test_float16_softmax_over_wide_rows(oracle_for_setting, kind, name, setting):
    """Rows of 62: Eigen's packet reduction order is not modelled (the
    measured ulps); oneDNN's softmax is (bitwise)."""
    _live(oracle_for_setting, kind, setting, name, 62)


def test_float16_sigmoid_is_eigen_generic_logistic():
    """e / (1 + e) in half, 1 where exp overflows: not 1 / (1 + exp(-x))
    rounded once, which is 2 ulp off on 14% of inputs (pinned against TF
    above; here the two forms are shown to differ, so the pin can fail)."""
    x = FINITE.ravel()
    with np.errstate(over="ignore"):
        once = (1 / (1 + np.exp(-x.astype(np.float32)))).astype(np.float16)
    assert np.mean(ulps_apart(activations.sigmoid(x), once, np.float16) != 0) > 0.1
    assert activations.sigmoid(np.array([12.0], np.float16))[0] == 1  # exp(12) overflows float16


@pytest.mark.parametrize("width", [4, 62])
def test_float16_softmax_profiles_differ(width):
    """The two softmax models are far apart on the same inputs, so a
    profile misdetected (or the wrong model on a profile) fails the pins."""
    x = FINITE[: FINITE.size // width * width].reshape(-1, width)
    with np.errstate(all="ignore"):
        eigen = activations.softmax(x)
        onednn = activations.softmax_rounded_once(x)
    off = np.count_nonzero(ulps_apart(eigen, onednn, np.float16))
    assert off > 10_000, off
