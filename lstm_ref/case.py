"""A case: one kind, one config and the arrays of one run -- the currency
that strategies, goldens, the sweep, the wire and the report all carry.

Also the one weight builder (:func:`build_weights`, from the reference's own
``weight_shapes``) and the one mask generator (:func:`make_mask`).
"""

import numpy as np

MASK_PATTERNS = ("none", "right", "left", "holes", "fully_masked_row", "random")


class Case:
    """``kind`` and ``config`` as given to :func:`lstm_ref.from_config`, and
    ``x``, ``weights``, ``mask`` and the initial state (``h0=``, ``c0=``: one
    ``<state>0`` keyword per carried state of the family) as given to
    ``Reference.run``.  ``notes`` say what the case can and cannot
    discriminate; ``meta`` holds JSON-able facts (the share of values
    clipped, ...); ``name`` is its id.  ``platform`` is the
    :mod:`~lstm_ref.platform` profile its expected outputs were computed on
    (a golden's or a recording's; None: this machine's), and the profile
    its reference reproduces."""

    def __init__(
        self, kind, config, x, weights, mask=None, *, notes="", meta=None, name="", platform=None, **initial_state
    ):
        self.kind = kind
        self.config = config
        self.x = x
        self.weights = weights
        self.mask = mask
        self.initial_state = {k: v for k, v in initial_state.items() if v is not None}
        self.notes = notes
        self.meta = dict(meta or {})
        self.name = name
        self.platform = platform

    def reference(self, config=None):
        from .reference import from_config

        return from_config(self.kind, self.config if config is None else config, platform=self.platform)

    def run(self, ref=None, *, oracle=False, **changes):
        """Run the reference on this case; ``changes`` replace x, weights,
        mask or initial-state entries for this run only."""
        ref = ref or self.reference()
        args = {"x": self.x, "weights": self.weights, "mask": self.mask, **self.initial_state, **changes}
        return ref.run(args.pop("x"), args.pop("weights"), oracle=oracle, **args)

    def replace(self, **changes) -> "Case":
        fields = {
            "kind": self.kind,
            "config": self.config,
            "x": self.x,
            "weights": self.weights,
            "mask": self.mask,
            "notes": self.notes,
            "meta": self.meta,
            "name": self.name,
            "platform": self.platform,
            **self.initial_state,
        }
        fields.update(changes)
        return Case(**fields)

    def arrays(self) -> dict:
        """The arrays of the case under the names the wire and the fixture
        files use: ``x``, ``w:<weight>``, ``<state>0``, ``mask``."""
        arrays = {"x": self.x, **{f"w:{k}": v for k, v in self.weights.items()}, **self.initial_state}
        if self.mask is not None:
            arrays["mask"] = self.mask
        return arrays

    @classmethod
    def from_arrays(cls, kind, config, arrays: dict, **extra) -> "Case":
        """The inverse of :meth:`arrays`."""
        arrays = dict(arrays)
        weights = {k[2:]: arrays.pop(k) for k in list(arrays) if k.startswith("w:")}
        return cls(kind, config, arrays.pop("x"), weights, arrays.pop("mask", None), **extra, **arrays)

    def describe(self) -> str:
        """One line that reproduces the case (for failure notes)."""
        shapes = {k: getattr(v, "shape", None) for k, v in self.initial_state.items()}
        mask = None if self.mask is None else np.asarray(self.mask).astype(int).tolist()
        where = "" if self.platform is None else f", platform={str(self.platform)!r}"
        return (
            f"lstm_ref.from_config({self.kind!r}, {self.config!r}{where}).run(x, weights, ...) with x.shape="
            f"{np.shape(self.x)}, initial state {shapes or None}, mask={mask}"
        )

    def __repr__(self):
        return f"Case({self.name or self.kind!r}, {self.config!r}, x{np.shape(self.x)})"


def per_gate(rng, shape, scales, dtype="float32", axis=-1):
    """A weight whose gate blocks (split on ``axis``, the last by default)
    differ in scale and sign, so that a gate-order bug changes the result.
    ``scales`` has one entry per gate block."""
    blocks = np.split(rng.standard_normal(shape), len(scales), axis=axis)
    return np.concatenate([b * s for b, s in zip(blocks, scales)], axis=axis).astype(dtype)


