"""The seeded live sweeps the report runs: deterministic cases per kind,
drawn with NumPy (no Hypothesis), covering each kind's option space.

Each kind's slice (``kinds/<id>.py``) holds its sweep, ``fn(seed) ->
iterator of Case`` (named), built with these helpers.  Weights come from
the one builder (:func:`lstm_ref.case.build_weights`) and masks from the
one generator (:func:`lstm_ref.case.make_mask`).
"""

from .. import from_config
from ..case import Case, build_weights, make_mask

ALL_MASKS = ("none", "right", "left", "holes", "fully_masked_row")
RIGHT_PADDED = ("none", "right")


def drawn_case(
    rng,
    name,
    kind,
    config,
    *,
    batch=3,
    time=None,
    features=None,
    units_key="units",
    scales=None,
    mask="none",
    states=False,
):
    """One named case: x, weights and mask drawn from ``rng``."""
    ref = from_config(kind, config)
    time = time or int(rng.choice([4, 10, 30]))
    features = features or int(rng.integers(2, 6))
    var = ref.policy.variable
    scales = scales if scales is not None else tuple(rng.choice([0.3, 0.7, 1.2, -0.8, 3.0], size=4))
    weights = build_weights(ref, rng, features, scales=scales)
    x = rng.standard_normal((batch, time, features)).astype(var)
    initial = {}
    if states:
        initial = {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype(var) for s in ref.STATE}
    return Case(kind, config, x, weights, make_mask(rng, mask, batch, time), name=name, **initial)


def drawn_stacked_case(rng, name, kind, config, *, batch=3, time=None, mask="none", states=False, empty_row=False):
    """A named case of a layered kind: stacked states, lengths >= 1 unless
    ``empty_row`` (ONNX takes rows of length 0)."""
    ref = from_config(kind, config)
    time = time or int(rng.choice([4, 10, 30]))
    features = config.get("input_size") or int(rng.integers(2, 6))
    var = ref.policy.variable
    weights = build_weights(ref, rng, features, scales=tuple(rng.choice([0.3, 0.7, 1.2, -0.8, 3.0], size=4)))
    x = rng.standard_normal((batch, time, features)).astype(var)
    m = make_mask(rng, mask, batch, time)
    if m is not None and empty_row:
        m[-1] = False
    initial = {f"{s}0": rng.standard_normal(ref.state_shape(s, batch)).astype(var) for s in ref.STATE} if states else {}
    return Case(kind, config, x, weights, m, name=name, **initial)
