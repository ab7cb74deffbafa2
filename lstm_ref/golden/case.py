"""A golden case: everything needed to run one reference and one oracle."""

from dataclasses import dataclass, field

import numpy as np

CASES: dict = {}


@dataclass
class Case:
    kind: str
    config: dict
    x: np.ndarray
    weights: dict
    h0: np.ndarray = None
    c0: np.ndarray = None
    mask: np.ndarray = None
    notes: str = ""  # what the case can and cannot discriminate
    meta: dict = field(default_factory=dict)  # JSON-able facts, e.g. share of c values clipped
    name: str = ""

    def inputs(self) -> dict:
        arrays = {"x": self.x, **{f"w:{k}": v for k, v in self.weights.items()}}
        for key in ("h0", "c0", "mask"):
            value = getattr(self, key)
            if value is not None:
                arrays[key] = value
        return arrays


def golden(name: str):
    """Register ``fn() -> Case`` under the unique id ``name``."""

    def register(fn):
        if name in CASES:
            raise ValueError(f"duplicate golden case id {name!r}")
        CASES[name] = fn
        fn.case_id = name
        return fn

    return register


def per_gate(rng, shape, scales, dtype="float32"):
    """A weight whose gate blocks (split on the last axis) differ in scale and
    sign, so that a gate-order bug changes the result.  ``scales`` has one
    entry per gate block."""
    blocks = np.split(rng.standard_normal(shape), len(scales), axis=-1)
    return np.concatenate([b * s for b, s in zip(blocks, scales)], axis=-1).astype(dtype)


def one_hot_the_mice_had(dtype="float32"):
    """The seed scenario: vocabulary of 10 words, window "the mice had"."""
    vocab = ["the", "mice", "had", "a", "cat", "ran", "away", "and", "we", "sat"]
    ids = [vocab.index(w) for w in ("the", "mice", "had")]
    return np.eye(len(vocab), dtype=dtype)[ids][None]  # (1, 3, 10)