GATE_BIASES = (0.2, 1.0, -0.3, 0.4)  # per gate block; a second bias gets (-0.1, 0.3, 0.2, -0.2)


def build_weights(ref, rng, input_dim, scales=(0.7, -0.5, 1.1, 0.4), recurrent_scale=0.5, dtype=None):
    """Weights for ``ref`` from its own ``weight_shapes``, every gate block at
    its own scale and sign (``scales``; the rows fed by the state get them
    reversed, times ``recurrent_scale``); gammas near 1 and betas near 0 with
    a per-unit pattern, so that no layer-norm block is constant; biases per
    gate; peephole diagonals with distinct signs."""
    dtype = dtype or ref.policy.variable
    if hasattr(ref, "draw_weights"):  # a kind whose layout differs (gates on rows, stacked directions)
        return {
            k: np.asarray(v).astype(dtype) for k, v in ref.draw_weights(rng, input_dim, scales, recurrent_scale).items()
        }
    out = {}
    for name, shape in ref.weight_shapes(input_dim).items():
        width = shape[-1]
        pattern = 0.3 * np.sin(0.7 + 1.9 * np.arange(width))
        if name.endswith("gamma"):
            w = 1.0 + pattern + 0.3 * rng.standard_normal(shape)
        elif name.endswith("beta"):
            w = pattern + 0.2 * rng.standard_normal(shape)
        elif len(shape) == 1 and width % 4 == 0 and width // 4 == ref.units:  # a 4-gate bias
            w = np.repeat(GATE_BIASES, ref.units) + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 1:  # peephole diagonals
            w = (1.0 if "f_" in name else -0.8 if "i_" in name else 1.2) * rng.standard_normal(shape)
        elif width == 4 * ref.units and shape[0] > input_dim and name == "kernel":  # kernel over [x, h]
            w = np.concatenate(
                [
                    per_gate(rng, (input_dim, width), scales, np.float64),
                    per_gate(
                        rng, (shape[0] - input_dim, width), [recurrent_scale * s for s in scales[::-1]], np.float64
                    ),
                ]
            )
        elif width == 4 * ref.units:
            row_scales = scales if name == "kernel" else [recurrent_scale * s for s in scales[::-1]]
            w = per_gate(rng, shape, row_scales, np.float64)
        else:  # a projection
            w = 0.8 * rng.standard_normal(shape)
        out[name] = np.asarray(w).astype(dtype)
    return out


def make_mask(rng, pattern, batch, time):
    """A (batch, time) bool mask of the named pattern (None for "none").

    ``right``/``left``: padding after/before a random length >= 1; ``holes``:
    random gaps, first step kept; ``fully_masked_row``: random, one row all
    False; ``random``: anything."""
    if pattern == "none":
        return None
    steps = np.arange(time)
    lengths = rng.integers(1, time + 1, size=batch)
    if pattern == "right":
        return steps[None] < lengths[:, None]
    if pattern == "left":
        return steps[None] >= (time - lengths)[:, None]
    if pattern == "holes":
        mask = rng.random((batch, time)) < 0.6
        mask[:, 0] = True
        return mask
    if pattern == "fully_masked_row":
        mask = rng.random((batch, time)) < 0.6
        mask[rng.integers(batch)] = False
        return mask
    if pattern == "random":
        return rng.random((batch, time)) < 0.5
    raise ValueError(f"unknown mask pattern {pattern!r}; expected one of {MASK_PATTERNS}")


def one_hot_the_mice_had(dtype="float32"):
    """The seed scenario: vocabulary of 10 words, window "the mice had"."""
    vocab = ["the", "mice", "had", "a", "cat", "ran", "away", "and", "we", "sat"]
    ids = [vocab.index(w) for w in ("the", "mice", "had")]
    return np.eye(len(vocab), dtype=dtype)[ids][None]  # (1, 3, 10)
