"""The record of a kind: everything the harness knows about it.

In the spirit of PyTorch's ``OpInfo``: each kind's slice
(``lstm_ref/harness/kinds/<id>.py``) builds its :class:`KindRecord` next to
what it links to -- its Hypothesis strategy, the report's sweep, its error
inputs and its golden cases -- by callables and objects, never by name.
The registry (``lstm_ref/harness/records.py``) lists the slices' records.
"""

from collections.abc import Callable
from dataclasses import dataclass

from ...variants import always
from ..oracles.client import OracleSpec
from ..tolerances import Tolerance, tolerance_for


@dataclass(frozen=True)
class Backend:
    """One backend the kind's framework runs on (Keras 3: ``tensorflow``,
    ``jax``, ``torch``), chosen by the case's ``config["backend"]``: its
    oracle, and its tolerance overrides per compute dtype (joined with the
    kind's by taking the max; each with its measurement)."""

    name: str
    oracle: OracleSpec
    tolerances: dict = None


@dataclass(frozen=True)
class KindRecord:
    kind: str  # the TF class path, as lstm_ref.from_config takes it
    id: str  # short, unique, not a substring of another id: test ids, -k, report rows
    label: str  # what a reader calls it
    reference: type  # the family's Reference subclass
    oracle: OracleSpec  # the worker and environment that run the real thing
    examples: Callable  # () -> Hypothesis strategy of lstm_ref.case.Case (Hypothesis imported when called)
    sweep: Callable  # (seed) -> iterator of named Cases, for the report
    variants: tuple  # lstm_ref.variants.Variant: the wrong ports it is confused with
    error_inputs: tuple  # error_inputs.ErrorInput rows
    throughput_config: Callable  # (rng) -> a small config, for `make bench`'s examples/s
    # Per compute dtype, joined with the dtype table by taking the max; each
    # with the measurement that justifies it.
    tolerances: dict = None
    # Whether TF run in float64 on the rounded inputs is what oracle mode
    # computes (contrib's float16 epsilon differs from its float64 one).
    float64_twin: Callable = always
    # Deployment targets the kind can be converted to (tflite.TFLiteTarget: its modes, its oracle).
    targets: tuple = ()
    # The backends its framework runs on (Backend rows, the oracle's own first);
    # lstm_ref/harness/backends.py runs a case on the one its config names.
    backends: tuple = ()
    # Reference.grad against the framework's reverse mode: per dtype policy
    # name ("float64", "float32", "float16", "mixed_float16": mixed is keyed
    # apart, its weight gradients being float32), the bound ``tol`` with
    # |g_ref - g_framework| <= tol (1 + |g_ref|) on every gradient (inputs,
    # initial states, weights, per-step states; compare.compare_grads), each
    # with its measurement (worst observed, factor).  None: no gradient oracle.
    grad: dict = None

    def tolerance(self, dtype) -> Tolerance:
        """The table's entry for compute ``dtype``, with this kind's overrides."""
        return tolerance_for(dtype, self.tolerances)

    def grad_tolerance(self, policy) -> float:
        """The gradient bound for dtype ``policy`` (a policy name, e.g. a
        config's ``dtype``; None is float32); a KeyError naming the kind
        where it has none (no oracle for that dtype)."""
        name = "float32" if policy is None else getattr(policy, "name", policy)
        if not self.grad or name not in self.grad:
            raise KeyError(f"{self.kind}: no gradient tolerance for dtype {name!r}; it has {sorted(self.grad or ())}")
        return self.grad[name]
