"""Error inputs are data: (bad call, expected exception, message pattern).

Each kind's slice (``kinds/<id>.py``) lists its :class:`ErrorInput` rows; one parametrized test
(``parity_tests/test_bad_input.py``) runs them all.  A row either refuses a
config (``run=None``: :func:`lstm_ref.from_config` raises) or changes one
thing in a valid call (:func:`valid_call`: x of shape (2, 4, 3), weights
from the one builder) and expects ``Reference.run`` to raise.  Every
exception must be a ``ValueError`` subclass exported by ``lstm_ref`` and its
message must name the culprit.
"""

from dataclasses import dataclass

import numpy as np

from .. import from_config
from ..case import build_weights

BATCH, TIME, FEATURES = 2, 4, 3


@dataclass(frozen=True)
class ErrorInput:
    id: str
    config: object  # what from_config gets
    exception: type
    pattern: str  # re.search'd in the message
    run: dict = None  # None: the config is refused; else changes to a valid call (see module doc)
    kind: str = None  # another kind than the record's (an unknown kind, say)

    def call(self, kind):
        """Make the bad call; it must raise ``self.exception``."""
        ref = from_config(self.kind or kind, self.config)
        if self.run is None:
            raise AssertionError(f"from_config accepted {self.config!r}")
        ref.run(**valid_call(ref, self.run))


def valid_call(ref, changes=None):
    """Keyword arguments of a valid ``ref.run`` call, with ``changes``:
    ``weights`` as a dict is merged (a ``None`` value drops that weight),
    anything else replaces the argument."""
    rng = np.random.default_rng(0)
    call = {
        "x": rng.standard_normal((BATCH, TIME, FEATURES)).astype("float32"),
        "weights": build_weights(ref, rng, FEATURES, dtype="float32"),
    }
    for key, value in (changes or {}).items():
        if key == "weights" and isinstance(value, dict):
            merged = {**call["weights"], **value}
            call["weights"] = {k: v for k, v in merged.items() if v is not None}
        else:
            call[key] = value
    return call


def zeros(*shape):
    return np.zeros(shape, "float32")


def states(h_width, c_width, batch=BATCH):
    return {"h0": zeros(batch, h_width), "c0": zeros(batch, c_width)}


LEFT_PADDED = np.array([[0, 1, 1, 1], [1, 1, 1, 1]], bool)
HOLES = np.array([[1, 0, 1, 0], [1, 1, 0, 0]], bool)
E = ErrorInput
