"""The golden-case registry: ``@golden(id)`` functions returning a
:class:`~lstm_ref.case.Case`."""

import numpy as np

from ...case import Case, build_weights, one_hot_the_mice_had, per_gate  # noqa: F401  (what case modules build with)
from ...reference import from_config

CASES: dict = {}


def golden(name: str):
    """Register ``fn() -> Case`` under the unique id ``name``."""

    def register(fn):
        if name in CASES:
            raise ValueError(f"duplicate golden case id {name!r}")
        CASES[name] = fn
        fn.case_id = name
        return fn

    return register


WIDE_FEATURES, WIDE_UNITS = 256, 64


def wide_float16_case(kind, config, seed, *, batch=3, features=WIDE_FEATURES, time=8, notes=""):
    """A float16 case whose reductions are long: 256 input features and 64
    units, so ``x @ kernel`` sums 256 products and ``h @ recurrent_kernel``
    64 at every unit and step.  Where a sum is accumulated (half or float32)
    and where it is rounded shows up as many ulps here, not as one in a
    tiny case.  Weights per gate block, scaled by 1/sqrt(fan-in) so that
    the gates do not saturate; 8 steps by default, every step valid (the one-step
    comparison needs it).  ``batch`` and ``features`` pick a kernel path
    where the order of the adds depends on the shape (``tf215_matmul``);
    the units are the config's."""

    ref = from_config(kind, config)
    rng = np.random.default_rng(seed)
    scales = tuple(s / np.sqrt(features) for s in (0.7, -0.5, 1.1, 0.4))
    weights = build_weights(ref, rng, features, scales=scales, recurrent_scale=0.5 * np.sqrt(features / ref.units))
    x = rng.standard_normal((batch, time, features)).astype(ref.policy.variable)
    return Case(
        kind,
        config,
        x,
        weights,
        notes=(
            f"float16 with long reductions ({features} inputs, {ref.units} units, batch {batch}): pins where "
            "float16 accumulates and rounds, step by step (one step from TF's own state must be bitwise TF's). " + notes
        ),
    )


def seed_weights():
    """The seed's Keras weights: 10 one-hot features, 5 units, everything 0.1."""
    return {
        "kernel": np.full((10, 20), 0.1, "float32"),
        "recurrent_kernel": np.full((5, 20), 0.1, "float32"),
        "bias": np.full((20,), 0.1, "float32"),
    }
