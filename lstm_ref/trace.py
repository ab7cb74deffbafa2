"""The result of a reference run."""

import numpy as np


class Trace:
    """Per-step fields of one run, in processing order (as TF returns them).

    The fields are the ones the family declares (``Reference.fields()``).
    For every LSTM family they are:

    h: (batch, time, out_units) the per-step output, exactly what TF returns
       with ``return_sequences=True`` (masked steps included).
    c: (batch, time, units) the cell state carried after each step.
    final_h, final_c: the carried states after the last step, what TF returns
       with ``return_state=True``.

    Fields read as attributes (``trace.h``) or by name (``trace["h"]``);
    ``trace.fields`` is the ordered dict of all of them.
    """

    __slots__ = ("fields",)

    def __init__(self, fields=None, **named):
        object.__setattr__(self, "fields", {**(fields or {}), **named})

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "fields")[name]
        except KeyError:
            raise AttributeError(f"this trace has no field {name!r}; it has {list(self.fields)}") from None

    def __setattr__(self, name, value):
        raise AttributeError("a Trace is read-only")

    def __getitem__(self, name):
        return self.fields[name]

    def __iter__(self):
        return iter(self.fields)

    def replace(self, **changes) -> "Trace":
        """A copy with some fields replaced (for post-processed variants)."""
        unknown = sorted(set(changes) - set(self.fields))
        if unknown:
            raise KeyError(f"unknown trace field(s) {unknown}; the trace has {list(self.fields)}")
        return Trace({**self.fields, **changes})

    def __repr__(self):
        shapes = ", ".join(f"{k}={np.shape(v)}" for k, v in self.fields.items())
        return f"Trace({shapes})"
