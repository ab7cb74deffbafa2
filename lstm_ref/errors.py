"""Exceptions raised by lstm_ref.

Every error is a ``ValueError`` subclass, so ``except ValueError`` catches all
of them; the subclasses let callers tell a bad config from bad weights or bad
run-time inputs.
"""


class LstmRefError(ValueError):
    """Base class for every error lstm_ref raises on bad input."""


class ConfigError(LstmRefError):
    """Unknown kind, unknown or unsupported config key, or a bad config value."""


class WeightError(LstmRefError):
    """A weight is missing, unknown, of the wrong shape, or not a real array."""


class InputError(LstmRefError):
    """``x``, ``h0``, ``c0`` or ``mask`` has the wrong rank, shape or dtype."""


class FixtureError(LstmRefError):
    """A golden fixture is missing, corrupted, edited or of an unknown format."""
