"""Wrong semantics: how a plausible wrong port of a kind computes.

Each family module declares, beside its reference, the wrong ports it can be
confused with (another gate order, Keras 2's hard_sigmoid, a flipped
go_backwards, a missing forget bias, joint instead of per-gate layer norm,
...).  A :class:`Variant` is built from the real reference by changing only
what a port could get wrong, each a real alternative, never a patched
instance:

* ``weights``: the port reads the weights differently (gate blocks permuted,
  a bias block shifted);
* ``config``: the port runs with another option (no forget bias, no clip);
* ``reference``: the port computes a step differently -- a subclass of the
  family that overrides one documented hook (``resolve_activation``,
  ``_norm``, ``_normalise_gates``, ...);
* ``inputs``: the port sees other inputs (the mask dropped, a constant
  feature);
* ``trace``: the port returns something else (the sequence flipped back).

The report runs every variant that ``applies`` to a case: one that lands
within tolerance of TF shows a case that cannot tell that bug from the
truth.  Variants compose (:func:`compose`), so that a pair of faults can be
searched as one.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def always(case) -> bool:
    return True


def never(case) -> bool:
    return False


@dataclass(frozen=True)
class Variant:
    name: str
    applies: Callable = always  # (case) -> bool
    weights: Callable | None = None  # (weights, case) -> weights
    config: Callable | None = None  # (config) -> config
    reference: type | None = None  # a subclass of the family's reference
    inputs: Callable | None = None  # (case) -> case
    trace: Callable | None = None  # (trace, case) -> trace
    parts: tuple = ()  # the variants a composed variant is made of
    fix: str = ""  # what a port with this fault must change (lstm-ref diagnose says it)

    def port(self, case):
        """``(reference, case)`` of the wrong port on ``case``."""
        if self.inputs is not None:
            case = self.inputs(case)
        if self.weights is not None:
            case = case.replace(weights=self.weights(dict(case.weights), case))
        config = case.config if self.config is None else self.config(dict(case.config))
        if self.reference is not None:
            ref = self.reference(config, platform=case.platform)
        else:
            ref = case.reference(config)
        return ref, case.replace(config=config)

    def run(self, case, *, oracle=False):
        """The wrong port's trace on ``case``."""
        ref, ported = self.port(case)
        trace = ported.run(ref, oracle=oracle)
        return trace if self.trace is None else self.trace(trace, case)


def compose(first: Variant, second: Variant) -> Variant:
    """Both faults at once (the inputs, weights and config changes of
    ``first`` then ``second``; a reference inheriting both overrides)."""

    def chain(f, g):
        if f is None or g is None:
            return f or g
        return lambda *a: g(f(*a), *a[1:])

    reference = first.reference or second.reference
    if first.reference is not None and second.reference is not None:
        reference = type(
            f"{first.reference.__name__}_{second.reference.__name__}", (second.reference, first.reference), {}
        )
    return Variant(
        name=f"{first.name} + {second.name}",
        applies=lambda case: first.applies(case) and second.applies(case),
        weights=chain(first.weights, second.weights),
        config=chain(first.config, second.config),
        reference=reference,
        inputs=chain(first.inputs, second.inputs),
        trace=chain(first.trace, second.trace),
        parts=(first, second),
        fix="; ".join(f for f in (first.fix, second.fix) if f),
    )


def permute_gates(order, keys=("kernel", "recurrent_kernel", "bias"), n_gates=4):
    """A ``weights`` change: the gate blocks on the last axis of ``keys`` read
    in another ``order`` -- a port that takes TF's gates in another order."""

    def change(weights, case):
        for key in keys:
            if key in weights:
                blocks = np.split(weights[key], n_gates, axis=-1)
                weights[key] = np.concatenate([blocks[i] for i in order], axis=-1)
        return weights

    return change


def set_config(**changes):
    """A ``config`` change: the port runs with these options."""
    return lambda config: {**config, **changes}


def flip_sequences(trace, case):
    """A ``trace`` change: every per-step field in input order again."""
    return trace.replace(**{k: v[:, ::-1] for k, v in trace.fields.items() if np.ndim(v) == 3})


def drop_mask(case):
    """An ``inputs`` change: the port ignores the mask."""
    return case.replace(mask=None)


def has_partial_mask(case) -> bool:
    return case.mask is not None and not np.asarray(case.mask).all()


def activation_read_as(cls, name, fn):
    """A port of ``cls`` that resolves the activation ``name`` to ``fn``
    (Keras 2's hard_sigmoid for Keras 3's, tanh for None, ...)."""

    def resolve_activation(self, given, role):
        return fn if given == name else super(port, self).resolve_activation(given, role)

    port = type(
        f"{cls.__name__}_{name}_as_{fn.__name__}",
        (cls,),
        {"resolve_activation": resolve_activation, "__doc__": f"{cls.kind} with {name!r} read as {fn.__name__}."},
    )
    return port


def mask_output_flipped(cls):
    """A port of ``cls`` that zeroes masked outputs where TF repeats the
    previous one (and repeats where TF zeroes)."""

    def _configure(self, options):
        super(port, self)._configure(options)
        self.zero_output_for_mask = not self.zero_output_for_mask

    port = type(
        f"{cls.__name__}_mask_output_flipped",
        (cls,),
        {"_configure": _configure, "__doc__": mask_output_flipped.__doc__},
    )
    return port
